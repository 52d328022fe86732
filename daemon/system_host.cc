#include "daemon/system_host.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/io.h"
#include "daemon/spawner.h"

namespace corral::daemon {

namespace asio = boost::asio;

namespace {

class AsioTimer : public Timer {
 public:
  explicit AsioTimer(asio::io_context& io) : timer_(io) {}
  void arm(TimePoint deadline, std::function<void()> callback) override {
    timer_.expires_at(deadline);
    // A wait that completed before a re-arm, cancel or destruction may
    // already be queued: it runs only if it is still the current one.
    uint64_t armed = ++generation_;
    timer_.async_wait([callback = std::move(callback), armed, alive = std::weak_ptr<int>(alive_),
                       this](boost::system::error_code ec) {
      if (ec || alive.expired() || armed != generation_) return;
      callback();
    });
  }
  void cancel() override {
    ++generation_;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  uint64_t generation_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace

struct SystemHost::Watch {
  Watch(asio::io_context& io, pid_t pid, int pidfd) : pidfd(io, pidfd), proc(pid) {}
  asio::posix::stream_descriptor pidfd;
  std::function<void(ExitStatus)> on_exit;
  ProcReader proc;  // its /proc files, closed when it is reaped
};

SystemHost::SystemHost(asio::io_context& io, rlimit nofile_default)
    : io_(io), nofile_default_(nofile_default), output_(io) {
  devnull_.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (auto server = SpawnServer::start()) {
    spawn_server_ = std::move(*server);
  } else {
    spdlog::warn("spawn server: {}; corrald starts workers itself", server.error().message());
  }
}

SystemHost::~SystemHost() = default;

TimePoint SystemHost::now() { return Clock::now(); }

std::unique_ptr<Timer> SystemHost::make_timer() { return std::make_unique<AsioTimer>(io_); }

Result<pid_t> SystemHost::spawn(const SpawnRequest& request,
                                std::function<void(ExitStatus)> on_exit) {
  auto maps = [&](int target) {
    return std::any_of(request.fds.begin(), request.fds.end(),
                       [&](const FdMapping& m) { return m.target == target; });
  };
  const bool capture_stdout = !maps(1);
  Pipe out;
  if (capture_stdout) {
    Result<Pipe> pipe = make_pipe();
    if (!pipe) return std::move(pipe).error();
    out = std::move(*pipe);
  }
  Result<Pipe> err = make_pipe();
  if (!err) return std::move(err).error();
  std::vector<FdMapping> fds = request.fds;
  if (!maps(0)) fds.push_back({0, devnull_.get()});
  if (capture_stdout) fds.push_back({1, out.write.get()});
  fds.push_back({2, err->write.get()});
  Launched launched = spawn_server_ ? spawn_server_->launch(request, fds, nofile_default_)
                                    : launch(request, fds, nofile_default_);
  // The child has its copies; the read ends see EOF when it exits.
  out.write.reset();
  err->write.reset();
  if (launched.pid == 0) return Error(launched.error);
  if (capture_stdout) {
    output_.capture(out.read.release(), request.log_dir, split_file_path(request.stdout_log).second,
                    request.log_rotate);
  }
  output_.capture(err->read.release(), request.log_dir, split_file_path(request.stderr_log).second,
                  request.log_rotate);
  watch_exit(launched.pid, launched.pidfd.release(), std::move(on_exit));
  return launched.pid;
}

void SystemHost::watch_exit(pid_t pid, int pidfd, std::function<void(ExitStatus)> on_exit) {
  auto watch = std::make_unique<Watch>(io_, pid, pidfd);
  watch->on_exit = std::move(on_exit);
  Watch* w = watch.get();
  watches_[pid] = std::move(watch);
  w->pidfd.async_wait(
      asio::posix::stream_descriptor::wait_read, [this, pid](boost::system::error_code ec) {
        if (ec == asio::error::operation_aborted) return;
        auto it = watches_.find(pid);
        if (it == watches_.end()) return;
        // The zombie still holds the pid, so the group id cannot
        // have been reused: kill what is left of the group.
        ::kill(-pid, SIGKILL);
        siginfo_t info{};
        int fd = it->second->pidfd.native_handle();
        int rc;
        do {
          rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &info, WEXITED);
        } while (rc < 0 && errno == EINTR);
        ExitStatus status = rc == 0 ? ExitStatus::from_siginfo(info) : ExitStatus::killed(SIGKILL);
        if (rc < 0) {
          spdlog::error("waitid for pid {}: {}", pid, strerror(errno));
        }
        auto callback = std::move(it->second->on_exit);
        watches_.erase(it);
        callback(status);
      });
}

void SystemHost::signal_group(pid_t pid, int signal) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return;
  if (::kill(-pid, signal) == 0) return;
  // The worker left its process group (setsid): signal the process itself,
  // through its pidfd, which cannot hit a reused pid.
  int fd = it->second->pidfd.native_handle();
  if (syscall(SYS_pidfd_send_signal, fd, signal, nullptr, 0) < 0 && errno != ESRCH) {
    spdlog::warn("cannot signal pid {}: {}", pid, strerror(errno));
  }
}

std::optional<ProcSample> SystemHost::sample_process(pid_t pid, bool with_status) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return std::nullopt;
  return it->second->proc.read(with_status);
}

Status SystemHost::signal_process(pid_t pid, int signal) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return Error("not running");
  // Through the pidfd: never a reused pid.
  int fd = it->second->pidfd.native_handle();
  if (syscall(SYS_pidfd_send_signal, fd, signal, nullptr, 0) < 0) return Error(strerror(errno));
  return {};
}

}  // namespace corral::daemon

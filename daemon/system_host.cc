#include "daemon/system_host.h"

#include <dirent.h>
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
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/io.h"
#include "config/units.h"
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

// How often an ended worker's cgroup is looked at until it is empty, at
// most, and how long before corrald says that it does not empty.
constexpr auto kEmptyPoll = std::chrono::milliseconds(20);
constexpr auto kEmptyWarning = std::chrono::seconds(10);
// How long the orphan scan and the record of the workers wait (see
// SystemHost::schedule_housekeeping).
constexpr auto kHousekeepingDelay = std::chrono::milliseconds(2);

struct SystemHost::Watch {
  Watch(asio::io_context& io, pid_t pid, int pidfd)
      : pidfd(io, pidfd), proc(pid), pid(pid), timer(io) {}
  asio::posix::stream_descriptor pidfd;
  std::function<void(ExitStatus)> on_exit;
  ProcReader proc;  // its /proc files, closed when it is reaped
  pid_t pid;
  uint64_t start_ticks = 0;
  std::string name, job;
  uint32_t index = 0;
  bool cgroup = false;
  std::optional<uint64_t> memory_max;  // in force in its cgroup
  bool oom_killed = false;             // memory.events counted an OOM kill in it
  asio::steady_timer timer;            // while its cgroup empties
  std::chrono::milliseconds poll{1};
  TimePoint ended_at{};
  bool warned = false;
};

SystemHost::SystemHost(asio::io_context& io, rlimit nofile_default, CgroupTree* cgroups)
    : io_(io), nofile_default_(nofile_default), cgroups_(cgroups), output_(io) {
  devnull_.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (auto server = SpawnServer::start()) {
    spawn_server_ = std::move(*server);
  } else {
    spdlog::warn("spawn server: {}; corrald starts workers itself", server.error().message());
  }
  sigchld_ = std::make_unique<asio::signal_set>(io_, SIGCHLD);
  watch_children();
}

void SystemHost::watch_children() {
  sigchld_->async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    request_scan();
    watch_children();
  });
}

void SystemHost::request_scan() {
  // Once per housekeeping, however many children ended meanwhile.
  scan_posted_ = true;
  schedule_housekeeping();
}

void SystemHost::schedule_housekeeping() {
  if (housekeeping_armed_) return;
  housekeeping_armed_ = true;
  if (!housekeeping_) housekeeping_ = std::make_unique<asio::steady_timer>(io_);
  housekeeping_->expires_after(kHousekeepingDelay);
  housekeeping_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // corrald is ending; write_record() is called at the end
    housekeeping_armed_ = false;
    if (scan_posted_) scan_adopted();
    if (record_posted_) write_record();
  });
}

std::vector<pid_t> SystemHost::adopted() const {
  std::vector<pid_t> pids;
  auto keep = [&](pid_t pid) {
    if (watches_.count(pid) == 0 && (!spawn_server_ || pid != spawn_server_->pid())) {
      pids.push_back(pid);
    }
  };
  // Each thread's children (an orphan comes back to one of corrald's
  // threads), where the kernel lists them (CONFIG_PROC_CHILDREN) ...
  if (DIR* tasks = ::opendir("/proc/self/task")) {
    bool listed = false;
    while (dirent* task = ::readdir(tasks)) {
      if (task->d_name[0] == '.') continue;
      std::ifstream children(std::string("/proc/self/task/") + task->d_name + "/children");
      listed = listed || children.is_open();
      for (pid_t pid; children >> pid;) keep(pid);
    }
    ::closedir(tasks);
    if (listed) return pids;
  }
  // ... else every process whose parent is corrald.
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string text;
    std::getline(stat, text);
    // "pid (comm) state ppid ...": comm may hold anything, ')' too.
    const size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == self) keep(static_cast<pid_t>(std::atoi(entry->d_name)));
  }
  ::closedir(proc);
  return pids;
}

void SystemHost::end_orphans_of(const Watch& w) {
  std::optional<ProcIdentity> id = read_identity(w.pid);  // a zombie still says
  Ended ended{w.job, std::to_string(w.index), w.pid, id ? id->start_ticks : w.start_ticks,
              boot_ticks_now()};
  ended_.push_back(std::move(ended));
  request_scan();
}

void SystemHost::scan_adopted() {
  scan_posted_ = false;
  std::vector<bool> found(ended_.size(), false);
  for (pid_t pid : adopted()) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) == 0 &&
        info.si_pid == pid) {
      continue;  // it had ended: reaped
    }
    if (ended_.empty()) continue;
    // Not reaped, so PID is still that process: it may be signalled.
    std::optional<ProcIdentity> id = read_identity(pid);
    if (!id || watches_.count(id->sid) != 0) continue;  // a live worker's session
    // Whose it is: its session, or the environment it inherited.
    std::map<std::string, std::string> env = read_environ(pid, {"CORRAL_JOB", "CORRAL_WORKER"});
    for (size_t i = 0; i < ended_.size(); ++i) {
      const Ended& e = ended_[i];
      const bool theirs =
          id->sid == e.pid || (env["CORRAL_JOB"] == e.job && env["CORRAL_WORKER"] == e.index);
      // Started while that worker lived: not a later worker's of the slot.
      if (theirs && id->start_ticks >= e.start_ticks && id->start_ticks <= e.end_ticks) {
        ::kill(pid, SIGKILL);  // reaped at its SIGCHLD
        found[i] = true;
        break;
      }
    }
  }
  // A worker's orphans come back one generation at a time, as each parent
  // is ended: its entry stays while scans still find some.
  std::vector<Ended> kept;
  for (size_t i = 0; i < ended_.size(); ++i) {
    if (found[i] || !ended_[i].scanned) {
      kept.push_back(std::move(ended_[i]));
      kept.back().scanned = true;
    }
  }
  ended_ = std::move(kept);
}

void SystemHost::keep_record(std::function<void(const std::vector<RecordedWorker>&)> write) {
  write_record_ = std::move(write);
  record_changed();
}

void SystemHost::record_changed() {
  if (!write_record_) return;
  record_posted_ = true;
  schedule_housekeeping();
}

void SystemHost::write_record() {
  record_posted_ = false;
  if (!write_record_) return;
  std::vector<RecordedWorker> live;
  for (const auto& [pid, w] : watches_) {
    if (!w->cgroup) live.push_back({pid, w->start_ticks, w->name});
  }
  write_record_(live);
}

size_t SystemHost::end_adopted() {
  // Ended one generation at a time: a killed orphan's own children come
  // back to corrald in turn. Bounded, for a fork bomb outside a cgroup.
  size_t ended = 0;
  for (int round = 0; round < 64; ++round) {
    std::vector<pid_t> pids = adopted();
    if (pids.empty()) break;
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) {
      siginfo_t info{};
      while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) < 0 && errno == EINTR) {
      }
    }
    ended += pids.size();
  }
  return ended;
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
  // fd 1 carries the worker's output unless a channel has it (pipe, stdio).
  const bool stdout_free = !maps(1);
  const bool capture_stdout = stdout_free && !request.stdout_log.inherit;
  Pipe out;
  if (capture_stdout) {
    Result<Pipe> pipe = make_pipe();
    if (!pipe) return std::move(pipe).error();
    out = std::move(*pipe);
  }
  // stderr goes where stdout goes (log.stderr: stdout) only where fd 1 is
  // the worker's output: a worker speaking on fd 1 keeps its stderr apart.
  const bool merged = request.stderr_to_stdout && stdout_free;
  const bool capture_stderr = !merged && !request.stderr_log.inherit;
  Pipe err;
  if (capture_stderr) {
    Result<Pipe> pipe = make_pipe();
    if (!pipe) return std::move(pipe).error();
    err = std::move(*pipe);
  }
  std::vector<FdMapping> fds = request.fds;
  if (!maps(0)) fds.push_back({0, devnull_.get()});
  if (stdout_free) fds.push_back({1, capture_stdout ? out.write.get() : STDOUT_FILENO});
  if (merged) {
    fds.push_back({2, capture_stdout ? out.write.get() : STDOUT_FILENO});
  } else {
    fds.push_back({2, capture_stderr ? err.write.get() : STDERR_FILENO});
  }
  UniqueFd cgroup;
  SpawnRequest placed;
  const SpawnRequest* to_launch = &request;
  if (cgroups_ != nullptr) {
    Result<UniqueFd> made = cgroups_->prepare(request.job, request.index, request.cgroup_limits);
    if (!made) return std::move(made).error().context("its cgroup");
    cgroup = std::move(*made);
    placed = request;
    placed.cgroup_fd = cgroup.get();
    to_launch = &placed;
  }
  Launched launched = spawn_server_ ? spawn_server_->launch(*to_launch, fds, nofile_default_)
                                    : launch(*to_launch, fds, nofile_default_);
  // The child has its copies; the read ends see EOF when it exits.
  out.write.reset();
  err.write.reset();
  if (launched.pid == 0) return Error(launched.error);
  if (capture_stdout) output_.capture(out.read.release(), request.stdout_log, request.log_rotate);
  if (capture_stderr) output_.capture(err.read.release(), request.stderr_log, request.log_rotate);
  watch_exit(launched.pid, launched.pidfd.release(), *to_launch, std::move(on_exit));
  return launched.pid;
}

void SystemHost::watch_exit(pid_t pid, int pidfd, const SpawnRequest& request,
                            std::function<void(ExitStatus)> on_exit) {
  auto watch = std::make_unique<Watch>(io_, pid, pidfd);
  watch->on_exit = std::move(on_exit);
  watch->name = request.name;
  watch->job = request.job;
  watch->index = request.index;
  watch->cgroup = request.cgroup_fd >= 0;
  if (watch->cgroup && cgroups_->has_controller("memory")) {
    watch->memory_max = request.cgroup_limits.memory_max;
  }
  if (!watch->cgroup) {
    std::optional<ProcIdentity> id = read_identity(pid);
    watch->start_ticks = id ? id->start_ticks : boot_ticks_now();
    record_changed();
  }
  Watch* w = watch.get();
  watches_[pid] = std::move(watch);
  w->pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                      [this, pid](boost::system::error_code ec) {
                        if (ec == asio::error::operation_aborted) return;
                        ended(pid);
                      });
}

void SystemHost::ended(pid_t pid) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return;
  Watch& w = *it->second;
  // The zombie still holds the pid, so the group id cannot have been
  // reused: kill what is left of the group.
  ::kill(-pid, SIGKILL);
  if (!w.cgroup) {
    end_orphans_of(w);
    reap(pid);
    return;
  }
  // And what is left of its cgroup, wherever it went.
  if (w.ended_at == TimePoint{}) {
    w.ended_at = now();
    // Before the cgroup goes: did the kernel end it for memory.max?
    w.oom_killed = w.memory_max && cgroups_->oom_kills(w.job, w.index).value_or(0) > 0;
    if (Status killed = cgroups_->kill(w.job, w.index); !killed) {
      spdlog::error("{}: {}", w.name, killed.error().message());
    }
  }
  if (!cgroups_->populated(w.job, w.index)) {
    // A fresh cgroup for the next process of the slot: a cgroup that was
    // killed (cgroup.kill) kills children cloned into it on some kernels
    // (6.18 here), and a new one starts with nothing of the old one's.
    cgroups_->remove(w.job, w.index);
    reap(pid);
    return;
  }
  if (!w.warned && now() - w.ended_at > kEmptyWarning) {
    w.warned = true;
    spdlog::error(
        "{}: its cgroup {}/{} still holds processes {} s after cgroup.kill (in "
        "uninterruptible sleep?); the worker counts as running until they are gone",
        w.name, cgroups_->dir(), CgroupTree::relative(w.job, w.index),
        std::chrono::duration_cast<std::chrono::seconds>(kEmptyWarning).count());
  }
  w.timer.expires_after(w.poll);
  w.poll = std::min(w.poll * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kEmptyPoll));
  w.timer.async_wait([this, pid](boost::system::error_code ec) {
    if (!ec) ended(pid);
  });
}

void SystemHost::reap(pid_t pid) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return;
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
  const Watch& w = *it->second;
  if (w.oom_killed && status.was_killed() && status.signal() == SIGKILL) {
    status = status.because("killed by the kernel: memory.max " +
                            config::format_size(*w.memory_max) + " reached");
  }
  auto callback = std::move(it->second->on_exit);
  const bool recorded = !it->second->cgroup;
  watches_.erase(it);
  if (recorded) record_changed();
  callback(status);
}

void SystemHost::signal_group(pid_t pid, int signal) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return;
  // A kill reaches every process of the worker's cgroup, those that left
  // its process group too.
  if (signal == SIGKILL && it->second->cgroup) {
    if (Status killed = cgroups_->kill(it->second->job, it->second->index); !killed) {
      spdlog::error("{}: {}", it->second->name, killed.error().message());
    }
  }
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
  std::optional<ProcSample> sample = it->second->proc.read(with_status);
  const Watch& w = *it->second;
  if (sample && w.cgroup) {
    // The cgroup counts every process of the worker, its children too.
    CgroupTree::Usage usage = cgroups_->usage(w.job, w.index);
    if (usage.cpu_s) sample->cpu_s = *usage.cpu_s;
    sample->cgroup_memory_bytes = usage.memory_bytes;
  }
  return sample;
}

Result<std::string> SystemHost::pause(pid_t pid, bool paused) {
  auto it = watches_.find(pid);
  if (it == watches_.end()) return Error("not running");
  const Watch& w = *it->second;
  if (w.cgroup) {
    if (Status frozen = cgroups_->freeze(w.job, w.index, paused); !frozen) {
      return std::move(frozen).error();
    }
    return std::string("cgroup.freeze");
  }
  // The worker leads its group: no reused group id while it is watched.
  if (::kill(-pid, paused ? SIGSTOP : SIGCONT) < 0) return errno_error("kill");
  return std::string(paused ? "SIGSTOP" : "SIGCONT");
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

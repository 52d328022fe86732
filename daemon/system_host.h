// The production Host: the monotonic clock, Asio timers, processes started
// by spawner.h (through spawn_server.h) and watched through their pidfds in the event loop, their
// output captured to log files. Exits are reaped with waitid(P_PIDFD) as soon
// as the pidfd is readable; before reaping, whatever is left of the worker's
// process group is killed, so a worker's children never outlive it.
#pragma once

#include <sys/resource.h>

#include <map>
#include <memory>

#include "base/unique_fd.h"
#include "daemon/host.h"
#include "daemon/output_capture.h"
#include "daemon/spawn_server.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class SystemHost : public Host {
 public:
  // NOFILE_DEFAULT: the RLIMIT_NOFILE workers get (the daemon raises its own).
  SystemHost(boost::asio::io_context& io, rlimit nofile_default);
  ~SystemHost() override;

  TimePoint now() override;
  std::unique_ptr<Timer> make_timer() override;
  Result<pid_t> spawn(const SpawnRequest& request,
                      std::function<void(ExitStatus)> on_exit) override;
  void signal_group(pid_t pid, int signal) override;
  Status signal_process(pid_t pid, int signal) override;
  std::optional<ProcSample> sample_process(pid_t pid, bool with_status) override;

  OutputCapture& output() { return output_; }
  // Processes spawned and not yet reaped.
  size_t live_processes() const { return watches_.size(); }

 private:
  struct Watch;
  void watch_exit(pid_t pid, int pidfd, std::function<void(ExitStatus)> on_exit);

  boost::asio::io_context& io_;
  rlimit nofile_default_;
  UniqueFd devnull_;
  std::unique_ptr<SpawnServer> spawn_server_;  // null: launch() here
  OutputCapture output_;
  std::map<pid_t, std::unique_ptr<Watch>> watches_;
};

}  // namespace corral::daemon

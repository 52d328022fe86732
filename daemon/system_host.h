// The production Host: the monotonic clock, Asio timers, processes started
// by spawner.h (through spawn_server.h) and watched through their pidfds in the event loop, their
// output captured to log files. Exits are reaped with waitid(P_PIDFD) as soon
// as the pidfd is readable; before reaping, whatever is left of the worker's
// process group is killed, so a worker's children never outlive it. With
// cgroups (cgroup.h) each worker starts in its own, and an exit counts only
// once that cgroup is empty: cgroup.kill ends what is left, a grandchild in
// a session of its own too, and a stop's SIGKILL reaches all of it.
#pragma once

#include <sys/resource.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "daemon/host.h"
#include "daemon/output_capture.h"
#include "daemon/spawn_server.h"
#include "daemon/worker_record.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class SystemHost : public Host {
 public:
  // NOFILE_DEFAULT: the RLIMIT_NOFILE workers get (the daemon raises its own).
  // CGROUPS: the workers' cgroups (daemon.cgroup), or null.
  SystemHost(boost::asio::io_context& io, rlimit nofile_default, CgroupTree* cgroups = nullptr);
  ~SystemHost() override;

  TimePoint now() override;
  std::unique_ptr<Timer> make_timer() override;
  Result<pid_t> spawn(const SpawnRequest& request,
                      std::function<void(ExitStatus)> on_exit) override;
  void signal_group(pid_t pid, int signal) override;
  Status signal_process(pid_t pid, int signal) override;
  Result<std::string> pause(pid_t pid, bool paused) override;
  std::optional<ProcSample> sample_process(pid_t pid, bool with_status) override;

  OutputCapture& output() { return output_; }
  // corrald's stop: ends the orphans that came back to it (PR_SET_CHILD_
  // SUBREAPER) and are still running, and reaps them; how many.
  size_t end_adopted();
  // Without cgroups: WRITE gets the live workers (pid, start time, name)
  // each time they change, at most once per turn of the loop
  // (worker_record.h keeps them in daemon.state_dir).
  void keep_record(std::function<void(const std::vector<RecordedWorker>&)> write);
  // Writes it now (corrald's end: no turn of the loop is left).
  void write_record();
  // Processes spawned and not yet reaped.
  size_t live_processes() const { return watches_.size(); }

 private:
  struct Watch;
  void watch_exit(pid_t pid, int pidfd, const SpawnRequest& request,
                  std::function<void(ExitStatus)> on_exit);
  // The process of W has ended: once nothing of its cgroup is left (a
  // stray process of it ended by cgroup.kill), reap it and say so.
  void ended(pid_t pid);
  void reap(pid_t pid);
  // corrald's children that spawn() did not start: a worker's orphans,
  // which came back to corrald, the subreaper.
  std::vector<pid_t> adopted() const;
  // Without cgroups, after the worker of W ended: its orphans are ended at
  // the next scan_adopted(): those of its session, or whose environment
  // names it (the CORRAL_JOB and CORRAL_WORKER it gave them), started
  // while it ran.
  void end_orphans_of(const Watch& w);
  // Reaps the adopted that have ended (at each SIGCHLD) and ends the
  // orphans of the workers end_orphans_of() named.
  void scan_adopted();
  void request_scan();  // scan_adopted() at the next housekeeping, once
  void watch_children();

  boost::asio::io_context& io_;
  rlimit nofile_default_;
  UniqueFd devnull_;
  CgroupTree* cgroups_;                        // null: no cgroups
  std::unique_ptr<SpawnServer> spawn_server_;  // null: launch() here
  OutputCapture output_;
  std::map<pid_t, std::unique_ptr<Watch>> watches_;
  std::unique_ptr<boost::asio::signal_set> sigchld_;
  // Workers ended without cgroups whose orphans scan_adopted() ends.
  struct Ended {
    std::string job, index;
    pid_t pid;
    uint64_t start_ticks, end_ticks;
    bool scanned = false;
  };
  std::vector<Ended> ended_;
  std::function<void(const std::vector<RecordedWorker>&)> write_record_;
  bool record_posted_ = false;
  void record_changed();
  bool scan_posted_ = false;
  // The scan and the record wait for housekeeping, kHousekeepingDelay after
  // the first of them is asked: off a restart's path (the replacement is
  // spawned first), and once for an exit and its replacement together.
  void schedule_housekeeping();
  std::unique_ptr<boost::asio::steady_timer> housekeeping_;
  bool housekeeping_armed_ = false;
};

}  // namespace corral::daemon

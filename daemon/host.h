// The seam between the supervisor's decisions and the operating system
// (leveldb's Env): the clock, timers, spawning, signalling. The daemon runs
// on SystemHost (system_host.h); tests run the same Supervisor on a fake host
// with a fake clock that records spawns and injects exits.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/spec.h"
#include "daemon/cgroup.h"
#include "daemon/clock.h"
#include "daemon/exit_status.h"
#include "daemon/proc_stats.h"
#include "daemon/safe_file.h"

namespace corral::daemon {

// `source` (an fd of the daemon) becomes `target` in the child.
struct FdMapping {
  int target;
  int source;
};

// A file one of a worker's output streams is appended to.
struct OutputFile {
  // Its directory, held open: the file is opened through it (safe_file.h).
  // Null: what the stream carries is read and dropped (log: off, or a host
  // without log files).
  std::shared_ptr<const SafeDir> dir;
  std::string name;  // in DIR
  std::string path;  // for messages and status; empty with `off`
  // Not captured: the child's stream is corrald's own stdout (stderr), as
  // log `inherit` asks.
  bool inherit = false;
};

// Everything needed to start one worker process.
struct SpawnRequest {
  std::string name;  // JOB:INDEX, for messages
  std::string job;
  uint32_t index = 0;
  std::vector<std::string> argv;  // argv[0] is looked up in the PATH of `env`
  std::vector<std::string> env;   // "KEY=value", the whole environment
  std::string cwd;                // empty: the daemon's
  std::string user;               // empty: the daemon's
  // Files the output is appended to; STDERR_TO_STDOUT: the child's stderr
  // is its stdout's pipe, one stream in one file (log.stderr: stdout).
  OutputFile stdout_log, stderr_log;
  bool stderr_to_stdout = false;
  config::LogRotate log_rotate;
  std::optional<unsigned> umask;  // unset: corrald's
  int nice = 0;
  std::optional<uint64_t> nofile;
  std::vector<int> cpus;  // affinity; empty: any CPU
  // Channel fds for the child. A mapping onto 0 or 1 replaces /dev/null or
  // the captured stdout.
  std::vector<FdMapping> fds;
  // The cgroup the child starts in (a directory fd of the host's, not
  // owned); -1: the spawner's own. The host sets it where workers have
  // cgroups, with these limits written.
  int cgroup_fd = -1;
  CgroupLimits cgroup_limits;
};

// One pending wake-up. Re-arming replaces the previous deadline; destroying
// the timer cancels it. The callback runs on the event loop.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void arm(TimePoint deadline, std::function<void()> callback) = 0;
  virtual void cancel() = 0;
};

class Host {
 public:
  virtual ~Host() = default;
  virtual TimePoint now() = 0;
  virtual std::unique_ptr<Timer> make_timer() = 0;
  // Starts a process in its own process group: its pid, or why not ("exec
  // nope: No such file or directory"). `on_exit` runs once, on the event
  // loop, after the process has ended and was reaped.
  virtual Result<pid_t> spawn(const SpawnRequest& request,
                              std::function<void(ExitStatus)> on_exit) = 0;
  // Signals the process group of a process that spawn() started and whose
  // on_exit has not run yet.
  virtual void signal_group(pid_t pid, int signal) = 0;
  // What /proc says of a process that spawn() started; nullopt when gone.
  // WITH_STATUS: the context switches too (see ProcReader).
  virtual std::optional<ProcSample> sample_process(pid_t pid, bool with_status) = 0;
  // Signals that process alone (`corralctl signal`).
  virtual Status signal_process(pid_t pid, int signal) = 0;
  // Freezes (PAUSED true) or thaws everything of a process spawn() started:
  // its cgroup (cgroup.freeze) where it has one, else its process group
  // (SIGSTOP, SIGCONT). How: "cgroup.freeze" or "SIGSTOP".
  virtual Result<std::string> pause(pid_t pid, bool paused) = 0;
};

}  // namespace corral::daemon

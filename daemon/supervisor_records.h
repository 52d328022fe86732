// The Supervisor's own records of a job and of a worker slot, shared by the
// files that make up the Supervisor (supervisor.cc, supervisor_reload.cc)
// and by nothing else.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/supervisor.h"

namespace corral::daemon {

struct Supervisor::Worker {
  Worker(Job& job, uint32_t index, WorkerPolicy policy, uint64_t seed)
      : job(job), index(index), machine(std::move(policy), seed) {}
  WorkerId id() const;

  Job& job;
  uint32_t index;
  WorkerMachine machine;
  std::unique_ptr<Timer> timer;
  std::unique_ptr<Timer> stop_timer;  // a cancel's stop, SIGKILL after stop.kill_after
  pid_t pid = 0;
  uint64_t epoch = 0;  // bumped at each spawn: fences callbacks of old processes
  TimePoint started_at{};
  std::optional<ExitStatus> last_exit;
  std::string spawn_error;
  bool ever_started = false;
  std::optional<ProcSample> usage;  // of the current process
  TimePoint sampled_at{};
  double cpu_percent = 0;
  std::map<std::string, uint64_t> enforced;  // see WorkerStatus
  std::map<std::string, uint64_t> exits;     // see WorkerStatus
  bool paused = false;                       // frozen by pause(), until resumed or gone
};

struct Supervisor::Job {
  config::JobSpec spec;
  std::vector<std::unique_ptr<Worker>> workers;
  std::shared_ptr<JobFeed> feed;  // channel jobs
  std::string feed_error;         // why a channel job has no feed
  // The directories of its log.stdout / log.stderr files, opened at the
  // first spawn that needs them (by path).
  std::map<std::string, std::shared_ptr<const SafeDir>> log_dirs;
  // Set by an update until the workers have stopped: the job goes, or is
  // rebuilt with these settings.
  bool removing = false;
  std::optional<config::JobSpec> replacement;
};

}  // namespace corral::daemon

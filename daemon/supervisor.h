// The supervisor: the jobs of a config, each a pool of worker slots, each
// slot a WorkerMachine whose actions it carries out through a Host (spawn,
// signal, timers). It is where decisions meet effects: the control socket,
// signals and tests all drive it through the same methods.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/spec.h"
#include "daemon/feed.h"
#include "daemon/host.h"
#include "daemon/safe_file.h"
#include "daemon/waiters.h"
#include "daemon/worker_env.h"
#include "daemon/worker_state.h"

namespace corral::daemon {

struct WorkerId {
  std::string job;
  uint32_t index = 0;
  std::string str() const { return job + ":" + std::to_string(index); }
  auto operator<=>(const WorkerId&) const = default;
};

// A worker as `status` shows it.
struct WorkerStatus {
  WorkerId id;
  State state = State::kStopped;
  pid_t pid = 0;
  double uptime_s = 0;
  uint64_t restarts = 0;
  std::optional<ExitStatus> last_exit;
  std::string spawn_error;
  std::string description;  // one line for people
  std::string cgroup;       // its cgroup's directory; "" without cgroups
  std::string cgroup_off;   // without cgroups: why
  bool paused = false;      // frozen by `corralctl pause`
  // Each limit set, and where it is in force: "memory.max", "sampled",
  // "not in force" (no cgroup controller for it).
  std::map<std::string, std::string> limits;
  uint64_t tasks_ok = 0;
  uint64_t tasks_failed = 0;
  uint64_t tasks_held = 0;  // handed to it and not answered yet
  // Its job's tasks, for a job with a task feed.
  struct JobTasks {
    uint64_t queued = 0;
    uint64_t delayed = 0;  // waiting for a retry's backoff
    uint64_t in_flight = 0;
    uint64_t spooled = 0;  // in the job's spool, not loaded yet
  };
  std::optional<JobTasks> job_tasks;
  // Its job's broker, for a job fed by one (broker:).
  std::optional<BrokerStatus> broker;
  // The last sample of the current process (zeros without one); cpu_s is
  // its cgroup's, all its processes', where it has one.
  double cpu_s = 0;
  uint64_t rss_bytes = 0;
  std::optional<uint64_t> cgroup_memory_bytes;  // memory.current
  double cpu_percent = 0;                       // since the sample before; 100 = one CPU
  uint32_t threads = 0;
  uint64_t voluntary_switches = 0;
  uint64_t involuntary_switches = 0;
  // Kills and restarts corral decided, by reason: memory, max_tasks,
  // heartbeat, task_timeout, protocol.
  std::map<std::string, uint64_t> enforced;
  // How its processes ended: "exit 0", "exit 1", "SIGKILL", ... and how often.
  std::map<std::string, uint64_t> exits;
};

// What a new config changes, by job name (sorted).
struct JobChanges {
  std::vector<std::string> added;
  std::vector<std::string> changed;
  std::vector<std::string> removed;
  bool empty() const { return added.empty() && changed.empty() && removed.empty(); }
};

struct SupervisorOptions {
  std::string log_dir;
  // log_dir, held open since the start: every log file is opened through it
  // (safe_file.h). Null: there are no log files (a fake host).
  std::shared_ptr<const SafeDir> log_files;
  config::LogRotate log_rotate;
  // Opens the directory of a job's own log file (log.stdout, log.stderr:
  // KEY names it in messages) as log_dir is opened. Unset: those files get
  // no directory (a fake host).
  std::function<Result<std::shared_ptr<const SafeDir>>(const std::string& dir,
                                                       const std::string& key)>
      open_log_dir;
  // corrald's environment, "NAME=value"; worker_env.h decides what of it a
  // worker gets.
  std::vector<std::string> daemon_env;
  uid_t daemon_uid = 0;
  // daemon.pass_env: more of DAEMON_ENV for workers of another user.
  std::vector<std::string> pass_env;
  // The passwd entry of a job's `user:` (spawner.h's find_account in
  // corrald); unset: no user is found.
  std::function<std::optional<Account>(const std::string&)> find_account;
  uint64_t seed = 0;                                    // for backoff jitter
  Duration metrics_interval = std::chrono::seconds(1);  // daemon.metrics.interval
  // The workers' cgroups (cgroup.h): their directory ("" without), and the
  // controllers handed down to them, so that status says where each limit
  // is in force.
  std::string cgroup_dir;
  std::vector<std::string> cgroup_controllers;
  // Without cgroups: why (daemon.cgroup's "off", or what auto found).
  std::string cgroup_off;
  // This corrald's id (worker_record.h), each worker's CORRAL_INSTANCE; ""
  // gives none.
  std::string instance;
};

class Supervisor {
 public:
  // FEEDS makes the task feeds of jobs with a channel; empty: such jobs
  // have none, and their workers cannot start.
  Supervisor(Host& host, SupervisorOptions options, FeedFactory feeds);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Adds a job with all its workers STOPPED.
  void add_job(const config::JobSpec& spec);

  // How the jobs of a new config differ from the running ones.
  JobChanges diff(const std::vector<config::JobSpec>& next) const;
  // Moves to NEXT, the jobs of a new, valid config, touching only what
  // changed: a removed job's workers stop and the job goes; an added job
  // comes and starts (autostart); a job whose only change is `workers`
  // starts or stops workers at the end of its pool, and the others keep
  // their processes; any other changed job stops, is rebuilt with its new
  // settings and starts again, keeping its task feed (queue, dead letters,
  // shared values) when the channel settings are the same. DONE runs once
  // every worker that had to stop has stopped and the new ones are started.
  // One update at a time: false (and nothing changes) while one runs or
  // the daemon shuts down.
  bool update(const std::vector<config::JobSpec>& next, std::function<void()> done);
  bool updating() const { return static_cast<bool>(update_done_); }
  // Starts the workers of every job with autostart, lower `priority` first.
  void start_autostart();

  void start(const WorkerId& id);
  void stop(const WorkerId& id);
  void restart(const WorkerId& id);
  // Sends SIGNAL to the worker's process.
  Status signal(const WorkerId& id, int signal);
  // Freezes (PAUSED true) or thaws a worker with a process: its tasks are
  // not timed out and no heartbeat is expected meanwhile; a stop thaws it
  // first. Says how ("cgroup.freeze", "SIGSTOP").
  Result<std::string> pause(const WorkerId& id, bool paused);
  // Empties the worker's captured stdout and stderr files.
  Status clear_logs(const WorkerId& id);
  // The file the worker's stdout (STDERR: stderr) is captured in, rotated
  // copies being PATH.1, PATH.2, ...: daemon.log_dir/JOB-INDEX.out.log
  // (.err.log), or its job's log.stdout (log.stderr; `stdout`: the stdout
  // file). An error for an unknown worker, for output not kept (`off`), or
  // when the file's directory cannot be opened.
  Result<OutputFile> output_file(const WorkerId& id, bool stderr_log);

  bool has_job(const std::string& job) const { return jobs_.contains(job); }
  // The workers of JOB, in index order; none for an unknown job.
  std::vector<WorkerId> workers_of(const std::string& job) const;
  bool exists(const WorkerId& id) const;
  std::optional<State> state(const WorkerId& id) const;
  WorkerStatus status(const WorkerId& id) const;
  // Whether a start or stop of the worker is still under way (a stop that
  // will be followed by a start counts).
  bool in_transition(const WorkerId& id) const;

  // Reads /proc for every worker with a process, restarts those above
  // limits.memory, and ends the feeds' metrics interval. The sampler runs it
  // every metrics.interval while something needs it: a job with
  // limits.memory and a process to watch, or a feed with tasks queued, in
  // flight or finished since the last sample. Otherwise corrald polls
  // nothing, and refresh() samples for whoever asks.
  void sample();
  // Samples unless the last sample is younger than half of metrics.interval:
  // before status, stats and /metrics answer.
  void refresh();

  // Stops every worker, the jobs of the highest `priority` first, each
  // priority's workers ended before the next lower one is asked (supervisord's
  // order); `done` runs once no worker has a process.
  void shutdown(std::function<void()> done);
  bool shutting_down() const { return shutting_down_; }
  // Arms the sampler unless it is armed.
  void keep_sampling();
  // No worker has a process.
  bool idle() const;

  // WAITER runs now and after every state change until it returns true.
  // GONE, when given, says that nobody waits for it any more (its client
  // has gone, or it has answered): it is asked first, and prune_waiters()
  // drops every such waiter without running it, so that a client that
  // leaves takes nothing with it.
  void add_waiter(std::function<bool()> waiter, std::function<bool()> gone = {}) {
    waiters_.add(std::move(waiter), std::move(gone));
  }
  void prune_waiters() { waiters_.prune(); }
  size_t waiter_count() const { return waiters_.size(); }

  // "3 jobs, 12/12 workers running".
  std::string summary() const;

  // The task feed of JOB; null for an unknown job or `channel: none`.
  // Shared: a feed retired by a reload stays valid for whoever holds it.
  std::shared_ptr<JobFeed> feed(const std::string& job) const;
  const config::JobSpec* job_spec(const std::string& job) const;
  std::vector<std::string> job_names() const;
  // Why JOB has no feed although it has a channel (empty otherwise).
  std::string feed_error(const std::string& job) const;

 private:
  struct Worker;
  struct Job;

  Worker* find(const WorkerId& id) const;
  // Whether the workers' cgroups have CONTROLLER: its limits are the kernel's.
  bool kernel_limits(std::string_view controller) const;
  // What corral itself puts in a worker's environment (CORRAL_*).
  std::map<std::string, std::string> corral_variables(const config::JobSpec& spec,
                                                      const Worker& worker) const;
  void thaw(Worker& worker);
  void carry_out(Worker& worker, Action action, State before);
  Action spawn(Worker& worker);
  void on_exit(Worker& worker, uint64_t epoch, ExitStatus status);
  void on_deadline(Worker& worker);
  void on_ready(Job& job, uint32_t index);
  void on_kill_request(Job& job, uint32_t index, const std::string& why, const char* reason);
  void on_recycle(Job& job, uint32_t index);
  void on_stop_request(Job& job, uint32_t index, const std::string& why);
  SpawnRequest spawn_request(const Job& job, const Worker& worker) const;
  // Where worker INDEX of JOB writes STDERR_LOG's stream (its directory
  // opened, and kept in JOB, when OPEN).
  Result<OutputFile> output_of(Job& job, uint32_t index, bool stderr_log, bool open);
  std::string describe(const Worker& worker, TimePoint now) const;
  std::unique_ptr<Worker> make_worker(Job& job, uint32_t index);
  std::shared_ptr<JobFeed> make_feed(Job& job);
  void finish_shutdown();
  // The jobs by priority, then name (start order).
  std::vector<Job*> by_priority() const;
  // At a shutdown: asks the next lower priority's workers to stop once no
  // worker of the priorities asked so far has a process.
  void advance_shutdown();
  // Calls DONE once no retired feed is settling, or after a few seconds.
  void after_settling(std::function<void()> done, TimePoint give_up);
  void resize(Job& job, uint32_t workers);
  // Finishes what an update left to do once workers have stopped.
  void settle();
  static bool holds_process(const Worker& worker);
  // The worker's job is being removed or rebuilt, or the worker cut from the pool.
  static bool leaving(const Worker& worker);

  Host& host_;
  SupervisorOptions options_;
  FeedFactory feeds_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  Waiters waiters_;
  bool shutting_down_ = false;
  std::optional<int> stopping_priority_;  // the lowest priority asked to stop so far
  bool advancing_ = false;                // in advance_shutdown (stop() comes back to it)
  std::function<void()> on_idle_;
  std::function<void()> update_done_;  // set while an update runs
  std::unique_ptr<Timer> settle_timer_;
  std::unique_ptr<Timer> drain_timer_;  // shutdown's wait for settling feeds
  uint64_t samples_taken_ = 0;
  std::unique_ptr<Timer> sampler_;
  bool sampler_armed_ = false;
  TimePoint last_sample_{};
  uint64_t next_seed_;
};

}  // namespace corral::daemon

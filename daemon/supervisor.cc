#include "daemon/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "base/uptime.h"
#include "config/emit.h"
#include "config/placeholders.h"
#include "config/units.h"
#include "daemon/supervisor_records.h"

namespace corral::daemon {

WorkerId Supervisor::Worker::id() const { return {job.spec.name, index}; }

Supervisor::Supervisor(Host& host, SupervisorOptions options, FeedFactory feeds)
    : host_(host),
      options_(std::move(options)),
      feeds_(std::move(feeds)),
      settle_timer_(host_.make_timer()),
      sampler_(host_.make_timer()),
      next_seed_(options_.seed) {}

Supervisor::~Supervisor() = default;

std::unique_ptr<Supervisor::Worker> Supervisor::make_worker(Job& job, uint32_t index) {
  auto worker = std::make_unique<Worker>(job, index, WorkerPolicy::from(job.spec), next_seed_++);
  worker->timer = host_.make_timer();
  return worker;
}

std::shared_ptr<JobFeed> Supervisor::make_feed(Job& job) {
  Job* j = &job;
  FeedEvents events;
  events.ready = [this, j](uint32_t index) { on_ready(*j, index); };
  events.kill = [this, j](uint32_t index, const std::string& why, const char* reason) {
    on_kill_request(*j, index, why, reason);
  };
  events.recycle = [this, j](uint32_t index) { on_recycle(*j, index); };
  events.stop = [this, j](uint32_t index, const std::string& why) {
    on_stop_request(*j, index, why);
  };
  events.active = [this] { keep_sampling(); };
  job.feed_error.clear();
  if (!feeds_) {
    job.feed_error = "no task feeds here";
    return nullptr;
  }
  Result<std::unique_ptr<JobFeed>> feed = feeds_(job.spec, std::move(events));
  if (!feed) {
    job.feed_error = feed.error().message();
    spdlog::error("job {}: {}", job.spec.name, job.feed_error);
    return nullptr;
  }
  return std::move(*feed);
}

void Supervisor::add_job(const config::JobSpec& spec) {
  auto job = std::make_unique<Job>();
  job->spec = spec;
  for (uint32_t i = 0; i < spec.workers; ++i) job->workers.push_back(make_worker(*job, i));
  if (spec.channel != config::Channel::kNone) job->feed = make_feed(*job);
  jobs_[spec.name] = std::move(job);
}

std::shared_ptr<JobFeed> Supervisor::feed(const std::string& job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : it->second->feed;
}

const config::JobSpec* Supervisor::job_spec(const std::string& job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second->spec;
}

std::vector<std::string> Supervisor::job_names() const {
  std::vector<std::string> names;
  for (const auto& [name, job] : jobs_) names.push_back(name);
  return names;
}

std::string Supervisor::feed_error(const std::string& job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? std::string() : it->second->feed_error;
}

void Supervisor::on_ready(Job& job, uint32_t index) {
  Worker& worker = *job.workers.at(index);
  State before = worker.machine.state();
  carry_out(worker, worker.machine.ready(host_.now()), before);
}

void Supervisor::on_kill_request(Job& job, uint32_t index, const std::string& why,
                                 const char* reason) {
  Worker& worker = *job.workers.at(index);
  spdlog::error("{}: {}; killing the worker", worker.id().str(), why);
  if (worker.pid <= 0) return;
  ++worker.enforced[reason];
  host_.signal_group(worker.pid, SIGKILL);
}

void Supervisor::on_stop_request(Job& job, uint32_t index, const std::string& why) {
  Worker& worker = *job.workers.at(index);
  if (worker.pid <= 0) return;
  const config::StopSpec& stop = job.spec.stop;
  spdlog::info("{}: {}; stopping it with signal {}", worker.id().str(), why, stop.signal);
  thaw(worker);
  host_.signal_group(worker.pid, stop.signal);
  // The same process, if it is still there after kill_after: its epoch
  // tells a later process of the slot apart.
  if (!worker.stop_timer) worker.stop_timer = host_.make_timer();
  Worker* w = &worker;
  const uint64_t epoch = worker.epoch;
  worker.stop_timer->arm(host_.now() + stop.kill_after, [this, w, epoch] {
    if (w->pid <= 0 || w->epoch != epoch) return;
    spdlog::warn("{}: still running {} after signal {}; killing it", w->id().str(),
                 config::format_duration(w->job.spec.stop.kill_after), w->job.spec.stop.signal);
    host_.signal_group(w->pid, SIGKILL);
  });
}

void Supervisor::on_recycle(Job& job, uint32_t index) {
  Worker& worker = *job.workers.at(index);
  spdlog::info("{}: limits.max_tasks ({}) done; restarting it", worker.id().str(),
               *job.spec.limits.max_tasks);
  ++worker.enforced["max_tasks"];
  restart(worker.id());
}

std::vector<Supervisor::Job*> Supervisor::by_priority() const {
  std::vector<Job*> jobs;
  for (const auto& [name, job] : jobs_) jobs.push_back(job.get());
  // jobs_ is by name: a stable sort keeps that order within a priority.
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const Job* a, const Job* b) { return a->spec.priority < b->spec.priority; });
  return jobs;
}

void Supervisor::start_autostart() {
  for (Job* job : by_priority()) {
    if (!job->spec.autostart) continue;
    for (auto& worker : job->workers) start(worker->id());
  }
}

Supervisor::Worker* Supervisor::find(const WorkerId& id) const {
  auto it = jobs_.find(id.job);
  if (it == jobs_.end() || id.index >= it->second->workers.size()) return nullptr;
  return it->second->workers[id.index].get();
}

bool Supervisor::exists(const WorkerId& id) const { return find(id) != nullptr; }

std::optional<State> Supervisor::state(const WorkerId& id) const {
  Worker* worker = find(id);
  if (worker == nullptr) return std::nullopt;
  return worker->machine.state();
}

bool Supervisor::in_transition(const WorkerId& id) const {
  Worker* worker = find(id);
  return worker != nullptr && worker->machine.start_after_stop();
}

std::vector<WorkerId> Supervisor::workers_of(const std::string& job) const {
  std::vector<WorkerId> ids;
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return ids;
  for (const auto& worker : it->second->workers) ids.push_back(worker->id());
  return ids;
}

// A job an update is stopping (to remove or rebuild it) starts nothing.
bool Supervisor::leaving(const Worker& worker) {
  return worker.job.removing || worker.job.replacement.has_value() ||
         worker.index >= worker.job.spec.workers;
}

void Supervisor::start(const WorkerId& id) {
  if (Worker* worker = find(id); worker != nullptr && !shutting_down_ && !leaving(*worker)) {
    State before = worker->machine.state();
    carry_out(*worker, worker->machine.start(host_.now()), before);
  }
}

void Supervisor::stop(const WorkerId& id) {
  if (Worker* worker = find(id); worker != nullptr) {
    State before = worker->machine.state();
    carry_out(*worker, worker->machine.stop(host_.now()), before);
  }
}

void Supervisor::restart(const WorkerId& id) {
  if (Worker* worker = find(id); worker != nullptr && !shutting_down_ && !leaving(*worker)) {
    State before = worker->machine.state();
    carry_out(*worker, worker->machine.restart(host_.now()), before);
  }
}

Result<std::string> Supervisor::pause(const WorkerId& id, bool paused) {
  Worker* worker = find(id);
  if (worker == nullptr) return Error("no such worker");
  if (worker->pid <= 0) return Error("not running");
  if (paused && worker->machine.state() == State::kStopping) return Error("stopping");
  if (worker->paused == paused) return std::string(paused ? "already paused" : "not paused");
  Result<std::string> how = host_.pause(worker->pid, paused);
  if (!how) return how;
  worker->paused = paused;
  if (JobFeed* feed = worker->job.feed.get()) feed->paused(worker->index, paused);
  spdlog::info("{}: {} ({})", id.str(), paused ? "paused" : "resumed", *how);
  waiters_.notify();
  return how;
}

bool Supervisor::kernel_limits(std::string_view controller) const {
  return std::find(options_.cgroup_controllers.begin(), options_.cgroup_controllers.end(),
                   controller) != options_.cgroup_controllers.end();
}

// A stop reaches a paused worker only once it is thawed.
void Supervisor::thaw(Worker& worker) {
  if (!worker.paused || worker.pid <= 0) return;
  if (Result<std::string> how = host_.pause(worker.pid, false); !how) {
    spdlog::warn("{}: resuming it to stop it: {}", worker.id().str(), how.error().message());
  }
  worker.paused = false;
  if (JobFeed* feed = worker.job.feed.get()) feed->paused(worker.index, false);
}

Status Supervisor::signal(const WorkerId& id, int signal) {
  Worker* worker = find(id);
  if (worker == nullptr) return Error("no such worker");
  if (worker->pid <= 0) return Error("not running");
  return host_.signal_process(worker->pid, signal);
}

Result<OutputFile> Supervisor::output_of(Job& job, uint32_t index, bool stderr_log, bool open) {
  const config::JobLogSpec& log = job.spec.log;
  const config::LogTarget* target = stderr_log ? &log.err : &log.out;
  const char* key = stderr_log ? "log.stderr" : "log.stdout";
  if (target->kind == config::LogTarget::Kind::kStdout) {
    target = &log.out;
    key = "log.stdout";
  }
  OutputFile file;
  switch (target->kind) {
    case config::LogTarget::Kind::kOff:
      return Error(std::string("not kept (") + key + ": off)");
    case config::LogTarget::Kind::kInherit:
      file.inherit = true;
      return file;
    case config::LogTarget::Kind::kAuto:
    case config::LogTarget::Kind::kStdout: {
      const bool err = target == &log.err;
      file.name = job.spec.name + "-" + std::to_string(index) + (err ? ".err.log" : ".out.log");
      file.path = options_.log_dir + "/" + file.name;
      file.dir = options_.log_files;
      return file;
    }
    case config::LogTarget::Kind::kFile:
      break;
  }
  file.path = config::expand_log_path(target->path, job.spec.name, index);
  auto [dir_path, name] = split_file_path(file.path);
  file.name = name;
  if (!open || !options_.open_log_dir) return file;
  auto& dir = job.log_dirs[dir_path];
  if (!dir) {
    Result<std::shared_ptr<const SafeDir>> opened =
        options_.open_log_dir(dir_path, "job " + job.spec.name + ": " + key + "'s directory");
    if (!opened) return std::move(opened).error();
    dir = *opened;
  }
  file.dir = dir;
  return file;
}

Result<OutputFile> Supervisor::output_file(const WorkerId& id, bool stderr_log) {
  Worker* worker = find(id);
  if (worker == nullptr) return Error("no such worker");
  Result<OutputFile> file = output_of(worker->job, id.index, stderr_log, true);
  if (file && file->inherit) {
    return Error(std::string("not captured: it goes to corrald's own ") +
                 (stderr_log && worker->job.spec.log.err.kind != config::LogTarget::Kind::kStdout
                      ? "stderr"
                      : "stdout") +
                 " (inherit), e.g. the journal");
  }
  return file;
}

Status Supervisor::clear_logs(const WorkerId& id) {
  Worker* worker = find(id);
  if (worker == nullptr) return Error("no such worker");
  std::string errors;
  for (bool stderr_log : {false, true}) {
    if (stderr_log && worker->job.spec.log.err.kind == config::LogTarget::Kind::kStdout) continue;
    Result<OutputFile> output = output_of(worker->job, id.index, stderr_log, true);
    // Nothing kept (or not by corrald), nothing to clear; a fake host has no files.
    if (!output || output->inherit || !output->dir) continue;
    // Opened like the capture opens it (no link followed, no FIFO waited
    // on, nobody else's file), and truncated through the fd. The capture
    // writes with O_APPEND and sees the new size when it next checks for
    // rotation, as after logrotate's copytruncate.
    Result<OpenedFile> file = output->dir->open(output->name, FileUse::kTruncate, "log file");
    std::string error = message_of(file);
    if (file && !file->missing && ::ftruncate(file->fd.get(), 0) != 0) {
      error = "cannot truncate " + output->path + ": " + strerror(errno);
    }
    if (error.empty()) continue;
    spdlog::error("{}: clear: {}", id.str(), error);
    errors += (errors.empty() ? "" : "; ") + error;
  }
  if (!errors.empty()) return Error(errors);
  return {};
}

std::map<std::string, std::string> Supervisor::corral_variables(const config::JobSpec& spec,
                                                                const Worker& worker) const {
  std::map<std::string, std::string> variables = {
      {"CORRAL_JOB", spec.name},
      {"CORRAL_WORKER", std::to_string(worker.index)},
      {"CORRAL_CHANNEL", config::to_string(spec.channel)}};
  if (!options_.instance.empty()) variables["CORRAL_INSTANCE"] = options_.instance;
  return variables;
}

SpawnRequest Supervisor::spawn_request(const Job& job, const Worker& worker) const {
  const config::JobSpec& spec = job.spec;
  SpawnRequest request;
  request.name = worker.id().str();
  request.job = spec.name;
  request.index = worker.index;
  // {job}, {index}, {index+K}, {index:0N} in an argument become this worker's.
  request.argv.reserve(spec.command.size());
  for (const std::string& arg : spec.command) {
    request.argv.push_back(config::expand_placeholders(arg, spec.name, worker.index));
  }
  std::optional<JobUser> user;
  if (!spec.user.empty()) {
    user.emplace();
    if (options_.find_account) user->entry = options_.find_account(spec.user);
  }
  std::map<std::string, std::string> env = spec.env;
  for (auto& [name, value] : env)
    value = config::expand_placeholders(value, spec.name, worker.index);
  request.env = worker_env(options_.daemon_env, options_.daemon_uid, user, env, options_.pass_env,
                           corral_variables(spec, worker));
  request.cwd = spec.cwd;
  request.user = spec.user;
  request.log_rotate = options_.log_rotate;
  if (spec.log.max_size) request.log_rotate.max_size = *spec.log.max_size;
  if (spec.log.keep) request.log_rotate.keep = *spec.log.keep;
  request.stderr_to_stdout = spec.log.err.kind == config::LogTarget::Kind::kStdout;
  request.umask = spec.umask;
  request.nice = spec.limits.nice;
  request.cgroup_limits.memory_max = spec.limits.memory;
  request.cgroup_limits.memory_high = spec.limits.memory_high;
  if (spec.limits.cpu > 0) request.cgroup_limits.cpu_percent = spec.limits.cpu;
  request.cgroup_limits.pids_max = spec.limits.pids;
  request.nofile = spec.limits.nofile;
  if (spec.limits.cpus.mode == config::CpuSpec::Mode::kList) {
    request.cpus = spec.limits.cpus.cpus;
  } else if (spec.limits.cpus.mode == config::CpuSpec::Mode::kAuto) {
    // One worker per core: worker i on CPU i mod N, N the CPUs the daemon may use.
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
      }
    }
    if (!cpus.empty()) request.cpus = {cpus[worker.index % cpus.size()]};
  }
  return request;
}

// The spawn step: the request, the channel the feed prepares for it, the
// process; the machine's answer to how that went.
Action Supervisor::spawn(Worker& worker) {
  Job& job = worker.job;
  SpawnRequest request = spawn_request(job, worker);
  const uint64_t epoch = ++worker.epoch;
  // Output not kept (off) is read and dropped: an empty OutputFile.
  Status logs_opened;
  for (bool stderr_log : {false, true}) {
    if (stderr_log && request.stderr_to_stdout) continue;
    const config::LogTarget& target = stderr_log ? job.spec.log.err : job.spec.log.out;
    if (target.kind == config::LogTarget::Kind::kOff) continue;
    Result<OutputFile> output = output_of(job, worker.index, stderr_log, true);
    if (!output) {
      logs_opened = std::move(output).error();
      break;
    }
    (stderr_log ? request.stderr_log : request.stdout_log) = std::move(*output);
  }
  // A feed that could not be made (the daemon was out of fds, or of room
  // for the segment) is tried again at each spawn: the job recovers once
  // the cause is gone.
  if (job.spec.channel != config::Channel::kNone && !job.feed && !job.removing &&
      !job.replacement) {
    job.feed = make_feed(job);
  }
  JobFeed* feed = job.feed.get();
  Result<pid_t> pid = Error(job.feed_error);  // a channel job without its feed
  if (!logs_opened) {
    pid = std::move(logs_opened).error();
  } else if (job.spec.channel == config::Channel::kNone || feed != nullptr) {
    Status prepared = feed != nullptr ? feed->prepare(worker.index, request) : Status();
    if (!prepared) {
      pid = std::move(prepared).error().context("channel");
    } else {
      Worker* w = &worker;
      pid =
          host_.spawn(request, [this, w, epoch](ExitStatus status) { on_exit(*w, epoch, status); });
      if (feed != nullptr) feed->spawned(worker.index, pid.ok());
    }
  }
  const TimePoint now = host_.now();
  worker.ever_started = true;
  if (!pid) {
    worker.spawn_error = pid.error().message();
    spdlog::error("{}: spawn error: {}", request.name, worker.spawn_error);
    return worker.machine.spawn_failed(now);
  }
  worker.pid = *pid;
  worker.started_at = now;
  worker.spawn_error.clear();
  spdlog::debug("{}: spawned pid {}", request.name, *pid);
  Action next = worker.machine.spawned(now);
  if (job.spec.limits.memory && !kernel_limits("memory")) keep_sampling();
  return next;
}

// Carries out ACTION and whatever the machine answers to its outcome, then
// re-arms the worker's timer and tells the waiters.
void Supervisor::carry_out(Worker& worker, Action action, State before) {
  while (action != Action::kNone) {
    switch (action) {
      case Action::kSpawn:
        action = spawn(worker);
        break;
      case Action::kSendSentinel:
        thaw(worker);
        if (JobFeed* feed = worker.job.feed.get()) feed->send_sentinel(worker.index);
        action = Action::kNone;
        break;
      case Action::kSignal:
        thaw(worker);
        if (worker.pid > 0) host_.signal_group(worker.pid, worker.job.spec.stop.signal);
        action = Action::kNone;
        break;
      case Action::kKill:
        if (worker.pid > 0) {
          spdlog::warn("{}: did not stop in time; sending SIGKILL", worker.id().str());
          host_.signal_group(worker.pid, SIGKILL);
        }
        action = Action::kNone;
        break;
      case Action::kNone:
        break;
    }
  }

  State now_state = worker.machine.state();
  if (auto deadline = worker.machine.deadline()) {
    Worker* w = &worker;
    worker.timer->arm(*deadline, [this, w] { on_deadline(*w); });
  } else {
    worker.timer->cancel();
  }
  if (now_state != before) {
    const std::string& reason = worker.machine.reason();
    auto level = now_state == State::kFatal || now_state == State::kBackoff ? spdlog::level::warn
                                                                            : spdlog::level::info;
    std::string detail = reason;
    if (has_process(now_state) && !has_process(before))
      detail = "pid " + std::to_string(worker.pid);
    spdlog::log(level, "{}: {} -> {}{}{}", worker.id().str(), to_string(before),
                to_string(now_state), detail.empty() ? "" : ": ", detail);
  }
  waiters_.notify();
  if (updating()) settle_timer_->arm(host_.now(), [this] { settle(); });
  if (on_idle_) advance_shutdown();
  if (on_idle_ && idle()) finish_shutdown();
}

void Supervisor::on_exit(Worker& worker, uint64_t epoch, ExitStatus status) {
  if (epoch != worker.epoch) return;
  worker.pid = 0;
  worker.paused = false;
  worker.usage.reset();
  ++worker.exits[status.was_killed() ? "SIG" + config::signal_name(status.signal())
                                     : "exit " + std::to_string(status.code())];
  worker.last_exit = status;
  // Death confirmed: only now are its tasks redelivered.
  ExitBlame blame = ExitBlame::kWorker;
  if (JobFeed* feed = worker.job.feed.get()) blame = feed->exited(worker.index, status.str());
  State before = worker.machine.state();
  Action action = worker.machine.exited(host_.now(), status, blame);
  // Nothing starts again while corrald stops, not even a worker whose
  // priority is not asked to stop yet.
  if (shutting_down_ && (action == Action::kSpawn || worker.machine.state() == State::kBackoff)) {
    action = worker.machine.stop(host_.now());
  }
  carry_out(worker, action, before);
}

void Supervisor::on_deadline(Worker& worker) {
  State before = worker.machine.state();
  Action action = worker.machine.deadline_reached(host_.now());
  // A worker whose priority is not asked to stop yet is not restarted
  // either while corrald stops.
  if (shutting_down_ && action == Action::kSpawn) action = worker.machine.stop(host_.now());
  carry_out(worker, action, before);
}

void Supervisor::shutdown(std::function<void()> done) {
  shutting_down_ = true;
  on_idle_ = std::move(done);
  advance_shutdown();
  if (on_idle_ && idle()) finish_shutdown();
}

void Supervisor::advance_shutdown() {
  if (advancing_) return;
  advancing_ = true;
  std::vector<Job*> jobs = by_priority();
  for (auto job = jobs.rbegin(); job != jobs.rend();) {
    const int priority = (*job)->spec.priority;
    auto level_end = job;
    while (level_end != jobs.rend() && (*level_end)->spec.priority == priority) ++level_end;
    if (!stopping_priority_ || priority < *stopping_priority_) {
      stopping_priority_ = priority;
      for (auto it = job; it != level_end; ++it) {
        for (auto& worker : (*it)->workers) stop(worker->id());
      }
    }
    // The next lower priority waits for this one's processes to end.
    const bool running = std::any_of(job, level_end, [](const Job* j) {
      return std::any_of(j->workers.begin(), j->workers.end(),
                         [](const auto& w) { return w->pid > 0; });
    });
    if (running) break;
    job = level_end;
  }
  advancing_ = false;
}

// Every worker has stopped and handed back what it held: the tasks still
// queued have nobody left to run them, and a job's queue lives only in
// corrald's memory. Retiring the feeds ends them dead, tells their
// submitters and logs how many each job drops.
void Supervisor::finish_shutdown() {
  for (auto& [name, job] : jobs_) {
    if (job->feed) {
      job->feed->retire(job->spec.queue.durable
                            ? "corrald shut down"
                            : "corrald shut down (a job's queue is kept in memory only)");
    }
  }
  auto done = std::move(on_idle_);
  on_idle_ = nullptr;
  // A broker's last results are written before corrald goes.
  after_settling(std::move(done), host_.now() + std::chrono::seconds(5));
}

void Supervisor::after_settling(std::function<void()> done, TimePoint give_up) {
  bool settling = false;
  for (const auto& [name, job] : jobs_) settling = settling || (job->feed && job->feed->settling());
  if (!settling || host_.now() >= give_up) return done();
  if (!drain_timer_) drain_timer_ = host_.make_timer();
  drain_timer_->arm(host_.now() + std::chrono::milliseconds(10),
                    [this, done = std::move(done), give_up]() mutable {
                      after_settling(std::move(done), give_up);
                    });
}

bool Supervisor::idle() const {
  for (const auto& [name, job] : jobs_) {
    for (const auto& worker : job->workers) {
      if (worker->pid > 0) return false;
    }
  }
  return true;
}

}  // namespace corral::daemon

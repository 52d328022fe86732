// What the Supervisor says of its workers: the sampler (/proc, the cgroup's
// counters, limits.memory where the kernel does not enforce it), each
// worker's status and the one-line summary. The rest of the workers' lives
// is in supervisor.cc.
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
#include "config/units.h"
#include "daemon/supervisor.h"
#include "daemon/supervisor_records.h"

namespace corral::daemon {

void Supervisor::sample() {
  const TimePoint now = host_.now();
  // Context switches every tenth sample: the status file costs twice the stat file.
  const bool with_status = samples_taken_++ % 10 == 0;
  std::vector<WorkerId> over_memory;
  bool wanted = false;  // by limits.memory or a feed's tasks
  for (auto& [name, job] : jobs_) {
    for (auto& worker : job->workers) {
      std::optional<ProcSample> usage;
      if (worker->pid > 0) usage = host_.sample_process(worker->pid, with_status);
      if (usage && worker->usage && now > worker->sampled_at) {
        double cpu = usage->cpu_s - worker->usage->cpu_s;
        worker->cpu_percent = std::max(0.0, 100.0 * cpu / seconds_between(worker->sampled_at, now));
      } else {
        worker->cpu_percent = 0;
      }
      worker->usage = usage;
      worker->sampled_at = now;
      // Where the kernel enforces it (memory.max), the sample does not.
      const std::optional<uint64_t> limit =
          kernel_limits("memory") ? std::nullopt : job->spec.limits.memory;
      if (limit && worker->pid > 0) wanted = true;
      if (usage && limit && usage->rss_bytes > *limit &&
          worker->machine.state() == State::kRunning) {
        spdlog::warn("{}: resident memory {} bytes is above limits.memory ({}); restarting it",
                     worker->id().str(), usage->rss_bytes, *limit);
        ++worker->enforced["memory"];
        over_memory.push_back(worker->id());
      }
    }
    if (job->feed && job->feed->tick(now)) wanted = true;
  }
  last_sample_ = now;
  // After the loop: a restart may change what the loop walks.
  for (const auto& id : over_memory) restart(id);
  if (wanted) keep_sampling();
}

void Supervisor::keep_sampling() {
  if (sampler_armed_) return;
  sampler_armed_ = true;
  sampler_->arm(host_.now() + options_.metrics_interval, [this] {
    sampler_armed_ = false;
    sample();
  });
}

void Supervisor::refresh() {
  if (host_.now() - last_sample_ >= options_.metrics_interval / 2) sample();
}

static std::string format_seconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", seconds < 0 ? 0 : seconds);
  return buf;
}

std::string Supervisor::describe(const Worker& worker, TimePoint now) const {
  const WorkerMachine& m = worker.machine;
  // "spawn error" alone does not tell a person what to fix.
  const std::string reason =
      worker.spawn_error.empty() ? m.reason() : m.reason() + ": " + worker.spawn_error;
  switch (m.state()) {
    case State::kStarting:
    case State::kRunning:
    case State::kStopping:
      return "pid " + std::to_string(worker.pid) + ", uptime " +
             format_uptime(seconds_between(worker.started_at, now));
    case State::kBackoff:
      return reason + "; retry in " + format_seconds(seconds_between(now, *m.deadline()));
    case State::kFatal:
      if (m.deadline()) {
        return reason + "; retry in " + format_seconds(seconds_between(now, *m.deadline()));
      }
      return reason;
    case State::kExited:
      return m.reason() + ", " + format_uptime(seconds_between(m.state_since(), now)) + " ago";
    case State::kStopped:
      if (!worker.ever_started) return "not started";
      return "stopped " + format_uptime(seconds_between(m.state_since(), now)) + " ago";
  }
  return {};
}

WorkerStatus Supervisor::status(const WorkerId& id) const {
  WorkerStatus status;
  Worker* worker = find(id);
  if (worker == nullptr) return status;
  TimePoint now = host_.now();
  status.id = id;
  status.state = worker->machine.state();
  status.pid = worker->pid;
  status.uptime_s = worker->pid > 0 ? seconds_between(worker->started_at, now) : 0;
  status.restarts = worker->machine.restarts();
  status.last_exit = worker->last_exit;
  status.spawn_error = worker->spawn_error;
  status.description = describe(*worker, now);
  status.paused = worker->paused;
  // Where each limit that is set is in force.
  const config::LimitsSpec& limits = worker->job.spec.limits;
  auto where = [&](const char* controller, const char* file, const char* otherwise) {
    return std::string(kernel_limits(controller) ? file : otherwise);
  };
  if (limits.memory) status.limits["memory"] = where("memory", "memory.max", "sampled");
  if (limits.memory_high) {
    status.limits["memory_high"] = where("memory", "memory.high", "not in force");
  }
  if (limits.cpu > 0) status.limits["cpu"] = where("cpu", "cpu.max", "not in force");
  if (limits.pids) status.limits["pids"] = where("pids", "pids.max", "not in force");
  if (worker->paused) status.description = "paused; " + status.description;
  if (!options_.cgroup_dir.empty()) {
    status.cgroup = options_.cgroup_dir + "/" + CgroupTree::relative(id.job, id.index);
  } else {
    status.cgroup_off = options_.cgroup_off;
  }
  if (worker->pid > 0 && worker->usage) {
    status.cpu_s = worker->usage->cpu_s;
    status.rss_bytes = worker->usage->rss_bytes;
    status.cgroup_memory_bytes = worker->usage->cgroup_memory_bytes;
    status.threads = worker->usage->threads;
    status.voluntary_switches = worker->usage->voluntary_switches;
    status.involuntary_switches = worker->usage->involuntary_switches;
    status.cpu_percent = worker->cpu_percent;
  }
  status.enforced = worker->enforced;
  status.exits = worker->exits;
  if (JobFeed* feed = worker->job.feed.get()) {
    status.tasks_ok = feed->dispatcher().ok_of(id.index);
    status.tasks_failed = feed->dispatcher().failed_of(id.index);
    status.tasks_held = feed->dispatcher().held_by(id.index);
    status.job_tasks =
        WorkerStatus::JobTasks{feed->dispatcher().queued(), feed->dispatcher().delayed(),
                               feed->dispatcher().in_flight(), feed->spooled()};
    status.broker = feed->broker();
  }
  return status;
}

std::string Supervisor::summary() const {
  size_t workers = 0, running = 0;
  for (const auto& [name, job] : jobs_) {
    for (const auto& worker : job->workers) {
      ++workers;
      if (worker->machine.state() == State::kRunning) ++running;
    }
  }
  return std::to_string(jobs_.size()) + (jobs_.size() == 1 ? " job, " : " jobs, ") +
         std::to_string(running) + "/" + std::to_string(workers) + " workers running";
}

}  // namespace corral::daemon

// The Supervisor's reload: how a new config differs from the running jobs,
// and the update that moves to it (jobs added, removed, resized, rebuilt),
// finished by settle() once the workers that had to stop have stopped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <set>

#include "daemon/supervisor.h"
#include "daemon/supervisor_records.h"

namespace corral::daemon {

JobChanges Supervisor::diff(const std::vector<config::JobSpec>& next) const {
  JobChanges changes;
  std::set<std::string> names;
  for (const auto& spec : next) {
    names.insert(spec.name);
    auto it = jobs_.find(spec.name);
    if (it == jobs_.end()) {
      changes.added.push_back(spec.name);
    } else if (!(it->second->spec == spec)) {
      changes.changed.push_back(spec.name);
    }
  }
  for (const auto& [name, job] : jobs_) {
    if (!names.contains(name)) changes.removed.push_back(name);
  }
  std::sort(changes.added.begin(), changes.added.end());
  std::sort(changes.changed.begin(), changes.changed.end());
  return changes;
}

bool Supervisor::update(const std::vector<config::JobSpec>& next, std::function<void()> done) {
  if (updating() || shutting_down_) return false;
  JobChanges changes = diff(next);
  std::map<std::string, const config::JobSpec*> specs;
  for (const auto& spec : next) specs[spec.name] = &spec;

  for (const auto& name : changes.removed) {
    Job& job = *jobs_.at(name);
    spdlog::info("update: job {} removed from the config; stopping its workers", name);
    job.removing = true;
    for (auto& worker : job.workers) stop(worker->id());
  }
  for (const auto& name : changes.changed) {
    Job& job = *jobs_.at(name);
    const config::JobSpec& spec = *specs.at(name);
    config::JobSpec only_count = job.spec;
    only_count.workers = spec.workers;
    only_count.workers_auto = spec.workers_auto;
    if (only_count == spec && (!job.feed || spec.workers <= job.feed->capacity())) {
      spdlog::info("update: job {}: workers {} -> {}", name, job.spec.workers, spec.workers);
      job.spec.workers_auto = spec.workers_auto;
      resize(job, spec.workers);
    } else {
      spdlog::info("update: job {} changed; stopping it to start it with the new settings", name);
      job.replacement = spec;
      for (auto& worker : job.workers) stop(worker->id());
    }
  }
  for (const auto& name : changes.added) {
    spdlog::info("update: job {} added", name);
    add_job(*specs.at(name));
    if (jobs_.at(name)->spec.autostart) {
      for (auto& worker : jobs_.at(name)->workers) start(worker->id());
    }
  }
  update_done_ = done ? std::move(done) : [] {};
  settle_timer_->arm(host_.now(), [this] { settle(); });
  return true;
}

// New workers come at the end of the pool; fewer workers stop the last ones,
// which leave the pool in settle() once they have no process.
void Supervisor::resize(Job& job, uint32_t workers) {
  const auto current = static_cast<uint32_t>(job.workers.size());
  job.spec.workers = workers;
  for (uint32_t i = current; i < workers; ++i) {
    job.workers.push_back(make_worker(job, i));
    if (job.spec.autostart) start(job.workers.back()->id());
  }
  for (uint32_t i = workers; i < current; ++i) stop(job.workers[i]->id());
}

bool Supervisor::holds_process(const Worker& worker) {
  return worker.pid > 0 || has_process(worker.machine.state());
}

void Supervisor::settle() {
  if (!updating()) return;
  bool waiting = false;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = *it->second;
    const bool stopping = job.removing || job.replacement;
    if (stopping && std::any_of(job.workers.begin(), job.workers.end(),
                                [](const auto& w) { return holds_process(*w); })) {
      waiting = true;
      ++it;
      continue;
    }
    const std::string name = it->first;
    if (job.removing) {
      if (job.feed) job.feed->retire("job " + name + " was removed from the config");
      spdlog::info("update: job {} removed", name);
      it = jobs_.erase(it);
      continue;
    }
    if (job.replacement) {
      config::JobSpec spec = std::move(*job.replacement);
      job.replacement.reset();
      std::shared_ptr<JobFeed> old_feed = std::move(job.feed);
      const bool keep_feed =
          old_feed && same_feed(job.spec, spec) && spec.workers <= old_feed->capacity();
      job.spec = std::move(spec);
      job.workers.clear();
      for (uint32_t i = 0; i < job.spec.workers; ++i) job.workers.push_back(make_worker(job, i));
      if (keep_feed) {
        job.feed = std::move(old_feed);
      } else {
        std::deque<DeadLetter> letters;
        if (old_feed) {
          old_feed->retire("job " + name +
                           " got new channel settings in a reload (corralctl retry " + name +
                           " queues it again)");
          letters = old_feed->dispatcher().take_dead_letters();
        }
        if (job.spec.channel != config::Channel::kNone) job.feed = make_feed(job);
        if (job.feed) job.feed->dispatcher().adopt_dead_letters(std::move(letters));
      }
      spdlog::info("update: job {} rebuilt with its new settings", name);
      if (job.spec.autostart) {
        for (auto& worker : job.workers) start(worker->id());
      }
      ++it;
      continue;
    }
    while (job.workers.size() > job.spec.workers && !holds_process(*job.workers.back())) {
      job.workers.pop_back();
    }
    if (job.workers.size() > job.spec.workers) waiting = true;
    ++it;
  }
  if (waiting) return;
  auto done = std::move(update_done_);
  update_done_ = nullptr;
  waiters_.notify();
  done();
}

}  // namespace corral::daemon

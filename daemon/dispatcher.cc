#include "daemon/dispatcher.h"

#include <algorithm>
#include <iterator>
#include <set>

namespace corral::daemon {

const char* to_string(TaskOutcome outcome) {
  switch (outcome) {
    case TaskOutcome::kOk:
      return "ok";
    case TaskOutcome::kFailed:
      return "failed";
    case TaskOutcome::kDead:
      return "dead";
  }
  return "unknown";
}

Dispatcher::Dispatcher(const config::QueueSpec& queue,
                       std::function<void(FinishedTask&&)> on_finished)
    : queue_spec_(queue), on_finished_(std::move(on_finished)) {}

Dispatcher::Slot& Dispatcher::slot(uint32_t worker) {
  if (worker >= slots_.size()) slots_.resize(worker + 1);
  return slots_[worker];
}

uint64_t Dispatcher::submit(std::string payload, uint64_t submitter, uint64_t seq) {
  uint64_t id = next_id_++;
  tasks_.emplace(id, Task{std::move(payload), submitter, seq, 0, std::nullopt});
  queue_.push_back(id);
  ++counts_.submitted;
  return id;
}

size_t Dispatcher::retry_dead_letters() {
  size_t n = dead_letters_.size();
  for (auto& letter : dead_letters_) submit(std::move(letter.payload), 0, 0);
  dead_letters_.clear();
  return n;
}

Result<size_t> Dispatcher::retry_dead_letters(const std::vector<uint64_t>& ids,
                                              uint64_t submitter) {
  std::set<uint64_t> wanted(ids.begin(), ids.end());
  std::string unknown;
  size_t unknown_count = 0;
  for (uint64_t id : wanted) {
    bool listed = std::any_of(dead_letters_.begin(), dead_letters_.end(),
                              [id](const DeadLetter& letter) { return letter.id == id; });
    if (listed) continue;
    unknown += (unknown.empty() ? "" : ", ") + std::to_string(id);
    ++unknown_count;
  }
  if (unknown_count > 0) {
    return Error(unknown_count == 1 ? "no dead letter has id " + unknown
                                    : "no dead letters have ids " + unknown);
  }
  size_t n = 0;
  std::deque<DeadLetter> kept;
  for (auto& letter : dead_letters_) {
    if (wanted.empty() || wanted.contains(letter.id)) {
      submit(std::move(letter.payload), submitter, n++);
    } else {
      kept.push_back(std::move(letter));
    }
  }
  dead_letters_ = std::move(kept);
  return n;
}

size_t Dispatcher::clear_dead_letters() {
  size_t n = dead_letters_.size();
  dead_letters_.clear();
  return n;
}

void Dispatcher::attach(uint32_t worker, WorkerPort* port, std::optional<uint64_t> budget) {
  Slot& s = slot(worker);
  s.port = port;
  s.budget = budget;
  s.finished_since_attach = 0;
  s.isolating = false;
}

void Dispatcher::detach(uint32_t worker) { slot(worker).port = nullptr; }

ExitBlame Dispatcher::worker_gone(uint32_t worker, const std::string& why) {
  Slot& s = slot(worker);
  s.port = nullptr;
  s.isolating = false;
  ExitBlame blame = ExitBlame::kWorker;
  if (!s.held.empty()) {
    auto running = tasks_.find(s.held.front());
    bool suspect = running != tasks_.end() && running->second.suspect;
    if (s.finished_since_attach > 0 || suspect) blame = ExitBlame::kTask;
    if (running != tasks_.end()) running->second.suspect = true;
  }
  // Back to the front of the queue in their original order: they were the
  // oldest work.
  std::deque<uint64_t> held;
  held.swap(s.held);
  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    auto found = tasks_.find(*it);
    if (found == tasks_.end()) continue;
    Task& task = found->second;
    task.worker.reset();
    // A worker runs its tasks oldest first: only the oldest was running when
    // it died. The others were waiting in its channel and get their attempt
    // back, so a poison task does not take its neighbours down with it.
    if (it != std::prev(held.rend()) && task.attempts > 0) --task.attempts;
    if (task.attempts >= queue_spec_.max_attempts) {
      Task dead = std::move(task);
      tasks_.erase(found);
      finish(*it, std::move(dead), TaskOutcome::kDead,
             why + " on each of " + std::to_string(queue_spec_.max_attempts) + " attempts");
    } else {
      ++counts_.redelivered;
      queue_.push_front(*it);
    }
  }
  return blame;
}

bool Dispatcher::result(uint32_t worker, uint64_t id, bool ok, std::string_view payload,
                        TimePoint now) {
  if (worker >= slots_.size()) return false;
  auto found = tasks_.find(id);
  if (found == tasks_.end() || found->second.worker != worker) return false;
  Slot& s = slots_[worker];
  // Usually the oldest; out of order only with length framing.
  auto pos = std::find(s.held.begin(), s.held.end(), id);
  if (pos == s.held.end()) return false;
  s.held.erase(pos);
  ++s.finished_since_attach;
  if (s.held.empty()) s.isolating = false;
  Task task = std::move(found->second);
  tasks_.erase(found);
  ++(ok ? s.ok : s.failed);
  auto run_time = std::chrono::duration_cast<std::chrono::nanoseconds>(now - task.dispatched_at);
  finish(id, std::move(task), ok ? TaskOutcome::kOk : TaskOutcome::kFailed, std::string(payload),
         run_time);
  return true;
}

std::optional<uint64_t> Dispatcher::oldest(uint32_t worker) const {
  if (worker >= slots_.size() || slots_[worker].held.empty()) return std::nullopt;
  return slots_[worker].held.front();
}

size_t Dispatcher::held_by(uint32_t worker) const {
  return worker < slots_.size() ? slots_[worker].held.size() : 0;
}

void Dispatcher::finish(uint64_t id, Task&& task, TaskOutcome outcome, std::string result,
                        std::chrono::nanoseconds run_time) {
  switch (outcome) {
    case TaskOutcome::kOk:
      ++counts_.ok;
      break;
    case TaskOutcome::kFailed:
      ++counts_.failed;
      break;
    case TaskOutcome::kDead:
      ++counts_.dead;
      break;
  }
  if (outcome != TaskOutcome::kOk) {
    if (dead_letters_.size() >= kMaxDeadLetters) {
      dead_letters_.pop_front();
      ++counts_.dead_letters_dropped;
    }
    dead_letters_.push_back(DeadLetter{id, task.payload, outcome, result, task.attempts});
  }
  on_finished_(FinishedTask{id, task.submitter, task.seq, outcome, std::move(result), task.attempts,
                            run_time});
}

void Dispatcher::pump(TimePoint now) {
  if (queue_.empty() || slots_.empty()) return;
  const size_t prefetch = std::max<size_t>(1, queue_spec_.prefetch);
  std::vector<bool> sent(slots_.size(), false);
  // Round robin, one task at a time per turn, so a short queue spreads over
  // the workers; a turn in which no worker took anything ends the pump.
  bool progress = true;
  while (!queue_.empty() && progress) {
    progress = false;
    for (size_t turn = 0; turn < slots_.size() && !queue_.empty(); ++turn) {
      size_t w = (next_worker_ + turn) % slots_.size();
      Slot& s = slots_[w];
      if (s.port == nullptr || s.held.size() >= prefetch || s.budget == 0 || s.isolating) {
        continue;
      }
      uint64_t id = queue_.front();
      Task& task = tasks_.at(id);
      // A suspect waits for a worker that holds nothing.
      if (task.suspect && !s.held.empty()) continue;
      if (!s.port->can_send(task.payload.size())) continue;
      s.isolating = task.suspect;
      queue_.pop_front();
      ++task.attempts;  // counted at dispatch: a task that kills its worker counts too
      task.worker = static_cast<uint32_t>(w);
      task.dispatched_at = now;
      if (s.budget) --*s.budget;
      s.held.push_back(id);
      s.port->send(id, task.payload);
      sent[w] = true;
      progress = true;
    }
    next_worker_ = (next_worker_ + 1) % slots_.size();
  }
  for (size_t w = 0; w < slots_.size(); ++w) {
    if (sent[w] && slots_[w].port != nullptr) slots_[w].port->flush();
  }
}

void Dispatcher::abandon_queued(const std::string& why) {
  while (!queue_.empty()) {
    uint64_t id = queue_.front();
    queue_.pop_front();
    auto found = tasks_.find(id);
    if (found == tasks_.end()) continue;
    Task task = std::move(found->second);
    tasks_.erase(found);
    finish(id, std::move(task), TaskOutcome::kDead, why);
  }
}

std::deque<DeadLetter> Dispatcher::take_dead_letters() {
  std::deque<DeadLetter> letters;
  letters.swap(dead_letters_);
  return letters;
}

void Dispatcher::adopt_dead_letters(std::deque<DeadLetter> letters) {
  for (auto& letter : dead_letters_) letters.push_back(std::move(letter));
  while (letters.size() > kMaxDeadLetters) {
    letters.pop_front();
    ++counts_.dead_letters_dropped;
  }
  dead_letters_ = std::move(letters);
}

void Dispatcher::orphan(uint64_t submitter) {
  for (auto& [id, task] : tasks_) {
    if (task.submitter == submitter) task.submitter = 0;
  }
}

bool Dispatcher::balanced() const {
  return counts_.submitted == counts_.ok + counts_.failed + counts_.dead + queued() + in_flight();
}

}  // namespace corral::daemon

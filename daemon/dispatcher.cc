#include "daemon/dispatcher.h"

#include <algorithm>
#include <iterator>

#include "ipc/frame.h"

namespace corral::daemon {
namespace {

// held_limit(): the work a worker holds ahead, and how many results the
// moving average of a task's time spans.
constexpr std::chrono::nanoseconds kWorkAhead = std::chrono::milliseconds(2);
constexpr int kServiceSamples = 16;
// `prefetch: auto`: what a worker holds before any result shows how long a
// task takes, and the most it holds once they show tasks of microseconds
// (four chunks of Python's pools, which queue every chunk at once: with one,
// a worker that emptied it in microseconds waited for the next).
constexpr size_t kAutoPrefetchStart = 64;
constexpr size_t kAutoPrefetchMax = 4096;

}  // namespace

std::string_view to_string(TaskOutcome outcome) {
  switch (outcome) {
    case TaskOutcome::kOk:
      return "ok";
    case TaskOutcome::kFailed:
      return "failed";
    case TaskOutcome::kDead:
      return "dead";
    case TaskOutcome::kCancelled:
      return "cancelled";
    case TaskOutcome::kExpired:
      return "expired";
  }
  return "unknown";
}

Dispatcher::Dispatcher(const config::QueueSpec& queue, OnFinished on_finished, uint64_t seed)
    : queue_spec_(queue), on_finished_(std::move(on_finished)) {
  if (queue.retry) retry_backoff_.emplace(queue.retry->backoff, seed);
}

Dispatcher::Slot& Dispatcher::slot(uint32_t worker) {
  if (worker >= slots_.size()) slots_.resize(worker + 1);
  return slots_[worker];
}

uint64_t Dispatcher::submit(std::string payload, const TaskOrigin& origin) {
  uint64_t id = next_id_++;
  if (journal_ != nullptr) journal_->added(id, origin, payload);
  enqueue(id, std::move(payload), origin);
  return id;
}

void Dispatcher::submit_recorded(uint64_t id, std::string payload, const TaskOrigin& origin) {
  enqueue(id, std::move(payload), origin);
}

void Dispatcher::enqueue(uint64_t id, std::string&& payload, const TaskOrigin& origin) {
  // Filled in its slot: a task is not moved on its way in (once per task).
  Task& task = tasks_.insert(id, Task{});
  task.payload = std::move(payload);
  task.origin = origin;
  if (origin.deadline) deadlines_.emplace(*origin.deadline, id);
  queue_.push_back(id);
  ++queued_;
  ++live_;
  ++counts_.submitted;
}

void Dispatcher::erase(uint64_t key, Task* taken) {
  if (!chunks_.empty()) chunks_.erase(key);
  tasks_.erase(key, taken);
}

void Dispatcher::restore(uint64_t id, std::string payload, const TaskOrigin& origin,
                         uint32_t attempts, std::optional<TimePoint> due, std::string spent) {
  next_id_ = std::max(next_id_, id + 1);
  next_submit_ = std::max(next_submit_, origin.submit + 1);
  Task task;
  task.payload = std::move(payload);
  task.origin = origin;
  task.attempts = attempts;
  ++counts_.submitted;
  ++live_;
  if (attempts >= queue_spec_.max_attempts) {
    if (spent.empty()) {
      spent = "running when corrald stopped, on each of " +
              std::to_string(queue_spec_.max_attempts) + " attempts";
    }
    finish(id, task, TaskOutcome::kDead, std::move(spent));
    return;
  }
  if (origin.deadline) deadlines_.emplace(*origin.deadline, id);
  if (due) {
    task.where = Where::kDelayed;
    delayed_.heap.emplace(*due, id);
    ++delayed_.live;
  } else {
    queue_.push_back(id);
    ++queued_;
  }
  tasks_.insert(id, std::move(task));
}

void Dispatcher::restore_counters(uint64_t next_id, uint64_t next_submit) {
  next_id_ = std::max(next_id_, next_id);
  next_submit_ = std::max(next_submit_, next_submit);
}

void Dispatcher::attach(uint32_t worker, WorkerPort* port, std::optional<uint64_t> budget) {
  Slot& s = slot(worker);
  s.port = port;
  s.budget = budget;
  s.finished_since_attach = 0;
  s.isolating = false;
  ports_changed();
}

void Dispatcher::detach(uint32_t worker) {
  slot(worker).port = nullptr;
  ports_changed();
}

void Dispatcher::ports_changed() {
  bool any = false;
  bool chunks = false;
  for (const Slot& s : slots_) {
    if (s.port == nullptr) continue;
    any = true;
    chunks = chunks || s.port->takes_chunks();
  }
  chunks_welcome_ = !any || chunks;
}

void Dispatcher::again(uint64_t key, Task& task, bool backoff, TimePoint now) {
  counts_.redelivered += task.items;
  task.worker.reset();
  // A deadline that passed while the task ran was skipped then: it counts
  // again now that the task waits.
  if (task.origin.deadline && *task.origin.deadline <= now) {
    deadlines_.emplace(*task.origin.deadline, key);
  }
  if (backoff && retry_backoff_ && !task.chunk) {
    task.where = Where::kDelayed;
    TimePoint due = now + retry_backoff_->delay(task.attempts);
    delayed_.heap.emplace(due, key);
    ++delayed_.live;
    if (journal_ != nullptr) journal_->delayed(key, task.attempts, due);
    return;
  }
  task.where = Where::kQueued;
  queue_.push_front(key);
  queued_ += task.items;
  if (journal_ != nullptr) journal_->requeued(key, task.attempts);
}

ExitBlame Dispatcher::worker_gone(uint32_t worker, const std::string& why, TaskFault fault,
                                  TimePoint now, uint64_t finished) {
  Slot& s = slot(worker);
  s.port = nullptr;
  ports_changed();
  s.isolating = false;
  s.held_items = 0;
  std::deque<uint64_t> held;
  held.swap(s.held);
  // The task it was running alone, the rest in pieces around it, in order.
  const Held cut = cut_held(held, finished);
  const std::vector<uint64_t>& entries = cut.entries;
  ExitBlame blame = ExitBlame::kWorker;
  if (Task* running = cut.running ? tasks_.find(*cut.running) : nullptr) {
    if (s.finished_since_attach + finished > 0 || running->suspect || running->cancelled) {
      blame = ExitBlame::kTask;
    }
    running->suspect = true;
  }
  const bool retry =
      queue_spec_.retry && (fault == TaskFault::kTimeout ? queue_spec_.retry->on_timeout
                                                         : queue_spec_.retry->on_crashed);
  // Back to the front of the queue in their original order: they were the
  // oldest work.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    Task* found = tasks_.find(*it);
    if (found == nullptr) continue;
    Task& task = *found;
    const bool was_running = cut.running == *it;
    if (task.cancelled) {
      Task ended;
      erase(*it, &ended);
      finish(*it, ended, TaskOutcome::kCancelled,
             "cancelled while it ran; its worker was stopped (" + why + ")");
      continue;
    }
    // A worker runs its tasks oldest first: one was running when it died.
    // The others were waiting in its channel (or had finished, their
    // results lost with it) and get their attempt back, so a poison task
    // does not take its neighbours down with it.
    if (!was_running && task.attempts > 0) --task.attempts;
    if (task.attempts >= queue_spec_.max_attempts) {
      Task dead;
      erase(*it, &dead);
      finish(*it, dead, TaskOutcome::kDead,
             why + " on each of " + std::to_string(queue_spec_.max_attempts) + " attempts");
    } else {
      again(*it, task, was_running && retry, now);
    }
  }
  return blame;
}

bool Dispatcher::result(uint32_t worker, uint64_t id, bool ok, std::string_view payload,
                        TimePoint now) {
  if (worker >= slots_.size()) return false;
  Slot& s = slots_[worker];
  if (s.held.empty()) return false;
  // Usually the oldest; out of order only with length framing. The tasks
  // of a chunk are answered in order, each before the next.
  if (Task* front = tasks_.find(s.held.front()); front != nullptr && front->chunk) {
    if (id != first_of(s.held.front(), *front)) return false;
    return chunk_result(s, s.held.front(), *front, ok, payload, now);
  }
  Task* found = tasks_.find(id);
  if (found == nullptr || found->worker != worker || found->chunk) return false;
  if (s.held.front() == id) {
    s.held.pop_front();
  } else {
    auto pos = std::find(s.held.begin(), s.held.end(), id);
    if (pos == s.held.end()) return false;
    s.held.erase(pos);
  }
  if (s.held.empty()) s.isolating = false;
  Task& task = *found;
  answered(s, ok, task.dispatched_at, now);
  if (retries(ok, task.cancelled, task)) {
    again(id, task, true, now);
    return true;
  }
  // Concluded in place, then erased: the task is not moved out of its slot.
  FinishedTask finished = conclude_answer(id, task.payload, task, ok, task.cancelled, payload, now);
  tasks_.erase(id);
  deliver(std::move(finished));
  return true;
}

bool Dispatcher::retries(bool ok, bool cancelled, const Task& task) const {
  return !ok && !cancelled && queue_spec_.retry && queue_spec_.retry->on_failed &&
         task.attempts < queue_spec_.max_attempts;
}

FinishedTask Dispatcher::conclude_answer(uint64_t id, std::string_view item, const Task& task,
                                         bool ok, bool cancelled, std::string_view payload,
                                         TimePoint now) {
  auto run_time = std::chrono::duration_cast<std::chrono::nanoseconds>(now - task.dispatched_at);
  if (cancelled) {
    return conclude(id, task.origin.seq, item, task, TaskOutcome::kCancelled,
                    "cancelled while it ran; its result was dropped", run_time);
  }
  return conclude(id, task.origin.seq, item, task, ok ? TaskOutcome::kOk : TaskOutcome::kFailed,
                  std::string(payload), run_time);
}

void Dispatcher::answered(Slot& s, bool ok, TimePoint sent, TimePoint now) {
  --s.held_items;
  ++s.finished_since_attach;
  ++(ok ? s.ok : s.failed);
  // The next hand-out starts with the worker that answered last: one task
  // at a time goes back to the worker that is awake (polling its ring, its
  // caches warm) while the others fall asleep, instead of waking each in
  // turn; a stream fills every worker all the same.
  next_worker_ = static_cast<size_t>(&s - slots_.data());
  // A task held behind others started when the one before it ended.
  const auto sample =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - std::max(sent, s.last_result));
  s.last_result = now;
  // Results read together share one NOW: the first carries the batch's
  // time, the rest zero, and the average comes out right.
  if (service_time_.count() == 0) {
    service_time_ = sample;
  } else {
    service_time_ += (sample - service_time_) / kServiceSamples;
  }
}

size_t Dispatcher::held_limit() const {
  const size_t prefetch =
      queue_spec_.prefetch ? std::max<size_t>(1, *queue_spec_.prefetch) : kAutoPrefetchMax;
  if (service_time_.count() <= 0) {
    return queue_spec_.prefetch ? prefetch : kAutoPrefetchStart;
  }
  const auto fit = static_cast<size_t>(kWorkAhead / service_time_) + 1;
  return std::min(prefetch, std::max<size_t>(2, fit));
}

std::optional<uint64_t> Dispatcher::oldest(uint32_t worker) const {
  if (worker >= slots_.size() || slots_[worker].held.empty()) return std::nullopt;
  const uint64_t key = slots_[worker].held.front();
  const Task* task = tasks_.find(key);
  return task != nullptr ? first_of(key, *task) : key;
}

size_t Dispatcher::held_by(uint32_t worker) const {
  return worker < slots_.size() ? slots_[worker].held_items : 0;
}

void Dispatcher::finish(uint64_t key, const Task& task, TaskOutcome outcome, std::string result,
                        std::chrono::nanoseconds run_time) {
  if (!task.chunk) {
    deliver(
        conclude(key, task.origin.seq, task.payload, task, outcome, std::move(result), run_time));
    return;
  }
  // Each task of the chunk ends with its own copy of RESULT, the last with it.
  std::string_view rest = items_of(task);
  const uint64_t first = first_of(key, task);
  const uint32_t last = task.items - 1;
  for (uint32_t i = 0; i < last; ++i) {
    const std::string_view item = ipc::take_chunk_item(rest);
    deliver(conclude(first + i, task.origin.seq + i, item, task, outcome, result, run_time));
  }
  const std::string_view item = ipc::take_chunk_item(rest);
  deliver(conclude(first + last, task.origin.seq + last, item, task, outcome, std::move(result),
                   run_time));
}

FinishedTask Dispatcher::conclude(uint64_t id, uint64_t seq, std::string_view payload,
                                  const Task& task, TaskOutcome outcome, std::string result,
                                  std::chrono::nanoseconds run_time) {
  --live_;
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
    case TaskOutcome::kCancelled:
      ++counts_.cancelled;
      break;
    case TaskOutcome::kExpired:
      ++counts_.expired;
      break;
  }
  // The list holds work that went wrong: not what a user cancelled, nor
  // what never ran in time.
  if (outcome == TaskOutcome::kFailed || outcome == TaskOutcome::kDead) {
    if (dead_letters_.size() >= kMaxDeadLetters) {
      if (journal_ != nullptr) journal_->letters_removed({dead_letters_.front().id});
      dead_letters_.pop_front();
      ++counts_.dead_letters_dropped;
    }
    dead_letters_.push_back(DeadLetter{id, std::string(payload), outcome, result, task.attempts});
  }
  return FinishedTask{id,      task.origin.submitter, seq,           task.origin.submit,
                      outcome, std::move(result),     task.attempts, run_time};
}

void Dispatcher::deliver(FinishedTask&& finished) { deliver(FinishedTasks(&finished, 1)); }

void Dispatcher::deliver(FinishedTasks run) {
  if (journal_ != nullptr) {
    for (const FinishedTask& finished : run) {
      journal_->finished(finished, finished.outcome == TaskOutcome::kFailed ||
                                       finished.outcome == TaskOutcome::kDead);
    }
  }
  on_finished_(run);
}

void Dispatcher::end_waiting(uint64_t key, TaskOutcome outcome, const std::string& why) {
  Task task;
  erase(key, &task);
  // Its key stays in the queue or the heap, skipped when it comes up.
  if (task.where == Where::kQueued) {
    queued_ -= task.items;
  } else {
    delayed_.live -= task.items;
  }
  finish(key, task, outcome, why);
}

void Dispatcher::release_and_expire(TimePoint now) {
  // Due retries go to the front, the latest due first, so that they leave in
  // the order they became due, ahead of newer work.
  std::vector<uint64_t> due;
  while (!delayed_.heap.empty() && delayed_.heap.top().first <= now) {
    uint64_t id = delayed_.heap.top().second;
    delayed_.heap.pop();
    Task* found = tasks_.find(id);
    if (found == nullptr || found->where != Where::kDelayed) continue;
    found->where = Where::kQueued;
    delayed_.live -= found->items;
    queued_ += found->items;
    due.push_back(id);
  }
  for (auto it = due.rbegin(); it != due.rend(); ++it) queue_.push_front(*it);
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    uint64_t id = deadlines_.top().second;
    deadlines_.pop();
    const Task* found = tasks_.find(id);
    if (found == nullptr || found->where == Where::kInFlight) continue;
    end_waiting(id, TaskOutcome::kExpired,
                "not handed to a worker before its deadline" +
                    std::string(found->attempts > 0
                                    ? " (after " + std::to_string(found->attempts) + " attempts)"
                                    : ""));
  }
  prune_heaps();
  compact_queue();
}

void Dispatcher::compact_queue() {
  if (queue_.size() <= 2 * queued_ + 64) return;
  std::deque<uint64_t> live;
  for (uint64_t id : queue_) {
    const Task* found = tasks_.find(id);
    if (found != nullptr && found->where == Where::kQueued) live.push_back(id);
  }
  queue_.swap(live);
}

void Dispatcher::prune_heaps() {
  auto stale = [this](uint64_t id, bool delayed_heap) {
    const Task* found = tasks_.find(id);
    if (found == nullptr) return true;
    return delayed_heap ? found->where != Where::kDelayed : found->where == Where::kInFlight;
  };
  while (!delayed_.heap.empty() && stale(delayed_.heap.top().second, true)) delayed_.heap.pop();
  while (!deadlines_.empty() && stale(deadlines_.top().second, false)) deadlines_.pop();
}

std::optional<TimePoint> Dispatcher::next_wakeup() const {
  std::optional<TimePoint> next;
  if (!delayed_.heap.empty()) next = delayed_.heap.top().first;
  if (!deadlines_.empty() && (!next || deadlines_.top().first < *next)) {
    next = deadlines_.top().first;
  }
  return next;
}

void Dispatcher::pump(TimePoint now) {
  release_and_expire(now);
  if (queued_ == 0 || slots_.empty()) return;
  const size_t prefetch = held_limit();
  // Round robin from the worker that answered last, each worker's turn an
  // equal share of the queue (at least one task), so that a short queue
  // spreads over the workers and a long one goes out in runs; a round in
  // which no worker took anything ends the pump.
  bool progress = true;
  while (queued_ > 0 && progress) {
    progress = false;
    // Shared among the workers that can take tasks now.
    const auto open =
        static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [prefetch](const Slot& s) {
          return s.port != nullptr && s.held_items < prefetch && s.budget != 0 && !s.isolating;
        }));
    const size_t share = std::max<size_t>(1, queued_ / std::max<size_t>(1, open));
    for (size_t turn = 0; turn < slots_.size() && queued_ > 0; ++turn) {
      const auto w = static_cast<uint32_t>((next_worker_ + turn) % slots_.size());
      if (hand_out(w, share, prefetch, now)) progress = true;
    }
    next_worker_ = (next_worker_ + 1) % slots_.size();
  }
  for (Slot& s : slots_) {
    if (s.unflushed && s.port != nullptr) s.port->flush();
    s.unflushed = false;
  }
}

bool Dispatcher::hand_out(uint32_t w, size_t most, size_t prefetch, TimePoint now) {
  Slot& s = slots_[w];
  bool moved = false;
  size_t given = 0;
  while (given < most && queued_ > 0) {
    if (s.port == nullptr || s.held_items >= prefetch || s.budget == 0 || s.isolating) break;
    // Keys of entries that left the queue early are dropped here.
    uint64_t key = queue_.front();
    Task* found = tasks_.find(key);
    while (found == nullptr || found->where != Where::kQueued) {
      queue_.pop_front();
      key = queue_.front();
      found = tasks_.find(key);
    }
    // A retry or redelivery past the deadline does not start again.
    if (found->origin.deadline && *found->origin.deadline <= now) {
      queue_.pop_front();
      end_waiting(key, TaskOutcome::kExpired,
                  "not handed to a worker again before its deadline (after " +
                      std::to_string(found->attempts) + " attempts)");
      moved = true;
      continue;
    }
    // A suspect waits for a worker that holds nothing.
    if (found->suspect && !s.held.empty()) break;
    if (found->chunk) {
      // What the worker takes of it: as much as its turn, its prefetch and
      // its budget leave room for, or one task if it takes no chunks.
      size_t take = std::min<size_t>({found->items, most - given, prefetch - s.held_items});
      if (s.budget) take = std::min<size_t>(take, *s.budget);
      if (!s.port->takes_chunks()) take = 1;
      if (take < found->items) {
        key = cut(key, first_of(key, *found) + take);
        found = tasks_.find(key);
      }
    }
    Task& task = *found;
    if (task.chunk) {
      if (!s.port->send_chunk(first_of(key, task), task.items, items_of(task))) break;
    } else {
      if (!s.port->can_send(task.payload.size())) break;
      s.port->send(key, task.payload);
    }
    s.isolating = task.suspect;
    queue_.pop_front();
    queued_ -= task.items;
    task.where = Where::kInFlight;
    ++task.attempts;  // counted at dispatch: a task that kills its worker counts too
    task.worker = w;
    task.dispatched_at = now;
    if (s.budget) *s.budget -= task.items;
    s.held.push_back(key);
    s.held_items += task.items;
    if (journal_ != nullptr) journal_->dispatched(key, task.attempts);
    s.unflushed = true;
    moved = true;
    given += task.items;
  }
  return moved;
}

size_t Dispatcher::pending_of_submit(uint64_t submit) const {
  size_t pending = 0;
  tasks_.for_each([&](uint64_t, const Task& task) {
    if (task.origin.submit == submit) pending += task.items;
  });
  return pending;
}

void Dispatcher::abandon_queued(const std::string& why) {
  std::vector<uint64_t> waiting;
  tasks_.for_each([&](uint64_t id, const Task& task) {
    if (task.where != Where::kInFlight) waiting.push_back(id);
  });
  std::sort(waiting.begin(), waiting.end());
  for (uint64_t id : waiting) end_waiting(id, TaskOutcome::kDead, why);
  queue_.clear();
  delayed_.heap = {};
  deadlines_ = {};
}

void Dispatcher::orphan(uint64_t submitter) {
  tasks_.for_each([submitter](uint64_t, Task& task) {
    if (task.origin.submitter == submitter) task.origin.submitter = 0;
  });
}

bool Dispatcher::balanced() const {
  return counts_.submitted == counts_.ok + counts_.failed + counts_.dead + counts_.cancelled +
                                  counts_.expired + queued() + delayed() + in_flight();
}

}  // namespace corral::daemon

// The dispatcher's chunks (dispatcher.h): queuing one, finding the chunk
// that holds a task, cutting one in two, the answers to its tasks, and the
// cuts a dead worker's chunks need. The rest of the bookkeeping, which
// treats a chunk as an entry of several tasks, is in dispatcher.cc.
#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include "daemon/dispatcher.h"
#include "ipc/frame.h"

namespace corral::daemon {

uint64_t Dispatcher::submit_chunk(std::string items, uint32_t count, const TaskOrigin& origin) {
  if (journal_ != nullptr || count == 1) {
    std::string_view rest = items;
    TaskOrigin each = origin;
    const uint64_t first = next_id_;
    for (uint32_t i = 0; i < count; ++i, ++each.seq) {
      submit(std::string(ipc::take_chunk_item(rest)), each);
    }
    return first;
  }
  const uint64_t first = next_id_;
  next_id_ += count;
  const uint64_t key = first + count - 1;
  Task& task = tasks_.insert(key, Task{});
  task.payload = std::move(items);
  task.origin = origin;
  task.items = count;
  task.chunk = true;
  chunks_.insert(key);
  if (origin.deadline) deadlines_.emplace(*origin.deadline, key);
  queue_.push_back(key);
  queued_ += count;
  live_ += count;
  counts_.submitted += count;
  return first;
}

const Dispatcher::Task* Dispatcher::covering(uint64_t id, uint64_t& key) const {
  if (const Task* own = tasks_.find(id)) {
    key = id;
    return own;
  }
  // The chunk with the lowest key above ID, if its tasks reach down to ID.
  auto it = chunks_.lower_bound(id);
  if (it == chunks_.end()) return nullptr;
  const Task* chunk = tasks_.find(*it);
  if (chunk == nullptr || first_of(*it, *chunk) > id) return nullptr;
  key = *it;
  return chunk;
}

uint64_t Dispatcher::cut(uint64_t key, uint64_t at) {
  Task* back = tasks_.find(key);
  const auto moved = static_cast<uint32_t>(at - first_of(key, *back));
  // The bytes of the tasks that move.
  std::string_view rest = items_of(*back);
  const size_t before = rest.size();
  for (uint32_t i = 0; i < moved; ++i) ipc::take_chunk_item(rest);
  const size_t bytes = before - rest.size();

  const uint64_t front_key = at - 1;
  std::string front_items(items_of(*back).substr(0, bytes));
  // The front takes where the chunk is, who holds it, its attempts and
  // flags; not a copy of its payload.
  std::string whole = std::move(back->payload);
  Task front = *back;
  back->payload = std::move(whole);
  front.payload = std::move(front_items);
  front.offset = 0;
  front.items = moved;
  if (moved == 1) make_plain(front_key, front);
  back->items -= moved;
  back->offset += static_cast<uint32_t>(bytes);
  back->origin.seq += moved;
  if (back->items == 1) make_plain(key, *back);
  const bool waiting = front.where == Where::kQueued;
  if (front.chunk) chunks_.insert(front_key);
  if (waiting && front.origin.deadline) deadlines_.emplace(*front.origin.deadline, front_key);
  tasks_.insert(front_key, std::move(front));
  if (waiting) queue_.insert(std::find(queue_.begin(), queue_.end(), key), front_key);
  return front_key;
}

Dispatcher::Held Dispatcher::cut_held(const std::deque<uint64_t>& held, uint64_t finished) {
  Held out;
  std::vector<uint64_t>& entries = out.entries;
  std::optional<uint64_t>& running = out.running;
  entries.reserve(held.size());
  uint64_t skip = finished;
  for (const uint64_t key : held) {
    const Task* task = tasks_.find(key);
    if (task == nullptr) continue;
    const uint64_t first = first_of(key, *task);
    // The task that was running: the first one not finished.
    if (!running && skip < task->items) running = first + skip;
    if (!running) skip -= task->items;
    if (task->chunk) {
      // Where a new piece starts: around the task that was running (the
      // tasks before it finished; their results were lost with the
      // worker), and around each task cancelled while in flight.
      std::vector<uint64_t> cuts;
      if (running && *running >= first && *running <= key) {
        cuts.push_back(*running);
        cuts.push_back(*running + 1);
      }
      std::vector<uint64_t> cancelled;
      for (auto c = cancelled_items_.lower_bound(first); c != cancelled_items_.end() && *c <= key;
           ++c) {
        cancelled.push_back(*c);
        cuts.push_back(*c);
        cuts.push_back(*c + 1);
      }
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      for (uint64_t at : cuts) {
        if (at > first && at <= key) entries.push_back(cut(key, at));
      }
      for (uint64_t id : cancelled) {
        cancelled_items_.erase(id);
        tasks_.find(id)->cancelled = true;  // a piece of its own now
      }
    }
    entries.push_back(key);
  }
  return out;
}

void Dispatcher::make_plain(uint64_t key, Task& task) {
  std::string_view one = items_of(task);
  task.payload = std::string(ipc::take_chunk_item(one));
  task.offset = 0;
  task.chunk = false;
  chunks_.erase(key);
}

bool Dispatcher::chunk_result(Slot& s, uint64_t key, Task& task, bool ok, std::string_view payload,
                              TimePoint now) {
  const uint64_t id = first_of(key, task);
  answered(s, ok, task.dispatched_at, now);
  const bool cancelled =
      task.cancelled || (!cancelled_items_.empty() && cancelled_items_.erase(id) > 0);
  const bool last = task.items == 1;
  if (retries(ok, cancelled, task)) {
    // It waits for its retry alone; the rest of the chunk goes on.
    Task* single = &task;
    if (last) {
      s.held.pop_front();
      if (s.held.empty()) s.isolating = false;
      make_plain(key, task);
    } else {
      single = tasks_.find(cut(key, id + 1));
    }
    again(id, *single, true, now);
    return true;
  }
  std::string_view rest = items_of(task);
  const std::string_view item = ipc::take_chunk_item(rest);
  FinishedTask finished = conclude_answer(id, item, task, ok, cancelled, payload, now);
  if (last) {
    erase(key);
    s.held.pop_front();
    if (s.held.empty()) s.isolating = false;
  } else {
    --task.items;
    task.offset += static_cast<uint32_t>(ipc::kChunkItemHeaderBytes + item.size());
    ++task.origin.seq;
  }
  deliver(std::move(finished));
  return true;
}

uint32_t Dispatcher::results(uint32_t worker, uint64_t first, uint32_t count,
                             std::string_view items, TimePoint now) {
  if (worker >= slots_.size()) return 0;
  Slot& s = slots_[worker];
  // The scratch of the last call, its capacity kept (whoever is told may
  // not call back in here, but if it did it would find an empty one).
  std::vector<FinishedTask> run = std::move(run_scratch_);
  uint32_t taken = 0;
  while (taken < count) {
    const uint64_t id = first + taken;
    if (const uint32_t n = conclude_ok_run(s, id, count - taken, items, now, run); n > 0) {
      // Told once the run's bookkeeping is done: whoever is told sees the
      // dispatcher as it now is.
      deliver(FinishedTasks(run));
      run.clear();
      taken += n;
      continue;
    }
    const ipc::ResultItem item = ipc::take_result_item(items);
    if (!result(worker, id, item.status == ipc::ResultStatus::kOk, item.payload, now)) break;
    ++taken;
  }
  run_scratch_ = std::move(run);
  return taken;
}

uint32_t Dispatcher::conclude_ok_run(Slot& s, uint64_t id, uint32_t most, std::string_view& items,
                                     TimePoint now, std::vector<FinishedTask>& run) {
  if (s.held.empty() || !cancelled_items_.empty()) return 0;
  const uint64_t key = s.held.front();
  Task* task = tasks_.find(key);
  if (task == nullptr || !task->chunk || task->cancelled || first_of(key, *task) != id) return 0;
  const uint32_t most_here = std::min(most, task->items);
  const auto run_time =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - task->dispatched_at);
  std::string_view payloads = items_of(*task);
  const size_t payload_bytes = payloads.size();
  uint32_t n = 0;
  run.reserve(most_here);
  while (n < most_here) {
    std::string_view rest = items;
    const ipc::ResultItem result = ipc::take_result_item(rest);
    if (result.status != ipc::ResultStatus::kOk) break;
    items = rest;
    ipc::take_chunk_item(payloads);
    answered(s, true, task->dispatched_at, now);
    FinishedTask& finished = run.emplace_back();
    finished.id = id + n;
    finished.submitter = task->origin.submitter;
    finished.seq = task->origin.seq + n;
    finished.submit = task->origin.submit;
    finished.outcome = TaskOutcome::kOk;
    finished.result.append(result.payload);  // lighter than assign() on an empty string
    finished.attempts = task->attempts;
    finished.run_time = run_time;
    ++n;
  }
  counts_.ok += n;
  live_ -= n;
  if (n == task->items) {
    erase(key);
    s.held.pop_front();
    if (s.held.empty()) s.isolating = false;
  } else {
    task->items -= n;
    task->offset += static_cast<uint32_t>(payload_bytes - payloads.size());
    task->origin.seq += n;
  }
  return n;
}

}  // namespace corral::daemon

// The dispatcher's chunks (dispatcher.h): queuing one, finding the chunk
// that holds a task, cutting one in two, the answers to its tasks, and the
// cuts a dead worker's chunks need. The rest of the bookkeeping, which
// treats a chunk as an entry of several tasks, is in dispatcher.cc.
#include <algorithm>

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

  Task front;
  front.origin = back->origin;
  front.attempts = back->attempts;
  front.items = moved;
  front.where = back->where;
  front.worker = back->worker;
  front.dispatched_at = back->dispatched_at;
  front.suspect = back->suspect;
  front.cancelled = back->cancelled;
  if (moved == 1) {
    std::string_view one = items_of(*back);
    front.payload = std::string(ipc::take_chunk_item(one));
  } else {
    front.payload = std::string(items_of(*back).substr(0, bytes));
    front.chunk = true;
  }
  back->items -= moved;
  back->offset += static_cast<uint32_t>(bytes);
  back->origin.seq += moved;
  if (back->items == 1) {
    std::string_view one = items_of(*back);
    back->payload = std::string(ipc::take_chunk_item(one));
    back->offset = 0;
    back->chunk = false;
    chunks_.erase(key);
  }
  const uint64_t front_key = at - 1;
  const bool waiting = front.where == Where::kQueued;
  if (front.chunk) chunks_.insert(front_key);
  if (waiting && front.origin.deadline) deadlines_.emplace(*front.origin.deadline, front_key);
  tasks_.insert(front_key, std::move(front));
  if (waiting) queue_.insert(std::find(queue_.begin(), queue_.end(), key), front_key);
  return front_key;
}

std::vector<uint64_t> Dispatcher::cut_held(const std::deque<uint64_t>& held) {
  std::vector<uint64_t> entries;
  entries.reserve(held.size());
  for (size_t i = 0; i < held.size(); ++i) {
    const uint64_t key = held[i];
    const Task* task = tasks_.find(key);
    if (task == nullptr) continue;
    if (task->chunk) {
      const uint64_t first = first_of(key, *task);
      // Where a new piece starts: after the task that was running, and
      // around each task cancelled while in flight.
      std::vector<uint64_t> cuts;
      if (i == 0) cuts.push_back(first + 1);
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
  return entries;
}

bool Dispatcher::chunk_result(Slot& s, uint64_t key, Task& task, bool ok, std::string_view payload,
                              TimePoint now) {
  const uint64_t id = first_of(key, task);
  --s.held_items;
  ++s.finished_since_attach;
  ++(ok ? s.ok : s.failed);
  next_worker_ = static_cast<uint32_t>(&s - slots_.data());
  measure(s, task.dispatched_at, now);
  const bool cancelled =
      task.cancelled || (!cancelled_items_.empty() && cancelled_items_.erase(id) > 0);
  const bool last = task.items == 1;
  if (!ok && !cancelled && queue_spec_.retry && queue_spec_.retry->on_failed &&
      task.attempts < queue_spec_.max_attempts) {
    // It waits for its retry alone; the rest of the chunk goes on.
    Task* single = &task;
    if (last) {
      s.held.pop_front();
      if (s.held.empty()) s.isolating = false;
    } else {
      single = tasks_.find(cut(key, id + 1));
    }
    if (single->chunk) {  // the last task of a chunk: a plain task now
      std::string_view rest = items_of(*single);
      single->payload = std::string(ipc::take_chunk_item(rest));
      single->offset = 0;
      single->chunk = false;
      chunks_.erase(id);
    }
    again(id, *single, true, now);
    return true;
  }
  std::string_view rest = items_of(task);
  const std::string_view item = ipc::take_chunk_item(rest);
  auto run_time = std::chrono::duration_cast<std::chrono::nanoseconds>(now - task.dispatched_at);
  FinishedTask finished =
      cancelled
          ? conclude(id, task.origin.seq, item, task, TaskOutcome::kCancelled,
                     "cancelled while it ran; its result was dropped", run_time)
          : conclude(id, task.origin.seq, item, task, ok ? TaskOutcome::kOk : TaskOutcome::kFailed,
                     std::string(payload), run_time);
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

}  // namespace corral::daemon

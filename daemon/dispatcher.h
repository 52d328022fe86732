// The task bookkeeping of one job: the bounded queue, which worker holds
// which task, redelivery when a worker dies, the dead-letter list, and the
// counts. Pure: it moves tasks between its own containers and hands them to
// WorkerPorts; it never touches a process, a socket or a clock. Tested with
// fake ports (tests/unit/dispatcher_test.cc).
//
// Accounting, true after every call:
//   submitted = ok + failed + dead + queued + in_flight
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "config/spec.h"
#include "daemon/clock.h"
#include "daemon/exit_status.h"

namespace corral::daemon {

enum class TaskOutcome : uint8_t { kOk, kFailed, kDead };
const char* to_string(TaskOutcome outcome);

// A task that reached its end, for whoever waits for it.
struct FinishedTask {
  uint64_t id = 0;
  uint64_t submitter = 0;  // 0: nobody waits (the sink gets it)
  uint64_t seq = 0;        // position in its submission
  TaskOutcome outcome = TaskOutcome::kOk;
  std::string result;  // the worker's result, or why the task is dead
  uint32_t attempts = 0;
  // From its last dispatch to its result; zero for a task that never ran.
  std::chrono::nanoseconds run_time{0};
};

struct DeadLetter {
  uint64_t id = 0;
  std::string payload;
  TaskOutcome outcome = TaskOutcome::kDead;  // kFailed or kDead
  std::string reason;
  uint32_t attempts = 0;
};

struct TaskCounts {
  uint64_t submitted = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t dead = 0;
  uint64_t redelivered = 0;
  uint64_t dead_letters_dropped = 0;  // oldest letters dropped from a full list
};

// The dispatcher's view of a worker's channel.
class WorkerPort {
 public:
  virtual ~WorkerPort() = default;
  // How many more tasks of PAYLOAD_BYTES the channel can take right now
  // (ring or pipe room); the dispatcher also keeps to queue.prefetch.
  virtual bool can_send(size_t payload_bytes) const = 0;
  virtual void send(uint64_t id, std::string_view payload) = 0;
  // Makes everything sent visible to the worker (one wake-up per batch).
  virtual void flush() = 0;
};

class Dispatcher {
 public:
  static constexpr size_t kMaxDeadLetters = 10000;

  Dispatcher(const config::QueueSpec& queue, std::function<void(FinishedTask&&)> on_finished);

  // ---- submitting ----
  bool full() const { return queue_.size() >= queue_spec_.capacity; }
  // Queues a task (the caller checked !full() and the payload's size).
  uint64_t submit(std::string payload, uint64_t submitter, uint64_t seq);
  // Puts every dead letter back in the queue as a new submission (for the
  // sink: nobody waits); returns how many.
  size_t retry_dead_letters();
  // Puts the dead letters whose ids are IDS (every letter when IDS is empty)
  // back in the queue as new tasks of SUBMITTER (0: their results go to the
  // sink), in the list's order, each with its position among them as seq.
  // An id not in the list is an error naming it, and then nothing is
  // requeued. Returns how many were.
  Result<size_t> retry_dead_letters(const std::vector<uint64_t>& ids, uint64_t submitter);
  // Drops every dead letter; returns how many there were.
  size_t clear_dead_letters();

  // ---- workers ----
  // Worker W can take tasks through PORT (it said READY); with BUDGET, at
  // most that many more tasks in all (limits.max_tasks: then it is recycled).
  void attach(uint32_t worker, WorkerPort* port, std::optional<uint64_t> budget = std::nullopt);
  // No more tasks for W (its sentinel was sent, or it is about to be
  // stopped); what it holds stays in flight until it answers or dies.
  void detach(uint32_t worker);
  // W's process is confirmed dead: each task it held is redelivered, or is
  // dead once it has had max_attempts. Only the oldest task W held (the one
  // it was running) keeps the attempt; the rest had not started. The one it
  // was running becomes a suspect: it is handed out again only alone, to a
  // worker that holds nothing, and that worker gets nothing else meanwhile,
  // so that a poison task cannot take other tasks down with it. Returns who
  // the death is charged to: the task (kTask) when W was running one and had
  // finished tasks since attach(), or the task was already a suspect.
  ExitBlame worker_gone(uint32_t worker, const std::string& why);
  // W answered task ID. False (and nothing changes) when W does not hold ID:
  // a protocol error the caller punishes.
  bool result(uint32_t worker, uint64_t id, bool ok, std::string_view payload, TimePoint now);
  // The oldest task W holds (line framing answers in order).
  std::optional<uint64_t> oldest(uint32_t worker) const;
  size_t held_by(uint32_t worker) const;

  // Hands queued tasks to attached workers with room, round robin, at most
  // queue.prefetch per worker (a suspect alone, see worker_gone); then
  // flushes each port that got any. NOW stamps the tasks for their run_time.
  void pump(TimePoint now);

  // ---- looking ----
  const TaskCounts& counts() const { return counts_; }
  // Results of worker W since the daemon started (all its processes).
  uint64_t ok_of(uint32_t worker) const { return worker < slots_.size() ? slots_[worker].ok : 0; }
  uint64_t failed_of(uint32_t worker) const {
    return worker < slots_.size() ? slots_[worker].failed : 0;
  }
  // Whether W had a budget and has used it up (its last task handed out).
  bool budget_spent(uint32_t worker) const {
    return worker < slots_.size() && slots_[worker].budget == 0;
  }
  size_t queued() const { return queue_.size(); }
  size_t in_flight() const { return tasks_.size() - queue_.size(); }
  const std::deque<DeadLetter>& dead_letters() const { return dead_letters_; }
  // A task ID is waiting for its result somewhere (queued or in flight).
  bool pending(uint64_t id) const { return tasks_.contains(id); }
  // Ends every queued task (none may be in flight) as dead with WHY: the
  // job is being removed or rebuilt by a reload.
  void abandon_queued(const std::string& why);
  // Hands the dead-letter list over (to the feed that replaces this one).
  std::deque<DeadLetter> take_dead_letters();
  void adopt_dead_letters(std::deque<DeadLetter> letters);
  // Forgets the submitter of every pending task of SUBMITTER (it left):
  // their results go to the sink.
  void orphan(uint64_t submitter);
  // Whether the accounting identity holds (for tests and assertions).
  bool balanced() const;

 private:
  struct Task {
    std::string payload;
    uint64_t submitter = 0;
    uint64_t seq = 0;
    uint32_t attempts = 0;
    std::optional<uint32_t> worker;  // holder while in flight
    TimePoint dispatched_at{};
    bool suspect = false;  // a worker died running it
  };
  struct Slot {
    WorkerPort* port = nullptr;      // null: takes no tasks
    std::deque<uint64_t> held;       // in dispatch order
    std::optional<uint64_t> budget;  // tasks it may still be handed
    uint64_t ok = 0;
    uint64_t failed = 0;
    uint64_t finished_since_attach = 0;  // results of its current process
    bool isolating = false;              // holds a suspect, alone
  };

  Slot& slot(uint32_t worker);
  void finish(uint64_t id, Task&& task, TaskOutcome outcome, std::string result,
              std::chrono::nanoseconds run_time = {});

  config::QueueSpec queue_spec_;
  std::function<void(FinishedTask&&)> on_finished_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Task> tasks_;  // queued and in flight
  std::deque<uint64_t> queue_;                // ids waiting for a worker
  std::vector<Slot> slots_;
  size_t next_worker_ = 0;  // round robin
  std::deque<DeadLetter> dead_letters_;
  TaskCounts counts_;
};

}  // namespace corral::daemon

// When a shm worker wakes a sleeping daemon for the results it published,
// and sends the results of a chunk's tasks it gathered for a RESULTS record.
//
// A task that came alone has its result published before the next task
// starts; a chunk's results wait for their RESULTS record, each task counted
// in the slot before the next starts, so that the daemon can tell which
// task was running when the worker died. What is batched is the eventfd
// write that wakes a sleeping daemon, and the RESULTS record: at the latest
// after kBatchResults results, or once the batch has been open kBatchWindow,
// or when no further task is waiting (the driver flushes then). Tiny tasks
// share one wake-up and one record; the result of a long task is not held
// back.
//
// The clock is read only when the decision needs it: when a batch opens,
// and at the 1st, 2nd, 4th, 8th, ... result of a batch, so that tasks of
// nanoseconds do not pay a clock read each (on a VM a read can cost more
// than the task: 36% of a worker's CPU on tiny tasks). The result of a task
// that took the window goes at once; a batch of shorter ones goes by twice
// the window at most.
//
// A pure decision: the time comes from the caller's NOW, a function called
// when it is needed. Not thread-safe (the serving thread's).
#pragma once

#include <chrono>

namespace corral::sdk {

class WakeBatch {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kBatchResults = 64;
  static constexpr std::chrono::microseconds kBatchWindow{200};

  // Before running a task: the first task of a batch opens it at NOW().
  template <typename Now>
  void task_starting(const Now& now) {
    if (results_ == 0) opened_ = now();
  }
  // After its result is published; true when the daemon should be woken
  // now.
  template <typename Now>
  bool result_added(const Now& now) {
    ++results_;
    if (results_ >= kBatchResults) return true;
    if ((results_ & (results_ - 1)) != 0) return false;  // not a power of two
    return now() - opened_ >= kBatchWindow;
  }
  // The daemon was woken (or needed no waking): a new batch begins.
  void sent() { results_ = 0; }

 private:
  int results_ = 0;
  Clock::time_point opened_;
};

}  // namespace corral::sdk

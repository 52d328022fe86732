// When a shm worker wakes a sleeping daemon for the results it published.
//
// Every result is published before the next task starts: a worker that dies
// then takes no finished result with it, and the daemon can blame the task
// that was running (the oldest it holds). What is batched is the eventfd
// write that wakes a sleeping daemon: at the latest after kBatchResults
// results, or once the batch has been open kBatchWindow, or when no further
// task is waiting (the driver flushes then). Tiny tasks share one wake-up;
// the result of a long task is not held back.
//
// A pure decision: the time comes from the caller. Not thread-safe (the
// serving thread's).
#pragma once

#include <chrono>

namespace corral::sdk {

class WakeBatch {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kBatchResults = 64;
  static constexpr std::chrono::microseconds kBatchWindow{200};

  // Before running a task, at NOW: the first task of a batch opens it.
  void task_starting(Clock::time_point now) {
    if (results_ == 0) opened_ = now;
  }
  // After its result is published, at NOW; true when the daemon should be
  // woken now.
  bool result_added(Clock::time_point now) {
    ++results_;
    return results_ >= kBatchResults || now - opened_ >= kBatchWindow;
  }
  // The daemon was woken (or needed no waking): a new batch begins.
  void sent() { results_ = 0; }

 private:
  int results_ = 0;
  Clock::time_point opened_;
};

}  // namespace corral::sdk

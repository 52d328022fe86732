// Conditions that someone waits for: a `wait` for RUNNING or for a drained
// queue, a `start` waiting for its workers, a submitter waiting for room in
// a queue. Each is checked when something happens that may make it true, and
// dropped once it is, or once whoever waits has gone (a client that closed
// its connection), so that a condition that never comes true costs nothing
// after its client left.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace corral::daemon {

class Waiters {
 public:
  // DONE is checked now and at each notify() until it returns true. GONE,
  // when given, says that whoever waits has left: the waiter is then dropped
  // without DONE being run.
  void add(std::function<bool()> done, std::function<bool()> gone = {}) {
    Waiter waiter{std::move(done), std::move(gone)};
    if (waiter.abandoned() || waiter.done()) return;
    waiters_.push_back(std::move(waiter));
  }

  // Checks every waiter. A waiter may add waiters (checked on their own when
  // added) or act in a way that calls notify() again: that round is skipped,
  // and what it would have seen is seen at the next one.
  void notify() {
    if (notifying_ || waiters_.empty()) return;
    notifying_ = true;
    std::vector<Waiter> pending;
    pending.swap(waiters_);
    for (auto& waiter : pending) {
      if (!waiter.abandoned() && !waiter.done()) waiters_.push_back(std::move(waiter));
    }
    notifying_ = false;
  }

  // Drops the waiters whose GONE says so, without checking the others.
  void prune() {
    std::erase_if(waiters_, [](const Waiter& waiter) { return waiter.abandoned(); });
  }

  size_t size() const { return waiters_.size(); }

 private:
  struct Waiter {
    std::function<bool()> done;
    std::function<bool()> gone;
    bool abandoned() const { return gone && gone(); }
  };
  std::vector<Waiter> waiters_;
  bool notifying_ = false;
};

}  // namespace corral::daemon

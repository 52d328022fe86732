// The decisions of a task feed's watch over queue.task_timeout and
// health.heartbeat_timeout: given the time and what each worker shows at a
// tick, which workers must be killed. Pure: no clock, no timer, no process;
// the feed (task_feed.h) brings the time from its Host, the workers from its
// channels and dispatcher, and carries the verdicts out. Tested on plain
// values (tests/unit/task_watch_test.cc).
//
// Task timeout: a worker whose oldest task (the one it runs) has been its
// oldest for longer than task_timeout, as seen from tick to tick, is killed;
// once per overrun (again after another task_timeout if it lives on).
// Heartbeat: a READY worker that showed no sign of life for longer than
// heartbeat_timeout is killed, once. A paused worker is not judged, and
// the task it runs is timed afresh once it is thawed.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/clock.h"

namespace corral::daemon {

struct WatchLimits {
  std::optional<Duration> task_timeout;       // queue.task_timeout
  std::optional<Duration> heartbeat_timeout;  // health.heartbeat_timeout
};

// One worker as its feed sees it at a tick.
struct WatchedWorker {
  uint32_t worker = 0;
  bool ready = false;               // it said READY: only then do heartbeats count
  TimePoint last_sign{};            // when it last showed it is alive
  std::optional<uint64_t> running;  // the oldest task it holds: the one it runs
  bool paused = false;              // frozen: nothing of it is judged meanwhile
};

// A worker to kill, and why.
struct Overrun {
  uint32_t worker = 0;
  std::string why;               // for the log
  const char* reason = "";       // counted: "task_timeout" or "heartbeat"
  std::optional<uint64_t> task;  // the task that overran task_timeout
};

class TaskWatch {
 public:
  explicit TaskWatch(WatchLimits limits) : limits_(limits) {}

  // How often to tick: a quarter of the shortest timeout, within 10 ms and
  // 1 s. Nullopt: nothing to watch.
  std::optional<Duration> period() const;

  // A tick at NOW over WORKERS: the workers to kill, in the order given.
  std::vector<Overrun> check(TimePoint now, const std::vector<WatchedWorker>& workers);

  // WORKER's process is gone, or a new one is about to start: what was seen
  // of the old one no longer counts.
  void forget(uint32_t worker) { seen_.erase(worker); }

 private:
  struct Seen {
    // The task it ran at the last tick, and since when it has been seen
    // running it (or since its last kill).
    std::optional<std::pair<uint64_t, TimePoint>> running;
    bool silenced = false;  // its heartbeat kill was asked for
  };

  WatchLimits limits_;
  std::map<uint32_t, Seen> seen_;
};

}  // namespace corral::daemon

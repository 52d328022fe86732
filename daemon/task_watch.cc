#include "daemon/task_watch.h"

#include <algorithm>

#include "config/units.h"

namespace corral::daemon {

std::optional<Duration> TaskWatch::period() const {
  if (!limits_.task_timeout && !limits_.heartbeat_timeout) return std::nullopt;
  Duration shortest = std::min(limits_.task_timeout.value_or(Duration::max()),
                               limits_.heartbeat_timeout.value_or(Duration::max()));
  return std::clamp<Duration>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
}

std::vector<Overrun> TaskWatch::check(TimePoint now, const std::vector<WatchedWorker>& workers) {
  std::vector<Overrun> out;
  const auto& heartbeat_timeout = limits_.heartbeat_timeout;
  const auto& task_timeout = limits_.task_timeout;
  for (const WatchedWorker& w : workers) {
    if (w.paused) {
      seen_.erase(w.worker);
      continue;
    }
    Seen& seen = seen_[w.worker];
    if (heartbeat_timeout && w.ready && now - w.last_sign > *heartbeat_timeout &&
        !std::exchange(seen.silenced, true)) {
      out.push_back({w.worker,
                     "no sign of life for more than health.heartbeat_timeout (" +
                         config::format_duration(*heartbeat_timeout) + ")",
                     "heartbeat", std::nullopt});
      continue;
    }
    if (!task_timeout) continue;
    if (!w.running) {
      seen.running.reset();
      continue;
    }
    if (!seen.running || seen.running->first != *w.running) {
      seen.running = std::make_pair(*w.running, now);
      continue;
    }
    if (now - seen.running->second > *task_timeout) {
      out.push_back({w.worker,
                     "task " + std::to_string(*w.running) + " ran longer than " +
                         "queue.task_timeout (" + config::format_duration(*task_timeout) + ")",
                     "task_timeout", *w.running});
      seen.running->second = now;  // one kill per overrun
    }
  }
  return out;
}

}  // namespace corral::daemon

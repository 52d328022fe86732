// The daemon's one notion of time: the monotonic clock. Decisions take a
// TimePoint as an argument, so tests drive them with any time they like.
#pragma once

#include <chrono>

namespace corral::daemon {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::milliseconds;

inline double seconds_between(TimePoint from, TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace corral::daemon

// corralctl top: a live view of corrald's jobs and workers, refreshed every
// interval, like top(1): per job its workers running, CPU %, RSS, tasks/s,
// queue, p99 latency and restarts with sparklines of tasks/s and CPU, then
// (where the terminal is wide enough) delayed, cancelled and expired tasks; per
// worker its state, pid, CPU %, RSS, tasks and restarts. `q` (or Ctrl-C)
// quits and leaves the terminal as it was.
//
// render_top() is pure: the screen for one pair of replies, tested without
// a terminal. run_top() is the loop.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <string>

#include "protocol/control.h"

namespace corral::ctl {

using protocol::Json;

// What top remembers between refreshes: a short history per job.
struct TopHistory {
  static constexpr size_t kLength = 30;
  std::map<std::string, std::deque<double>> tasks_per_s;
  std::map<std::string, std::deque<double>> cpu_percent;
  // Adds the figures of STATS (a stats reply) to the history.
  void add(const Json& stats);
};

// "▁▂▃▅▇" for VALUES scaled to their largest; spaces pad to WIDTH on the left.
std::string sparkline(const std::deque<double>& values, size_t width);

// The whole screen (lines of at most WIDTH columns, at most HEIGHT lines)
// for STATUS (a status reply) and STATS; MESSAGE, when set, is shown instead
// of the tables (corrald unreachable).
std::string render_top(const Json& status, const Json& stats, const TopHistory& history, int width,
                       int height, const std::string& message);

// The loop on the terminal (stdin and stdout); when stdout is not a
// terminal, prints one screen and returns. The exit code.
int run_top(const std::string& socket_path, std::chrono::milliseconds interval);

}  // namespace corral::ctl

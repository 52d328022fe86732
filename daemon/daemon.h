// corrald as a whole: one Asio event loop carrying signals (signalfd), child
// exits (pidfds), timers and the control socket, around one Supervisor.
// run() returns when every worker has stopped after SIGTERM, SIGINT or a
// `shutdown` request.
#pragma once

#include "config/spec.h"

namespace corral::daemon {

// Exit codes of corrald (corrald(8)).
inline constexpr int kExitClean = 0;
inline constexpr int kExitFatal = 1;
inline constexpr int kExitUsage = 2;

// Runs the daemon on CONFIG until it is told to stop; returns the exit code.
int run_daemon(const config::Config& config);

}  // namespace corral::daemon

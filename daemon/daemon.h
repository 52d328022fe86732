// corrald as a whole: one Asio event loop carrying signals (signalfd), child
// exits (pidfds), timers and the control socket, around one Supervisor.
// run() returns when every worker has stopped after SIGTERM, SIGINT or a
// `shutdown` request.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/spec.h"
#include "daemon/log_file.h"
#include "protocol/exit_codes.h"

namespace corral::daemon {

class LogRing;

// Runs the daemon on CONFIG until it is told to stop; returns the exit code
// (protocol/exit_codes.h). LOG_FILE, when given (--log-file), is opened
// again with the worker logs on SIGUSR1. LOG_RING, when given, holds
// corrald's recent log lines for `maintail`.
int run_daemon(const config::Config& config, LogFile* log_file = nullptr,
               std::shared_ptr<const LogRing> log_ring = nullptr);

// What `corrald --check` says of the directories corrald opens files in
// (daemon.log_dir, each job's sink and source directory): each one that is
// not private is an error when daemon.private_dirs refuses it (corrald would
// not start, or the job would not), else a warning. Nothing is created.
struct DirCheck {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};
DirCheck check_private_dirs(const config::Config& config);

}  // namespace corral::daemon

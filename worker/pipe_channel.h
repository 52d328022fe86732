// The pipe channel on the worker's side (docs/worker-protocol.md):
// - lines: a task per line in, a result line per task out, in order; EOF of
//   the input is the sentinel.
// - length: READY, then TASK frames in and RESULT frames out, with HEARTBEAT
//   frames from a thread when asked for; SHUTDOWN or EOF ends it.
// A daemon that goes away shows up as EPIPE (SIGPIPE is ignored) and ends
// the worker with exit code 1.
//
// The two fds are borrowed, not owned: they may be the process's stdin and
// stdout (`pipe.fds: stdio`), which outlive serve(). Runs on the thread that
// calls serve_pipe(), with a heartbeat thread when the settings ask for one.
#pragma once

#include "worker/sdk_env.h"
#include "worker/serving.h"

namespace corral::sdk {

// Serves the pipes of SETTINGS with HANDLER until the sentinel; serve()'s
// exit code.
int serve_pipe(const TaskHandler& handler, const PipeSettings& settings);

}  // namespace corral::sdk

// What the SDK's public functions (sdk.cc, behind corral/worker.h) and its
// channel drivers (pipe_channel, shm_channel) share: the handler as the
// drivers call it, serve()'s exit codes, the stop request, and the one way
// to say on stderr what went wrong.
//
// Free of base/ on purpose. corral/worker.h declares corral::Result, the
// handler's answer, and base/result.h declares corral::Result<T, E>, the
// error type of the SDK's insides: no file can see both. So the public side
// includes only this header, decimal.h and shared_lookup.h of the insides,
// and the insides never include corral/worker.h.
//
// Thread-safe: complain() and the stop request may be used from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace corral::sdk {

// serve()'s exit codes (corral/worker.h).
inline constexpr int kExitDone = 0;            // the sentinel, EOF of the input, or a stop request
inline constexpr int kExitBroken = 1;          // the channel broke (or no memory, no thread)
inline constexpr int kExitBadEnvironment = 2;  // the environment names no usable channel
// A task failed under lines framing, which has no way to say so: the worker
// exits rather than answer the failure as an ok line (docs/worker-protocol.md).
inline constexpr int kExitTaskFailedOnLines = 3;

// A handler's answer as the drivers see it: corral::Result's two fields.
struct Answer {
  bool ok = true;
  std::string payload;
};
using TaskHandler = std::function<Answer(std::string_view task)>;

// HANDLER's answer to TASK. An exception fails the task with its message;
// a payload longer than MAX_RESULT_BYTES becomes a failure that says so (cut
// to MAX_RESULT_BYTES itself), since the daemon would take it for a protocol
// error and kill the worker.
Answer call_handler(const TaskHandler& handler, std::string_view task, size_t max_result_bytes);

// Serves the channel the environment names (CORRAL_CHANNEL and the rest,
// docs/worker-protocol.md) with HANDLER, on the calling thread, until the
// sentinel; returns serve()'s exit code, having said on stderr why when it
// is not kExitDone.
int serve_channel(const TaskHandler& handler);

// Set by stop_after_this_task(), read by the drivers after each result.
void request_stop();
bool stop_requested();

// This program's short name, as its messages start.
const char* program_name();
// Writes "PROGRAM: MESSAGE\n" to stderr in one write(), so that the lines of
// several workers sharing a log do not mix.
void complain(std::string_view message);

}  // namespace corral::sdk

// The environment corrald gives a worker (docs/worker-protocol.md): which
// channel, its framing and fds, the segment and slot of the shm channel, the
// task size limit and the heartbeat period, read and checked once when
// serve() starts. A wrong or missing variable is the environment's fault:
// serve() says why and exits 2 (kExitBadEnvironment).
//
// The readers take the lookup as an argument (the process's environment by
// default), so that tests give them a map. fds are only checked to be open;
// whoever serves the channel decides what to own. Thread-safe as far as the
// lookup is (getenv is, while nobody sets variables).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"

namespace corral::sdk {

// VARIABLE's value, or nullptr when it is not set.
using Getenv = std::function<const char*(const char* variable)>;
// std::getenv.
Getenv process_environment();

enum class Channel { kPipe, kShm };
enum class Framing { kLines, kLength };

// What every channel reads besides its fds.
struct Limits {
  uint64_t max_task_bytes = 0;            // CORRAL_MAX_TASK_BYTES, 64 KiB when unset
  std::chrono::milliseconds heartbeat{};  // CORRAL_HEARTBEAT_MS; zero: no heartbeats asked for
  // CORRAL_CHUNKS=1: the daemon reads READY's features, so the worker says
  // it takes chunks (TASKS frames); unset or 0: a plain READY.
  bool chunks = false;
};

struct PipeSettings {
  Framing framing = Framing::kLines;  // CORRAL_FRAMING, lines when unset
  int in = -1;                        // CORRAL_FDS, "3,4" when unset
  int out = -1;
  Limits limits;
};

// Where the job's segment is: CORRAL_SHM=fd:N and the slot CORRAL_WORKER.
struct ShmPlace {
  int fd = -1;
  uint64_t worker = 0;   // checked against the segment once attached
  std::string variable;  // "CORRAL_SHM=fd:3", for messages
};

struct ShmSettings {
  int wake_me = -1;      // CORRAL_FDS, "4,5" when unset: the task eventfd
  int wake_daemon = -1;  // and the result eventfd
  // CORRAL_SPIN_US: how long an empty task ring is polled before sleeping
  // (the job's shm.spin), 30 us when unset; 0: sleep at once.
  std::chrono::microseconds spin{30};
  Limits limits;
};

// CORRAL_CHANNEL: pipe or shm (none, unset or anything else is an error).
Result<Channel> channel_from_env(const Getenv& env = process_environment());
Result<PipeSettings> pipe_settings_from_env(const Getenv& env = process_environment());
// Also checks that CORRAL_CHANNEL is shm: the shared values of a job exist
// only there.
Result<ShmPlace> shm_place_from_env(const Getenv& env = process_environment());
Result<ShmSettings> shm_settings_from_env(const Getenv& env = process_environment());

}  // namespace corral::sdk

// The shm channel on the worker's side: this worker's two rings in the
// job's segment, woken through two eventfds only when the other side sleeps
// (ARCHITECTURE decision 5). READY first; then each TASK record is handled
// and its RESULT published before the next task starts; SHUTDOWN ends it,
// and so does the daemon's going away (this process re-parented). The
// worker's slot gets its pid, its count of tasks done and its heartbeat
// (docs/worker-protocol.md, *The shm channel*).
//
// Runs on the thread that calls serve_shm(), with a heartbeat thread when
// the settings ask for one.
#pragma once

#include <cstdint>

#include "ipc/segment.h"
#include "worker/sdk_env.h"
#include "worker/serving.h"

namespace corral::sdk {

// Serves slot WORKER of SEGMENT with HANDLER until the sentinel; serve()'s
// exit code. Takes over the two eventfds of SETTINGS (closed on return).
int serve_shm(const TaskHandler& handler, const ipc::Segment& segment, uint32_t worker,
              const ShmSettings& settings);

}  // namespace corral::sdk

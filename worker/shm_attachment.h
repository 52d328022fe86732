// The job's shared-memory segment as this worker process attached it: once
// per process, by serve() on the shm channel or by the first shared_value()
// or shared_array(), whichever comes first, from CORRAL_SHM and
// CORRAL_WORKER (sdk_env.h). It stays mapped until the process ends: the
// shared values handed out point into it.
//
// Thread-safe: the first call attaches (a function-local static), every
// call returns the same result.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "ipc/segment.h"

namespace corral::sdk {

struct Attachment {
  ipc::Segment segment;
  uint32_t worker = 0;  // this worker's slot, < segment.worker_count()
};

// Why there is no segment, and whose fault that is: the environment's
// (serve() exits 2: no shm channel, a bad CORRAL_SHM, a slot the segment does
// not have) or the segment's (exits 1: it cannot be mapped or is not sound).
struct AttachFailure {
  Error error;
  bool environment = false;
};

using ShmAttachment = Result<Attachment, AttachFailure>;

const ShmAttachment& shm_attachment();

}  // namespace corral::sdk

// The shared-memory channel of one worker: tasks go into the worker's task
// ring of the job's segment, results come back through its result ring, and
// eventfds wake a side only when it sleeps (ARCHITECTURE decision 5).
// Everything read from the segment goes through ipc::WorkerRings, which
// trusts none of it.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <memory>

#include "base/result.h"
#include "daemon/channel.h"
#include "daemon/host.h"
#include "ipc/segment.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

// Makes WORKER's channel on its slot of SEGMENT (renewing the slot and its
// rings) and adds to REQUEST what the child needs: the segment as fd 3, the
// task and result eventfds as fds 4 and 5, and CORRAL_SHM / CORRAL_FDS.
Result<std::unique_ptr<Channel>> open_shm_channel(const ChannelContext& context, uint32_t worker,
                                                  boost::asio::io_context& io,
                                                  ipc::Segment& segment, SpawnRequest& request);

}  // namespace corral::daemon

// The pipe channel of one worker: a pipe to its input and one from its
// output, with line framing (any Unix filter is a worker: one task per line,
// results in order) or length framing (the worker protocol's frames).
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <memory>

#include "base/result.h"
#include "config/spec.h"
#include "daemon/channel.h"
#include "daemon/host.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

// Makes WORKER's channel for JOB (pipe.fds, pipe.framing,
// queue.max_task_bytes) and adds to REQUEST the child's ends (stdin and
// stdout, or fds 3 and 4) and CORRAL_FRAMING / CORRAL_FDS. The channel holds
// the child's ends until start() (after the spawn) or its end.
Result<std::unique_ptr<Channel>> open_pipe_channel(const ChannelContext& context, uint32_t worker,
                                                   boost::asio::io_context& io,
                                                   const config::JobSpec& job,
                                                   SpawnRequest& request);

}  // namespace corral::daemon

// One worker's channel, as its task feed sees it: a WorkerPort for the
// Dispatcher plus its lifecycle (start listening once the child exists, send
// the sentinel, take in what a dead worker left) and the signs of life the
// feed's watch looks at. ShmChannel (shm_channel.h) and PipeChannel
// (pipe_channel.h) are the two kinds; what they share lives here: READY, a
// result handed to the dispatcher, limits.max_tasks recycling, protocol
// errors. A channel knows its feed only through a ChannelContext.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/clock.h"
#include "daemon/dispatcher.h"
#include "daemon/feed.h"
#include "daemon/host.h"
#include "ipc/frame.h"

namespace corral::daemon {

// What a channel needs of the feed it belongs to. The feed outlives its
// channels; EVENTS may be replaced by the feed (retire) while they live.
struct ChannelContext {
  Host& host;  // the clock
  Dispatcher& dispatcher;
  const FeedEvents& events;
  std::optional<uint64_t> max_tasks;  // limits.max_tasks
  // A batch of results went to the dispatcher: refill the queue, hand out
  // tasks, tell the listeners.
  std::function<void()> results_done;
  // shm.spin: after handing tasks the job's workers answer within it (on
  // the job's average), corrald polls for the results this long before it
  // waits for the worker's wake-up.
  std::chrono::microseconds spin{0};
};

class Channel : public WorkerPort {
 public:
  Channel(const ChannelContext& context, uint32_t worker);
  ~Channel() override = default;

  // The child exists and has its ends: start listening.
  virtual void start() = 0;
  virtual void sentinel() = 0;
  // The worker is dead: takes in the results it left in the channel, which
  // are as good as any, before its tasks are redelivered.
  virtual void collect_remains() = 0;

  // When the worker last showed it is alive, as the daemon saw it by NOW:
  // anything read from it (shm channels also look at the heartbeat cell of
  // its slot, and count a change of it as seen at NOW).
  virtual TimePoint last_sign(TimePoint /*now*/) { return last_sign_; }
  bool ready() const { return ready_; }
  // Of a dead worker: the tasks it finished and did not answer (results
  // it gathered for a RESULTS frame and never sent), by what it counted
  // in its slot; 0 for a pipe worker, which answers each task at once.
  // Untrusted: Dispatcher::worker_gone bounds it.
  virtual uint64_t finished_unanswered() const { return 0; }
  // Its READY said so (CORRAL_CHUNKS offered it).
  bool takes_chunks() const override { return takes_chunks_; }

 protected:
  // Something came from the worker: the time of this batch of results.
  void begin_batch();
  // Hands one result to the dispatcher; false on a protocol error.
  bool on_result(uint64_t id, bool ok, std::string_view payload);
  // Hands a RESULTS frame's results to the dispatcher, in order.
  bool on_results(const ipc::Frame& frame);
  // limits.max_tasks: its last task is answered; restart it by sentinel.
  void recycle_when_spent();
  // The worker takes tasks from now on (unless its sentinel was sent).
  void attach();
  // Hands one decoded frame to the dispatcher; false on a protocol error
  // (already reported).
  bool on_frame(const ipc::Frame& frame);
  // Reports the worker for killing, once; always false.
  bool protocol_error(const std::string& why);

  Dispatcher& dispatcher() { return context_.dispatcher; }
  void results_done() { context_.results_done(); }

  // Completions already queued when a channel is destroyed still run, with
  // whatever result they had: every handler checks this token first.
  std::weak_ptr<int> alive() const { return alive_; }

  const ChannelContext& context_;
  uint32_t worker_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool ready_ = false;
  bool takes_chunks_ = false;
  bool broken_ = false;
  bool sentinel_sent_ = false;
  bool recycled_ = false;
  bool takes_results_frames_ = false;  // shm: the slot counts finished tasks
  uint64_t answered_ = 0;              // results handed to the dispatcher
  TimePoint batch_now_;
  TimePoint last_sign_;
};

}  // namespace corral::daemon

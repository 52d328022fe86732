#include "daemon/channel.h"

namespace corral::daemon {

Channel::Channel(const ChannelContext& context, uint32_t worker)
    : context_(context), worker_(worker), batch_now_(context.host.now()), last_sign_(batch_now_) {}

void Channel::begin_batch() {
  batch_now_ = context_.host.now();
  last_sign_ = batch_now_;
}

bool Channel::on_result(uint64_t id, bool ok, std::string_view payload) {
  if (!dispatcher().result(worker_, id, ok, payload, batch_now_)) {
    return protocol_error("result for task " + std::to_string(id) +
                          ", which this worker does not hold");
  }
  ++answered_;
  recycle_when_spent();
  return true;
}

bool Channel::on_results(const ipc::Frame& frame) {
  if (!takes_results_frames_) {
    return protocol_error("a RESULTS frame on a pipe (only shm workers send them)");
  }
  const uint32_t taken =
      dispatcher().results(worker_, frame.id, frame.count, frame.payload, batch_now_);
  answered_ += taken;
  if (taken < frame.count) {
    return protocol_error("result for task " + std::to_string(frame.id + taken) +
                          ", which this worker does not hold");
  }
  recycle_when_spent();
  return true;
}

void Channel::recycle_when_spent() {
  // limits.max_tasks: its last task is answered; restart it by sentinel.
  if (dispatcher().budget_spent(worker_) && dispatcher().held_by(worker_) == 0 &&
      !std::exchange(recycled_, true)) {
    context_.events.recycle(worker_);
  }
}

void Channel::attach() {
  if (!sentinel_sent_) dispatcher().attach(worker_, this, context_.max_tasks);
}

bool Channel::on_frame(const ipc::Frame& frame) {
  switch (frame.type) {
    case ipc::FrameType::kResult:
      return on_result(frame.id, frame.status == ipc::ResultStatus::kOk, frame.payload);
    case ipc::FrameType::kResults:
      return on_results(frame);
    case ipc::FrameType::kReady:
      if (ready_) return protocol_error("a second READY");
      ready_ = true;
      takes_chunks_ = (frame.features & ipc::kReadyTakesChunks) != 0;
      attach();
      context_.events.ready(worker_);
      return true;
    case ipc::FrameType::kHeartbeat:
      return true;
    default:
      return protocol_error("unexpected frame type " +
                            std::to_string(static_cast<int>(frame.type)));
  }
}

bool Channel::protocol_error(const std::string& why) {
  if (!broken_) {
    broken_ = true;
    dispatcher().detach(worker_);
    context_.events.kill(worker_, "protocol error: " + why, "protocol");
  }
  return false;
}

}  // namespace corral::daemon

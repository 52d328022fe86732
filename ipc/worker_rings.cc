#include "ipc/worker_rings.h"

#include <atomic>
#include <utility>

namespace corral::ipc {

WorkerRings::WorkerRings(Segment& segment, uint32_t worker)
    : worker_(worker), slot_(segment.slot(worker)) {
  Segment::Rings rings = segment.renew(worker);
  tasks_ = rings.tasks;
  results_ = rings.results;
}

bool WorkerRings::push_shutdown() {
  char* at = tasks_.reserve(1);
  if (at == nullptr) return false;
  *at = static_cast<char>(FrameType::kShutdown);
  tasks_.commit(1);
  return true;
}

WorkerRings::TimePoint WorkerRings::heartbeat_seen(TimePoint now) {
  const uint64_t beat = slot_.heartbeat_ns.load(std::memory_order_relaxed);
  if (beat != last_beat_) {
    last_beat_ = beat;
    beat_seen_ = now;
  }
  return beat_seen_;
}

}  // namespace corral::ipc

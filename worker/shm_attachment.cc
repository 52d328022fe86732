#include "worker/shm_attachment.h"

#include <string>
#include <utility>

#include "worker/sdk_env.h"

namespace corral::sdk {
namespace {

ShmAttachment attach_from_env() {
  Result<ShmPlace> place = shm_place_from_env();
  if (!place) return AttachFailure{std::move(place).error(), true};
  Result<ipc::Segment> segment = ipc::Segment::attach(UniqueFd(place->fd));
  if (!segment) {
    return AttachFailure{
        std::move(segment).error().context("attaching the job's segment (" + place->variable + ")"),
        false};
  }
  if (place->worker >= segment->worker_count()) {
    return AttachFailure{
        Error("CORRAL_WORKER=" + std::to_string(place->worker) + " but the segment has " +
              std::to_string(segment->worker_count()) + " workers"),
        true};
  }
  return Attachment{std::move(*segment), static_cast<uint32_t>(place->worker)};
}

}  // namespace

const ShmAttachment& shm_attachment() {
  static const ShmAttachment attachment = attach_from_env();
  return attachment;
}

}  // namespace corral::sdk

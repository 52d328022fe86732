#include "daemon/chunker.h"

#include <utility>

#include "ipc/frame.h"

namespace corral::daemon {

Chunker::Chunker(Dispatcher& dispatcher, size_t max_task_bytes)
    : dispatcher_(dispatcher), max_bytes_(ipc::max_chunk_bytes(max_task_bytes)) {}

void Chunker::add(std::string_view payload, const TaskOrigin& origin) {
  const size_t bytes = ipc::kChunkItemHeaderBytes + payload.size();
  if (count_ > 0 && (count_ == kMaxTasks || items_.size() + bytes > max_bytes_ ||
                     origin.seq != origin_.seq + count_ || origin.submitter != origin_.submitter ||
                     origin.submit != origin_.submit)) {
    flush();
  }
  if (bytes > max_bytes_ || !dispatcher_.chunks_welcome()) {
    flush();
    dispatcher_.submit(std::string(payload), origin);
    return;
  }
  if (count_ == 0) {
    origin_ = origin;
    // Room for as many bytes as the last chunk took: a stream's chunks are
    // alike, and the items are not moved again as the string grows.
    items_.reserve(last_bytes_);
  }
  ipc::append_chunk_item(items_, payload);
  ++count_;
}

void Chunker::flush() {
  if (count_ == 0) return;
  last_bytes_ = items_.size();
  dispatcher_.submit_chunk(std::move(items_), count_, origin_);
  items_.clear();
  count_ = 0;
}

}  // namespace corral::daemon

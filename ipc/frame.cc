#include "ipc/frame.h"

#include <bit>
#include <cstring>
#include <stdexcept>

namespace corral::ipc {
namespace {

// Little-endian on the wire whatever the host: one load or store each on
// x86 and arm64 (a byte loop is not always merged by the compiler).
template <class T>
T to_little_endian(T v) {
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 8) return __builtin_bswap64(v);
    if constexpr (sizeof(T) == 4) return __builtin_bswap32(v);
  }
  return v;
}
template <class T>
void put(char* at, T v) {
  v = to_little_endian(v);
  std::memcpy(at, &v, sizeof v);
}
template <class T>
T get(const char* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return to_little_endian(v);
}

// The u32 length prefix counts the type byte and the body.
uint32_t frame_length(size_t header_bytes, std::string_view payload) {
  if (payload.size() > UINT32_MAX - header_bytes) {
    throw std::length_error("frame payload of " + std::to_string(payload.size()) +
                            " bytes does not fit a u32 length");
  }
  return static_cast<uint32_t>(header_bytes + payload.size());
}

const char* type_name(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kTask:
      return "task";
    case FrameType::kResult:
      return "result";
    case FrameType::kShutdown:
      return "shutdown";
    case FrameType::kReady:
      return "ready";
    case FrameType::kHeartbeat:
      return "heartbeat";
    case FrameType::kTasks:
      return "tasks";
    case FrameType::kResults:
      return "results";
  }
  return "unknown";
}

// TASKS and RESULTS share their layout: type, u64 first id, u32 count,
// then their items.
static_assert(kTasksHeaderBytes == kResultsHeaderBytes);

size_t write_items_body(char* dest, FrameType type, uint64_t first_id, uint32_t count,
                        std::string_view items) {
  dest[0] = static_cast<char>(type);
  put<uint64_t>(dest + 1, first_id);
  put<uint32_t>(dest + 9, count);
  if (!items.empty()) std::memcpy(dest + kTasksHeaderBytes, items.data(), items.size());
  return kTasksHeaderBytes + items.size();
}

void append_items(std::string& out, FrameType type, uint64_t first_id, uint32_t count,
                  std::string_view items) {
  char head[kLengthBytes + kTasksHeaderBytes];
  put<uint32_t>(head, frame_length(kTasksHeaderBytes, items));
  write_items_body(head + kLengthBytes, type, first_id, count, {});
  out.append(head, sizeof head);
  out.append(items);
}

// Drops the bytes before START once they are at least as many as the bytes
// still held, so each byte is moved O(1) times and the buffer stays within
// about twice what is pending.
void compact(std::string& buffer, size_t& start) {
  if (start == 0) return;
  if (start == buffer.size()) {
    buffer.clear();  // keeps the capacity
    start = 0;
  } else if (start >= buffer.size() - start) {
    buffer.erase(0, start);
    start = 0;
  }
}

}  // namespace

void append_task(std::string& out, uint64_t id, std::string_view payload) {
  char head[kLengthBytes + kTaskHeaderBytes];
  put<uint32_t>(head, frame_length(kTaskHeaderBytes, payload));
  write_task_body(head + kLengthBytes, id, {});
  out.append(head, sizeof head);
  out.append(payload);
}

void append_result(std::string& out, uint64_t id, ResultStatus status, std::string_view payload) {
  char head[kLengthBytes + kResultHeaderBytes];
  put<uint32_t>(head, frame_length(kResultHeaderBytes, payload));
  write_result_body(head + kLengthBytes, id, status, {});
  out.append(head, sizeof head);
  out.append(payload);
}

void append_control(std::string& out, FrameType type) {
  char frame[kLengthBytes + 1];
  put<uint32_t>(frame, 1);
  frame[kLengthBytes] = static_cast<char>(type);
  out.append(frame, sizeof frame);
}

void append_ready(std::string& out, uint32_t features) {
  char frame[kLengthBytes + kReadyFeaturesBytes];
  put<uint32_t>(frame, kReadyFeaturesBytes);
  write_ready_body(frame + kLengthBytes, features);
  out.append(frame, sizeof frame);
}

void append_tasks(std::string& out, uint64_t first_id, uint32_t count, std::string_view items) {
  append_items(out, FrameType::kTasks, first_id, count, items);
}

void append_results(std::string& out, uint64_t first_id, uint32_t count, std::string_view items) {
  append_items(out, FrameType::kResults, first_id, count, items);
}

void append_chunk_item(std::string& items, std::string_view payload) {
  char head[kChunkItemHeaderBytes];
  put<uint32_t>(head, static_cast<uint32_t>(payload.size()));
  items.append(head, sizeof head);
  items.append(payload);
}

std::string_view take_chunk_item(std::string_view& items) {
  const auto size = get<uint32_t>(items.data());
  std::string_view payload = items.substr(kChunkItemHeaderBytes, size);
  items.remove_prefix(kChunkItemHeaderBytes + size);
  return payload;
}

void append_result_item(std::string& items, ResultStatus status, std::string_view payload) {
  char head[kResultItemHeaderBytes];
  head[0] = static_cast<char>(status);
  put<uint32_t>(head + 1, static_cast<uint32_t>(payload.size()));
  items.append(head, sizeof head);
  items.append(payload);
}

ResultItem take_result_item(std::string_view& items) {
  ResultItem item;
  item.status = static_cast<ResultStatus>(items[0]);
  const auto size = get<uint32_t>(items.data() + 1);
  item.payload = items.substr(kResultItemHeaderBytes, size);
  items.remove_prefix(kResultItemHeaderBytes + size);
  return item;
}

size_t write_results_body(char* dest, uint64_t first_id, uint32_t count, std::string_view items) {
  return write_items_body(dest, FrameType::kResults, first_id, count, items);
}

size_t write_tasks_body(char* dest, uint64_t first_id, uint32_t count, std::string_view items) {
  return write_items_body(dest, FrameType::kTasks, first_id, count, items);
}

size_t write_ready_body(char* dest, uint32_t features) {
  dest[0] = static_cast<char>(FrameType::kReady);
  put<uint32_t>(dest + 1, features);
  return kReadyFeaturesBytes;
}

size_t write_task_body(char* dest, uint64_t id, std::string_view payload) {
  dest[0] = static_cast<char>(FrameType::kTask);
  put<uint64_t>(dest + 1, id);
  if (!payload.empty()) std::memcpy(dest + kTaskHeaderBytes, payload.data(), payload.size());
  return kTaskHeaderBytes + payload.size();
}

size_t write_result_body(char* dest, uint64_t id, ResultStatus status, std::string_view payload) {
  dest[0] = static_cast<char>(FrameType::kResult);
  put<uint64_t>(dest + 1, id);
  dest[9] = static_cast<char>(status);
  if (!payload.empty()) std::memcpy(dest + kResultHeaderBytes, payload.data(), payload.size());
  return kResultHeaderBytes + payload.size();
}

namespace {

// The error paths, out of line: the hot path keeps a small frame.
[[gnu::noinline, gnu::cold]] Error too_short(uint8_t type, size_t size, size_t header) {
  return Error(std::string(type_name(type)) + " frame of " + std::to_string(size) +
               " bytes is shorter than its " + std::to_string(header) + "-byte header");
}

[[gnu::noinline, gnu::cold]] Error bad_frame(std::string_view body) {
  const auto type = static_cast<uint8_t>(body[0]);
  if (type == static_cast<uint8_t>(FrameType::kResult)) {
    return Error("result status " + std::to_string(static_cast<uint8_t>(body[9])) +
                 " is neither 0 (ok) nor 1 (failed)");
  }
  if (type == static_cast<uint8_t>(FrameType::kReady)) {
    return Error("ready frame with a " + std::to_string(body.size() - 1) +
                 "-byte body; it has none or a 4-byte features word");
  }
  if (type >= static_cast<uint8_t>(FrameType::kShutdown) &&
      type <= static_cast<uint8_t>(FrameType::kHeartbeat)) {
    return Error(std::string(type_name(type)) + " frame with a " + std::to_string(body.size() - 1) +
                 "-byte body; control frames have none");
  }
  return Error("unknown frame type " + std::to_string(type));
}

// A TASKS or RESULTS frame's items must fill its body exactly, COUNT of
// them; a result's status is 0 or 1.
[[gnu::noinline]] Result<Frame> parse_items(std::string_view body) {
  const bool results = static_cast<FrameType>(body[0]) == FrameType::kResults;
  const char* kind = results ? "results" : "tasks";
  const char* item = results ? "result" : "task";
  const size_t header = kTasksHeaderBytes;  // RESULTS' too
  if (body.size() < header) return too_short(body[0], body.size(), header);
  Frame frame;
  frame.type = static_cast<FrameType>(body[0]);
  frame.id = get<uint64_t>(body.data() + 1);
  frame.count = get<uint32_t>(body.data() + 9);
  frame.payload = body.substr(header);
  if (frame.count == 0) return Error(std::string(kind) + " frame of 0 " + item + "s");
  const size_t head = results ? kResultItemHeaderBytes : kChunkItemHeaderBytes;
  std::string_view rest = frame.payload;
  for (uint32_t i = 0; i < frame.count; ++i) {
    if (rest.size() < head || get<uint32_t>(rest.data() + head - 4) > rest.size() - head) {
      return Error(std::string(kind) + " frame of " + std::to_string(frame.count) + " " + item +
                   "s ends inside " + item + " " + std::to_string(i + 1));
    }
    if (results && static_cast<uint8_t>(rest[0]) > 1) {
      return Error("results frame: result " + std::to_string(i + 1) + " has status " +
                   std::to_string(static_cast<uint8_t>(rest[0])) +
                   ", neither 0 (ok) nor 1 (failed)");
    }
    rest.remove_prefix(head + get<uint32_t>(rest.data() + head - 4));
  }
  if (!rest.empty()) {
    return Error(std::string(kind) + " frame of " + std::to_string(frame.count) + " " + item +
                 "s has " + std::to_string(rest.size()) + " bytes after its last " + item);
  }
  return frame;
}

}  // namespace

Result<Frame> parse_frame_body(std::string_view body) {
  if (body.empty()) return Error("empty frame: no type byte");
  Frame frame;
  const auto type = static_cast<uint8_t>(body[0]);
  switch (static_cast<FrameType>(type)) {
    case FrameType::kTask:
      if (body.size() < kTaskHeaderBytes) {
        return too_short(type, body.size(), kTaskHeaderBytes);
      }
      frame.type = FrameType::kTask;
      frame.id = get<uint64_t>(body.data() + 1);
      frame.status = ResultStatus::kOk;
      frame.payload = body.substr(kTaskHeaderBytes);
      return frame;
    case FrameType::kResult: {
      if (body.size() < kResultHeaderBytes) {
        return too_short(type, body.size(), kResultHeaderBytes);
      }
      const auto status = static_cast<uint8_t>(body[9]);
      if (status > 1) return bad_frame(body);
      frame.type = FrameType::kResult;
      frame.id = get<uint64_t>(body.data() + 1);
      frame.status = static_cast<ResultStatus>(status);
      frame.payload = body.substr(kResultHeaderBytes);
      return frame;
    }
    case FrameType::kTasks:
    case FrameType::kResults:
      return parse_items(body);
    case FrameType::kReady:
      if (body.size() == 1 + sizeof frame.features) {
        frame.type = FrameType::kReady;
        frame.features = get<uint32_t>(body.data() + 1);
        return frame;
      }
      [[fallthrough]];
    case FrameType::kShutdown:
    case FrameType::kHeartbeat:
      if (body.size() != 1) return bad_frame(body);
      frame.type = static_cast<FrameType>(type);
      frame.id = 0;
      frame.status = ResultStatus::kOk;
      frame.payload = {};
      return frame;
  }
  return bad_frame(body);
}

void FrameDecoder::feed(std::string_view bytes) {
  if (!error_.empty()) return;  // a broken stream stays broken
  compact(buffer_, start_);
  buffer_.append(bytes);
}

DecodeStatus FrameDecoder::next(Frame& frame) {
  if (!error_.empty()) return DecodeStatus::kError;
  const size_t available = buffer_.size() - start_;
  if (available < kLengthBytes) return DecodeStatus::kNeedMore;
  const char* at = buffer_.data() + start_;
  const uint32_t length = get<uint32_t>(at);
  if (length > max_frame_bytes_) {
    error_ = "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
             std::to_string(max_frame_bytes_);
    return DecodeStatus::kError;
  }
  if (available - kLengthBytes < length) {
    // Make room for the whole frame once rather than growing per read.
    buffer_.reserve(start_ + kLengthBytes + length);
    return DecodeStatus::kNeedMore;
  }
  Result<Frame> parsed = parse_frame_body({at + kLengthBytes, length});
  if (!parsed) {
    error_ = parsed.error().message();
    return DecodeStatus::kError;
  }
  frame = *parsed;
  start_ += kLengthBytes + length;
  return DecodeStatus::kItem;
}

void LineDecoder::feed(std::string_view bytes) {
  if (!error_.empty()) return;
  compact(buffer_, start_);
  buffer_.append(bytes);
}

DecodeStatus LineDecoder::next(std::string_view& line) {
  if (!error_.empty()) return DecodeStatus::kError;
  const char* begin = buffer_.data() + start_;
  const size_t available = buffer_.size() - start_;
  const auto* newline =
      static_cast<const char*>(std::memchr(begin + scanned_, '\n', available - scanned_));
  if (newline == nullptr) {
    scanned_ = available;
    if (available > max_line_bytes_) {
      error_ = "line longer than the limit of " + std::to_string(max_line_bytes_) + " bytes (" +
               std::to_string(available) + " bytes without a newline)";
      return DecodeStatus::kError;
    }
    return DecodeStatus::kNeedMore;
  }
  const auto length = static_cast<size_t>(newline - begin);
  if (length > max_line_bytes_) {
    error_ = "line of " + std::to_string(length) + " bytes exceeds the limit of " +
             std::to_string(max_line_bytes_);
    return DecodeStatus::kError;
  }
  line = {begin, length};
  start_ += length + 1;
  scanned_ = 0;
  return DecodeStatus::kItem;
}

}  // namespace corral::ipc

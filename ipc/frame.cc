#include "ipc/frame.h"

#include <cstring>
#include <stdexcept>

namespace corral::ipc {
namespace {

// Little-endian on the wire whatever the host; compilers turn these into
// plain loads and stores on x86 and arm64.
void put_u32(char* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>(v >> (8 * i));
}
void put_u64(char* at, uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<char>(v >> (8 * i));
}
uint32_t get_u32(const char* at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(at[i])} << (8 * i);
  return v;
}
uint64_t get_u64(const char* at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(at[i])} << (8 * i);
  return v;
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
  }
  return "unknown";
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
  put_u32(head, frame_length(kTaskHeaderBytes, payload));
  write_task_body(head + kLengthBytes, id, {});
  out.append(head, sizeof head);
  out.append(payload);
}

void append_result(std::string& out, uint64_t id, ResultStatus status, std::string_view payload) {
  char head[kLengthBytes + kResultHeaderBytes];
  put_u32(head, frame_length(kResultHeaderBytes, payload));
  write_result_body(head + kLengthBytes, id, status, {});
  out.append(head, sizeof head);
  out.append(payload);
}

void append_control(std::string& out, FrameType type) {
  char frame[kLengthBytes + 1];
  put_u32(frame, 1);
  frame[kLengthBytes] = static_cast<char>(type);
  out.append(frame, sizeof frame);
}

size_t write_task_body(char* dest, uint64_t id, std::string_view payload) {
  dest[0] = static_cast<char>(FrameType::kTask);
  put_u64(dest + 1, id);
  if (!payload.empty()) std::memcpy(dest + kTaskHeaderBytes, payload.data(), payload.size());
  return kTaskHeaderBytes + payload.size();
}

size_t write_result_body(char* dest, uint64_t id, ResultStatus status, std::string_view payload) {
  dest[0] = static_cast<char>(FrameType::kResult);
  put_u64(dest + 1, id);
  dest[9] = static_cast<char>(status);
  if (!payload.empty()) std::memcpy(dest + kResultHeaderBytes, payload.data(), payload.size());
  return kResultHeaderBytes + payload.size();
}

bool parse_frame_body(std::string_view body, Frame& frame, std::string& error) {
  if (body.empty()) {
    error = "empty frame: no type byte";
    return false;
  }
  const auto type = static_cast<uint8_t>(body[0]);
  auto too_short = [&](size_t header) {
    error = std::string(type_name(type)) + " frame of " + std::to_string(body.size()) +
            " bytes is shorter than its " + std::to_string(header) + "-byte header";
    return false;
  };
  switch (static_cast<FrameType>(type)) {
    case FrameType::kTask:
      if (body.size() < kTaskHeaderBytes) return too_short(kTaskHeaderBytes);
      frame.type = FrameType::kTask;
      frame.id = get_u64(body.data() + 1);
      frame.status = ResultStatus::kOk;
      frame.payload = body.substr(kTaskHeaderBytes);
      return true;
    case FrameType::kResult: {
      if (body.size() < kResultHeaderBytes) return too_short(kResultHeaderBytes);
      const auto status = static_cast<uint8_t>(body[9]);
      if (status > 1) {
        error = "result status " + std::to_string(status) + " is neither 0 (ok) nor 1 (failed)";
        return false;
      }
      frame.type = FrameType::kResult;
      frame.id = get_u64(body.data() + 1);
      frame.status = static_cast<ResultStatus>(status);
      frame.payload = body.substr(kResultHeaderBytes);
      return true;
    }
    case FrameType::kShutdown:
    case FrameType::kReady:
    case FrameType::kHeartbeat:
      if (body.size() != 1) {
        error = std::string(type_name(type)) + " frame with a " + std::to_string(body.size() - 1) +
                "-byte body; control frames have none";
        return false;
      }
      frame.type = static_cast<FrameType>(type);
      frame.id = 0;
      frame.status = ResultStatus::kOk;
      frame.payload = {};
      return true;
  }
  error = "unknown frame type " + std::to_string(type);
  return false;
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
  const uint32_t length = get_u32(at);
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
  if (!parse_frame_body({at + kLengthBytes, length}, frame, error_)) return DecodeStatus::kError;
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

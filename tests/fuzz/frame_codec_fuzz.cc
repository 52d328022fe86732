// Fuzzes the length-framed codec of ipc/frame.h. The input is a small
// header (how to split, the frame limit) and then a byte stream from a
// peer. The stream is decoded twice, fed whole and fed in pieces, and both
// must hand out the same frames and end the same way; the frames handed
// out, encoded again, must give back the bytes they came from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/frame.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using corral::fuzz::check;
using corral::fuzz::Pieces;

using corral::ipc::DecodeStatus;
using corral::ipc::Frame;
using corral::ipc::FrameDecoder;
using corral::ipc::FrameType;

struct Copy {
  FrameType type;
  uint64_t id;
  corral::ipc::ResultStatus status;
  uint32_t count;     // TASKS
  uint32_t features;  // READY
  std::string payload;
  bool operator==(const Copy&) const = default;
};

struct Outcome {
  std::vector<Copy> frames;
  DecodeStatus last = DecodeStatus::kNeedMore;
  std::string error;
  size_t buffered = 0;
};

void drain(FrameDecoder& decoder, Outcome& out) {
  Frame frame;
  DecodeStatus status;
  while ((status = decoder.next(frame)) == DecodeStatus::kItem) {
    out.frames.push_back({frame.type, frame.id, frame.status, frame.count, frame.features,
                          std::string(frame.payload)});
    if (frame.type == FrameType::kTasks) {
      // Its tasks, read back, fill its body exactly.
      std::string_view rest = frame.payload;
      for (uint32_t i = 0; i < frame.count; ++i) corral::ipc::take_chunk_item(rest);
      check(rest.empty());
    }
    if (frame.type == FrameType::kResults) {
      // Its results too, each with a status of 0 or 1.
      std::string_view rest = frame.payload;
      for (uint32_t i = 0; i < frame.count; ++i) {
        const auto status = corral::ipc::take_result_item(rest).status;
        check(status == corral::ipc::ResultStatus::kOk ||
              status == corral::ipc::ResultStatus::kFailed);
      }
      check(rest.empty());
    }
  }
  out.last = status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint32_t seed = data[0];
  // Limits from 1 byte up to 64 KiB, so that the oversize check is reached.
  const size_t max_frame = size_t{1} << (data[1] % 17);
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  Outcome whole;
  FrameDecoder one(max_frame);
  one.feed(stream);
  drain(one, whole);
  whole.error = one.error();
  whole.buffered = one.buffered();

  Outcome split;
  FrameDecoder many(max_frame);
  Pieces pieces(seed);
  for (size_t at = 0; at < stream.size();) {
    size_t n = std::min(pieces.next(), stream.size() - at);
    many.feed(stream.substr(at, n));
    at += n;
    drain(many, split);
    if (split.last == DecodeStatus::kError) break;
  }
  drain(many, split);
  split.error = many.error();
  split.buffered = many.buffered();

  check(whole.frames == split.frames);
  check(whole.last == split.last);
  check(whole.error == split.error);
  check((whole.last == DecodeStatus::kError) == !whole.error.empty());

  // The frames, encoded again, are the bytes they were decoded from.
  std::string encoded;
  for (const Copy& f : whole.frames) {
    switch (f.type) {
      case FrameType::kTask:
        corral::ipc::append_task(encoded, f.id, f.payload);
        break;
      case FrameType::kResult:
        corral::ipc::append_result(encoded, f.id, f.status, f.payload);
        break;
      case FrameType::kTasks:
        corral::ipc::append_tasks(encoded, f.id, f.count, f.payload);
        break;
      case FrameType::kResults:
        corral::ipc::append_results(encoded, f.id, f.count, f.payload);
        break;
      case FrameType::kReady: {
        // Without a body, or with a features word (which may be zero).
        std::string plain;
        corral::ipc::append_control(plain, f.type);
        std::string with;
        corral::ipc::append_ready(with, f.features);
        const size_t at = encoded.size();
        const bool is_plain = f.features == 0 && stream.substr(at, plain.size()) == plain;
        encoded += is_plain ? plain : with;
        break;
      }
      default:
        corral::ipc::append_control(encoded, f.type);
    }
  }
  check(stream.substr(0, encoded.size()) == encoded);
  if (whole.last == DecodeStatus::kNeedMore) {
    check(encoded.size() + whole.buffered == stream.size());
    check(whole.buffered == split.buffered);
  }

  // The ring's body writers agree with the pipe's framing.
  for (const Copy& f : whole.frames) {
    if (f.type != FrameType::kTask && f.type != FrameType::kResult) continue;
    std::string body(corral::ipc::kResultHeaderBytes + f.payload.size(), '\0');
    size_t n = f.type == FrameType::kTask
                   ? corral::ipc::write_task_body(body.data(), f.id, f.payload)
                   : corral::ipc::write_result_body(body.data(), f.id, f.status, f.payload);
    body.resize(n);
    const corral::Result<Frame> read = corral::ipc::parse_frame_body(body);
    check(read.ok());
    const Frame& parsed = *read;
    check(parsed.type == f.type && parsed.id == f.id && parsed.status == f.status &&
          parsed.payload == f.payload);
  }
  return 0;
}

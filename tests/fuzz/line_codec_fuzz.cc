// Fuzzes the line codec of ipc/frame.h. The input is a small header (how to
// split, the line limit) and then a byte stream from a peer, decoded fed
// whole and fed in pieces: both must hand out the same lines and both fail
// or neither; the lines handed out, each with its '\n', must give back the
// bytes they came from.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/frame.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using corral::fuzz::check;
using corral::fuzz::Pieces;

using corral::ipc::DecodeStatus;
using corral::ipc::LineDecoder;

struct Outcome {
  std::vector<std::string> lines;
  DecodeStatus last = DecodeStatus::kNeedMore;
};

void drain(LineDecoder& decoder, Outcome& out) {
  std::string_view line;
  DecodeStatus status;
  while ((status = decoder.next(line)) == DecodeStatus::kItem) out.lines.emplace_back(line);
  out.last = status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint32_t seed = data[0];
  // Limits from 0 bytes up to 64 KiB.
  const size_t max_line = (size_t{1} << (data[1] % 17)) - 1;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  Outcome whole;
  LineDecoder one(max_line);
  one.feed(stream);
  drain(one, whole);

  Outcome split;
  LineDecoder many(max_line);
  Pieces pieces(seed);
  for (size_t at = 0; at < stream.size();) {
    size_t n = std::min(pieces.next(), stream.size() - at);
    many.feed(stream.substr(at, n));
    at += n;
    drain(many, split);
    if (split.last == DecodeStatus::kError) break;
  }
  drain(many, split);

  // Split input may fail a line sooner (its first max_line + 1 bytes are
  // enough), but never on a different line.
  check(whole.lines == split.lines);
  check(whole.last == split.last);
  check((whole.last == DecodeStatus::kError) == !one.error().empty());
  check(one.error().empty() == many.error().empty());

  std::string joined;
  for (const std::string& line : whole.lines) {
    check(line.size() <= max_line);
    check(line.find('\n') == std::string::npos);
    joined += line;
    joined += '\n';
  }
  check(stream.substr(0, joined.size()) == joined);
  if (whole.last == DecodeStatus::kNeedMore) {
    // What is held is the start of one line that fits the limit.
    check(joined.size() + one.buffered() == stream.size());
    check(one.buffered() == many.buffered());
    check(one.buffered() <= max_line);
  }
  return 0;
}

#include "ipc/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace corral::ipc {
namespace {

// What a decoded frame says, owned (a Frame's payload points into the decoder).
struct Seen {
  FrameType type;
  uint64_t id;
  ResultStatus status;
  std::string payload;
  bool operator==(const Seen&) const = default;
};

Seen seen(const Frame& f) { return {f.type, f.id, f.status, std::string(f.payload)}; }

// Feeds STREAM in pieces of the given sizes (the last piece takes the rest)
// and collects every frame; stops at the first error.
std::vector<Seen> decode_in_pieces(const std::string& stream, const std::vector<size_t>& cuts,
                                   size_t max, std::string* error = nullptr) {
  FrameDecoder d(max);
  std::vector<Seen> out;
  size_t at = 0;
  auto drain = [&] {
    Frame f;
    for (;;) {
      DecodeStatus s = d.next(f);
      if (s == DecodeStatus::kItem) {
        out.push_back(seen(f));
      } else {
        if (s == DecodeStatus::kError && error != nullptr) *error = d.error();
        return s;
      }
    }
  };
  for (size_t cut : cuts) {
    d.feed(std::string_view(stream).substr(at, cut - at));
    at = cut;
    if (drain() == DecodeStatus::kError) return out;
  }
  d.feed(std::string_view(stream).substr(at));
  drain();
  return out;
}

std::string sample_stream(std::vector<Seen>& expected) {
  std::string s;
  append_task(s, 1, "hello");
  expected.push_back({FrameType::kTask, 1, ResultStatus::kOk, "hello"});
  append_result(s, 0xfedcba9876543210ULL, ResultStatus::kFailed, "it broke");
  expected.push_back(
      {FrameType::kResult, 0xfedcba9876543210ULL, ResultStatus::kFailed, "it broke"});
  append_task(s, 2, "");
  expected.push_back({FrameType::kTask, 2, ResultStatus::kOk, ""});
  append_control(s, FrameType::kHeartbeat);
  expected.push_back({FrameType::kHeartbeat, 0, ResultStatus::kOk, ""});
  append_result(s, 3, ResultStatus::kOk, std::string("\0\n\xff", 3));
  expected.push_back({FrameType::kResult, 3, ResultStatus::kOk, std::string("\0\n\xff", 3)});
  append_control(s, FrameType::kReady);
  expected.push_back({FrameType::kReady, 0, ResultStatus::kOk, ""});
  append_control(s, FrameType::kShutdown);
  expected.push_back({FrameType::kShutdown, 0, ResultStatus::kOk, ""});
  return s;
}

TEST(FrameTest, EncodingIsLittleEndianLengthTypeBody) {
  std::string s;
  append_task(s, 0x0102030405060708ULL, "ab");
  EXPECT_EQ(s, std::string("\x0b\x00\x00\x00"  // 1 + 8 + 2
                           "\x01"              // TASK
                           "\x08\x07\x06\x05\x04\x03\x02\x01"
                           "ab",
                           15));
  s.clear();
  append_result(s, 7, ResultStatus::kFailed, "x");
  EXPECT_EQ(s, std::string("\x0b\x00\x00\x00\x02\x07\x00\x00\x00\x00\x00\x00\x00\x01x", 15));
  s.clear();
  append_control(s, FrameType::kShutdown);
  EXPECT_EQ(s, std::string("\x01\x00\x00\x00\x03", 5));
}

TEST(FrameTest, AppendAddsToWhatIsThere) {
  std::string s = "xy";
  append_control(s, FrameType::kReady);
  EXPECT_EQ(s.size(), 2u + 5u);
  EXPECT_EQ(s.substr(0, 2), "xy");
}

TEST(FrameTest, BodyWritersMatchTheFramesAfterTheirPrefix) {
  std::string framed;
  append_task(framed, 42, "payload");
  char body[64];
  size_t n = write_task_body(body, 42, "payload");
  EXPECT_EQ(std::string(body, n), framed.substr(kLengthBytes));
  EXPECT_EQ(n, kTaskHeaderBytes + 7);

  framed.clear();
  append_result(framed, 43, ResultStatus::kOk, "done");
  n = write_result_body(body, 43, ResultStatus::kOk, "done");
  EXPECT_EQ(std::string(body, n), framed.substr(kLengthBytes));
  EXPECT_EQ(n, kResultHeaderBytes + 4);

  Result<Frame> f = parse_frame_body({body, n});
  ASSERT_TRUE(f) << message_of(f);
  EXPECT_EQ(seen(*f), (Seen{FrameType::kResult, 43, ResultStatus::kOk, "done"}));
}

TEST(FrameTest, RoundTripInOneFeed) {
  std::vector<Seen> expected;
  const std::string stream = sample_stream(expected);
  EXPECT_EQ(decode_in_pieces(stream, {}, 1 << 16), expected);
}

TEST(FrameTest, SplitAtEveryBytePosition) {
  std::vector<Seen> expected;
  const std::string stream = sample_stream(expected);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_EQ(decode_in_pieces(stream, {cut}, 1 << 16), expected) << "cut at " << cut;
  }
  for (size_t a = 0; a <= stream.size(); a += 3) {
    for (size_t b = a; b <= stream.size(); b += 5) {
      EXPECT_EQ(decode_in_pieces(stream, {a, b}, 1 << 16), expected) << "cuts " << a << "," << b;
    }
  }
}

TEST(FrameTest, OneByteAtATime) {
  std::vector<Seen> expected;
  const std::string stream = sample_stream(expected);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(decode_in_pieces(stream, cuts, 1 << 16), expected);
}

TEST(FrameTest, ManyMergedFramesAndNoGrowth) {
  // Thousands of frames arriving in reads of 4 KiB that cut frames anywhere:
  // every frame comes out, and the buffer stays small.
  std::string stream;
  for (uint64_t i = 0; i < 20000; ++i) append_task(stream, i, std::string(i % 97, 'a' + i % 26));
  FrameDecoder d(1 << 16);
  uint64_t next_id = 0;
  size_t most_buffered = 0;
  for (size_t at = 0; at < stream.size(); at += 4093) {
    d.feed(std::string_view(stream).substr(at, 4093));
    most_buffered = std::max(most_buffered, d.buffered());
    Frame f;
    while (d.next(f) == DecodeStatus::kItem) {
      ASSERT_EQ(f.id, next_id);
      ASSERT_EQ(f.payload, std::string(next_id % 97, 'a' + next_id % 26));
      ++next_id;
    }
  }
  EXPECT_EQ(next_id, 20000u);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_LE(most_buffered, 4093u + 4 + 9 + 97);
}

TEST(FrameTest, FrameAtTheLimitPassesOneByteMoreFails) {
  const size_t max = 100;
  std::string ok;
  append_task(ok, 9, std::string(max - kTaskHeaderBytes, 'x'));  // length field == max
  std::vector<Seen> got = decode_in_pieces(ok, {}, max);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), max - kTaskHeaderBytes);

  std::string too_long;
  append_task(too_long, 9, std::string(max - kTaskHeaderBytes + 1, 'x'));
  std::string error;
  EXPECT_TRUE(decode_in_pieces(too_long, {}, max, &error).empty());
  EXPECT_EQ(error, "frame of 101 bytes exceeds the limit of 100");
}

TEST(FrameTest, HugeLengthFailsOnItsPrefixAlone) {
  FrameDecoder d(65546);
  d.feed(std::string("\xff\xe0\xf5\x05", 4));  // 99999999
  Frame f;
  EXPECT_EQ(d.next(f), DecodeStatus::kError);
  EXPECT_EQ(d.error(), "frame of 99999999 bytes exceeds the limit of 65546");
  // A broken stream stays broken and holds no more bytes.
  d.feed("more bytes");
  EXPECT_EQ(d.next(f), DecodeStatus::kError);
  EXPECT_LE(d.buffered(), 4u);
}

TEST(FrameTest, MalformedFrames) {
  struct Case {
    std::string bytes;
    std::string error;
  };
  const std::vector<Case> cases = {
      {std::string("\x01\x00\x00\x00\x09", 5), "unknown frame type 9"},
      {std::string("\x01\x00\x00\x00\x00", 5), "unknown frame type 0"},
      {std::string("\x00\x00\x00\x00", 4), "empty frame: no type byte"},
      {std::string("\x05\x00\x00\x00\x01\x01\x02\x03\x04", 9),
       "task frame of 5 bytes is shorter than its 9-byte header"},
      {std::string("\x09\x00\x00\x00\x02\x01\x02\x03\x04\x05\x06\x07\x08", 13),
       "result frame of 9 bytes is shorter than its 10-byte header"},
      {std::string("\x0a\x00\x00\x00\x02\x01\x00\x00\x00\x00\x00\x00\x00\x07", 14),
       "result status 7 is neither 0 (ok) nor 1 (failed)"},
      {std::string("\x04\x00\x00\x00\x03xyz", 8),
       "shutdown frame with a 3-byte body; control frames have none"},
      {std::string("\x03\x00\x00\x00\x04xy", 7),
       "ready frame with a 2-byte body; it has none or a 4-byte features word"},
      {std::string("\x0c\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16),
       "tasks frame of 12 bytes is shorter than its 13-byte header"},
      {std::string("\x0d\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 17),
       "tasks frame of 0 tasks"},
      // Two tasks announced, one of one byte given.
      {std::string("\x12\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00"
                   "\x01\x00\x00\x00z",
                   22),
       "tasks frame of 2 tasks ends inside task 2"},
      // A length past the end of the frame.
      {std::string("\x12\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
                   "\x02\x00\x00\x00z",
                   22),
       "tasks frame of 1 tasks ends inside task 1"},
      // Bytes after the last task.
      {std::string("\x13\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
                   "\x01\x00\x00\x00zq",
                   23),
       "tasks frame of 1 tasks has 1 bytes after its last task"},
      {std::string("\x0d\x00\x00\x00\x07\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 17),
       "results frame of 0 results"},
      // One result announced, its length past the end.
      {std::string("\x13\x00\x00\x00\x07\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
                   "\x00\x02\x00\x00\x00z",
                   23),
       "results frame of 1 results ends inside result 1"},
      // A status that is neither ok nor failed.
      {std::string("\x13\x00\x00\x00\x07\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
                   "\x02\x01\x00\x00\x00z",
                   23),
       "results frame: result 1 has status 2, neither 0 (ok) nor 1 (failed)"},
      // Bytes after the last result.
      {std::string("\x14\x00\x00\x00\x07\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
                   "\x01\x01\x00\x00\x00zq",
                   24),
       "results frame of 1 results has 1 bytes after its last result"},
  };
  for (const Case& c : cases) {
    // A good frame first: it still comes out before the error.
    std::string stream;
    append_control(stream, FrameType::kReady);
    stream += c.bytes;
    std::string error;
    std::vector<Seen> got = decode_in_pieces(stream, {}, 1 << 16, &error);
    EXPECT_EQ(got.size(), 1u) << c.error;
    EXPECT_EQ(error, c.error);

    Result<Frame> f = parse_frame_body(std::string_view(c.bytes).substr(4));
    EXPECT_FALSE(f);
    EXPECT_EQ(message_of(f), c.error);
  }
}

TEST(FrameTest, ATasksFrameCarriesItsChunkInOrder) {
  // Payloads of every kind: empty, binary with NULs and newlines, long.
  const std::vector<std::string> payloads = {"", "a", std::string("\0\n\xff", 3),
                                             std::string(70000, 'x'), "last"};
  std::string items;
  for (const std::string& p : payloads) append_chunk_item(items, p);
  EXPECT_EQ(items.size(), 5 * kChunkItemHeaderBytes + 1 + 3 + 70000 + 4);
  std::string stream;
  append_tasks(stream, 40, static_cast<uint32_t>(payloads.size()), items);
  append_ready(stream, kReadyTakesChunks);
  append_control(stream, FrameType::kReady);

  FrameDecoder d(1 << 20);
  d.feed(stream);
  Frame f;
  ASSERT_EQ(d.next(f), DecodeStatus::kItem) << d.error();
  EXPECT_EQ(f.type, FrameType::kTasks);
  EXPECT_EQ(f.id, 40u);
  ASSERT_EQ(f.count, payloads.size());
  std::string_view rest = f.payload;
  for (const std::string& p : payloads) EXPECT_EQ(take_chunk_item(rest), p);
  EXPECT_TRUE(rest.empty());
  // The ring's body writer writes the same bytes after the length prefix.
  std::string body(kTasksHeaderBytes + items.size(), '\0');
  EXPECT_EQ(write_tasks_body(body.data(), 40, 5, items), body.size());
  EXPECT_EQ(body, stream.substr(kLengthBytes, body.size()));

  ASSERT_EQ(d.next(f), DecodeStatus::kItem) << d.error();
  EXPECT_EQ(f.type, FrameType::kReady);
  EXPECT_EQ(f.features, kReadyTakesChunks);
  ASSERT_EQ(d.next(f), DecodeStatus::kItem) << d.error();
  EXPECT_EQ(f.type, FrameType::kReady);
  EXPECT_EQ(f.features, 0u);
  EXPECT_EQ(d.next(f), DecodeStatus::kNeedMore);
}

TEST(FrameTest, AResultsFrameCarriesItsResultsInOrder) {
  const std::vector<std::pair<ResultStatus, std::string>> results = {
      {ResultStatus::kOk, ""},
      {ResultStatus::kFailed, "why"},
      {ResultStatus::kOk, std::string("\0\n\xff", 3)},
      {ResultStatus::kOk, std::string(70000, 'r')}};
  std::string items;
  for (const auto& [status, payload] : results) append_result_item(items, status, payload);
  EXPECT_EQ(items.size(), 4 * kResultItemHeaderBytes + 3 + 3 + 70000);
  std::string body(kResultsHeaderBytes + items.size(), '\0');
  EXPECT_EQ(write_results_body(body.data(), 90, 4, items), body.size());
  Result<Frame> f = parse_frame_body(body);
  ASSERT_TRUE(f) << message_of(f);
  EXPECT_EQ(f->type, FrameType::kResults);
  EXPECT_EQ(f->id, 90u);
  ASSERT_EQ(f->count, results.size());
  std::string_view rest = f->payload;
  for (const auto& [status, payload] : results) {
    const ResultItem item = take_result_item(rest);
    EXPECT_EQ(item.status, status);
    EXPECT_EQ(item.payload, payload);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(FrameTest, AChunkFitsWhereItsLongestTaskDoes) {
  // A TASKS frame whose tasks take max_chunk_bytes() is as long as a TASK
  // frame of the largest payload.
  for (size_t max_task : {size_t{4}, size_t{5}, size_t{64}, size_t{65536}}) {
    EXPECT_EQ(kTasksHeaderBytes + max_chunk_bytes(max_task),
              std::max(kTaskHeaderBytes + max_task, kTasksHeaderBytes));
  }
  EXPECT_EQ(max_chunk_bytes(3), 0u);
}

TEST(FrameTest, PartialFrameIsNeedMore) {
  std::string stream;
  append_task(stream, 5, "abcdef");
  FrameDecoder d(1 << 16);
  Frame f;
  EXPECT_EQ(d.next(f), DecodeStatus::kNeedMore);
  d.feed(std::string_view(stream).substr(0, stream.size() - 1));
  EXPECT_EQ(d.next(f), DecodeStatus::kNeedMore);
  EXPECT_EQ(d.buffered(), stream.size() - 1);
  d.feed(std::string_view(stream).substr(stream.size() - 1));
  ASSERT_EQ(d.next(f), DecodeStatus::kItem);
  EXPECT_EQ(f.payload, "abcdef");
  EXPECT_EQ(d.next(f), DecodeStatus::kNeedMore);
}

TEST(FrameTest, NoAllocationOnceWarm) {
  // The buffer's storage settles: after a warm-up, more of the same traffic
  // does not move it (the first frame after a full drain lands at the same
  // address).
  std::string chunk;
  for (uint64_t i = 0; i < 50; ++i) append_task(chunk, i, std::string(40, 'p'));
  FrameDecoder d(1 << 16);
  auto rounds_then_first_payload = [&](int rounds) {
    Frame f;
    for (int r = 0; r < rounds; ++r) {
      d.feed(std::string_view(chunk).substr(0, 1000));
      while (d.next(f) == DecodeStatus::kItem) {
      }
      d.feed(std::string_view(chunk).substr(1000));
      while (d.next(f) == DecodeStatus::kItem) {
      }
    }
    d.feed(chunk);
    EXPECT_EQ(d.next(f), DecodeStatus::kItem);
    const char* first = f.payload.data();
    while (d.next(f) == DecodeStatus::kItem) {
    }
    return first;
  };
  const char* warm = rounds_then_first_payload(3);
  EXPECT_EQ(rounds_then_first_payload(100), warm);
}

// ---- lines ----

std::vector<std::string> lines_in_pieces(const std::string& stream, size_t piece, size_t max,
                                         std::string* error = nullptr) {
  LineDecoder d(max);
  std::vector<std::string> out;
  for (size_t at = 0; at < stream.size(); at += piece) {
    d.feed(std::string_view(stream).substr(at, piece));
    std::string_view line;
    DecodeStatus s;
    while ((s = d.next(line)) == DecodeStatus::kItem) out.emplace_back(line);
    if (s == DecodeStatus::kError) {
      if (error != nullptr) *error = d.error();
      break;
    }
  }
  return out;
}

TEST(LineTest, SplitAndMergedReads) {
  const std::string stream = "first\n\nthird line\nx\n" + std::string(200, 'L') + "\nlast\n";
  const std::vector<std::string> expected = {"first", "", "third line", "x", std::string(200, 'L'),
                                             "last"};
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    EXPECT_EQ(lines_in_pieces(stream, piece, 1000), expected) << "pieces of " << piece;
  }
}

TEST(LineTest, UnterminatedTailStaysBuffered) {
  LineDecoder d(100);
  d.feed("one\ntw");
  std::string_view line;
  ASSERT_EQ(d.next(line), DecodeStatus::kItem);
  EXPECT_EQ(line, "one");
  EXPECT_EQ(d.next(line), DecodeStatus::kNeedMore);
  EXPECT_EQ(d.buffered(), 2u);
  d.feed("o\n");
  ASSERT_EQ(d.next(line), DecodeStatus::kItem);
  EXPECT_EQ(line, "two");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(LineTest, LineAtTheLimitPassesLongerFails) {
  const size_t max = 16;
  EXPECT_EQ(lines_in_pieces(std::string(max, 'a') + "\n", 5, max),
            std::vector<std::string>{std::string(max, 'a')});

  std::string error;
  // Complete in one read: the length is known.
  EXPECT_TRUE(lines_in_pieces(std::string(max + 1, 'a') + "\n", 100, max, &error).empty());
  EXPECT_EQ(error, "line of 17 bytes exceeds the limit of 16");
  // Arriving piecemeal: refused as soon as the limit is passed, newline or not.
  error.clear();
  LineDecoder d(max);
  std::string_view line;
  d.feed(std::string(max, 'b'));
  EXPECT_EQ(d.next(line), DecodeStatus::kNeedMore);
  d.feed("b");
  EXPECT_EQ(d.next(line), DecodeStatus::kError);
  EXPECT_EQ(d.error(), "line longer than the limit of 16 bytes (17 bytes without a newline)");
  d.feed("\n");
  EXPECT_EQ(d.next(line), DecodeStatus::kError);
}

TEST(LineTest, ManyLinesBufferStaysSmall) {
  std::string stream;
  for (int i = 0; i < 10000; ++i) stream += "line " + std::to_string(i) + "\n";
  LineDecoder d(64);
  int n = 0;
  size_t most = 0;
  for (size_t at = 0; at < stream.size(); at += 997) {
    d.feed(std::string_view(stream).substr(at, 997));
    most = std::max(most, d.buffered());
    std::string_view line;
    while (d.next(line) == DecodeStatus::kItem) {
      ASSERT_EQ(line, "line " + std::to_string(n));
      ++n;
    }
  }
  EXPECT_EQ(n, 10000);
  EXPECT_LE(most, 997u + 64);
}

}  // namespace
}  // namespace corral::ipc

// Tests of daemon/log_ring.h: corrald's recent log lines, bounded by count
// and bytes, numbered for followers, fed by spdlog.
#include "daemon/log_ring.h"

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace corral::daemon {
namespace {

TEST(LogRingTest, KeepsTheLastLinesWithinItsCount) {
  LogRing ring(3, 1 << 20);
  for (int i = 0; i < 5; ++i) ring.add("line " + std::to_string(i));
  EXPECT_EQ(ring.end(), 5u);
  EXPECT_EQ(ring.start_of_last(2), 3u);
  EXPECT_EQ(ring.start_of_last(10), 2u);  // only three are kept
  LogChunk last_two = ring.since(ring.start_of_last(2), 1 << 20);
  EXPECT_EQ(last_two.text, "line 3\nline 4\n");
  EXPECT_EQ(last_two.next, 5u);
  EXPECT_EQ(last_two.missed, 0u);
  EXPECT_EQ(ring.since(ring.start_of_last(0), 1 << 20).text, "");
}

TEST(LogRingTest, KeepsTheLastLinesWithinItsBytes) {
  LogRing ring(1000, 20);
  ring.add("0123456789");  // 11 bytes with its '\n'
  ring.add("abcdefghij");
  EXPECT_EQ(ring.bytes(), 11u);
  EXPECT_EQ(ring.since(0, 1 << 20).text, "abcdefghij\n");
  // One line longer than a line may be is cut, and says so.
  LogRing big;
  big.add(std::string(LogRing::kMaxLineBytes * 2, 'x'));
  EXPECT_EQ(big.bytes(), LogRing::kMaxLineBytes);
  EXPECT_TRUE(big.since(0, 1 << 20).text.ends_with(" [line cut: too long]\n"));
}

TEST(LogRingTest, AFollowerGetsWhatCameAfterItAndLearnsWhatItMissed) {
  LogRing ring(3, 1 << 20);
  ring.add("a");
  uint64_t next = ring.since(0, 1 << 20).next;
  EXPECT_EQ(next, 1u);
  EXPECT_EQ(ring.since(next, 1 << 20).text, "");
  ring.add("b");
  LogChunk one = ring.since(next, 1 << 20);
  EXPECT_EQ(one.text, "b\n");
  next = one.next;
  for (const char* line : {"c", "d", "e", "f"}) ring.add(line);
  LogChunk behind = ring.since(next, 1 << 20);
  EXPECT_EQ(behind.missed, 1u);  // c was dropped before it was read
  EXPECT_EQ(behind.text, "d\ne\nf\n");
  // A chunk stops at about MAX_BYTES, with at least one line.
  LogChunk small = ring.since(ring.start_of_last(3), 3);
  EXPECT_EQ(small.text, "d\n");
  EXPECT_EQ(small.next, 4u);
}

TEST(LogRingTest, TakesSpdlogsLinesWithItsOwnPattern) {
  auto ring = std::make_shared<LogRing>();
  ring->set_pattern("%l %v");
  spdlog::logger logger("test", ring);
  logger.info("corrald {} running", "0.1.0");
  logger.warn("careful");
  logger.debug("not at info");
  EXPECT_EQ(ring->since(0, 1 << 20).text, "info corrald 0.1.0 running\nwarning careful\n");
}

}  // namespace
}  // namespace corral::daemon

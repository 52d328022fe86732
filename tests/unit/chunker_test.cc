// The Chunker (daemon/chunker.h): which tasks it gathers into one chunk,
// and that it queues tasks alone while the job's workers take no chunks.
#include "daemon/chunker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/dispatcher.h"
#include "tests/unit/chunk_port.h"

namespace corral::daemon {
namespace {

using testing::chunk_queue;
using testing::ChunkPort;

const TimePoint kStart{};

// What a Chunker made of the tasks it was given: the sizes of the entries
// a worker that takes chunks gets, in order.
std::vector<uint32_t> frames_of(Dispatcher& d) {
  ChunkPort port;
  d.attach(0, &port);
  d.pump(kStart);
  std::vector<uint32_t> sizes;
  for (const auto& frame : port.sent) sizes.push_back(frame.count);
  d.detach(0);
  return sizes;
}

TEST(ChunkerTest, GathersConsecutiveTasksOfOneSubmitWithinItsLimits) {
  config::QueueSpec q = chunk_queue(100000);
  q.capacity = 100000;
  Dispatcher d(q, [](FinishedTasks) {});
  Chunker chunker(d, 64);  // chunks of at most 60 bytes: 10 tasks of 2 bytes
  uint64_t seq = 0;
  auto add = [&](std::string_view payload, uint64_t submit = 1) {
    chunker.add(payload, TaskOrigin{0, submit, seq++, std::nullopt});
  };
  for (int i = 0; i < 12; ++i) add("ab");  // 10 + 2: the bytes limit
  ++seq;                                   // a refused line: a gap in the seqs
  add("ab");
  add("ab", 2);               // another submit
  add(std::string(70, 'x'));  // larger than any chunk: alone
  add("ab");
  EXPECT_EQ(chunker.gathered(), 1u);
  chunker.flush();
  EXPECT_EQ(chunker.gathered(), 0u);
  EXPECT_EQ(d.queued(), 16u);
  EXPECT_EQ(frames_of(d), (std::vector<uint32_t>{10, 2, 1, 1, 1, 1}));

  // At most kMaxTasks a chunk, whatever the bytes allow.
  Chunker big(d, 1 << 20);
  for (uint64_t i = 0; i < Chunker::kMaxTasks + 5; ++i) {
    big.add("t", TaskOrigin{0, 3, i, std::nullopt});
  }
  big.flush();
  EXPECT_EQ(frames_of(d), (std::vector<uint32_t>{Chunker::kMaxTasks, 5}));
  EXPECT_TRUE(d.balanced());
}

TEST(ChunkerTest, QueuesTasksAloneWhileTheWorkersTakeNoChunks) {
  Dispatcher d(chunk_queue(), [](FinishedTasks) {});
  EXPECT_TRUE(d.chunks_welcome());  // nobody attached yet
  ChunkPort plain(false);
  d.attach(0, &plain);
  EXPECT_FALSE(d.chunks_welcome());
  Chunker chunker(d, 65536);
  for (uint64_t i = 0; i < 5; ++i) chunker.add("t", TaskOrigin{0, 1, i, std::nullopt});
  EXPECT_EQ(chunker.gathered(), 0u);
  EXPECT_EQ(d.queued(), 5u);
  ChunkPort chunks;
  d.attach(1, &chunks);
  EXPECT_TRUE(d.chunks_welcome());
  d.worker_gone(1, "gone");
  EXPECT_FALSE(d.chunks_welcome());
  d.detach(0);
  EXPECT_TRUE(d.chunks_welcome());
}

}  // namespace
}  // namespace corral::daemon

// A dead worker's finished and unanswered tasks (the count in its slot:
// the one after them was running), and RESULTS frames in the dispatcher:
// each task of one still ends on its own. The accounting identity is
// checked after each step.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "daemon/dispatcher.h"
#include "tests/unit/chunk_port.h"
#include "tests/unit/dispatcher_chunk_fixture.h"

namespace corral::daemon {
namespace {

using testing::chunk_queue;
using testing::ChunkPort;
using testing::DispatcherChunkTest;

// A worker that gathers results for RESULTS frames dies with two tasks
// finished and not answered: the third was running, and it alone is
// charged; the two run again uncharged, as does the rest.
TEST_F(DispatcherChunkTest, TasksFinishedAndNotAnsweredRunAgainUnchargedTheNextIsCharged) {
  make(chunk_queue());
  const uint64_t first = chunk(6);
  ChunkPort a;
  ChunkPort b;
  d->attach(0, &a);
  d->pump(kNow);
  ASSERT_TRUE(d->result(0, first, true, "r0", kNow));
  EXPECT_EQ(d->worker_gone(0, "killed by SIGSEGV", TaskFault::kCrashed, kNow, 2), ExitBlame::kTask);
  EXPECT_EQ(d->queued(), 5u);
  EXPECT_TRUE(d->balanced());

  d->attach(1, &b);
  d->pump(kNow);
  // The finished two first (the oldest work), then the suspect alone.
  ASSERT_EQ(b.sent.size(), 1u);
  EXPECT_EQ(b.sent[0].first, first + 1);
  EXPECT_EQ(b.sent[0].payloads, (std::vector<std::string>{"p1", "p2"}));
  ASSERT_TRUE(d->result(1, first + 1, true, "r1", kNow));
  ASSERT_TRUE(d->result(1, first + 2, true, "r2", kNow));
  EXPECT_EQ(ended(first + 1)->attempts, 1u);
  EXPECT_EQ(ended(first + 2)->attempts, 1u);
  d->pump(kNow);
  ASSERT_EQ(b.sent.size(), 2u);
  EXPECT_EQ(b.tasks().back(), (std::pair<uint64_t, std::string>{first + 3, "p3"}));
  ASSERT_TRUE(d->result(1, first + 3, true, "r3", kNow));
  EXPECT_EQ(ended(first + 3)->attempts, 2u);
  d->pump(kNow);
  ASSERT_EQ(b.sent.size(), 3u);
  EXPECT_EQ(b.sent[2].payloads, (std::vector<std::string>{"p4", "p5"}));
  for (uint64_t id = first + 4; id < first + 6; ++id) {
    ASSERT_TRUE(d->result(1, id, true, "r", kNow));
    EXPECT_EQ(ended(id)->attempts, 1u);
  }
  EXPECT_EQ(d->counts().ok, 6u);
  EXPECT_TRUE(d->balanced());
}

// The finished tasks a dead worker counts run across what it held: with
// two chunks of three held and four finished, the second chunk's second
// task was running.
TEST_F(DispatcherChunkTest, TheRunningTaskIsFoundAcrossTheEntriesAWorkerHeld) {
  make(chunk_queue());
  const uint64_t first = chunk(3);
  const uint64_t second = chunk(3, 3, "q");
  ChunkPort a;
  d->attach(0, &a);
  d->pump(kNow);
  ASSERT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(d->worker_gone(0, "killed by SIGSEGV", TaskFault::kCrashed, kNow, 4), ExitBlame::kTask);
  EXPECT_TRUE(d->balanced());
  ChunkPort b;
  d->attach(1, &b);
  d->pump(kNow);
  // Everything before the suspect, in order, then the suspect alone.
  ASSERT_FALSE(b.sent.empty());
  std::vector<std::pair<uint64_t, std::string>> expected = {
      {first, "p0"}, {first + 1, "p1"}, {first + 2, "p2"}, {second, "q0"}};
  EXPECT_EQ(b.tasks(), expected);
  for (const auto& [id, payload] : expected) ASSERT_TRUE(d->result(1, id, true, "r", kNow));
  d->pump(kNow);
  expected.emplace_back(second + 1, "q1");
  EXPECT_EQ(b.tasks(), expected);
  ASSERT_TRUE(d->result(1, second + 1, true, "r", kNow));
  EXPECT_EQ(ended(second + 1)->attempts, 2u);
  EXPECT_EQ(ended(second)->attempts, 1u);
  EXPECT_TRUE(d->balanced());
}

// A worker that says it finished more than it held was running nothing:
// nothing is charged, and its death is its own.
TEST_F(DispatcherChunkTest, AFinishedCountBeyondWhatTheWorkerHeldChargesNoTask) {
  ChunkPort a;
  const uint64_t first = dispatched_chunk(3, a);
  EXPECT_EQ(d->worker_gone(0, "exited 1", TaskFault::kCrashed, kNow, ~uint64_t{0}),
            ExitBlame::kWorker);
  EXPECT_EQ(d->queued(), 3u);
  EXPECT_TRUE(d->balanced());
  ChunkPort b;
  d->attach(1, &b);
  d->pump(kNow);
  ASSERT_EQ(b.sent.size(), 1u);  // one chunk again: no suspect among them
  for (uint64_t id = first; id < first + 3; ++id) {
    ASSERT_TRUE(d->result(1, id, true, "r", kNow));
    EXPECT_EQ(ended(id)->attempts, 1u);
  }
  EXPECT_TRUE(d->balanced());
}

// A RESULTS frame answers the oldest tasks a worker holds, across the
// chunks it holds: each task ends on its own, with its id, seq and result,
// and whoever waits is told of each chunk's run at once; what is left of a
// chunk stays in flight.
TEST_F(DispatcherChunkTest, AResultsFrameEndsEachTaskOnItsOwnAcrossChunks) {
  make(chunk_queue());
  const uint64_t first = chunk(3, 10);
  chunk(3, 13, "q");
  ChunkPort a;
  d->attach(0, &a);
  d->pump(kNow);
  ASSERT_EQ(a.sent.size(), 2u);
  const std::string items = result_items({"ok:r0", "ok:r1", "ok:r2", "ok:r3", "ok:r4"});
  EXPECT_EQ(d->results(0, first, 5, items, kNow), 5u);
  ASSERT_EQ(finished.size(), 5u);
  EXPECT_EQ(told, (std::vector<size_t>{3, 2}));
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(finished[i].id, first + i);
    EXPECT_EQ(finished[i].seq, 10 + i);
    EXPECT_EQ(finished[i].submit, 5u);
    EXPECT_EQ(finished[i].result, "r" + std::to_string(i));
    EXPECT_EQ(finished[i].outcome, TaskOutcome::kOk);
    EXPECT_EQ(finished[i].attempts, 1u);
  }
  EXPECT_EQ(d->in_flight(), 1u);
  EXPECT_EQ(d->held_by(0), 1u);
  EXPECT_EQ(d->oldest(0), first + 5);
  EXPECT_TRUE(d->balanced());
  EXPECT_EQ(d->results(0, first + 5, 1, result_items({"ok:r5"}), kNow), 1u);
  EXPECT_EQ(ended(first + 5)->seq, 15u);
  EXPECT_EQ(d->counts().ok, 6u);
  EXPECT_EQ(d->held_by(0), 0u);
  EXPECT_TRUE(d->balanced());
}

// A failed result among ok ones goes the way result() takes it (here: a
// retry, alone); the ones after it end ok.
TEST_F(DispatcherChunkTest, AFailedResultInAResultsFrameIsRetriedAloneTheRestEndOk) {
  make(retrying_failures());
  const uint64_t first = chunk(4);
  ChunkPort a;
  d->attach(0, &a);
  d->pump(kNow);
  const std::string items = result_items({"ok:r0", "failed:no", "ok:r2", "ok:r3"});
  EXPECT_EQ(d->results(0, first, 4, items, kNow), 4u);
  EXPECT_EQ(d->counts().ok, 3u);
  EXPECT_EQ(ended(first + 1), nullptr);
  EXPECT_EQ(d->delayed(), 1u);
  EXPECT_EQ(ended(first + 3)->result, "r3");
  // The run before the failure, then the run after it.
  EXPECT_EQ(told, (std::vector<size_t>{1, 2}));
  EXPECT_TRUE(d->balanced());
}

// A task cancelled while its chunk is in flight ends cancelled, its result
// in the frame dropped; its neighbours end ok.
TEST_F(DispatcherChunkTest, ACancelledTaskInAResultsFrameEndsCancelled) {
  ChunkPort a;
  const uint64_t first = dispatched_chunk(3, a);
  d->cancel({{first + 1}, {}, false}, true, "no");
  EXPECT_EQ(d->results(0, first, 3, result_items({"ok:r0", "ok:r1", "ok:r2"}), kNow), 3u);
  EXPECT_EQ(ended(first)->outcome, TaskOutcome::kOk);
  EXPECT_EQ(ended(first + 1)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(first + 2)->outcome, TaskOutcome::kOk);
  EXPECT_EQ(d->counts().cancelled, 1u);
  EXPECT_TRUE(d->balanced());
}

// Results for tasks the worker does not hold: what comes before them is
// taken, and the count says where it stopped.
TEST_F(DispatcherChunkTest, AResultsFrameStopsAtATaskTheWorkerDoesNotHold) {
  ChunkPort a;
  const uint64_t first = dispatched_chunk(2, a);
  EXPECT_EQ(d->results(0, first + 1, 1, result_items({"ok:x"}), kNow), 0u);
  EXPECT_EQ(d->results(0, first, 3, result_items({"ok:r0", "ok:r1", "ok:r2"}), kNow), 2u);
  EXPECT_EQ(d->counts().ok, 2u);
  EXPECT_EQ(d->results(7, first, 1, result_items({"ok:r0"}), kNow), 0u);
  EXPECT_TRUE(d->balanced());
}

}  // namespace
}  // namespace corral::daemon

// Chunks in the dispatcher: tasks of consecutive ids kept as one entry and
// handed to a worker as one frame, each task still ending on its own (its
// id, its seq, its result, its retry, its cancel, its dead letter), and
// every count in tasks. The accounting identity is checked after each step.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "daemon/dispatcher.h"
#include "ipc/frame.h"
#include "tests/unit/chunk_port.h"
#include "tests/unit/dispatcher_chunk_fixture.h"

namespace corral::daemon {
namespace {

using std::chrono::seconds;
using testing::chunk_queue;
using testing::ChunkPort;
using testing::DispatcherChunkTest;

TEST_F(DispatcherChunkTest, AChunkGoesOutAsOneFrameAndEachTaskEndsOnItsOwn) {
  make(chunk_queue());
  const uint64_t first = chunk(5, 100);
  EXPECT_EQ(d->counts().submitted, 5u);
  EXPECT_EQ(d->queued(), 5u);
  EXPECT_TRUE(d->balanced());
  for (uint64_t id = first; id < first + 5; ++id) EXPECT_TRUE(d->pending(id)) << id;
  EXPECT_FALSE(d->pending(first + 5));
  EXPECT_EQ(d->pending_of_submit(5), 5u);

  ChunkPort port;
  d->attach(0, &port);
  d->pump(kNow);
  ASSERT_EQ(port.sent.size(), 1u);
  EXPECT_EQ(port.sent[0].first, first);
  EXPECT_EQ(port.sent[0].payloads, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
  EXPECT_EQ(d->in_flight(), 5u);
  EXPECT_EQ(d->held_by(0), 5u);
  EXPECT_EQ(d->oldest(0), first);
  EXPECT_TRUE(d->balanced());

  // Answered in order; out of order is a protocol error that changes nothing.
  EXPECT_FALSE(d->result(0, first + 1, true, "r1", kNow));
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(d->result(0, first + i, i != 2, "r" + std::to_string(i), kNow)) << i;
    EXPECT_EQ(d->held_by(0), 4 - i);
    EXPECT_TRUE(d->balanced());
  }
  EXPECT_FALSE(d->result(0, first + 5, true, "r", kNow));
  ASSERT_EQ(finished.size(), 5u);
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(finished[i].id, first + i);
    EXPECT_EQ(finished[i].seq, 100 + i);
    EXPECT_EQ(finished[i].submitter, 7u);
    EXPECT_EQ(finished[i].submit, 5u);
    EXPECT_EQ(finished[i].result, "r" + std::to_string(i));
    EXPECT_EQ(finished[i].attempts, 1u);
    EXPECT_EQ(finished[i].outcome, i == 2 ? TaskOutcome::kFailed : TaskOutcome::kOk);
  }
  EXPECT_EQ(d->counts().ok, 4u);
  EXPECT_EQ(d->counts().failed, 1u);
  // The failure's dead letter holds its own task's payload.
  ASSERT_EQ(d->dead_letters().size(), 1u);
  EXPECT_EQ(d->dead_letters()[0].id, first + 2);
  EXPECT_EQ(d->dead_letters()[0].payload, "p2");
  EXPECT_EQ(d->in_flight(), 0u);
  EXPECT_FALSE(d->pending(first));
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, AWorkerThatTakesNoChunksGetsTheTasksOneByOne) {
  make(chunk_queue(3));
  const uint64_t first = chunk(5);
  ChunkPort port(false);
  d->attach(0, &port);
  d->pump(kNow);
  // One frame per task, within prefetch.
  ASSERT_EQ(port.sent.size(), 3u);
  for (const auto& frame : port.sent) EXPECT_EQ(frame.count, 1u);
  EXPECT_EQ(port.tasks(), (std::vector<std::pair<uint64_t, std::string>>{
                              {first, "p0"}, {first + 1, "p1"}, {first + 2, "p2"}}));
  EXPECT_EQ(d->queued(), 2u);
  EXPECT_TRUE(d->balanced());
  // Answered in any order, as single tasks are.
  EXPECT_TRUE(d->result(0, first + 1, true, "b", kNow));
  EXPECT_TRUE(d->result(0, first, true, "a", kNow));
  d->pump(kNow);
  EXPECT_EQ(port.tasks().size(), 5u);
  for (uint64_t id : {first + 2, first + 3, first + 4}) {
    EXPECT_TRUE(d->result(0, id, true, "c", kNow));
  }
  ASSERT_EQ(finished.size(), 5u);
  EXPECT_EQ(ended(first + 4)->seq, 4u);
  EXPECT_EQ(d->counts().ok, 5u);
  EXPECT_TRUE(d->balanced());
}

// A worker dies in the middle of a chunk: what it answered stays answered;
// the task it was running is the suspect, alone, charged its attempt; the
// rest had not started and go out again as they were, uncharged.
TEST_F(DispatcherChunkTest, AWorkerThatDiesInAChunkChargesOnlyTheTaskItWasRunning) {
  make(chunk_queue());
  const uint64_t first = chunk(6);
  ChunkPort a;
  ChunkPort b;
  d->attach(0, &a);
  d->pump(kNow);
  ASSERT_TRUE(d->result(0, first, true, "r0", kNow));
  ASSERT_TRUE(d->result(0, first + 1, true, "r1", kNow));
  EXPECT_EQ(d->worker_gone(0, "killed by SIGSEGV"), ExitBlame::kTask);
  EXPECT_EQ(d->queued(), 4u);
  EXPECT_EQ(d->counts().redelivered, 4u);
  EXPECT_TRUE(d->balanced());

  d->attach(1, &b);
  d->pump(kNow);
  // The suspect alone, nothing beside it.
  ASSERT_EQ(b.sent.size(), 1u);
  EXPECT_EQ(b.tasks(), (std::vector<std::pair<uint64_t, std::string>>{{first + 2, "p2"}}));
  ASSERT_TRUE(d->result(1, first + 2, true, "r2", kNow));
  EXPECT_EQ(ended(first + 2)->attempts, 2u);
  d->pump(kNow);
  // Then the rest, one chunk, each task on its first attempt.
  ASSERT_EQ(b.sent.size(), 2u);
  EXPECT_EQ(b.sent[1].first, first + 3);
  EXPECT_EQ(b.sent[1].payloads, (std::vector<std::string>{"p3", "p4", "p5"}));
  for (uint64_t id = first + 3; id < first + 6; ++id) {
    ASSERT_TRUE(d->result(1, id, true, "r", kNow));
    EXPECT_EQ(ended(id)->attempts, 1u);
    EXPECT_EQ(ended(id)->seq, id - first);
  }
  EXPECT_EQ(finished.size(), 6u);
  EXPECT_EQ(d->counts().ok, 6u);
  EXPECT_TRUE(d->balanced());
}

// A poison task in a chunk dies alone after max_attempts; its neighbours
// end ok on their first attempt.
TEST_F(DispatcherChunkTest, APoisonTaskInAChunkTakesNoNeighbourDown) {
  make(chunk_queue(64, 2));
  const uint64_t first = chunk(4);
  ChunkPort port;
  for (uint32_t round = 0;; ++round) {
    ASSERT_LT(round, 10u);
    d->attach(round, &port);
    port.sent.clear();
    d->pump(kNow);
    if (port.sent.empty()) break;
    bool died = false;
    for (const auto& [id, payload] : port.tasks()) {
      if (payload == "p1") {
        d->worker_gone(round, "killed by SIGSEGV");
        died = true;
        break;
      }
      ASSERT_TRUE(d->result(round, id, true, "ok", kNow));
    }
    if (!died) d->detach(round);
  }
  ASSERT_EQ(finished.size(), 4u);
  EXPECT_EQ(ended(first + 1)->outcome, TaskOutcome::kDead);
  EXPECT_EQ(ended(first + 1)->attempts, 2u);
  for (uint64_t id : {first, first + 2, first + 3}) {
    EXPECT_EQ(ended(id)->outcome, TaskOutcome::kOk) << id;
    EXPECT_EQ(ended(id)->attempts, 1u) << id;
  }
  ASSERT_EQ(d->dead_letters().size(), 1u);
  EXPECT_EQ(d->dead_letters()[0].payload, "p1");
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, AFailedTaskWaitsForItsRetryAloneAndTheChunkGoesOn) {
  make(retrying_failures());
  const uint64_t first = chunk(3);
  ChunkPort port;
  d->attach(0, &port);
  d->pump(kNow);
  ASSERT_TRUE(d->result(0, first, false, "boom", kNow));
  EXPECT_EQ(d->delayed(), 1u);
  EXPECT_EQ(d->in_flight(), 2u);
  EXPECT_TRUE(d->balanced());
  ASSERT_TRUE(d->result(0, first + 1, true, "r1", kNow));
  // The last task of the chunk fails too: it waits as well.
  ASSERT_TRUE(d->result(0, first + 2, false, "boom", kNow));
  EXPECT_EQ(d->delayed(), 2u);
  EXPECT_EQ(d->held_by(0), 0u);
  EXPECT_TRUE(d->balanced());

  d->pump(kNow + seconds(2));
  ASSERT_EQ(port.sent.size(), 3u);
  EXPECT_EQ(port.sent[1].count, 1u);
  EXPECT_EQ(port.sent[1].first, first);
  EXPECT_EQ(port.sent[1].payloads[0], "p0");
  EXPECT_EQ(port.sent[2].first, first + 2);
  EXPECT_EQ(port.sent[2].payloads[0], "p2");
  ASSERT_TRUE(d->result(0, first, true, "r0", kNow + seconds(2)));
  ASSERT_TRUE(d->result(0, first + 2, true, "r2", kNow + seconds(2)));
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_EQ(ended(first)->attempts, 2u);
  EXPECT_EQ(ended(first)->seq, 0u);
  EXPECT_EQ(ended(first + 2)->seq, 2u);
  EXPECT_EQ(d->counts().ok, 3u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, CancellingAQueuedTaskCutsItOutOfItsChunk) {
  make(chunk_queue());
  const uint64_t first = chunk(5);
  CancelReport report = d->cancel({{first + 2, first + 4, 999}, {}, false}, false, "no");
  EXPECT_EQ(report.cancelled, 2u);
  EXPECT_EQ(report.unknown, (std::vector<uint64_t>{999}));
  EXPECT_EQ(d->queued(), 3u);
  EXPECT_FALSE(d->pending(first + 2));
  EXPECT_TRUE(d->pending(first + 3));
  EXPECT_TRUE(d->balanced());
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(ended(first + 2)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(first + 2)->seq, 2u);

  ChunkPort port;
  d->attach(0, &port);
  d->pump(kNow);
  // What is left goes out in order.
  EXPECT_EQ(port.tasks(), (std::vector<std::pair<uint64_t, std::string>>{
                              {first, "p0"}, {first + 1, "p1"}, {first + 3, "p3"}}));
  for (const auto& [id, payload] : port.tasks()) ASSERT_TRUE(d->result(0, id, true, "r", kNow));
  EXPECT_EQ(d->counts().ok, 3u);
  EXPECT_EQ(d->counts().cancelled, 2u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, ATaskCancelledInAChunkInFlightEndsCancelledWhateverComes) {
  ChunkPort a;
  const uint64_t first = dispatched_chunk(4, a);
  // Without `running` it is left alone and named.
  CancelReport report = d->cancel({{first + 1}, {}, false}, false, "no");
  EXPECT_EQ(report.running, (std::vector<uint64_t>{first + 1}));
  report = d->cancel({{first + 1, first + 2}, {}, false}, true, "no");
  EXPECT_EQ(report.stopping, 2u);
  EXPECT_EQ(report.stop_workers, (std::vector<uint32_t>{0}));
  // Its result, if it comes, is dropped.
  ASSERT_TRUE(d->result(0, first, true, "r0", kNow));
  ASSERT_TRUE(d->result(0, first + 1, true, "r1", kNow));
  EXPECT_EQ(ended(first + 1)->outcome, TaskOutcome::kCancelled);
  EXPECT_TRUE(d->balanced());
  // The worker is stopped before the next one: it ends cancelled, the last
  // goes out again.
  d->worker_gone(0, "stopped");
  EXPECT_EQ(ended(first + 2)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(d->queued(), 1u);
  EXPECT_TRUE(d->balanced());
  ChunkPort b;
  d->attach(1, &b);
  d->pump(kNow);
  EXPECT_EQ(b.tasks(), (std::vector<std::pair<uint64_t, std::string>>{{first + 3, "p3"}}));
  ASSERT_TRUE(d->result(1, first + 3, true, "r3", kNow));
  EXPECT_EQ(d->counts().ok, 2u);
  EXPECT_EQ(d->counts().cancelled, 2u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, CancellingASubmitEndsEveryTaskOfItsChunks) {
  make(chunk_queue());
  chunk(3);
  chunk(4, 3);
  CancelReport report = d->cancel({{}, 5, false}, false, "no");
  EXPECT_EQ(report.cancelled, 7u);
  EXPECT_EQ(finished.size(), 7u);
  EXPECT_EQ(d->queued(), 0u);
  EXPECT_TRUE(d->balanced());
}

// limits.max_tasks counts tasks: a worker with a budget of 3 takes 3 tasks
// of a chunk of 5, and the rest waits for the next worker.
TEST_F(DispatcherChunkTest, AWorkersBudgetCutsAChunk) {
  make(chunk_queue());
  const uint64_t first = chunk(5);
  ChunkPort a;
  d->attach(0, &a, 3);
  d->pump(kNow);
  ASSERT_EQ(a.sent.size(), 1u);
  EXPECT_EQ(a.sent[0].first, first);
  EXPECT_EQ(a.sent[0].count, 3u);
  EXPECT_TRUE(d->budget_spent(0));
  EXPECT_EQ(d->queued(), 2u);
  ChunkPort b;
  d->attach(1, &b);
  d->pump(kNow);
  ASSERT_EQ(b.sent.size(), 1u);
  EXPECT_EQ(b.sent[0].first, first + 3);
  EXPECT_EQ(b.sent[0].payloads, (std::vector<std::string>{"p3", "p4"}));
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, AChunkWaitsWhileTheChannelHasNoRoomForIt) {
  make(chunk_queue());
  chunk(3);
  ChunkPort port;
  port.open = false;
  d->attach(0, &port);
  d->pump(kNow);
  EXPECT_TRUE(port.sent.empty());
  EXPECT_EQ(d->queued(), 3u);
  port.open = true;
  d->pump(kNow);
  EXPECT_EQ(port.sent.size(), 1u);
  EXPECT_EQ(d->in_flight(), 3u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, AQueuedChunkExpiresTaskByTaskAtItsDeadline) {
  make(chunk_queue());
  std::string items;
  for (int i = 0; i < 3; ++i) ipc::append_chunk_item(items, "x");
  const uint64_t first =
      d->submit_chunk(std::move(items), 3, TaskOrigin{0, 5, 10, kNow + seconds(1)});
  EXPECT_EQ(d->next_wakeup(), kNow + seconds(1));
  d->pump(kNow + seconds(2));
  ASSERT_EQ(finished.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(finished[i].id, first + i);
    EXPECT_EQ(finished[i].seq, 10 + i);
    EXPECT_EQ(finished[i].outcome, TaskOutcome::kExpired);
  }
  EXPECT_EQ(d->counts().expired, 3u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherChunkTest, AbandoningTheQueueEndsEachTaskOfAChunkDead) {
  make(chunk_queue());
  chunk(4);
  d->abandon_queued("job removed");
  EXPECT_EQ(d->counts().dead, 4u);
  ASSERT_EQ(d->dead_letters().size(), 4u);
  EXPECT_EQ(d->dead_letters()[3].payload, "p3");
  EXPECT_TRUE(d->balanced());
}

// A job with a journal keeps a record per task: a chunk is queued as
// single tasks, each told to the journal.
TEST_F(DispatcherChunkTest, AJournalledJobQueuesAChunksTasksOneByOne) {
  struct Journal : TaskJournal {
    void added(uint64_t id, const TaskOrigin& origin, std::string_view payload) override {
      added_ids.push_back(id);
      seqs.push_back(origin.seq);
      payloads.emplace_back(payload);
    }
    void dispatched(uint64_t, uint32_t) override {}
    void requeued(uint64_t, uint32_t) override {}
    void delayed(uint64_t, uint32_t, TimePoint) override {}
    void finished(const FinishedTask&, bool) override {}
    void letters_removed(const std::vector<uint64_t>&) override {}
    std::vector<uint64_t> added_ids;
    std::vector<uint64_t> seqs;
    std::vector<std::string> payloads;
  } journal;
  make(chunk_queue());
  d->set_journal(&journal);
  const uint64_t first = chunk(3, 20);
  EXPECT_EQ(journal.added_ids, (std::vector<uint64_t>{first, first + 1, first + 2}));
  EXPECT_EQ(journal.seqs, (std::vector<uint64_t>{20, 21, 22}));
  EXPECT_EQ(journal.payloads, (std::vector<std::string>{"p0", "p1", "p2"}));
  ChunkPort port;
  d->attach(0, &port);
  d->pump(kNow);
  EXPECT_EQ(port.sent.size(), 3u);  // singles, though the port takes chunks
  d->set_journal(nullptr);
}

TEST_F(DispatcherChunkTest, CancellingTheFirstAndLastTasksOfAQueuedChunk) {
  make(chunk_queue());
  const uint64_t first = chunk(4);
  CancelReport report = d->cancel({{first, first + 3}, {}, false}, false, "no");
  EXPECT_EQ(report.cancelled, 2u);
  EXPECT_TRUE(d->balanced());
  ChunkPort port;
  d->attach(0, &port);
  d->pump(kNow);
  ASSERT_EQ(port.sent.size(), 1u);
  EXPECT_EQ(port.sent[0].first, first + 1);
  EXPECT_EQ(port.sent[0].payloads, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(d->pending_of_submit(5), 2u);
}

// A worker dies holding two chunks, the first half answered and a task of
// the second cancelled meanwhile: the running task alone, charged; the
// cancelled one ends cancelled; the rest goes out again in order,
// uncharged.
TEST_F(DispatcherChunkTest, AWorkerThatDiesHoldingTwoChunks) {
  make(chunk_queue());
  const uint64_t a = chunk(4, 0, "a");
  const uint64_t b = chunk(3, 4, "b");
  ChunkPort port;
  d->attach(0, &port);
  d->pump(kNow);
  ASSERT_EQ(port.sent.size(), 2u);
  ASSERT_TRUE(d->result(0, a, true, "r", kNow));
  ASSERT_TRUE(d->result(0, a + 1, true, "r", kNow));
  EXPECT_EQ(d->pending_of_submit(5), 5u);
  CancelReport report = d->cancel({{b + 1}, {}, false}, true, "no");
  EXPECT_EQ(report.stop_workers, (std::vector<uint32_t>{0}));
  d->worker_gone(0, "stopped");
  EXPECT_EQ(ended(b + 1)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(b + 1)->seq, 5u);
  EXPECT_EQ(d->queued(), 4u);
  EXPECT_TRUE(d->balanced());

  ChunkPort next;
  d->attach(1, &next);
  d->pump(kNow);
  // The suspect alone first, and nothing beside it until it is answered.
  ASSERT_EQ(next.tasks(), (std::vector<std::pair<uint64_t, std::string>>{{a + 2, "a2"}}));
  d->pump(kNow);
  EXPECT_EQ(next.sent.size(), 1u);
  ASSERT_TRUE(d->result(1, a + 2, true, "r", kNow));
  d->pump(kNow);
  auto tasks = next.tasks();
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[1], (std::pair<uint64_t, std::string>{a + 3, "a3"}));
  EXPECT_EQ(tasks[2], (std::pair<uint64_t, std::string>{b, "b0"}));
  EXPECT_EQ(tasks[3], (std::pair<uint64_t, std::string>{b + 2, "b2"}));
  for (size_t i = 1; i < tasks.size(); ++i)
    ASSERT_TRUE(d->result(1, tasks[i].first, true, "r", kNow));
  EXPECT_EQ(ended(a + 2)->attempts, 2u);
  for (uint64_t id : {a + 3, b, b + 2}) EXPECT_EQ(ended(id)->attempts, 1u) << id;
  EXPECT_EQ(ended(b + 2)->seq, 6u);
  EXPECT_EQ(d->counts().ok, 6u);
  EXPECT_EQ(d->counts().cancelled, 1u);
  EXPECT_TRUE(d->balanced());
}

// A submitter that leaves: the rest of its chunk, in flight, goes to the
// sink.
TEST_F(DispatcherChunkTest, AnOrphanedChunksTasksGoToTheSink) {
  ChunkPort port;
  const uint64_t first = dispatched_chunk(3, port);
  ASSERT_TRUE(d->result(0, first, true, "r", kNow));
  d->orphan(7);
  ASSERT_TRUE(d->result(0, first + 1, true, "r", kNow));
  EXPECT_EQ(ended(first)->submitter, 7u);
  EXPECT_EQ(ended(first + 1)->submitter, 0u);
}

// Cut pieces keep the chunk's deadline: a queued chunk with a task cut
// out still expires whole at its deadline.
TEST_F(DispatcherChunkTest, PiecesOfAQueuedChunkKeepItsDeadline) {
  make(chunk_queue());
  std::string items;
  for (int i = 0; i < 5; ++i) ipc::append_chunk_item(items, "x");
  const uint64_t first =
      d->submit_chunk(std::move(items), 5, TaskOrigin{0, 5, 0, kNow + seconds(1)});
  d->cancel({{first + 2}, {}, false}, false, "no");
  d->pump(kNow + seconds(2));
  EXPECT_EQ(d->counts().expired, 4u);
  EXPECT_EQ(d->counts().cancelled, 1u);
  EXPECT_EQ(d->queued(), 0u);
  EXPECT_TRUE(d->balanced());
}

// Dead letters of a chunk's tasks go back as single tasks.
TEST_F(DispatcherChunkTest, ItsDeadLettersAreRetriedAsSingleTasks) {
  ChunkPort port;
  const uint64_t first = dispatched_chunk(3, port);
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(d->result(0, first + i, false, "no", kNow));
  ASSERT_EQ(d->dead_letters().size(), 3u);
  Result<size_t> again = d->retry_dead_letters({first + 1}, 9);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1u);
  d->pump(kNow);
  ASSERT_EQ(port.sent.size(), 2u);
  EXPECT_EQ(port.sent[1].count, 1u);
  EXPECT_EQ(port.sent[1].payloads[0], "p1");
  EXPECT_TRUE(d->balanced());
}

}  // namespace
}  // namespace corral::daemon

// Dispatcher bookkeeping with fake worker ports: prefetch, redelivery,
// dead letters, out-of-order results, and the accounting identity after
// every step.
#include "daemon/dispatcher.h"

#include <gtest/gtest.h>

#include <map>

namespace corral::daemon {
namespace {

const TimePoint kNow{};

struct FakePort : WorkerPort {
  bool can_send(size_t) const override { return open; }
  void send(uint64_t id, std::string_view payload) override {
    sent.emplace_back(id, std::string(payload));
  }
  void flush() override { ++flushes; }
  bool open = true;
  std::vector<std::pair<uint64_t, std::string>> sent;
  int flushes = 0;
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : d(spec(), [this](FinishedTasks run) {
          std::move(run.begin(), run.end(), std::back_inserter(finished));
        }) {}
  static config::QueueSpec spec() {
    config::QueueSpec q;
    q.capacity = 100;
    q.prefetch = 2;
    q.max_attempts = 2;
    return q;
  }
  void submit(int n) {
    for (int i = 0; i < n; ++i) d.submit("task" + std::to_string(i), 7, static_cast<uint64_t>(i));
  }
  Dispatcher d;
  std::vector<FinishedTask> finished;
  FakePort a, b;
};

TEST_F(DispatcherTest, KeepsToPrefetchAndSpreadsOverWorkers) {
  submit(5);
  d.attach(0, &a);
  d.attach(1, &b);
  d.pump(kNow);
  EXPECT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(b.sent.size(), 2u);
  EXPECT_EQ(d.queued(), 1u);
  EXPECT_EQ(d.in_flight(), 4u);
  EXPECT_EQ(a.flushes, 1);
  EXPECT_TRUE(d.balanced());
  EXPECT_TRUE(d.result(0, a.sent[0].first, true, "r", kNow));
  d.pump(kNow);
  EXPECT_EQ(a.sent.size() + b.sent.size(), 5u);
  EXPECT_TRUE(d.balanced());
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].result, "r");
  EXPECT_EQ(finished[0].submitter, 7u);
  EXPECT_EQ(finished[0].attempts, 1u);
}

// One task at a time goes back to the worker that answered last (awake,
// polling its ring), not to each worker in turn; a burst still spreads.
TEST_F(DispatcherTest, OneTaskAtATimeGoesBackToTheWorkerThatAnsweredLast) {
  d.attach(0, &a);
  d.attach(1, &b);
  for (int i = 0; i < 5; ++i) {
    submit(1);
    d.pump(kNow);
    ASSERT_EQ(a.sent.size() + b.sent.size(), static_cast<size_t>(i + 1));
    FakePort& got = a.sent.size() > b.sent.size() ? a : b;
    const uint32_t worker = &got == &a ? 0 : 1;
    EXPECT_TRUE(d.result(worker, got.sent.back().first, true, "r", kNow));
  }
  EXPECT_TRUE(a.sent.empty() || b.sent.empty())
      << a.sent.size() << " and " << b.sent.size() << " tasks";
  submit(4);
  d.pump(kNow);
  EXPECT_EQ(a.sent.size() + b.sent.size(), 9u);
  EXPECT_GE(std::min(a.sent.size(), b.sent.size()), 2u);  // the burst, two each
  EXPECT_TRUE(d.balanced());
}

TEST(DispatcherRunsTest, ALongQueueGoesOutInRunsAShortOneOneTaskAWorker) {
  config::QueueSpec q;
  q.capacity = 100;
  q.prefetch = 4;
  std::vector<FinishedTask> finished;
  Dispatcher d(q, [&](FinishedTasks run) {
    std::move(run.begin(), run.end(), std::back_inserter(finished));
  });
  FakePort a, b;
  d.attach(0, &a);
  d.attach(1, &b);
  for (int i = 0; i < 8; ++i) d.submit(std::to_string(i), 0, 0);
  d.pump(kNow);
  // Each worker's turn is its share of the queue: consecutive tasks.
  auto payloads = [](const FakePort& p) {
    std::vector<std::string> got;
    for (const auto& [id, payload] : p.sent) got.push_back(payload);
    return got;
  };
  EXPECT_EQ(payloads(a), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(payloads(b), (std::vector<std::string>{"4", "5", "6", "7"}));
  // Two tasks for two idle workers: one each.
  for (const auto& [id, payload] : a.sent) ASSERT_TRUE(d.result(0, id, true, "r", kNow));
  for (const auto& [id, payload] : b.sent) ASSERT_TRUE(d.result(1, id, true, "r", kNow));
  a.sent.clear();
  b.sent.clear();
  d.submit("x", 0, 0);
  d.submit("y", 0, 0);
  d.pump(kNow);
  EXPECT_EQ(a.sent.size(), 1u);
  EXPECT_EQ(b.sent.size(), 1u);
  EXPECT_EQ(finished.size(), 8u);
  EXPECT_TRUE(d.balanced());
}

// A run ends where its worker can take no more: its budget (limits.max_tasks)
// or a full channel; the rest of the queue goes to the other worker.
TEST(DispatcherRunsTest, ARunStopsAtTheWorkersBudgetAndAtAFullChannel) {
  config::QueueSpec q;
  q.capacity = 100;
  q.prefetch = 8;
  Dispatcher d(q, [](FinishedTasks) {});
  struct LimitedPort : FakePort {
    bool can_send(size_t) const override { return sent.size() < room; }
    size_t room = 2;
  };
  FakePort a;
  LimitedPort b;
  d.attach(0, &a, 3);  // three tasks, then its sentinel
  d.attach(1, &b);     // its channel takes two
  for (int i = 0; i < 10; ++i) d.submit(std::to_string(i), 0, 0);
  d.pump(kNow);
  EXPECT_EQ(a.sent.size(), 3u);
  EXPECT_EQ(b.sent.size(), 2u);
  EXPECT_EQ(d.in_flight(), 5u);
  EXPECT_EQ(d.queued(), 5u);
  // Room again: the queue goes on from where it stopped, in order.
  b.room = 4;
  d.pump(kNow);
  ASSERT_EQ(b.sent.size(), 4u);
  EXPECT_EQ(b.sent[2].second, "5");
  EXPECT_EQ(b.sent[3].second, "6");
  EXPECT_EQ(a.sent.size(), 3u);
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, ATaskOfADeadWorkerIsRedeliveredFirst) {
  submit(3);
  d.attach(0, &a);
  d.pump(kNow);
  uint64_t first = a.sent[0].first;
  d.worker_gone(0, "killed by SIGKILL");
  EXPECT_EQ(d.counts().redelivered, 2u);
  EXPECT_EQ(d.in_flight(), 0u);
  EXPECT_EQ(d.queued(), 3u);
  EXPECT_TRUE(d.balanced());
  d.attach(0, &b);
  d.pump(kNow);
  EXPECT_EQ(b.sent[0].first, first);  // the oldest goes out again first
  EXPECT_TRUE(d.result(0, first, true, "done", kNow));
  EXPECT_EQ(finished.back().attempts, 2u);
}

TEST_F(DispatcherTest, ATaskThatKillsEveryWorkerIsDeadAfterMaxAttempts) {
  d.submit("poison", 0, 0);
  for (int attempt = 0; attempt < 2; ++attempt) {
    d.attach(0, &a);
    d.pump(kNow);
    d.worker_gone(0, "killed by SIGABRT");
    EXPECT_TRUE(d.balanced());
  }
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].outcome, TaskOutcome::kDead);
  EXPECT_EQ(finished[0].attempts, 2u);
  EXPECT_EQ(finished[0].result, "killed by SIGABRT on each of 2 attempts");
  EXPECT_EQ(d.counts().dead, 1u);
  ASSERT_EQ(d.dead_letters().size(), 1u);
  EXPECT_EQ(d.dead_letters()[0].payload, "poison");
  EXPECT_EQ(d.retry_dead_letters(), 1u);
  EXPECT_EQ(d.queued(), 1u);
  EXPECT_EQ(d.counts().submitted, 2u);
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, OnlyTheTaskAWorkerWasRunningIsChargedForItsDeath) {
  submit(2);
  d.attach(0, &a);
  d.pump(kNow);
  uint64_t running = a.sent[0].first, waiting = a.sent[1].first;
  d.worker_gone(0, "killed by SIGABRT");
  d.attach(0, &b);
  d.pump(kNow);
  d.worker_gone(0, "killed by SIGABRT");  // the running one is dead now (2 attempts)
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].id, running);
  EXPECT_TRUE(d.pending(waiting));
  FakePort c;
  d.attach(0, &c);
  d.pump(kNow);
  EXPECT_TRUE(d.result(0, waiting, true, "fine", kNow));
  EXPECT_EQ(finished.back().attempts, 1u);
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, ADeathIsChargedToTheTaskOnlyWhenTheWorkerWasDoingItsJob) {
  submit(4);
  d.attach(0, &a);
  d.pump(kNow);
  // Nothing finished since attach, and a first death of its task: the worker's.
  EXPECT_EQ(d.worker_gone(0, "killed by SIGABRT"), ExitBlame::kWorker);
  d.attach(0, &b);
  d.pump(kNow);
  ASSERT_EQ(b.sent.size(), 1u);  // the suspect, alone
  // The task that killed a worker before killed this one too: the task's.
  EXPECT_EQ(d.worker_gone(0, "killed by SIGABRT"), ExitBlame::kTask);
  FakePort c;
  d.attach(0, &c);
  d.pump(kNow);
  ASSERT_EQ(c.sent.size(), 2u);
  EXPECT_TRUE(d.result(0, c.sent[0].first, true, "r", kNow));
  // It finished a task since it started: a death on the next is the task's.
  EXPECT_EQ(d.worker_gone(0, "killed by SIGSEGV"), ExitBlame::kTask);
  // A death while holding nothing is the worker's.
  FakePort e;
  d.attach(0, &e);
  EXPECT_EQ(d.worker_gone(0, "exit status 1"), ExitBlame::kWorker);
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, ASuspectGoesAloneToAWorkerThatHoldsNothing) {
  submit(5);  // prefetch 2
  d.attach(0, &a);
  d.attach(1, &b);
  d.pump(kNow);
  ASSERT_EQ(a.sent.size(), 2u);
  ASSERT_EQ(b.sent.size(), 2u);
  uint64_t suspect = a.sent[0].first, neighbour = a.sent[1].first;
  d.worker_gone(0, "killed by SIGABRT");
  FakePort c;
  d.attach(0, &c);
  d.pump(kNow);
  ASSERT_EQ(c.sent.size(), 1u);
  EXPECT_EQ(c.sent[0].first, suspect);
  // Worker 1 gets the rest as it has room; worker 0 nothing while it runs the suspect.
  EXPECT_TRUE(d.result(1, b.sent[0].first, true, "r", kNow));
  d.pump(kNow);
  EXPECT_EQ(c.sent.size(), 1u);
  ASSERT_EQ(b.sent.size(), 3u);
  EXPECT_EQ(b.sent[2].first, neighbour);
  EXPECT_TRUE(d.result(0, suspect, true, "survived", kNow));
  d.pump(kNow);
  EXPECT_EQ(c.sent.size(), 2u);  // the last task
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, ASuspectWaitsForABusyWorkerToEmpty) {
  submit(4);  // prefetch 2
  d.attach(0, &a);
  d.attach(1, &b);
  d.pump(kNow);
  uint64_t suspect = a.sent[0].first;
  d.worker_gone(0, "killed by SIGABRT");
  EXPECT_TRUE(d.result(1, b.sent[0].first, true, "r", kNow));
  d.pump(kNow);
  EXPECT_EQ(b.sent.size(), 2u);  // it still holds a task: neither the suspect nor what follows
  EXPECT_TRUE(d.result(1, b.sent[1].first, true, "r", kNow));
  d.pump(kNow);
  ASSERT_EQ(b.sent.size(), 3u);
  EXPECT_EQ(b.sent[2].first, suspect);
  EXPECT_EQ(d.held_by(1), 1u);
  EXPECT_EQ(d.queued(), 1u);
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, FailedResultsAreFinalAndKeptAsDeadLetters) {
  submit(1);
  d.attach(0, &a);
  d.pump(kNow);
  EXPECT_TRUE(d.result(0, a.sent[0].first, false, "bad input", kNow));
  EXPECT_EQ(d.counts().failed, 1u);
  EXPECT_EQ(d.dead_letters().at(0).outcome, TaskOutcome::kFailed);
  EXPECT_EQ(d.dead_letters().at(0).reason, "bad input");
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, AResultForATaskTheWorkerDoesNotHoldIsRefused) {
  submit(2);
  d.attach(0, &a);
  d.attach(1, &b);
  d.pump(kNow);
  EXPECT_FALSE(d.result(0, b.sent[0].first, true, "x", kNow));  // b's task
  EXPECT_FALSE(d.result(0, 999, true, "x", kNow));
  EXPECT_FALSE(d.result(5, a.sent[0].first, true, "x", kNow));
  EXPECT_TRUE(finished.empty());
  EXPECT_TRUE(d.balanced());
}

TEST_F(DispatcherTest, ResultsMayComeOutOfOrder) {
  submit(2);
  d.attach(0, &a);
  d.pump(kNow);
  EXPECT_EQ(d.oldest(0), a.sent[0].first);
  EXPECT_TRUE(d.result(0, a.sent[1].first, true, "2", kNow));
  EXPECT_TRUE(d.result(0, a.sent[0].first, true, "1", kNow));
  EXPECT_EQ(d.held_by(0), 0u);
}

TEST_F(DispatcherTest, ADetachedWorkerGetsNothingNewButKeepsWhatItHolds) {
  submit(4);
  d.attach(0, &a);
  d.pump(kNow);
  d.detach(0);
  EXPECT_TRUE(d.result(0, a.sent[0].first, true, "ok", kNow));
  d.pump(kNow);
  EXPECT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(d.queued(), 2u);
}

TEST_F(DispatcherTest, APortWithoutRoomIsSkipped) {
  submit(3);
  a.open = false;
  d.attach(0, &a);
  d.attach(1, &b);
  d.pump(kNow);
  EXPECT_TRUE(a.sent.empty());
  EXPECT_EQ(b.sent.size(), 2u);
}

TEST_F(DispatcherTest, CapacityMakesTheQueueFull) {
  submit(100);
  EXPECT_TRUE(d.full());
  d.attach(0, &a);
  d.pump(kNow);
  EXPECT_FALSE(d.full());
}

TEST_F(DispatcherTest, OrphanedTasksGoToTheSink) {
  submit(1);
  d.orphan(7);
  d.attach(0, &a);
  d.pump(kNow);
  d.result(0, a.sent[0].first, true, "x", kNow);
  EXPECT_EQ(finished[0].submitter, 0u);
}

TEST_F(DispatcherTest, IdentityHoldsUnderARandomStorm) {
  std::srand(42);
  std::map<uint32_t, FakePort> ports;
  for (int step = 0; step < 5000; ++step) {
    int action = std::rand() % 5;
    uint32_t w = static_cast<uint32_t>(std::rand() % 3);
    if (action == 0 && !d.full()) submit(1 + std::rand() % 5);
    if (action == 1) d.attach(w, &ports[w]);
    if (action == 2) {
      d.worker_gone(w, "chaos");
      ports[w].sent.clear();
    }
    if (action == 3 && d.oldest(w)) d.result(w, *d.oldest(w), std::rand() % 4 != 0, "r", kNow);
    if (action == 4) d.pump(kNow);
    ASSERT_TRUE(d.balanced()) << "step " << step;
  }
}

// Workers that answer every STEP: how many tasks the first holds after
// RESULTS of them, with queue.prefetch PREFETCH (nullopt: auto).
size_t held_after(std::chrono::nanoseconds step, int results, size_t* limit,
                  std::optional<uint32_t> prefetch = 64) {
  config::QueueSpec q;
  q.capacity = 10000;
  q.prefetch = prefetch;
  Dispatcher d(q, [](FinishedTasks) {});
  for (int i = 0; i < 10000; ++i) d.submit("t", 1, static_cast<uint64_t>(i));
  FakePort a, b;
  d.attach(0, &a);
  d.attach(1, &b);
  TimePoint now = kNow;
  d.pump(now);
  EXPECT_EQ(d.held_by(0), 64u);  // nothing known yet: 64, the prefetch given or auto's start
  size_t answered_a = 0, answered_b = 0;
  for (int i = 0; i < results; ++i) {
    now += step;
    EXPECT_TRUE(d.result(0, a.sent[answered_a++].first, true, "r", now));
    EXPECT_TRUE(d.result(1, b.sent[answered_b++].first, true, "r", now));
    d.pump(now);
  }
  EXPECT_TRUE(d.balanced());
  *limit = d.held_limit();
  return d.held_by(0);
}

TEST(DispatcherHeldLimitTest, LongTasksAreHeldTwoAtATimeSoThatNoWorkerHoardsTheQueue) {
  size_t limit = 0;
  // 10 ms tasks: 2 held (the one running and the next).
  EXPECT_EQ(held_after(std::chrono::milliseconds(10), 100, &limit), 2u);
  EXPECT_EQ(limit, 2u);
  // 0.5 ms tasks: about 2 ms of work, 5 tasks.
  EXPECT_EQ(held_after(std::chrono::microseconds(500), 100, &limit), 5u);
  EXPECT_EQ(limit, 5u);
}

TEST(DispatcherHeldLimitTest, ShortTasksKeepTheWholePrefetch) {
  size_t limit = 0;
  EXPECT_EQ(held_after(std::chrono::microseconds(2), 100, &limit), 64u);
  EXPECT_EQ(limit, 64u);
}

TEST(DispatcherHeldLimitTest, AutoHoldsAbout2msOfWorkFromTwoUpTo4096Tasks) {
  size_t limit = 0;
  // Tasks of 10 ms: the running one and the next, as with a prefetch.
  EXPECT_EQ(held_after(std::chrono::milliseconds(10), 100, &limit, std::nullopt), 2u);
  EXPECT_EQ(limit, 2u);
  // Of 4 us: 2 ms of work is 500 of them, past the 64 of the start.
  EXPECT_EQ(held_after(std::chrono::microseconds(4), 100, &limit, std::nullopt), 501u);
  EXPECT_EQ(limit, 501u);
  // Of 100 ns: 20,000 would be 2 ms; 4096 at most.
  EXPECT_EQ(held_after(std::chrono::nanoseconds(100), 100, &limit, std::nullopt), 4096u);
  EXPECT_EQ(limit, 4096u);
}

}  // namespace
}  // namespace corral::daemon

namespace corral::daemon {
namespace {

// Three tasks failed by the worker: three letters, ids in submit order.
class DeadLetterTest : public DispatcherTest {
 protected:
  std::vector<uint64_t> fail_three() {
    submit(3);
    d.attach(0, &a);
    d.pump(kNow);
    d.pump(kNow);
    std::vector<uint64_t> ids;
    while (ids.size() < 3) {
      uint64_t id = a.sent[ids.size()].first;
      EXPECT_TRUE(d.result(0, id, false, "bad", kNow));
      ids.push_back(id);
      d.pump(kNow);
    }
    EXPECT_EQ(d.dead_letters().size(), 3u);
    return ids;
  }
};

TEST_F(DeadLetterTest, RetryByIdRequeuesOnlyThoseForItsSubmitter) {
  std::vector<uint64_t> ids = fail_three();
  auto requeued = d.retry_dead_letters({ids[2], ids[0]}, 9);
  ASSERT_TRUE(requeued) << requeued.error().message();
  EXPECT_EQ(*requeued, 2u);
  ASSERT_EQ(d.dead_letters().size(), 1u);
  EXPECT_EQ(d.dead_letters()[0].id, ids[1]);
  EXPECT_EQ(d.queued(), 2u);
  EXPECT_TRUE(d.balanced());
  // In the list's order, numbered from 0, for submitter 9.
  size_t before = a.sent.size();
  d.pump(kNow);
  ASSERT_EQ(a.sent.size(), before + 2);
  EXPECT_EQ(a.sent[before].second, "task0");
  EXPECT_EQ(a.sent[before + 1].second, "task2");
  finished.clear();
  EXPECT_TRUE(d.result(0, a.sent[before + 1].first, true, "ok", kNow));
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].submitter, 9u);
  EXPECT_EQ(finished[0].seq, 1u);
}

TEST_F(DeadLetterTest, AnUnknownIdRequeuesNothingAndIsNamed) {
  std::vector<uint64_t> ids = fail_three();
  auto one = d.retry_dead_letters({ids[0], 999}, 0);
  ASSERT_FALSE(one);
  EXPECT_EQ(one.error().message(), "no dead letter has id 999");
  auto two = d.retry_dead_letters({1000, ids[1], 999}, 0);
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().message(), "no dead letters have ids 999, 1000");
  EXPECT_EQ(d.dead_letters().size(), 3u);
  EXPECT_EQ(d.queued(), 0u);
  // No ids: every letter.
  auto all = d.retry_dead_letters({}, 0);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, 3u);
  EXPECT_TRUE(d.dead_letters().empty());
  EXPECT_TRUE(d.balanced());
}

TEST_F(DeadLetterTest, ClearDropsEveryLetterAndSaysHowMany) {
  fail_three();
  uint64_t failed = d.counts().failed;
  EXPECT_EQ(d.clear_dead_letters(), 3u);
  EXPECT_TRUE(d.dead_letters().empty());
  EXPECT_EQ(d.counts().failed, failed);  // the counts stay: the tasks did fail
  EXPECT_EQ(d.clear_dead_letters(), 0u);
  EXPECT_TRUE(d.balanced());
}

}  // namespace
}  // namespace corral::daemon

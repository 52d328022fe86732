// The dispatcher's task retries (queue.retry and its backoff), deadlines
// and cancels, with fake worker ports and a hand-moved time: what waits,
// what goes out again and when, how each ends, and the accounting identity
// after every step.
#include <gtest/gtest.h>

#include <algorithm>

#include "daemon/dispatcher.h"

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const TimePoint kStart{seconds(1000)};

struct RetryPort : WorkerPort {
  bool can_send(size_t) const override { return true; }
  void send(uint64_t id, std::string_view) override { sent.push_back(id); }
  void flush() override {}
  std::vector<uint64_t> sent;
};

config::QueueSpec retrying(bool on_failed, bool on_crashed, bool on_timeout) {
  config::QueueSpec q;
  q.capacity = 100;
  q.prefetch = 4;
  q.max_attempts = 3;
  config::TaskRetrySpec retry;
  retry.on_failed = on_failed;
  retry.on_crashed = on_crashed;
  retry.on_timeout = on_timeout;
  retry.backoff = {seconds(1), seconds(60), 2.0, 0.1};
  q.retry = retry;
  return q;
}

class DispatcherRetryTest : public ::testing::Test {
 protected:
  void make(const config::QueueSpec& q) {
    d = std::make_unique<Dispatcher>(
        q,
        [this](FinishedTasks run) {
          std::move(run.begin(), run.end(), std::back_inserter(finished));
        },
        42);
  }
  // The task that ended last, by id.
  const FinishedTask* ended(uint64_t id) const {
    auto it = std::find_if(finished.rbegin(), finished.rend(),
                           [id](const FinishedTask& t) { return t.id == id; });
    return it == finished.rend() ? nullptr : &*it;
  }
  std::unique_ptr<Dispatcher> d;
  std::vector<FinishedTask> finished;
  RetryPort a, b;
};

TEST_F(DispatcherRetryTest, AFailedTaskWaitsItsBackoffWithinTheJitterThenRunsAgain) {
  make(retrying(true, true, true));
  uint64_t id = d->submit("x", 5, 0);
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_EQ(a.sent.size(), 1u);
  ASSERT_TRUE(d->result(0, id, false, "boom", kStart));
  EXPECT_TRUE(finished.empty());
  EXPECT_EQ(d->delayed(), 1u);
  EXPECT_EQ(d->queued(), 0u);
  EXPECT_TRUE(d->balanced());
  // The first backoff: 1s +- 10%.
  ASSERT_TRUE(d->next_wakeup());
  Duration first = std::chrono::duration_cast<Duration>(*d->next_wakeup() - kStart);
  EXPECT_GE(first, milliseconds(900));
  EXPECT_LE(first, milliseconds(1100));
  d->pump(kStart + milliseconds(850));
  EXPECT_EQ(a.sent.size(), 1u);  // not before its time
  TimePoint again = *d->next_wakeup();
  d->pump(again);
  ASSERT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(a.sent[1], id);
  EXPECT_EQ(d->delayed(), 0u);
  // The second: 2s +- 10%, counted from the second failure.
  ASSERT_TRUE(d->result(0, id, false, "boom", again));
  Duration second = std::chrono::duration_cast<Duration>(*d->next_wakeup() - again);
  EXPECT_GE(second, milliseconds(1800));
  EXPECT_LE(second, milliseconds(2200));
  TimePoint third_start = *d->next_wakeup();
  d->pump(third_start);
  // The third attempt is the last one (max_attempts 3): its failure is final.
  ASSERT_TRUE(d->result(0, id, false, "still boom", third_start));
  const FinishedTask* task = ended(id);
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->outcome, TaskOutcome::kFailed);
  EXPECT_EQ(task->result, "still boom");
  EXPECT_EQ(task->attempts, 3u);
  EXPECT_EQ(task->submitter, 5u);
  EXPECT_EQ(d->counts().redelivered, 2u);
  EXPECT_EQ(d->dead_letters().size(), 1u);
  EXPECT_FALSE(d->next_wakeup());
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, WithoutRetryAFailedTaskIsFinal) {
  config::QueueSpec q = retrying(true, true, true);
  q.retry.reset();
  make(q);
  uint64_t id = d->submit("x", 0, 0);
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_TRUE(d->result(0, id, false, "boom", kStart));
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kFailed);
  EXPECT_EQ(d->delayed(), 0u);
}

TEST_F(DispatcherRetryTest, FailuresNotListedInOnAreFinal) {
  make(retrying(false, true, true));
  uint64_t id = d->submit("x", 0, 0);
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_TRUE(d->result(0, id, false, "boom", kStart));
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->attempts, 1u);
}

TEST_F(DispatcherRetryTest, ACrashListedInOnWaitsOnlyForTheRunningTask) {
  make(retrying(false, true, false));
  uint64_t running = d->submit("x", 0, 0);
  uint64_t waiting = d->submit("y", 0, 1);
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_EQ(a.sent.size(), 2u);
  d->worker_gone(0, "killed by SIGSEGV", TaskFault::kCrashed, kStart);
  // The one it was running waits; the one behind it goes out at once.
  EXPECT_EQ(d->delayed(), 1u);
  EXPECT_EQ(d->queued(), 1u);
  EXPECT_TRUE(d->balanced());
  d->attach(1, &b);
  d->pump(kStart);
  ASSERT_EQ(b.sent.size(), 1u);
  EXPECT_EQ(b.sent[0], waiting);
  // Its wait is over, but it is a suspect: it goes out alone, once b holds
  // nothing.
  TimePoint due = *d->next_wakeup();
  d->pump(due);
  EXPECT_EQ(b.sent.size(), 1u);
  ASSERT_TRUE(d->result(1, waiting, true, "y", due));
  d->pump(due);
  ASSERT_EQ(b.sent.size(), 2u);
  EXPECT_EQ(b.sent[1], running);
}

TEST_F(DispatcherRetryTest, EachFaultFollowsItsOwnCause) {
  // Retries after a timeout only: a crash goes out again at once.
  make(retrying(false, false, true));
  uint64_t id = d->submit("x", 0, 0);
  d->attach(0, &a);
  d->pump(kStart);
  d->worker_gone(0, "killed by SIGKILL", TaskFault::kCrashed, kStart);
  EXPECT_EQ(d->queued(), 1u);
  EXPECT_EQ(d->delayed(), 0u);
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_EQ(a.sent.back(), id);
  d->worker_gone(0, "ran longer than queue.task_timeout", TaskFault::kTimeout, kStart);
  EXPECT_EQ(d->queued(), 0u);
  EXPECT_EQ(d->delayed(), 1u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, ATaskDiesAtMaxAttemptsEvenWithRetries) {
  make(retrying(true, true, true));
  uint64_t id = d->submit("x", 0, 0);
  TimePoint now = kStart;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    d->attach(0, &a);
    d->pump(now);
    ASSERT_EQ(a.sent.size(), static_cast<size_t>(attempt));
    d->worker_gone(0, "killed by SIGKILL", TaskFault::kCrashed, now);
    if (attempt < 3) now = *d->next_wakeup();
  }
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kDead);
  EXPECT_EQ(d->delayed(), 0u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, DelayedTasksTakeRoomInTheQueue) {
  config::QueueSpec q = retrying(true, true, true);
  q.capacity = 2;
  make(q);
  uint64_t id = d->submit("x", 0, 0);
  d->attach(0, &a);
  d->pump(kStart);
  d->submit("y", 0, 1);
  EXPECT_FALSE(d->full());
  ASSERT_TRUE(d->result(0, id, false, "boom", kStart));
  EXPECT_TRUE(d->full());  // one queued, one delayed
}

TEST_F(DispatcherRetryTest, AQueuedTaskExpiresAtItsDeadline) {
  make(config::QueueSpec{});
  uint64_t id = d->submit("x", TaskOrigin{3, 1, 0, kStart + seconds(30)});
  uint64_t other = d->submit("y", TaskOrigin{3, 1, 1, std::nullopt});
  ASSERT_TRUE(d->next_wakeup());
  EXPECT_EQ(*d->next_wakeup(), kStart + seconds(30));
  d->pump(kStart + seconds(29));
  EXPECT_TRUE(finished.empty());
  d->pump(kStart + seconds(30));
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kExpired);
  EXPECT_EQ(ended(id)->submitter, 3u);
  EXPECT_EQ(ended(id)->attempts, 0u);
  EXPECT_EQ(d->counts().expired, 1u);
  EXPECT_TRUE(d->dead_letters().empty());
  EXPECT_EQ(d->queued(), 1u);
  EXPECT_TRUE(d->balanced());
  // The expired one is never handed out; the other is.
  d->attach(0, &a);
  d->pump(kStart + seconds(31));
  ASSERT_EQ(a.sent.size(), 1u);
  EXPECT_EQ(a.sent[0], other);
}

TEST_F(DispatcherRetryTest, ATaskStartedBeforeItsDeadlineRunsToItsEnd) {
  make(config::QueueSpec{});
  uint64_t id = d->submit("x", TaskOrigin{0, 1, 0, kStart + seconds(1)});
  d->attach(0, &a);
  d->pump(kStart);
  d->pump(kStart + seconds(5));
  EXPECT_TRUE(finished.empty());
  ASSERT_TRUE(d->result(0, id, true, "done", kStart + seconds(5)));
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kOk);
}

TEST_F(DispatcherRetryTest, ARedeliveryPastTheDeadlineExpires) {
  make(config::QueueSpec{});
  uint64_t id = d->submit("x", TaskOrigin{0, 1, 0, kStart + seconds(1)});
  d->attach(0, &a);
  d->pump(kStart);
  d->pump(kStart + seconds(2));  // its deadline passes while it runs
  d->worker_gone(0, "killed by SIGKILL", TaskFault::kCrashed, kStart + seconds(3));
  d->attach(0, &a);
  d->pump(kStart + seconds(3));
  EXPECT_EQ(a.sent.size(), 1u);
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kExpired);
  EXPECT_EQ(ended(id)->attempts, 1u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, ARetryWaitingPastTheDeadlineExpires) {
  make(retrying(true, true, true));
  uint64_t id = d->submit("x", TaskOrigin{0, 1, 0, kStart + milliseconds(500)});
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_TRUE(d->result(0, id, false, "boom", kStart));
  EXPECT_EQ(d->delayed(), 1u);
  // The deadline comes before the backoff ends.
  EXPECT_EQ(*d->next_wakeup(), kStart + milliseconds(500));
  d->pump(kStart + milliseconds(500));
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kExpired);
  EXPECT_EQ(d->delayed(), 0u);
  EXPECT_TRUE(d->balanced());
  d->pump(kStart + seconds(5));
  EXPECT_EQ(a.sent.size(), 1u);
}

TEST_F(DispatcherRetryTest, CancelledTasksNeverReachAWorker) {
  make(config::QueueSpec{});
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(d->submit("t", 9, static_cast<uint64_t>(i)));
  CancelReport report = d->cancel({{ids[1], ids[3], 999}, std::nullopt, false}, false, "cancelled");
  EXPECT_EQ(report.cancelled, 2u);
  EXPECT_EQ(report.unknown, std::vector<uint64_t>{999});
  EXPECT_TRUE(report.stop_workers.empty());
  EXPECT_EQ(d->queued(), 3u);
  EXPECT_EQ(d->counts().cancelled, 2u);
  EXPECT_TRUE(d->balanced());
  ASSERT_NE(ended(ids[1]), nullptr);
  EXPECT_EQ(ended(ids[1])->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(ids[1])->submitter, 9u);
  EXPECT_TRUE(d->dead_letters().empty());
  d->attach(0, &a);
  d->pump(kStart);
  EXPECT_EQ(a.sent, (std::vector<uint64_t>{ids[0], ids[2], ids[4]}));
  // Cancelled twice: the second time it is unknown.
  report = d->cancel({{ids[1]}, std::nullopt, false}, false, "cancelled");
  EXPECT_EQ(report.unknown, std::vector<uint64_t>{ids[1]});
}

TEST_F(DispatcherRetryTest, CancelBySubmitTakesOnlyThatSubmitsTasks) {
  make(config::QueueSpec{});
  uint64_t mine = d->submit("a", TaskOrigin{0, 4, 0, std::nullopt});
  uint64_t other = d->submit("b", TaskOrigin{0, 5, 0, std::nullopt});
  uint64_t mine2 = d->submit("c", TaskOrigin{0, 4, 1, std::nullopt});
  EXPECT_EQ(d->pending_of_submit(4), 2u);
  CancelReport report = d->cancel({{}, 4, false}, false, "cancelled");
  EXPECT_EQ(report.cancelled, 2u);
  EXPECT_EQ(ended(mine)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(mine2)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(other), nullptr);
  EXPECT_EQ(d->pending_of_submit(4), 0u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, CancelQueuedTakesQueuedAndDelayedButNotRunningTasks) {
  make(retrying(true, true, true));
  uint64_t failing = d->submit("f", 0, 0);
  d->attach(0, &a);
  d->pump(kStart);
  ASSERT_TRUE(d->result(0, failing, false, "boom", kStart));
  d->detach(0);
  d->attach(1, &b);
  uint64_t running = d->submit("r", 0, 1);
  d->pump(kStart);
  ASSERT_EQ(b.sent, std::vector<uint64_t>{running});
  d->detach(1);
  d->submit("q", 0, 2);
  ASSERT_EQ(d->delayed(), 1u);
  CancelReport report = d->cancel({{}, std::nullopt, true}, false, "cancelled");
  EXPECT_EQ(report.cancelled, 2u);
  EXPECT_TRUE(report.running.empty());  // only named ids are listed
  EXPECT_EQ(d->queued() + d->delayed(), 0u);
  EXPECT_EQ(d->in_flight(), 1u);
  EXPECT_FALSE(d->next_wakeup());
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, ARunningTaskIsCancelledOnlyWithRunning) {
  make(config::QueueSpec{});
  uint64_t id = d->submit("x", 0, 0);
  uint64_t behind = d->submit("y", 0, 1);
  d->attach(0, &a);
  d->pump(kStart);
  CancelReport report = d->cancel({{id}, std::nullopt, false}, false, "cancelled");
  EXPECT_EQ(report.running, std::vector<uint64_t>{id});
  EXPECT_EQ(report.cancelled, 0u);
  EXPECT_TRUE(report.stop_workers.empty());

  report = d->cancel({{id}, std::nullopt, false}, true, "cancelled");
  EXPECT_EQ(report.stopping, 1u);
  EXPECT_EQ(report.stop_workers, std::vector<uint32_t>{0});
  EXPECT_TRUE(d->balanced());
  // Its worker is stopped: the cancelled task ends cancelled and the death
  // is the task's; the task behind it goes out again, its attempt given back.
  EXPECT_EQ(d->worker_gone(0, "killed by SIGTERM", TaskFault::kCrashed, kStart), ExitBlame::kTask);
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kCancelled);
  EXPECT_EQ(ended(behind), nullptr);
  EXPECT_EQ(d->queued(), 1u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, TheResultOfACancelledRunningTaskIsDropped) {
  make(retrying(true, true, true));
  uint64_t id = d->submit("x", 0, 0);
  d->attach(0, &a);
  d->pump(kStart);
  d->cancel({{id}, std::nullopt, false}, true, "cancelled");
  // It answered before the signal landed: the answer is not kept, and a
  // failure is not retried.
  ASSERT_TRUE(d->result(0, id, false, "boom", kStart));
  ASSERT_NE(ended(id), nullptr);
  EXPECT_EQ(ended(id)->outcome, TaskOutcome::kCancelled);
  EXPECT_NE(ended(id)->result, "boom");
  EXPECT_EQ(d->delayed(), 0u);
  EXPECT_TRUE(d->balanced());
}

TEST_F(DispatcherRetryTest, ManyCancelsKeepTheQueueInOrder) {
  make(config::QueueSpec{});
  std::vector<uint64_t> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back(d->submit("t", 0, static_cast<uint64_t>(i)));
  std::vector<uint64_t> odd;
  for (size_t i = 1; i < ids.size(); i += 2) odd.push_back(ids[i]);
  EXPECT_EQ(d->cancel({odd, std::nullopt, false}, false, "cancelled").cancelled, 500u);
  EXPECT_EQ(d->queued(), 500u);
  d->attach(0, &a);
  for (int round = 0; round < 200 && d->queued() > 0; ++round) {
    d->pump(kStart);
    for (uint64_t sent : a.sent) {
      if (d->pending(sent)) {
        ASSERT_TRUE(d->result(0, sent, true, "", kStart));
      }
    }
  }
  ASSERT_EQ(a.sent.size(), 500u);
  for (size_t i = 0; i < a.sent.size(); ++i) EXPECT_EQ(a.sent[i], ids[2 * i]);
  EXPECT_TRUE(d->balanced());
}

}  // namespace
}  // namespace corral::daemon

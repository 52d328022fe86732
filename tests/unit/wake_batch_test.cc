// When a shm worker wakes a sleeping daemon (worker/wake_batch.h), on a
// clock the test sets.
#include "worker/wake_batch.h"

#include <gtest/gtest.h>

namespace corral::sdk {
namespace {

using namespace std::chrono_literals;
using Clock = WakeBatch::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

// A clock that says T, and counts how often it is read.
struct FakeClock {
  Clock::time_point t = t0;
  mutable int reads = 0;
  Clock::time_point operator()() const {
    ++reads;
    return t;
  }
};

// The clock at T for one call.
auto at(Clock::time_point t) {
  return [t] { return t; };
}

TEST(WakeBatchTest, QuickResultsWakeOncePerBatchOfSixtyFour) {
  WakeBatch batch;
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i < WakeBatch::kBatchResults; ++i) {
      batch.task_starting(at(t0));
      EXPECT_FALSE(batch.result_added(at(t0))) << "result " << i << " of round " << round;
    }
    batch.task_starting(at(t0));
    EXPECT_TRUE(batch.result_added(at(t0)));
    batch.sent();
  }
}

TEST(WakeBatchTest, ABatchOpenForTheWindowWakesAtItsNextResultThatReadsTheClock) {
  WakeBatch batch;
  batch.task_starting(at(t0));
  EXPECT_FALSE(batch.result_added(at(t0 + 100us)));  // result 1: the clock is read
  batch.task_starting(at(t0 + 150us));               // the batch stays open from t0
  EXPECT_FALSE(batch.result_added(at(t0 + 199us)));  // result 2: read
  batch.task_starting(at(t0 + 199us));
  FakeClock unread{t0 + WakeBatch::kBatchWindow};
  EXPECT_FALSE(batch.result_added(unread));  // result 3: not read
  EXPECT_EQ(unread.reads, 0);
  batch.task_starting(at(t0 + 210us));
  EXPECT_TRUE(batch.result_added(at(t0 + 220us)));  // result 4: read, past the window
}

// Tiny tasks pay a clock read at the batch's start and at its 1st, 2nd,
// 4th, ... 32nd result: 7 for 64 results, not 128.
TEST(WakeBatchTest, TinyTasksReadTheClockSevenTimesPerBatch) {
  WakeBatch batch;
  FakeClock clock;
  for (int i = 1; i <= WakeBatch::kBatchResults; ++i) {
    batch.task_starting(clock);
    EXPECT_EQ(batch.result_added(clock), i == WakeBatch::kBatchResults) << i;
  }
  EXPECT_EQ(clock.reads, 7);
}

// Whatever a task takes, a batch wakes the daemon no earlier than the
// window (unless 64 results came first) and no later than twice the window,
// or at the first result when that one task took longer.
TEST(WakeBatchTest, ABatchWakesWithinTwiceTheWindowWhateverItsTasksTake) {
  using std::chrono::microseconds;
  for (microseconds each : {1us, 3us, 10us, 30us, 51us, 99us, 101us, 150us, 199us, 200us, 1000us}) {
    WakeBatch batch;
    int results = 0;
    microseconds elapsed{0};
    bool woke = false;
    while (!woke) {
      batch.task_starting(at(t0 + elapsed));
      elapsed += each;
      ++results;
      woke = batch.result_added(at(t0 + elapsed));
    }
    if (results == WakeBatch::kBatchResults) continue;  // the count, before the window
    EXPECT_GE(elapsed, WakeBatch::kBatchWindow) << each.count() << " us a task";
    EXPECT_TRUE(elapsed < 2 * WakeBatch::kBatchWindow || results == 1)
        << each.count() << " us a task: woke after " << elapsed.count() << " us, " << results
        << " results";
  }
}

TEST(WakeBatchTest, TheResultOfALongTaskIsNotHeldBack) {
  WakeBatch batch;
  batch.task_starting(at(t0));
  EXPECT_TRUE(batch.result_added(at(t0 + 5ms)));
}

TEST(WakeBatchTest, ANewBatchOpensWithTheFirstTaskAfterAWakeUp) {
  WakeBatch batch;
  batch.task_starting(at(t0));
  EXPECT_FALSE(batch.result_added(at(t0 + 10us)));
  batch.sent();  // e.g. no further task was waiting
  batch.task_starting(at(t0 + 1s));
  EXPECT_FALSE(batch.result_added(at(t0 + 1s + 10us)));
}

}  // namespace
}  // namespace corral::sdk

// When a shm worker wakes a sleeping daemon (worker/wake_batch.h), on a
// clock the test sets.
#include "worker/wake_batch.h"

#include <gtest/gtest.h>

namespace corral::sdk {
namespace {

using namespace std::chrono_literals;
using Clock = WakeBatch::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

TEST(WakeBatchTest, QuickResultsWakeOncePerBatchOfSixtyFour) {
  WakeBatch batch;
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i < WakeBatch::kBatchResults; ++i) {
      batch.task_starting(t0);
      EXPECT_FALSE(batch.result_added(t0)) << "result " << i << " of round " << round;
    }
    batch.task_starting(t0);
    EXPECT_TRUE(batch.result_added(t0));
    batch.sent();
  }
}

TEST(WakeBatchTest, ABatchOpenForTheWindowWakesAtItsNextResult) {
  WakeBatch batch;
  batch.task_starting(t0);
  EXPECT_FALSE(batch.result_added(t0 + 100us));
  batch.task_starting(t0 + 150us);  // the batch stays open from t0
  EXPECT_FALSE(batch.result_added(t0 + 199us));
  batch.task_starting(t0 + 199us);
  EXPECT_TRUE(batch.result_added(t0 + WakeBatch::kBatchWindow));
}

TEST(WakeBatchTest, TheResultOfALongTaskIsNotHeldBack) {
  WakeBatch batch;
  batch.task_starting(t0);
  EXPECT_TRUE(batch.result_added(t0 + 5ms));
}

TEST(WakeBatchTest, ANewBatchOpensWithTheFirstTaskAfterAWakeUp) {
  WakeBatch batch;
  batch.task_starting(t0);
  EXPECT_FALSE(batch.result_added(t0 + 10us));
  batch.sent();  // e.g. no further task was waiting
  batch.task_starting(t0 + 1s);
  EXPECT_FALSE(batch.result_added(t0 + 1s + 10us));
}

}  // namespace
}  // namespace corral::sdk

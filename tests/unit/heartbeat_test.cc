// The worker SDK's heartbeat thread (worker/heartbeat.h): no thread without
// a period, beats never closer than the period, none after it is destroyed.
#include "worker/heartbeat.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/poll.h"

namespace corral::sdk {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(HeartbeatTest, NoPeriodNoBeats) {
  std::atomic<int> beats{0};
  {
    Heartbeat heartbeat(0ms, [&] { ++beats; });
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(beats.load(), 0);
}

TEST(HeartbeatTest, BeatsAreAtLeastAPeriodApartAndStopWithTheObject) {
  std::mutex mutex;
  std::vector<Clock::time_point> beats;
  const Clock::time_point start = Clock::now();
  {
    Heartbeat heartbeat(20ms, [&] {
      std::lock_guard lock(mutex);
      beats.push_back(Clock::now());
    });
    // Waits for beats, however slowly the machine runs them.
    corral::testing::wait_until([&] {
      std::lock_guard lock(mutex);
      return beats.size() >= 5;
    });
  }
  const Clock::time_point destroyed = Clock::now();
  std::lock_guard lock(mutex);
  ASSERT_GE(beats.size(), 5u);
  EXPECT_GE(beats.front() - start, 20ms);
  for (size_t i = 1; i < beats.size(); ++i) EXPECT_GE(beats[i] - beats[i - 1], 20ms) << i;
  EXPECT_LE(beats.back(), destroyed);  // no beat ran after the destructor returned
}

TEST(HeartbeatTest, DestroyingItDoesNotWaitForTheNextBeat) {
  std::atomic<int> beats{0};
  const Clock::time_point start = Clock::now();
  {
    Heartbeat heartbeat(1h, [&] { ++beats; });
  }
  EXPECT_EQ(beats.load(), 0);
  EXPECT_LT(Clock::now() - start, 10min);  // not an hour: the thread was woken
}

}  // namespace
}  // namespace corral::sdk

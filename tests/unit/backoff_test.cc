#include "daemon/backoff.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(BackoffTest, NominalSequenceIsGeometricAndCapped) {
  Backoff b({milliseconds(100), seconds(2), 2.0, 0.0}, 1);
  std::vector<int64_t> got;
  for (uint32_t n = 1; n <= 7; ++n) got.push_back(b.delay(n).count());
  EXPECT_EQ(got, (std::vector<int64_t>{100, 200, 400, 800, 1600, 2000, 2000}));
}

TEST(BackoffTest, HugeFailureCountsDoNotOverflow) {
  Backoff b({milliseconds(100), seconds(30), 10.0, 0.0}, 1);
  EXPECT_EQ(b.delay(100000), seconds(30));
}

TEST(BackoffTest, MultiplierOneIsConstant) {
  Backoff b({milliseconds(250), seconds(30), 1.0, 0.0}, 1);
  EXPECT_EQ(b.delay(1), milliseconds(250));
  EXPECT_EQ(b.delay(50), milliseconds(250));
}

TEST(BackoffTest, JitterStaysInBoundsAndVaries) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Backoff b({milliseconds(1000), seconds(60), 2.0, 0.1}, seed);
    std::set<int64_t> seen;
    for (int i = 0; i < 200; ++i) {
      uint32_t n = 1 + i % 4;
      double nominal = 1000.0 * (1 << (n - 1));
      int64_t d = b.delay(n).count();
      EXPECT_GE(d, std::llround(nominal * 0.9));
      EXPECT_LE(d, std::llround(nominal * 1.1));
      if (n == 1) seen.insert(d);
    }
    EXPECT_GT(seen.size(), 10u) << "jitter should spread the delays";
  }
}

TEST(RestartIntensityTest, AllowsMaxRestartsPerWindow) {
  RestartIntensity intensity(3, seconds(10));
  TimePoint t{};
  EXPECT_TRUE(intensity.allow(t));
  EXPECT_TRUE(intensity.allow(t + seconds(1)));
  EXPECT_TRUE(intensity.allow(t + seconds(2)));
  EXPECT_FALSE(intensity.allow(t + seconds(3)));
  EXPECT_EQ(intensity.count(t + seconds(3)), 3u);
  // The first one leaves the window at t + 10 s.
  EXPECT_TRUE(intensity.allow(t + seconds(10)));
  EXPECT_EQ(intensity.count(t + seconds(10)), 3u);
}

TEST(RestartIntensityTest, ZeroMeansNoRestart) {
  RestartIntensity intensity(0, seconds(10));
  EXPECT_FALSE(intensity.allow(TimePoint{}));
}

}  // namespace
}  // namespace corral::daemon

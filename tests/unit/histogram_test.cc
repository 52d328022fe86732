// The log-bucketed duration histogram: buckets, quantiles, windows.
#include "daemon/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace corral::daemon {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(HistogramTest, EmptyHasNoQuantiles) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile_us(0.99), 0);
}

TEST(HistogramTest, QuantilesAreWithinABucketOfTheTruth) {
  Histogram h;
  // 1..1000 us, one each: p50 ~ 500 us, p99 ~ 990 us.
  for (int i = 1; i <= 1000; ++i) h.observe(microseconds(i));
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.sum_s(), 0.5005, 1e-9);
  for (double q : {0.5, 0.9, 0.99}) {
    double truth = q * 1000;
    EXPECT_GT(h.quantile_us(q), truth / std::sqrt(2.0)) << q;
    EXPECT_LT(h.quantile_us(q), truth * std::sqrt(2.0)) << q;
  }
}

TEST(HistogramTest, ADurationOnABoundIsInTheBucketItBoundsAndOneNanosecondMoreIsNot) {
  for (size_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
    // Bucket i holds durations up to 2^(i/2) us, that bound included.
    const auto bound_ns = static_cast<int64_t>(std::floor(Histogram::upper_bound_s(i) * 1e9));
    Histogram on;
    on.observe(std::chrono::nanoseconds(bound_ns));
    EXPECT_EQ(on.bucket(i), 1u) << "bucket " << i << ", " << bound_ns << " ns";
    Histogram above;
    above.observe(std::chrono::nanoseconds(bound_ns + 1));
    EXPECT_EQ(above.bucket(i + 1), 1u) << "bucket " << i + 1 << ", " << bound_ns + 1 << " ns";
  }
}

TEST(HistogramTest, BucketsCoverTheRangeAndCountEveryObservation) {
  Histogram h;
  h.observe(std::chrono::nanoseconds(0));
  h.observe(microseconds(1));
  h.observe(milliseconds(5));
  h.observe(std::chrono::hours(1));  // past the last bound: the last bucket
  uint64_t total = 0;
  for (size_t i = 0; i < Histogram::kBuckets; ++i) total += h.bucket(i);
  EXPECT_EQ(total, 4u);
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.bucket(Histogram::kBuckets - 1), 1u);
  EXPECT_TRUE(std::isinf(Histogram::upper_bound_s(Histogram::kBuckets - 1)));
  for (size_t i = 1; i + 1 < Histogram::kBuckets; ++i) {
    EXPECT_GT(Histogram::upper_bound_s(i), Histogram::upper_bound_s(i - 1));
  }
  // 5 ms lies in the bucket whose bound is the first at or above it.
  size_t i = 0;
  while (Histogram::upper_bound_s(i) < 0.005) ++i;
  EXPECT_EQ(h.bucket(i), 1u);
}

TEST(HistogramTest, SinceIsTheWindowBetweenTwoSnapshots) {
  Histogram h;
  for (int i = 0; i < 100; ++i) h.observe(milliseconds(100));
  Histogram snapshot = h;
  for (int i = 0; i < 10; ++i) h.observe(microseconds(10));
  Histogram window = h.since(snapshot);
  EXPECT_EQ(window.count(), 10u);
  EXPECT_LT(window.quantile_us(0.99), 15);
}

}  // namespace
}  // namespace corral::daemon

// A histogram of durations in log-spaced buckets (factor sqrt(2), 1 us to
// about 2 minutes): constant memory and one increment per observation,
// quantiles within the width of a bucket, and Prometheus buckets. Windows
// ("the last interval") are differences of two snapshots.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace corral::daemon {

class Histogram {
 public:
  static constexpr size_t kBuckets = 56;  // upper bounds 2^(i/2) us; the last takes the rest

  void observe(std::chrono::nanoseconds duration);
  // Upper bound of bucket I in seconds (infinity for the last).
  static double upper_bound_s(size_t i);

  uint64_t count() const { return count_; }
  double sum_s() const { return static_cast<double>(sum_ns_) / 1e9; }
  uint64_t bucket(size_t i) const { return buckets_[i]; }
  // The Q-quantile (0 < Q <= 1) in microseconds, interpolated inside its
  // bucket; 0 when empty.
  double quantile_us(double q) const;
  // What was observed since EARLIER (a copy of this histogram).
  Histogram since(const Histogram& earlier) const;

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  // The last duration observed and its bucket: the tasks of one batch of
  // results share their time, and are counted without a search.
  uint64_t last_ns_ = 0;
  size_t last_bucket_ = 0;
};

}  // namespace corral::daemon

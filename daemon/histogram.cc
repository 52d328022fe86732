#include "daemon/histogram.h"

#include <cmath>
#include <limits>

namespace corral::daemon {

namespace {

// Bucket i holds (2^((i-1)/2), 2^(i/2)] us; bucket 0 everything up to 1 us.
size_t bucket_of(uint64_t ns) {
  if (ns <= 1000) return 0;
  double us = static_cast<double>(ns) / 1000.0;
  auto i = static_cast<size_t>(std::ceil(2.0 * std::log2(us)));
  return i < Histogram::kBuckets ? i : Histogram::kBuckets - 1;
}

double bound_us(size_t i) { return std::exp2(static_cast<double>(i) / 2.0); }

}  // namespace

void Histogram::observe(std::chrono::nanoseconds duration) {
  uint64_t ns = duration.count() > 0 ? static_cast<uint64_t>(duration.count()) : 0;
  ++buckets_[bucket_of(ns)];
  ++count_;
  sum_ns_ += ns;
}

double Histogram::upper_bound_s(size_t i) {
  if (i + 1 >= kBuckets) return std::numeric_limits<double>::infinity();
  return bound_us(i) / 1e6;
}

double Histogram::quantile_us(double q) const {
  if (count_ == 0) return 0;
  const double rank = q * static_cast<double>(count_);
  double seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (buckets_[i] == 0) continue;
    double next = seen + static_cast<double>(buckets_[i]);
    if (next >= rank) {
      double low = i == 0 ? 0 : bound_us(i - 1);
      double high = i + 1 >= kBuckets ? bound_us(i - 1) * 2 : bound_us(i);
      return low + (high - low) * (rank - seen) / static_cast<double>(buckets_[i]);
    }
    seen = next;
  }
  return bound_us(kBuckets - 2);
}

Histogram Histogram::since(const Histogram& earlier) const {
  Histogram d;
  for (size_t i = 0; i < kBuckets; ++i) d.buckets_[i] = buckets_[i] - earlier.buckets_[i];
  d.count_ = count_ - earlier.count_;
  d.sum_ns_ = sum_ns_ - earlier.sum_ns_;
  return d;
}

}  // namespace corral::daemon

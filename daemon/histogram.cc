#include "daemon/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace corral::daemon {

namespace {

double bound_us(size_t i) { return std::exp2(static_cast<double>(i) / 2.0); }

// The upper bounds in whole nanoseconds: a duration of N ns is in bucket i
// when N <= 1000 * 2^(i/2), that is N <= floor(1000 * 2^(i/2)).
const std::array<uint64_t, Histogram::kBuckets>& bounds_ns() {
  static const auto bounds = [] {
    std::array<uint64_t, Histogram::kBuckets> b{};
    for (size_t i = 0; i < b.size(); ++i) {
      b[i] = static_cast<uint64_t>(std::floor(1000.0 * bound_us(i)));
    }
    return b;
  }();
  return bounds;
}

// For each bit width of a duration in ns, the first bucket that can hold
// a duration of that width: a duration's bucket is at most three further.
const std::array<uint8_t, 65>& first_bucket_of_width() {
  static const auto first = [] {
    std::array<uint8_t, 65> f{};
    const auto& bounds = bounds_ns();
    for (size_t width = 1; width < f.size(); ++width) {
      const uint64_t smallest = uint64_t{1} << (width - 1);
      auto at = std::lower_bound(bounds.begin(), bounds.end() - 1, smallest);
      f[width] = static_cast<uint8_t>(at - bounds.begin());
    }
    return f;
  }();
  return first;
}

// Bucket i holds (2^((i-1)/2), 2^(i/2)] us; bucket 0 everything up to 1 us.
// Integer compares only: this runs once per task.
size_t bucket_of(uint64_t ns) {
  const auto& bounds = bounds_ns();
  size_t i = first_bucket_of_width()[static_cast<size_t>(std::bit_width(ns))];
  while (i + 1 < Histogram::kBuckets && bounds[i] < ns) ++i;
  return i;
}

}  // namespace

void Histogram::observe(std::chrono::nanoseconds duration) {
  uint64_t ns = duration.count() > 0 ? static_cast<uint64_t>(duration.count()) : 0;
  if (ns != last_ns_) {
    last_ns_ = ns;
    last_bucket_ = bucket_of(ns);
  }
  ++buckets_[last_bucket_];
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

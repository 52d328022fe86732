// Restart pacing: how long to wait before the n-th consecutive restart
// (exponential, capped, with jitter), and whether restarts came too often
// (restart intensity, Erlang/OTP's MaxR in MaxT). Pure: time is an argument.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "config/spec.h"
#include "daemon/clock.h"

namespace corral::daemon {

// SplitMix64 (Steele, Lea and Flood, 2014), a UniformRandomBitGenerator
// with 8 bytes of state: each worker has its own Backoff, and
// std::mt19937_64 kept 2.5 KiB per worker (a third of corrald's heap with
// 100 idle workers) for a jitter factor. Its output mixes well even from
// consecutive seeds, which is how workers are seeded.
class SplitMix64 {
 public:
  using result_type = uint64_t;
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

class Backoff {
 public:
  Backoff(const config::BackoffSpec& spec, uint64_t seed) : spec_(spec), random_(seed) {}

  // Delay before the n-th consecutive failure's restart (n >= 1):
  // min(max, initial * multiplier^(n-1)) times a random factor in
  // [1 - jitter, 1 + jitter].
  Duration delay(uint32_t n);

  // The delay before jitter, for tests and descriptions.
  Duration nominal_delay(uint32_t n) const;

 private:
  config::BackoffSpec spec_;
  SplitMix64 random_;
};

// Counts restarts in a sliding window of the monotonic clock.
class RestartIntensity {
 public:
  // MAX_RESTARTS nullopt: no limit.
  RestartIntensity(std::optional<uint64_t> max_restarts, Duration window)
      : max_restarts_(max_restarts), window_(window) {}

  // Records a restart at NOW if it keeps the count within max_restarts over
  // the window, and says so; false means "too many: give up".
  bool allow(TimePoint now);
  void clear() { restarts_.clear(); }
  // Restarts inside the window ending at NOW.
  size_t count(TimePoint now);

 private:
  void expire(TimePoint now);
  std::optional<uint64_t> max_restarts_;
  Duration window_;
  // Oldest first. A vector: a deque allocates 576 bytes before its first
  // element, and every worker has one of these.
  std::vector<TimePoint> restarts_;
};

}  // namespace corral::daemon

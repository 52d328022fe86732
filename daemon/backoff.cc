#include "daemon/backoff.h"

#include <algorithm>
#include <cmath>

namespace corral::daemon {

Duration Backoff::nominal_delay(uint32_t n) const {
  if (n == 0) return Duration::zero();
  double initial = static_cast<double>(spec_.initial.count());
  double cap = static_cast<double>(spec_.max.count());
  // Computed in doubles and capped before converting, so a large n cannot overflow.
  double delay = initial * std::pow(spec_.multiplier, static_cast<double>(n - 1));
  if (!std::isfinite(delay) || delay > cap) delay = cap;
  return Duration(static_cast<Duration::rep>(std::llround(delay)));
}

Duration Backoff::delay(uint32_t n) {
  double nominal = static_cast<double>(nominal_delay(n).count());
  if (spec_.jitter > 0) {
    std::uniform_real_distribution<double> factor(1.0 - spec_.jitter, 1.0 + spec_.jitter);
    nominal *= factor(random_);
  }
  return Duration(static_cast<Duration::rep>(std::llround(std::max(0.0, nominal))));
}

void RestartIntensity::expire(TimePoint now) {
  auto in_window = std::find_if(restarts_.begin(), restarts_.end(),
                                [&](TimePoint at) { return now - at < window_; });
  restarts_.erase(restarts_.begin(), in_window);
}

bool RestartIntensity::allow(TimePoint now) {
  if (!max_restarts_) return true;
  expire(now);
  if (restarts_.size() >= *max_restarts_) return false;
  restarts_.push_back(now);
  return true;
}

size_t RestartIntensity::count(TimePoint now) {
  expire(now);
  return restarts_.size();
}

}  // namespace corral::daemon

// How long something has run, for people: the form `corralctl status` shows
// and corrald's worker descriptions use ("pid 12, uptime 1:02:03"), written
// once so that both say the same.
//
// Header-only and dependent on nothing of corral's (base/); thread-safe.
#pragma once

#include <cstdio>
#include <string>

namespace corral {

// "1:02:03" for 3723 seconds, "2 days, 1:02:03" past a day (supervisorctl's
// form); a negative time is 0:00:00.
inline std::string format_uptime(double seconds) {
  if (seconds < 0) seconds = 0;
  auto total = static_cast<long long>(seconds);
  long long days = total / 86400;
  long long h = total % 86400 / 3600, m = total % 3600 / 60, s = total % 60;
  char buf[64];
  if (days > 0) {
    std::snprintf(buf, sizeof buf, "%lld day%s, %lld:%02lld:%02lld", days, days == 1 ? "" : "s", h,
                  m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  }
  return buf;
}

}  // namespace corral

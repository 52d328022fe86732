// Small blocking I/O helpers, written once: whole writes, retried on EINTR.
//
// Header-only and dependent on nothing of corral's but base/.
#pragma once

#include <errno.h>
#include <unistd.h>

#include <string_view>

#include "base/result.h"

namespace corral {

// Writes all of DATA to FD (a blocking fd), retrying on EINTR and short
// writes. The error names WHAT ("log file /x", "stdout").
inline Status write_all(int fd, std::string_view data, std::string_view what = "write") {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace corral

// Small I/O helpers, written once: whole writes retried on EINTR, a pipe whose
// ends close themselves.
//
// Header-only and dependent on nothing of corral's but base/.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

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

// Both ends of a pipe, each closed when it goes.
struct Pipe {
  UniqueFd read, write;
};

// A close-on-exec pipe.
inline Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return errno_error("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace corral

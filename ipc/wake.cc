#include "ipc/wake.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <utility>

namespace corral::ipc {

Result<EventFd> EventFd::create() {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) return errno_error("eventfd");
  return EventFd(std::move(fd));
}

void EventFd::signal() const {
  const uint64_t one = 1;
  // EAGAIN means the counter is at its maximum: the waiter is woken anyway.
  while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

bool EventFd::drain() const {
  uint64_t count = 0;
  ssize_t n;
  do {
    n = ::read(fd_.get(), &count, sizeof count);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof count) && count != 0;
}

bool EventFd::wait(std::optional<std::chrono::milliseconds> timeout) const {
  int timeout_ms = -1;
  if (timeout) {
    const auto ms = std::max<int64_t>(0, timeout->count());
    timeout_ms = static_cast<int>(std::min<int64_t>(ms, INT_MAX));
  }
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;  // timeout, EINTR or a bad fd
  return drain();
}

}  // namespace corral::ipc

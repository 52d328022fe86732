// Wake-ups between processes: an eventfd, written only when the other side
// has said it is about to sleep (SpscRing's waiting flags), so the hot path
// makes no syscall. RAII; not thread-safe per object (one writer, one
// waiter, as the rings are).
#pragma once

#include <chrono>
#include <optional>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::ipc {

class EventFd {
 public:
  // A new non-blocking, close-on-exec eventfd.
  static Result<EventFd> create();
  // An inherited eventfd, owned from here.
  static EventFd adopt(UniqueFd fd) { return EventFd(std::move(fd)); }

  int fd() const { return fd_.get(); }
  // Adds 1; never blocks (the counter cannot overflow in practice).
  void signal() const;
  // Resets the counter; true if it was non-zero.
  bool drain() const;
  // Blocks until signalled or TIMEOUT passes (nullopt: forever), then
  // drains; true if signalled. EINTR counts as a timeout.
  bool wait(std::optional<std::chrono::milliseconds> timeout) const;

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace corral::ipc

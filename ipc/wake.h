// Wake-ups between processes: an eventfd, written only when the other side
// has said it is about to sleep (SpscRing's waiting flags), so the hot path
// makes no syscall. RAII; not thread-safe per object (one writer, one
// waiter, as the rings are).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace corral::ipc {

class EventFd {
 public:
  // A new non-blocking, close-on-exec eventfd; nullopt with ERROR set on failure.
  static std::optional<EventFd> create(std::string& error);
  // Takes ownership of an inherited fd.
  static EventFd adopt(int fd) { return EventFd(fd); }

  EventFd(EventFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  EventFd& operator=(EventFd&& other) noexcept;
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  ~EventFd();

  int fd() const { return fd_; }
  // Adds 1; never blocks (the counter cannot overflow in practice).
  void signal() const;
  // Resets the counter; true if it was non-zero.
  bool drain() const;
  // Blocks until signalled or TIMEOUT passes (nullopt: forever), then
  // drains; true if signalled. EINTR counts as a timeout.
  bool wait(std::optional<std::chrono::milliseconds> timeout) const;

 private:
  explicit EventFd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace corral::ipc

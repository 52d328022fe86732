// File descriptors kept back for the control socket.
//
// A daemon at its RLIMIT_NOFILE (its workers hold every fd) must still let
// a person in to stop some of them. And accept() that fails with EMFILE
// leaves the connection queued, so the listening socket stays readable and
// a loop that accepts again at once spins at full CPU. An FdReserve holds a
// few spare fds (/dev/null) for that moment: one is given up to take a
// queued connection, and taken back as soon as that connection is closed,
// in the same turn of the event loop, before anything else can claim the fd
// (nginx and libuv keep one spare for the same reason).
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <boost/system/error_code.hpp>
#include <cstddef>
#include <vector>

namespace corral::daemon {

class FdReserve {
 public:
  explicit FdReserve(size_t size);
  ~FdReserve();
  FdReserve(const FdReserve&) = delete;
  FdReserve& operator=(const FdReserve&) = delete;

  // Whether an accept error means "no fd for the connection" (EMFILE,
  // ENFILE, ENOBUFS, ENOMEM): the connection is still queued.
  static bool out_of_fds(const boost::system::error_code& ec);

  size_t available() const { return spares_.size(); }
  // Gives up one spare and accepts the first queued connection of LISTENER
  // with it (non-blocking, close-on-exec); -1 when no spare was held or
  // accept failed anyway (the spare is taken back then).
  int accept_with_spare(int listener);
  // Takes spares again up to the size, as far as fds allow: call it right
  // after closing an fd that accept_with_spare gave.
  void refill();

 private:
  size_t size_;
  std::vector<int> spares_;
};

}  // namespace corral::daemon

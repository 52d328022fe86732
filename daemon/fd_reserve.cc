#include "daemon/fd_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corral::daemon {

FdReserve::FdReserve(size_t size) : size_(size) { refill(); }

FdReserve::~FdReserve() {
  for (int fd : spares_) ::close(fd);
}

bool FdReserve::out_of_fds(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

int FdReserve::accept_with_spare(int listener) {
  if (spares_.empty()) return -1;
  ::close(spares_.back());
  spares_.pop_back();
  int fd;
  do {
    fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) refill();
  return fd;
}

void FdReserve::refill() {
  while (spares_.size() < size_) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    spares_.push_back(fd);
  }
}

}  // namespace corral::daemon

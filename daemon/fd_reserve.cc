#include "daemon/fd_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace corral::daemon {

FdReserve::FdReserve(size_t size) : size_(size) { refill(); }

bool FdReserve::out_of_fds(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

UniqueFd FdReserve::accept_with_spare(int listener) {
  if (spares_.empty()) return {};
  spares_.pop_back();  // closes it: the fd accept4 takes
  int fd;
  do {
    fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) refill();
  return UniqueFd(fd);
}

void FdReserve::refill() {
  while (spares_.size() < size_) {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!fd) return;
    spares_.push_back(std::move(fd));
  }
}

Tally::Place& Tally::Place::operator=(Place&& other) noexcept {
  if (this != &other) {
    release();
    count_ = std::move(other.count_);
  }
  return *this;
}

void Tally::Place::release() {
  if (count_) --*count_;
  count_.reset();
}

Tally::Place Tally::take() {
  ++*count_;
  return Place(count_);
}

ClientBudget::ClientBudget(std::function<uint64_t()> nofile) : nofile_(std::move(nofile)) {}

uint64_t ClientBudget::soft_nofile_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur == RLIM_INFINITY) return 1024;
  return limit.rlim_cur;
}

size_t ClientBudget::limit() const {
  return static_cast<size_t>(std::min<uint64_t>(nofile_() / 4, kMaxClients));
}

Tally::Place ClientBudget::take() {
  if (tally_.count() < limit()) return tally_.take();
  if (reclaim_) return reclaim_();
  return {};
}

}  // namespace corral::daemon

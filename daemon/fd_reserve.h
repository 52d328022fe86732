// How corrald shares its file descriptors between clients and workers, both
// ways.
//
// Clients may not starve the workers: every client connection, control
// socket and /metrics together, takes a place in a ClientBudget, a quarter
// of RLIMIT_NOFILE. However many connections local users or scrapers open,
// three quarters of the fds stay for spawning workers (a pidfd, output
// pipes, channel pipes or eventfds each) and for the daemon itself.
//
// Workers may not lock people out: a daemon at its RLIMIT_NOFILE (its
// workers hold every fd) must still let a person in to stop some of them.
// And accept() that fails with EMFILE leaves the connection queued, so the
// listening socket stays readable and a loop that accepts again at once
// spins at full CPU. An FdReserve holds a few spare fds (/dev/null) for that
// moment: one is given up to take a queued connection, and taken back as
// soon as that connection is closed, in the same turn of the event loop,
// before anything else can claim the fd (nginx and libuv keep one spare for
// the same reason).
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/unique_fd.h"

namespace corral::daemon {

class FdReserve {
 public:
  explicit FdReserve(size_t size);
  FdReserve(const FdReserve&) = delete;
  FdReserve& operator=(const FdReserve&) = delete;

  // Whether an accept error means "no fd for the connection" (EMFILE,
  // ENFILE, ENOBUFS, ENOMEM): the connection is still queued.
  static bool out_of_fds(const boost::system::error_code& ec);

  size_t available() const { return spares_.size(); }
  // Gives up one spare and accepts the first queued connection of LISTENER
  // with it (non-blocking, close-on-exec); an empty fd when no spare was
  // held or accept failed anyway (the spare is taken back then).
  UniqueFd accept_with_spare(int listener);
  // Takes spares again up to the size, as far as fds allow: call it right
  // after closing an fd that accept_with_spare gave.
  void refill();

 private:
  size_t size_;
  std::vector<UniqueFd> spares_;
};

// A count of places taken, each held by a Place that gives it back when it
// is destroyed. The count is shared with the places: a place may outlive
// whoever counts (a session lives on in the event loop's handlers after its
// server has gone).
class Tally {
 public:
  class Place {
   public:
    Place() = default;
    Place(Place&& other) noexcept = default;
    Place& operator=(Place&& other) noexcept;
    Place(const Place&) = delete;
    Place& operator=(const Place&) = delete;
    ~Place() { release(); }
    // Whether it holds a place (a default or moved-from Place does not).
    explicit operator bool() const { return count_ != nullptr; }

   private:
    friend class Tally;
    explicit Place(std::shared_ptr<size_t> count) : count_(std::move(count)) {}
    void release();
    std::shared_ptr<size_t> count_;
  };

  size_t count() const { return *count_; }
  // One more place; the caller has checked any limit.
  Place take();

 private:
  std::shared_ptr<size_t> count_ = std::make_shared<size_t>(0);
};

// The client connections corrald holds at once, control socket and /metrics
// together: at most a quarter of RLIMIT_NOFILE as it is at each new
// connection (so `prlimit --pid` counts), and at most kMaxClients. When the
// budget is spent, a new client may take the place of a /metrics connection
// (the reclaimer closes one and hands its place over); control connections
// keep theirs, so scrapers cannot lock people out of the control socket.
class ClientBudget {
 public:
  static constexpr size_t kMaxClients = 4096;

  // NOFILE reads the soft RLIMIT_NOFILE (a test gives its own).
  explicit ClientBudget(std::function<uint64_t()> nofile = soft_nofile_limit);
  ClientBudget(const ClientBudget&) = delete;
  ClientBudget& operator=(const ClientBudget&) = delete;

  static uint64_t soft_nofile_limit();

  size_t limit() const;
  size_t in_use() const { return tally_.count(); }
  // A place for one more client; an empty Place when the budget is spent and
  // the reclaimer had nothing to give up.
  Tally::Place take();
  // RECLAIM closes a connection that may give up its place and returns that
  // place, or an empty Place. Cleared with an empty function.
  void set_reclaimer(std::function<Tally::Place()> reclaim) { reclaim_ = std::move(reclaim); }

 private:
  std::function<uint64_t()> nofile_;
  std::function<Tally::Place()> reclaim_;
  Tally tally_;
};

}  // namespace corral::daemon

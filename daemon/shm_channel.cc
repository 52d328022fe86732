#include "daemon/shm_channel.h"

#include <fcntl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include "base/unique_fd.h"
#include "ipc/wake.h"
#include "ipc/worker_rings.h"

namespace corral::daemon {

namespace asio = boost::asio;
using asio::posix::stream_descriptor;

namespace {

class ShmChannel : public Channel {
 public:
  // Rounds of take-release in one turn of the event loop: a worker that
  // publishes records as fast as the daemon takes them gets the loop back
  // after this many rings' worth, the rest of the daemon in between.
  static constexpr int kRoundsPerTurn = 8;

  // RESULT_WAKE_WATCHED is a dup of RESULT_WAKE's fd, for the loop to watch.
  // Renews the worker's slot and rings in SEGMENT.
  ShmChannel(const ChannelContext& context, uint32_t worker, asio::io_context& io,
             ipc::Segment& segment, ipc::EventFd task_wake, ipc::EventFd result_wake,
             UniqueFd result_wake_watched)
      : Channel(context, worker),
        io_(io),
        rings_(segment, worker),
        task_wake_(std::move(task_wake)),
        result_wake_(io, result_wake_watched.release()),
        result_wake_fd_(std::move(result_wake)) {
    takes_results_frames_ = true;
  }

  // The heartbeat cell counts only when it changes, at the daemon's time of
  // seeing it: the value a worker writes there is not a time we trust.
  TimePoint last_sign(TimePoint now) override {
    return std::max(Channel::last_sign(now), rings_.heartbeat_seen(now));
  }

  uint64_t finished_unanswered() const override {
    const uint64_t done = rings_.tasks_done();
    return done > answered_ ? done - answered_ : 0;
  }

  int task_wake_fd() const { return task_wake_.fd(); }
  int result_wake_fd() const { return result_wake_fd_.fd(); }

  void start() override { wait_for_results(); }

  bool can_send(size_t payload_bytes) const override {
    if (rings_.can_send(payload_bytes)) return true;
    no_room();
    return false;
  }

  void send(uint64_t id, std::string_view payload) override { rings_.send(id, payload); }

  bool send_chunk(uint64_t first_id, uint32_t count, std::string_view items) override {
    if (rings_.send_chunk(first_id, count, items)) return true;
    no_room();
    return false;
  }

  void flush() override {
    const bool published = rings_.tasks().has_unpublished();
    if (rings_.publish()) task_wake_.signal();
    // Tiny tasks handed over one at a time (nothing queued, and no more in
    // flight than one a worker): their results are polled for, once the
    // loop has done what it has to, rather than waited for. A stream keeps
    // the workers busy without it, and a spinning corrald would take their
    // CPU and read no more tasks meanwhile.
    const auto spin = context_.spin;
    Dispatcher& tasks = dispatcher();
    if (published && spin.count() > 0 && tasks.queued() == 0 &&
        tasks.in_flight() <= tasks.worker_count() && tasks.service_time() < spin &&
        !std::exchange(spin_posted_, true)) {
      asio::post(io_, [this, alive = alive()] {
        if (!alive.expired()) spin_for_results();
      });
    }
  }

  void sentinel() override {
    sentinel_sent_ = true;
    dispatcher().detach(worker_);
    sentinel_pending_ = true;
    push_sentinel();
  }

 private:
  // The task ring had no room: full, or its indexes were scribbled on by
  // the worker. Then the rings are looked at once the dispatcher is done,
  // so that it is reported even if the worker never wakes us (later,
  // outside the dispatcher's const call of can_send()).
  void no_room() const {
    if (rings_.tasks().corrupted() && !std::exchange(check_posted_, true)) {
      asio::post(io_, [self = const_cast<ShmChannel*>(this), alive = alive()] {
        if (!alive.expired()) self->take_results();
      });
    }
  }

  void push_sentinel() {
    if (!sentinel_pending_) return;
    if (!rings_.push_shutdown()) return;  // full: tried again after the next results
    sentinel_pending_ = false;
    flush();
  }

  // Polls the result ring for up to the job's spin, without asking the
  // worker for a wake-up meanwhile, and takes what came; the eventfd wait
  // stays armed for what comes later.
  void spin_for_results() {
    spin_posted_ = false;
    if (broken_) return;
    rings_.stay_awake();
    const auto until = std::chrono::steady_clock::now() + context_.spin;
    for (int i = 1; !rings_.results_waiting(); ++i) {
      if ((i & 63) == 0) {
        if (std::chrono::steady_clock::now() >= until) break;
        ipc::spin_yield();
      }
      ipc::cpu_relax();
    }
    for (int round = 0; round < kRoundsPerTurn; ++round) {
      if (!take_results()) return;
      // Asleep again, unless a result came meanwhile (take it first).
      if (rings_.prepare_sleep()) return;
    }
    asio::post(io_, [this, alive = alive()] {
      if (!alive.expired()) drain();
    });
  }

  void wait_for_results() {
    result_wake_.async_wait(stream_descriptor::wait_read,
                            [this, alive = alive()](boost::system::error_code ec) {
                              if (ec || alive.expired()) return;
                              result_wake_fd_.drain();
                              drain();
                            });
  }

  void collect_remains() override {
    if (!broken_) take_results();
  }

  // Handles the published results, at most one ring of them (the rest
  // stays for the next call); false after a protocol error.
  bool take_results() {
    begin_batch();
    size_t n = 0;
    ipc::Frame frame;
    std::string why;
    for (;;) {
      ipc::WorkerRings::Take take = rings_.next(frame, why);
      if (take == ipc::WorkerRings::Take::kNone) break;
      if (take == ipc::WorkerRings::Take::kBroken) {
        protocol_error(why);
        return false;
      }
      if (!on_frame(frame)) return false;
      rings_.consume();
      ++n;
    }
    if (rings_.release()) task_wake_.signal();  // the worker waited for room
    if (n > 0) {
      push_sentinel();
      results_done();
    }
    return true;
  }

  void drain() {
    for (int round = 0;; ++round) {
      if (!take_results()) return;
      // Sleep only when nothing came between the last peek and the flag.
      if (rings_.prepare_sleep()) break;
      if (round + 1 == kRoundsPerTurn) {
        // Still more: the rest after whatever else the loop has to do.
        asio::post(io_, [this, alive = alive()] {
          if (!alive.expired()) drain();
        });
        return;
      }
    }
    wait_for_results();
  }

  asio::io_context& io_;
  mutable ipc::WorkerRings rings_;
  ipc::EventFd task_wake_;
  stream_descriptor result_wake_;  // a dup of result_wake_fd_, watched by the loop
  ipc::EventFd result_wake_fd_;
  bool sentinel_pending_ = false;
  mutable bool check_posted_ = false;
  bool spin_posted_ = false;  // spin_for_results() is posted
};

}  // namespace

Result<std::unique_ptr<Channel>> open_shm_channel(const ChannelContext& context, uint32_t worker,
                                                  asio::io_context& io, ipc::Segment& segment,
                                                  SpawnRequest& request) {
  if (worker >= segment.worker_count()) {
    return Error("worker " + std::to_string(worker) + " has no slot in the job's segment (" +
                 std::to_string(segment.worker_count()) + " slots)");
  }
  Result<ipc::EventFd> task_wake = ipc::EventFd::create();
  if (!task_wake) return std::move(task_wake).error();
  Result<ipc::EventFd> result_wake = ipc::EventFd::create();
  if (!result_wake) return std::move(result_wake).error();
  // Checked here: the loop cannot watch fd -1 (Asio would throw out of the
  // event loop when the daemon is out of fds).
  UniqueFd watched(::fcntl(result_wake->fd(), F_DUPFD_CLOEXEC, 0));
  if (!watched) return errno_error("dup of the result eventfd");
  auto channel = std::make_unique<ShmChannel>(context, worker, io, segment, std::move(*task_wake),
                                              std::move(*result_wake), std::move(watched));
  request.fds.push_back({3, segment.fd()});
  request.fds.push_back({4, channel->task_wake_fd()});
  request.fds.push_back({5, channel->result_wake_fd()});
  request.env.push_back("CORRAL_SHM=fd:3");
  request.env.push_back("CORRAL_FDS=4,5");
  return std::unique_ptr<Channel>(std::move(channel));
}

}  // namespace corral::daemon

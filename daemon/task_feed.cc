#include "daemon/task_feed.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <limits>
#include <utility>

#include "config/emit.h"
#include "config/units.h"
#include "ipc/frame.h"
#include "ipc/wake.h"
#include "ipc/worker_rings.h"
#include "protocol/control.h"

namespace corral::daemon {

constexpr uint32_t kMinWorkerSlots = 64;

namespace asio = boost::asio;
using asio::posix::stream_descriptor;

// ---------------------------------------------------------------------------
// Channels

// One worker's channel: a WorkerPort for the dispatcher plus its lifecycle.
class TaskFeed::Channel : public WorkerPort {
 public:
  Channel(TaskFeed& feed, uint32_t worker) : feed_(feed), worker_(worker) {}
  ~Channel() override = default;
  // The child exists and has its ends: start listening.
  virtual void start() = 0;
  virtual void sentinel() = 0;
  // The worker is dead: takes in the results it left in the channel, which
  // are as good as any, before its tasks are redelivered.
  virtual void collect_remains() = 0;

  // When the worker last showed it is alive, as the daemon saw it by NOW:
  // anything read from it (shm channels also look at the heartbeat cell of
  // its slot, and count a change of it as seen at NOW).
  virtual TimePoint last_sign(TimePoint /*now*/) { return last_sign_; }
  bool ready() const { return ready_; }
  // Marks the heartbeat kill, so that it is asked for once.
  bool take_silence() { return !std::exchange(silent_, true); }

 protected:
  // Something came from the worker: the time of this batch of results.
  void begin_batch() {
    batch_now_ = Clock::now();
    last_sign_ = batch_now_;
  }

  // Hands one result to the dispatcher; false on a protocol error.
  bool on_result(uint64_t id, bool ok, std::string_view payload) {
    if (!feed_.dispatcher_.result(worker_, id, ok, payload, batch_now_)) {
      return protocol_error("result for task " + std::to_string(id) +
                            ", which this worker does not hold");
    }
    // limits.max_tasks: its last task is answered; restart it by sentinel.
    if (feed_.dispatcher_.budget_spent(worker_) && feed_.dispatcher_.held_by(worker_) == 0 &&
        !std::exchange(recycled_, true)) {
      feed_.events_.recycle(worker_);
    }
    return true;
  }

  void attach() {
    if (!sentinel_sent_) feed_.dispatcher_.attach(worker_, this, feed_.job_.limits.max_tasks);
  }

  // Hands one decoded frame to the dispatcher; false on a protocol error
  // (already reported).
  bool on_frame(const ipc::Frame& frame) {
    switch (frame.type) {
      case ipc::FrameType::kResult:
        return on_result(frame.id, frame.status == ipc::ResultStatus::kOk, frame.payload);
      case ipc::FrameType::kReady:
        if (ready_) return protocol_error("a second READY");
        ready_ = true;
        attach();
        feed_.events_.ready(worker_);
        return true;
      case ipc::FrameType::kHeartbeat:
        return true;
      default:
        return protocol_error("unexpected frame type " +
                              std::to_string(static_cast<int>(frame.type)));
    }
  }

  bool protocol_error(const std::string& why) {
    if (!broken_) {
      broken_ = true;
      feed_.dispatcher_.detach(worker_);
      feed_.events_.kill(worker_, "protocol error: " + why, "protocol");
    }
    return false;
  }

  Dispatcher& dispatcher() { return feed_.dispatcher_; }
  void results_done() { feed_.after_results(); }

  // Completions already queued when a channel is destroyed still run, with
  // whatever result they had: every handler checks this token first.
  std::weak_ptr<int> alive() const { return alive_; }

  TaskFeed& feed_;
  uint32_t worker_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool ready_ = false;
  bool broken_ = false;
  bool sentinel_sent_ = false;
  bool recycled_ = false;
  bool silent_ = false;
  TimePoint batch_now_ = Clock::now();
  TimePoint last_sign_ = Clock::now();
};

namespace {

// Shared-memory rings: tasks go into the worker's task ring, results come
// back through its result ring; eventfds wake a side only when it sleeps.
// Everything read from the segment goes through ipc::WorkerRings, which
// trusts none of it.
class ShmChannel : public TaskFeed::Channel {
 public:
  // Rounds of take-release in one turn of the event loop: a worker that
  // publishes records as fast as the daemon takes them gets the loop back
  // after this many rings' worth, the rest of the daemon in between.
  static constexpr int kRoundsPerTurn = 8;

  // RESULT_WAKE_WATCHED is a dup of RESULT_WAKE's fd (taken over here), for
  // the loop to watch. Renews the worker's slot and rings in SEGMENT.
  ShmChannel(TaskFeed& feed, uint32_t worker, asio::io_context& io, ipc::Segment& segment,
             ipc::EventFd task_wake, ipc::EventFd result_wake, int result_wake_watched)
      : Channel(feed, worker),
        io_(io),
        rings_(segment, worker),
        task_wake_(std::move(task_wake)),
        result_wake_(io, result_wake_watched),
        result_wake_fd_(std::move(result_wake)) {}

  // The heartbeat cell counts only when it changes, at the daemon's time of
  // seeing it: the value a worker writes there is not a time we trust.
  TimePoint last_sign(TimePoint now) override {
    return std::max(Channel::last_sign(now), rings_.heartbeat_seen(now));
  }

  int task_wake_fd() const { return task_wake_.fd(); }
  int result_wake_fd() const { return result_wake_fd_.fd(); }

  void start() override { wait_for_results(); }

  bool can_send(size_t payload_bytes) const override {
    if (rings_.can_send(payload_bytes)) return true;
    // Full, or a task ring whose indexes the worker scribbled on: look at
    // the rings once the dispatcher is done, so that it is reported even if
    // the worker never wakes us.
    if (rings_.tasks().corrupted() && !std::exchange(check_posted_, true)) {
      // The look happens later, outside this const call of the dispatcher's.
      asio::post(io_, [self = const_cast<ShmChannel*>(this), alive = alive()] {
        if (!alive.expired()) self->take_results();
      });
    }
    return false;
  }

  void send(uint64_t id, std::string_view payload) override { rings_.send(id, payload); }

  void flush() override {
    if (rings_.publish()) task_wake_.signal();
  }

  void sentinel() override {
    sentinel_sent_ = true;
    dispatcher().detach(worker_);
    sentinel_pending_ = true;
    push_sentinel();
  }

 private:
  void push_sentinel() {
    if (!sentinel_pending_) return;
    if (!rings_.push_shutdown()) return;  // full: tried again after the next results
    sentinel_pending_ = false;
    flush();
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
};

// A pair of pipes with line or length framing.
class PipeChannel : public TaskFeed::Channel {
 public:
  static constexpr size_t kMaxOutbox = 4 << 20;

  PipeChannel(TaskFeed& feed, uint32_t worker, asio::io_context& io, int to_worker, int from_worker,
              config::Framing framing, size_t max_bytes)
      : Channel(feed, worker),
        out_(io, to_worker),
        in_(io, from_worker),
        framing_(framing),
        frames_(max_bytes + ipc::kResultHeaderBytes),
        lines_(max_bytes) {}

  void start() override {
    // Any line filter is a worker: it never says READY, so it takes tasks
    // from the start.
    read_more();
    if (framing_ == config::Framing::kLines) {
      ready_ = true;
      attach();
      results_done();  // hand it the queued tasks now, not at the next event
    }
  }

  bool can_send(size_t) const override { return pending_.size() < kMaxOutbox; }

  void send(uint64_t id, std::string_view payload) override {
    if (framing_ == config::Framing::kLines) {
      pending_.append(payload);
      pending_.push_back('\n');
    } else {
      ipc::append_task(pending_, id, payload);
    }
  }

  void flush() override {
    if (writing_ || pending_.empty() || closed_) return;
    writing_ = true;
    writing_buffer_.swap(pending_);
    pending_.clear();
    asio::async_write(out_, asio::buffer(writing_buffer_),
                      [this, alive = alive()](boost::system::error_code ec, size_t) {
                        if (alive.expired()) return;  // the channel is gone
                        writing_ = false;
                        writing_buffer_.clear();
                        // EPIPE: the worker is gone; its exit is handled by the pidfd.
                        if (ec) return;
                        if (close_after_write_ && pending_.empty()) return close_input();
                        flush();
                      });
  }

  void sentinel() override {
    sentinel_sent_ = true;
    dispatcher().detach(worker_);
    if (framing_ == config::Framing::kLines) {
      // EOF on its input is a line worker's sentinel.
      close_after_write_ = true;
      if (!writing_ && pending_.empty())
        close_input();
      else
        flush();
    } else {
      ipc::append_control(pending_, ipc::FrameType::kShutdown);
      flush();
    }
  }

 private:
  void close_input() {
    boost::system::error_code ignored;
    out_.close(ignored);
    closed_ = true;
  }

  void read_more() {
    in_.async_read_some(
        asio::buffer(buffer_), [this, alive = alive()](boost::system::error_code ec, size_t n) {
          if (ec || alive.expired()) return;  // EOF or error: the exit comes through the pidfd
          bool ok = framing_ == config::Framing::kLines ? on_lines(n) : on_frames(n);
          if (!ok) return;
          results_done();
          read_more();
        });
  }

  void collect_remains() override {
    if (broken_) return;
    int fd = in_.native_handle();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
      ssize_t n = ::read(fd, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      bool ok = framing_ == config::Framing::kLines ? on_lines(static_cast<size_t>(n))
                                                    : on_frames(static_cast<size_t>(n));
      if (!ok) break;
    }
  }

  bool on_lines(size_t n) {
    begin_batch();
    lines_.feed(std::string_view(buffer_.data(), n));
    std::string_view line;
    for (;;) {
      auto status = lines_.next(line);
      if (status == ipc::DecodeStatus::kNeedMore) return true;
      if (status == ipc::DecodeStatus::kError) return protocol_error(lines_.error());
      auto id = dispatcher().oldest(worker_);
      if (!id) return protocol_error("a result line for no task");
      if (!on_result(*id, true, line)) return false;
    }
  }

  bool on_frames(size_t n) {
    begin_batch();
    frames_.feed(std::string_view(buffer_.data(), n));
    ipc::Frame frame;
    for (;;) {
      auto status = frames_.next(frame);
      if (status == ipc::DecodeStatus::kNeedMore) return true;
      if (status == ipc::DecodeStatus::kError) return protocol_error(frames_.error());
      if (!on_frame(frame)) return false;
    }
  }

  stream_descriptor out_;
  stream_descriptor in_;
  config::Framing framing_;
  ipc::FrameDecoder frames_;
  ipc::LineDecoder lines_;
  std::array<char, 64 * 1024> buffer_;
  std::string pending_;
  std::string writing_buffer_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
};

ipc::SharedElement element(config::SharedType type) {
  switch (type) {
    case config::SharedType::kU64:
      return ipc::SharedElement::kU64;
    case config::SharedType::kI64:
      return ipc::SharedElement::kI64;
    case config::SharedType::kF64:
      return ipc::SharedElement::kF64;
  }
  return ipc::SharedElement::kU64;
}

uint64_t next_pow2(uint64_t n) { return std::bit_ceil(std::max<uint64_t>(n, 4096)); }

}  // namespace

// ---------------------------------------------------------------------------
// The feed

struct TaskFeed::Ticker {
  explicit Ticker(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

// A source file, read a chunk at a time as the queue has room. What is
// held is at most one line of max_task_bytes and one chunk: a longer line is
// skipped as it is read, not kept whole.
struct TaskFeed::SourceFile {
  static constexpr size_t kChunk = 64 * 1024;
  UniqueFd fd;
  std::string buffer;  // read, from `begin` on not yet queued
  size_t begin = 0;
  bool eof = false;
  uint64_t line = 0;      // lines taken so far
  uint64_t skipping = 0;  // bytes of an overlong line read so far, or 0
};

TaskFeed::TaskFeed(asio::io_context& io, const config::JobSpec& job, FeedEvents events)
    : io_(io),
      job_(job),
      events_(std::move(events)),
      dispatcher_(job.queue, [this](FinishedTask&& task) { finished(std::move(task)); }) {}

TaskFeed::~TaskFeed() { channels_.clear(); }

namespace {

// FILE (a job's sink or source, as configured) opened for USE through its
// directory, which PRIVATE_DIRS judges; KIND is "sink" or "source". Not
// open, with ERROR set, when refused.
OpenedFile open_job_file(const std::string& file, FileUse use, const char* kind,
                         PrivateDirs& private_dirs, std::string& error) {
  auto [directory, name] = split_file_path(file);
  OpenedFile opened;
  if (name.empty()) {
    error = std::string(kind) + " " + file + " names a directory, not a file";
    return opened;
  }
  PrivateDir dir = private_dirs.open(directory, std::string(kind) + " directory", false);
  if (!dir.dir) {
    error = dir.error;
    return opened;
  }
  opened = dir.dir->open(name, use, kind);
  if (opened.missing) {
    error = std::string(kind) + " " + file + ": " + strerror(ENOENT);
  } else if (!opened) {
    error = opened.error;
  }
  return opened;
}

}  // namespace

std::unique_ptr<TaskFeed> TaskFeed::create(asio::io_context& io, const config::JobSpec& job,
                                           FeedEvents events, PrivateDirs& private_dirs,
                                           std::string& error) {
  std::unique_ptr<TaskFeed> feed(new TaskFeed(io, job, std::move(events)));
  if (job.channel == config::Channel::kShm) {
    ipc::SegmentSpec spec;
    spec.job = job.name;
    // Slots to spare: a reload that grows the job up to this many workers
    // keeps the segment (its shared values, and the workers that run).
    // An unused slot costs its row and the two pages of its ring headers.
    spec.workers = std::max(job.workers, kMinWorkerSlots);
    // Room for a full prefetch of average tasks, and at least two of the
    // largest, so that one big task never blocks the ring.
    uint64_t record = job.queue.max_task_bytes + ipc::kResultHeaderBytes + 8;
    spec.ring_capacity = next_pow2(std::max<uint64_t>(2 * record, 256 * 1024));
    for (const auto& [name, type] : job.shared.values) {
      spec.shared.push_back({name, element(type), false, 1});
    }
    for (const auto& [name, array] : job.shared.arrays) {
      spec.shared.push_back({name, element(array.type), true, array.length});
    }
    feed->segment_ = ipc::Segment::create(spec, error);
    if (!feed->segment_) return nullptr;
  }
  if (job.sink.kind == config::SinkSpec::Kind::kFile) {
    OpenedFile sink = open_job_file(job.sink.file, FileUse::kAppend, "sink", private_dirs, error);
    if (!sink) return nullptr;
    feed->sink_ = std::move(sink.fd);
  }
  if (job.source.kind == config::SourceSpec::Kind::kRange) {
    feed->source_next_ = job.source.from;
  } else if (job.source.kind == config::SourceSpec::Kind::kFile) {
    OpenedFile source =
        open_job_file(job.source.file, FileUse::kRead, "source", private_dirs, error);
    if (!source) return nullptr;
    feed->source_file_ = std::make_unique<SourceFile>();
    feed->source_file_->fd = std::move(source.fd);
  }
  feed->feed_source();
  feed->watch();
  return feed;
}

// A ticker at a fraction of the shortest of queue.task_timeout and
// health.heartbeat_timeout. Task timeout: a worker whose oldest task has
// been its oldest (the one it runs) for longer than task_timeout is killed;
// that task is charged the attempt and the others are redelivered.
// Heartbeat: a READY worker that showed no sign of life for longer than
// heartbeat_timeout is killed.
void TaskFeed::watch() {
  const auto& task_timeout = job_.queue.task_timeout;
  const auto& heartbeat_timeout = job_.health.heartbeat_timeout;
  if (!task_timeout && !heartbeat_timeout) return;
  Duration shortest =
      std::min(task_timeout.value_or(Duration::max()), heartbeat_timeout.value_or(Duration::max()));
  const auto tick =
      std::clamp<Duration>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
  if (!ticker_) ticker_ = std::make_unique<Ticker>(io_);
  ticker_->timer.expires_after(tick);
  ticker_->timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = Clock::now();
    const auto& task_timeout = job_.queue.task_timeout;
    const auto& heartbeat_timeout = job_.health.heartbeat_timeout;
    for (const auto& [worker, channel] : channels_) {
      if (heartbeat_timeout && channel->ready() &&
          now - channel->last_sign(now) > *heartbeat_timeout && channel->take_silence()) {
        events_.kill(worker,
                     "no sign of life for more than health.heartbeat_timeout (" +
                         config::format_duration(*heartbeat_timeout) + ")",
                     "heartbeat");
        continue;
      }
      if (!task_timeout) continue;
      auto oldest = dispatcher_.oldest(worker);
      auto& running = running_[worker];
      if (!oldest) {
        running.reset();
        continue;
      }
      if (!running || running->first != *oldest) {
        running = std::make_pair(*oldest, now);
        continue;
      }
      if (now - running->second > *task_timeout) {
        events_.kill(worker,
                     "task " + std::to_string(*oldest) + " ran longer than " +
                         "queue.task_timeout (" + config::format_duration(*task_timeout) + ")",
                     "task_timeout");
        running->second = now;  // one kill per overrun
      }
    }
    watch();
  });
}

Status TaskFeed::prepare(uint32_t worker, SpawnRequest& request) {
  std::string error;
  channels_.erase(worker);
  request.env.push_back("CORRAL_MAX_TASK_BYTES=" + std::to_string(job_.queue.max_task_bytes));
  if (const auto& timeout = job_.health.heartbeat_timeout) {
    // Four beats per timeout: one late beat is not a death.
    auto period =
        std::clamp<Duration>(*timeout / 4, std::chrono::milliseconds(10), std::chrono::seconds(10));
    request.env.push_back("CORRAL_HEARTBEAT_MS=" + std::to_string(period.count()));
  }
  if (job_.channel == config::Channel::kShm) {
    if (worker >= segment_->worker_count()) {
      error = "worker " + std::to_string(worker) + " has no slot in the job's segment (" +
              std::to_string(segment_->worker_count()) + " slots)";
      return Error(error);
    }
    auto task_wake = ipc::EventFd::create(error);
    if (!task_wake) return Error(error);
    auto result_wake = ipc::EventFd::create(error);
    if (!result_wake) return Error(error);
    // Checked here: the loop cannot watch fd -1 (Asio would throw out of
    // the event loop when the daemon is out of fds).
    int watched = ::fcntl(result_wake->fd(), F_DUPFD_CLOEXEC, 0);
    if (watched < 0) {
      error = std::string("dup of the result eventfd: ") + strerror(errno);
      return Error(error);
    }
    auto channel = std::make_unique<ShmChannel>(
        *this, worker, io_, *segment_, std::move(*task_wake), std::move(*result_wake), watched);
    request.fds.push_back({3, segment_->fd()});
    request.fds.push_back({4, channel->task_wake_fd()});
    request.fds.push_back({5, channel->result_wake_fd()});
    request.env.push_back("CORRAL_SHM=fd:3");
    request.env.push_back("CORRAL_FDS=4,5");
    channels_[worker] = std::move(channel);
    return {};
  }
  int to_worker[2], from_worker[2];
  if (pipe2(to_worker, O_CLOEXEC) < 0) {
    error = std::string("pipe: ") + strerror(errno);
    return Error(error);
  }
  if (pipe2(from_worker, O_CLOEXEC) < 0) {
    error = std::string("pipe: ") + strerror(errno);
    ::close(to_worker[0]);
    ::close(to_worker[1]);
    return Error(error);
  }
  bool stdio = job_.pipe.fds == config::PipeFds::kStdio;
  int in_fd = stdio ? 0 : 3, out_fd = stdio ? 1 : 4;
  request.fds.push_back({in_fd, to_worker[0]});
  request.fds.push_back({out_fd, from_worker[1]});
  request.env.push_back(std::string("CORRAL_FRAMING=") +
                        (job_.pipe.framing == config::Framing::kLines ? "lines" : "length"));
  request.env.push_back("CORRAL_FDS=" + std::to_string(in_fd) + "," + std::to_string(out_fd));
  // The child's ends are closed in spawned(); remember them in the request.
  child_ends_[worker] = {to_worker[0], from_worker[1]};
  channels_[worker] =
      std::make_unique<PipeChannel>(*this, worker, io_, to_worker[1], from_worker[0],
                                    job_.pipe.framing, job_.queue.max_task_bytes);
  return {};
}

void TaskFeed::spawned(uint32_t worker, bool ok) {
  if (auto ends = child_ends_.find(worker); ends != child_ends_.end()) {
    ::close(ends->second.first);
    ::close(ends->second.second);
    child_ends_.erase(ends);
  }
  auto it = channels_.find(worker);
  if (it == channels_.end()) return;
  if (!ok) {
    channels_.erase(it);
    return;
  }
  it->second->start();
}

void TaskFeed::send_sentinel(uint32_t worker) {
  if (auto it = channels_.find(worker); it != channels_.end()) it->second->sentinel();
}

void TaskFeed::exited(uint32_t worker, const std::string& why) {
  running_.erase(worker);
  // Nothing new for it while what it left is read.
  dispatcher_.detach(worker);
  if (auto it = channels_.find(worker); it != channels_.end()) it->second->collect_remains();
  channels_.erase(worker);
  dispatcher_.worker_gone(worker, why);
  after_results();
}

uint64_t TaskFeed::add_submitter(std::function<void(FinishedTask&&)> on_finished) {
  uint64_t id = next_submitter_++;
  submitters_[id] = std::move(on_finished);
  return id;
}

void TaskFeed::remove_submitter(uint64_t id) {
  if (!submitters_.contains(id)) return;
  dispatcher_.orphan(id);
  // A submitter may leave from inside its own callback: it is erased when
  // the callback has returned.
  if (id == calling_submitter_) {
    remove_after_call_ = true;
    return;
  }
  submitters_.erase(id);
}

void TaskFeed::add_listener(std::function<bool()> listener, std::function<bool()> gone) {
  listeners_.add(std::move(listener), std::move(gone));
}

void TaskFeed::prune_listeners() { listeners_.prune(); }

void TaskFeed::pump() {
  dispatcher_.pump(Clock::now());
  if (!ticking_ && (dispatcher_.queued() > 0 || dispatcher_.in_flight() > 0)) {
    ticking_ = true;
    if (events_.active) events_.active();
  }
}

bool TaskFeed::tick(TimePoint now) {
  const TaskCounts& c = dispatcher_.counts();
  const uint64_t finished = c.ok + c.failed + c.dead;
  ticking_ =
      finished != finished_at_last_tick_ || dispatcher_.queued() > 0 || dispatcher_.in_flight() > 0;
  const double seconds = seconds_between(last_tick_, now);
  metrics_.tasks_per_s =
      seconds > 0 ? static_cast<double>(finished - finished_at_last_tick_) / seconds : 0;
  metrics_.recent = metrics_.run_time.since(at_last_tick_);
  at_last_tick_ = metrics_.run_time;
  finished_at_last_tick_ = finished;
  last_tick_ = now;
  return ticking_;
}

void TaskFeed::finished(FinishedTask&& task) {
  if (task.outcome != TaskOutcome::kDead) metrics_.run_time.observe(task.run_time);
  if (task.submitter != 0) {
    if (auto it = submitters_.find(task.submitter); it != submitters_.end()) {
      uint64_t id = task.submitter;
      calling_submitter_ = id;
      it->second(std::move(task));
      calling_submitter_ = 0;
      if (remove_after_call_) {
        remove_after_call_ = false;
        submitters_.erase(id);
      }
      return;
    }
  }
  write_sink(task);
}

void TaskFeed::write_sink(const FinishedTask& task) {
  if (!sink_.valid()) return;
  protocol::Json line{{"id", task.id},
                      {"status", to_string(task.outcome)},
                      {"result", task.result},
                      {"attempts", task.attempts}};
  std::string text = protocol::encode_line(line);
  if (::write(sink_.get(), text.data(), text.size()) < 0) {
    spdlog::error("{}: sink {}: {}", job_.name, job_.sink.file, strerror(errno));
  }
}

void TaskFeed::after_results() {
  feed_source();
  pump();
  listeners_.notify();
}

void TaskFeed::feed_source() {
  const auto& source = job_.source;
  if (source.kind == config::SourceSpec::Kind::kRange) {
    while (source_next_ < source.to && !dispatcher_.full()) {
      dispatcher_.submit(std::to_string(source_next_), 0, 0);
      ++source_next_;
    }
  } else if (source_file_) {
    SourceFile& file = *source_file_;
    const uint64_t max = job_.queue.max_task_bytes;
    auto skipped = [&](uint64_t bytes) {
      spdlog::error("{}: source {}:{}: task of {} bytes exceeds queue.max_task_bytes ({}); skipped",
                    job_.name, job_.source.file, file.line, bytes, max);
    };
    while (!dispatcher_.full()) {
      const size_t newline = file.buffer.find('\n', file.begin);
      if (newline != std::string::npos || (file.eof && file.begin < file.buffer.size())) {
        const size_t end = newline != std::string::npos ? newline : file.buffer.size();
        const size_t length = end - file.begin;
        ++file.line;
        if (file.skipping > 0) {
          skipped(file.skipping + length);
          file.skipping = 0;
        } else if (length > max) {
          skipped(length);
        } else {
          dispatcher_.submit(file.buffer.substr(file.begin, length), 0, 0);
        }
        file.begin = newline != std::string::npos ? newline + 1 : file.buffer.size();
        continue;
      }
      if (file.eof) {
        if (file.skipping > 0) {
          ++file.line;
          skipped(file.skipping);
        }
        source_file_.reset();
        break;
      }
      // No whole line held: drop what is taken, and what can never be a
      // task, before reading the next chunk.
      file.buffer.erase(0, file.begin);
      file.begin = 0;
      if (file.buffer.size() > max) {
        file.skipping += file.buffer.size();
        file.buffer.clear();
      }
      const size_t held = file.buffer.size();
      file.buffer.resize(held + SourceFile::kChunk);
      ssize_t n;
      do {
        n = ::read(file.fd.get(), file.buffer.data() + held, SourceFile::kChunk);
      } while (n < 0 && errno == EINTR);
      file.buffer.resize(held + static_cast<size_t>(std::max<ssize_t>(n, 0)));
      if (n < 0) {
        spdlog::error("{}: source {}: {}; no more tasks from it", job_.name, job_.source.file,
                      strerror(errno));
        source_file_.reset();
        break;
      }
      if (n == 0) file.eof = true;
    }
  }
}

bool same_feed(const config::JobSpec& a, const config::JobSpec& b) {
  return a.channel == b.channel && a.pipe == b.pipe && a.queue == b.queue && a.shared == b.shared &&
         a.source == b.source && a.sink == b.sink;
}

uint32_t TaskFeed::capacity() const {
  return segment_ ? segment_->worker_count() : std::numeric_limits<uint32_t>::max();
}

void TaskFeed::retire(const std::string& why) {
  if (retired_) return;
  retired_ = true;
  events_ = FeedEvents{[](uint32_t) {}, [](uint32_t, const std::string&, const char*) {},
                       [](uint32_t) {}};
  ticker_.reset();
  source_file_.reset();
  source_next_ = job_.source.to;
  size_t queued = dispatcher_.queued();
  if (queued > 0) spdlog::warn("{}: {} queued tasks end dead: {}", job_.name, queued, why);
  dispatcher_.abandon_queued(why);
  after_results();
}

std::vector<SharedReading> TaskFeed::shared() const {
  std::vector<SharedReading> out;
  if (!segment_) return out;
  for (const ipc::SharedView& view : segment_->shared()) {
    SharedReading r;
    r.name = std::string(view.name);
    r.is_array = view.is_array;
    r.type = view.type == ipc::SharedElement::kU64   ? "u64"
             : view.type == ipc::SharedElement::kI64 ? "i64"
                                                     : "f64";
    for (uint64_t i = 0; i < view.length; ++i) {
      uint64_t bits = view.cells[i].load(std::memory_order_relaxed);
      switch (view.type) {
        case ipc::SharedElement::kU64:
          r.values.push_back(static_cast<double>(bits));
          r.text.push_back(std::to_string(bits));
          break;
        case ipc::SharedElement::kI64: {
          auto v = std::bit_cast<int64_t>(bits);
          r.values.push_back(static_cast<double>(v));
          r.text.push_back(std::to_string(v));
          break;
        }
        case ipc::SharedElement::kF64: {
          auto v = std::bit_cast<double>(bits);
          r.values.push_back(v);
          char buf[64];
          std::snprintf(buf, sizeof buf, "%.17g", v);
          r.text.push_back(buf);
          break;
        }
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace corral::daemon

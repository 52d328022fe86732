#include "daemon/task_feed.h"

#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdio>
#include <limits>
#include <utility>

#include "base/io.h"
#include "config/emit.h"
#include "config/units.h"
#include "daemon/chunker.h"
#include "daemon/pipe_channel.h"
#include "daemon/shm_channel.h"
#include "protocol/control.h"
#include "protocol/task_lines.h"

namespace corral::daemon {

constexpr uint32_t kMinWorkerSlots = 64;

namespace asio = boost::asio;

namespace {

// Sink lines are written together up to this many bytes at a time.
constexpr size_t kSinkBatchBytes = 64 << 10;

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

TaskFeed::TaskFeed(Key, asio::io_context& io, Host& host, const config::JobSpec& job,
                   FeedEvents events)
    : io_(io),
      host_(host),
      job_(job),
      events_(std::move(events)),
      dispatcher_(job.queue, [this](FinishedTasks tasks) { finished(tasks); }),
      context_{host,
               dispatcher_,
               events_,
               job.limits.max_tasks,
               [this] { after_results(); },
               job.channel == config::Channel::kShm ? job.shm.spin : std::chrono::microseconds(0)},
      last_tick_(host.now()),
      watch_({job.queue.task_timeout, job.health.heartbeat_timeout}) {}

TaskFeed::~TaskFeed() {
  channels_.clear();
  flush_sink();
}

namespace {

// FILE (a job's sink or source, as configured) opened for USE through its
// directory, which PRIVATE_DIRS judges; KIND is "sink" or "source".
Result<UniqueFd> open_job_file(const std::string& file, FileUse use, const char* kind,
                               PrivateDirs& private_dirs) {
  auto [directory, name] = split_file_path(file);
  if (name.empty()) return Error(std::string(kind) + " " + file + " names a directory, not a file");
  auto dir = private_dirs.open(directory, std::string(kind) + " directory", false);
  if (!dir) return std::move(dir).error();
  Result<OpenedFile> opened = (*dir)->open(name, use, kind);
  if (!opened) return std::move(opened).error();
  if (opened->missing) return errno_error(std::string(kind) + " " + file, ENOENT);
  return std::move(opened->fd);
}

// A sink whose last line was cut short (corrald killed in the middle of a
// write) gets that line ended before anything is appended, so that the
// next result is a whole line of its own and readers can skip the cut one.
Status end_cut_line(int fd, const config::JobSpec& job) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("sink " + job.sink.file);
  if (st.st_size == 0) return {};
  char last = '\n';
  if (::pread(fd, &last, 1, st.st_size - 1) != 1) {
    return errno_error("reading the end of sink " + job.sink.file);
  }
  if (last == '\n') return {};
  spdlog::warn(
      "{}: sink {}: its last line was cut short (corrald stopped while writing it); "
      "ended with a newline, results follow on lines of their own",
      job.name, job.sink.file);
  return write_all(fd, "\n", "sink " + job.sink.file);
}

}  // namespace

Result<std::unique_ptr<TaskFeed>> TaskFeed::create(asio::io_context& io, Host& host,
                                                   const config::JobSpec& job, FeedEvents events,
                                                   PrivateDirs& private_dirs,
                                                   const SpoolPath& spool_path,
                                                   const BrokerFactory& broker_factory) {
  auto feed = std::make_unique<TaskFeed>(Key(), io, host, job, std::move(events));
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
    Result<ipc::Segment> segment = ipc::Segment::create(spec);
    if (!segment) return std::move(segment).error();
    feed->segment_ = std::move(*segment);
  }
  if (job.sink.kind == config::SinkSpec::Kind::kFile) {
    Result<UniqueFd> sink = open_job_file(job.sink.file, FileUse::kAppend, "sink", private_dirs);
    if (!sink) return std::move(sink).error();
    if (Status ended = end_cut_line(sink->get(), job); !ended) return std::move(ended).error();
    feed->sink_ = std::move(*sink);
  }
  if (job.source.kind == config::SourceSpec::Kind::kRange) {
    feed->source_next_ = job.source.from;
  } else if (job.source.kind == config::SourceSpec::Kind::kFile) {
    Result<UniqueFd> source =
        open_job_file(job.source.file, FileUse::kRead, "source", private_dirs);
    if (!source) return std::move(source).error();
    feed->source_file_ = std::make_unique<SourceFile>();
    feed->source_file_->fd = std::move(*source);
  }
  if (job.queue.durable) {
    if (!spool_path)
      return Error("job " + job.name + " is durable, and this corrald keeps no spools");
    Result<std::string> path = spool_path(job.name);
    if (!path) return std::move(path).error();
    Status opened = feed->open_spool(*path);
    if (!opened) return std::move(opened).error();
  }
  if (job.broker.kind == config::BrokerSpec::Kind::kRedis) {
    char host_name[256] = {};
    if (::gethostname(host_name, sizeof host_name - 1) != 0) {
      return errno_error("broker of job " + job.name + ": the host name (the consumer's default)");
    }
    feed->open_broker(host_name, broker_factory);
  }
  feed->feed_source();
  feed->watch();
  return feed;
}

void TaskFeed::watch() {
  std::optional<Duration> period = watch_.period();
  if (!period) return;
  if (!ticker_) ticker_ = host_.make_timer();
  ticker_->arm(host_.now() + *period, [this] {
    look();
    watch();
  });
}

void TaskFeed::look() {
  const TimePoint now = host_.now();
  const bool heartbeats = job_.health.heartbeat_timeout.has_value();
  std::vector<WatchedWorker> workers;
  workers.reserve(channels_.size());
  for (const auto& [worker, channel] : channels_) {
    WatchedWorker& w = workers.emplace_back();
    w.worker = worker;
    w.ready = channel->ready();
    // Only when it counts: an shm channel takes a change of the heartbeat
    // cell as seen at the time of the look.
    if (heartbeats && w.ready) w.last_sign = channel->last_sign(now);
    w.running = dispatcher_.oldest(worker);
    // Frozen, it cannot beat; thawed, it gets a heartbeat's time again.
    if (auto it = paused_.find(worker); it != paused_.end()) {
      if (!it->second) w.paused = true;
      if (it->second) w.last_sign = std::max(w.last_sign, *it->second);
    }
  }
  for (const Overrun& overrun : watch_.check(now, workers)) {
    if (overrun.reason == std::string_view("task_timeout")) timed_out_.insert(overrun.worker);
    events_.kill(overrun.worker, overrun.why, overrun.reason);
  }
}

void TaskFeed::paused(uint32_t worker, bool paused) {
  if (paused) {
    paused_[worker] = std::nullopt;
  } else {
    paused_[worker] = host_.now();
  }
}

Status TaskFeed::prepare(uint32_t worker, SpawnRequest& request) {
  channels_.erase(worker);
  paused_.erase(worker);
  watch_.forget(worker);
  timed_out_.erase(worker);
  request.env.push_back("CORRAL_MAX_TASK_BYTES=" + std::to_string(job_.queue.max_task_bytes));
  if (job_.channel == config::Channel::kShm) {
    request.env.push_back("CORRAL_SPIN_US=" + std::to_string(job_.shm.spin.count()));
  }
  // READY may say the worker takes chunks (lines framing has no READY).
  if (job_.channel == config::Channel::kShm || job_.pipe.framing == config::Framing::kLength) {
    request.env.push_back("CORRAL_CHUNKS=1");
  }
  if (const auto& timeout = job_.health.heartbeat_timeout) {
    // Four beats per timeout: one late beat is not a death.
    auto period =
        std::clamp<Duration>(*timeout / 4, std::chrono::milliseconds(10), std::chrono::seconds(10));
    request.env.push_back("CORRAL_HEARTBEAT_MS=" + std::to_string(period.count()));
  }
  Result<std::unique_ptr<Channel>> channel =
      job_.channel == config::Channel::kShm
          ? open_shm_channel(context_, worker, io_, *segment_, request)
          : open_pipe_channel(context_, worker, io_, job_, request);
  if (!channel) return std::move(channel).error();
  channels_[worker] = std::move(*channel);
  return {};
}

void TaskFeed::spawned(uint32_t worker, bool ok) {
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

ExitBlame TaskFeed::exited(uint32_t worker, const std::string& why) {
  watch_.forget(worker);
  // Nothing new for it while what it left is read.
  dispatcher_.detach(worker);
  uint64_t unanswered = 0;
  if (auto it = channels_.find(worker); it != channels_.end()) {
    it->second->collect_remains();
    unanswered = it->second->finished_unanswered();
  }
  channels_.erase(worker);
  const TaskFault fault = timed_out_.erase(worker) > 0 ? TaskFault::kTimeout : TaskFault::kCrashed;
  ExitBlame blame = dispatcher_.worker_gone(worker, why, fault, host_.now(), unanswered);
  after_results();
  return blame;
}

uint64_t TaskFeed::add_submitter(OnFinished on_finished) {
  uint64_t id = next_submitter_++;
  submitters_[id] = std::move(on_finished);
  return id;
}

void TaskFeed::remove_submitter(uint64_t id) {
  if (!submitters_.contains(id)) return;
  dispatcher_.orphan(id);
  if (broker_ != nullptr) {
    std::erase_if(waiting_, [id](const auto& entry) { return entry.second.submitter == id; });
    if (waiting_.empty()) broker_->follow(false);
  }
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
  dispatcher_.pump(host_.now());
  if (!ticking_ &&
      (dispatcher_.queued() > 0 || dispatcher_.delayed() > 0 || dispatcher_.in_flight() > 0)) {
    ticking_ = true;
    if (events_.active) events_.active();
  }
  arm_wake();
  give_credit();
  flush_sink();
}

void TaskFeed::arm_wake() {
  std::optional<TimePoint> at = dispatcher_.next_wakeup();
  if (!at || retired_) {
    if (wake_) wake_->cancel();
    wake_at_.reset();
    return;
  }
  if (wake_at_ == at) return;
  if (!wake_) wake_ = host_.make_timer();
  wake_at_ = at;
  wake_->arm(*at, [this] {
    wake_at_.reset();
    // Retries that are due go out, tasks past their deadline end: both
    // free room and may finish what someone waits for.
    after_results();
  });
}

CancelReport TaskFeed::cancel(const CancelSelection& selection, bool running) {
  CancelReport report = dispatcher_.cancel(selection, running, "cancelled by corralctl cancel");
  for (uint32_t worker : report.stop_workers) {
    if (events_.stop) events_.stop(worker, "its task was cancelled (corralctl cancel --running)");
  }
  after_results();
  return report;
}

bool TaskFeed::tick(TimePoint now) {
  const TaskCounts& c = dispatcher_.counts();
  const uint64_t finished = c.ok + c.failed + c.dead + c.cancelled + c.expired;
  ticking_ = finished != finished_at_last_tick_ || dispatcher_.queued() > 0 ||
             dispatcher_.delayed() > 0 || dispatcher_.in_flight() > 0;
  const double seconds = seconds_between(last_tick_, now);
  metrics_.tasks_per_s =
      seconds > 0 ? static_cast<double>(finished - finished_at_last_tick_) / seconds : 0;
  metrics_.recent = metrics_.run_time.since(at_last_tick_);
  if (broker_ != nullptr) broker_->refresh();
  at_last_tick_ = metrics_.run_time;
  finished_at_last_tick_ = finished;
  last_tick_ = now;
  // Idle for a whole tick: the memory of the last burst goes back.
  if (!ticking_) dispatcher_.trim();
  return ticking_;
}

void TaskFeed::finished(FinishedTasks tasks) {
  for (const FinishedTask& task : tasks) {
    if (task.outcome == TaskOutcome::kOk || task.outcome == TaskOutcome::kFailed) {
      metrics_.run_time.observe(task.run_time);
    }
  }
  // Each submitter is told of its tasks of the run at once; the tasks
  // nobody waits for go to the sink.
  while (!tasks.empty()) {
    const uint64_t id = tasks.front().submitter;
    size_t n = 1;
    while (n < tasks.size() && tasks[n].submitter == id) ++n;
    const FinishedTasks own = tasks.first(n);
    tasks = tasks.subspan(n);
    auto it = id == 0 ? submitters_.end() : submitters_.find(id);
    if (it == submitters_.end()) {
      for (const FinishedTask& task : own) write_sink(task);
      continue;
    }
    calling_submitter_ = id;
    it->second(own);
    calling_submitter_ = 0;
    if (remove_after_call_) {
      remove_after_call_ = false;
      submitters_.erase(id);
    }
  }
}

void TaskFeed::write_sink(const FinishedTask& task) {
  if (!sink_.valid()) return;
  protocol::append_sink_line(sink_pending_, task.id, to_string(task.outcome), task.result,
                             task.attempts);
  if (sink_pending_.size() >= kSinkBatchBytes) flush_sink();
}

void TaskFeed::flush_sink() {
  if (sink_pending_.empty() || !sink_.valid()) return;
  Status written = write_all(sink_.get(), sink_pending_, "sink " + job_.sink.file);
  sink_pending_.clear();
  if (!written) spdlog::error("{}: {}", job_.name, written.error().message());
}

void TaskFeed::after_results() {
  feed_source();
  pump();
  listeners_.notify();
}

void TaskFeed::feed_source() {
  load_backlog();
  const auto& source = job_.source;
  TaskOrigin origin;
  if (job_.queue.deadline) origin.deadline = host_.now() + *job_.queue.deadline;
  // In chunks; a task's seq is its place in the source (a line's number).
  Chunker chunker(dispatcher_, job_.queue.max_task_bytes);
  if (source.kind == config::SourceSpec::Kind::kRange) {
    while (source_next_ < source.to && !dispatcher_.full(chunker.gathered())) {
      origin.seq = static_cast<uint64_t>(source_next_ - source.from);
      char digits[24];  // an int64_t's 20 characters at most
      const char* end = std::to_chars(digits, digits + sizeof digits, source_next_).ptr;
      chunker.add(std::string_view(digits, static_cast<size_t>(end - digits)), origin);
      ++source_next_;
    }
  } else if (source_file_) {
    SourceFile& file = *source_file_;
    const uint64_t max = job_.queue.max_task_bytes;
    auto skipped = [&](uint64_t bytes) {
      spdlog::error("{}: source {}:{}: task of {} bytes exceeds queue.max_task_bytes ({}); skipped",
                    job_.name, job_.source.file, file.line, bytes, max);
    };
    while (!dispatcher_.full(chunker.gathered())) {
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
          origin.seq = file.line;
          chunker.add(std::string_view(file.buffer).substr(file.begin, length), origin);
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
  chunker.flush();
}

bool same_feed(const config::JobSpec& a, const config::JobSpec& b) {
  return a.channel == b.channel && a.pipe == b.pipe && a.queue == b.queue && a.shared == b.shared &&
         a.source == b.source && a.sink == b.sink && a.broker == b.broker;
}

uint32_t TaskFeed::capacity() const {
  return segment_ ? segment_->worker_count() : std::numeric_limits<uint32_t>::max();
}

void TaskFeed::retire(const std::string& why) {
  if (retired_) return;
  retired_ = true;
  events_ = FeedEvents{[](uint32_t) {}, [](uint32_t, const std::string&, const char*) {},
                       [](uint32_t) {}, nullptr, nullptr};
  ticker_.reset();
  wake_.reset();
  wake_at_.reset();
  source_file_.reset();
  source_next_ = job_.source.to;
  size_t queued = dispatcher_.queued() + dispatcher_.delayed();
  if (broker_ != nullptr) {
    // Pending in the broker, they wait for this node's next feed or another node.
    close_broker();
    dispatcher_.abandon_queued("not run by this feed of the job (" + why +
                               "); the task stays pending in the broker");
  } else if (spool_ != nullptr) {
    // On disk they wait for the job's next feed; a waiting submitter is
    // told where its tasks are.
    close_spool(why);
    dispatcher_.abandon_queued("not run by this feed of the job (" + why +
                               "); the task stays in the job's spool and runs when the job "
                               "starts again");
  } else {
    if (queued > 0) {
      spdlog::warn("{}: {} queued {} dropped (they end dead): {}", job_.name, queued,
                   queued == 1 ? "task" : "tasks", why);
    }
    dispatcher_.abandon_queued(why);
  }
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

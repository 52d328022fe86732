// The C++ worker SDK: serve() over the channel corrald describes in the
// environment (docs/worker-protocol.md), and the job's shared values.
//
// One binary serves every channel:
// - pipe, lines: read lines, write one result line per task, in order.
// - pipe, length: READY, then TASK frames in and RESULT frames out, with
//   HEARTBEAT frames from a thread; SHUTDOWN or EOF ends it.
// - shm: the job's segment and this worker's two rings, woken through two
//   eventfds only when the other side sleeps (ARCHITECTURE decision 5).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include "corral/worker.h"
#include "ipc/frame.h"
#include "ipc/segment.h"
#include "ipc/spsc_ring.h"
#include "ipc/wake.h"

namespace corral {
namespace {

using namespace std::chrono_literals;

// When the environment does not say (it always does under corrald).
constexpr uint64_t kDefaultMaxTaskBytes = 65536;
// Every result is sent (written, or published in the ring) before the next
// task starts: a worker that dies then takes no finished result with it, and
// the daemon can blame the task that was running (the oldest it holds). What
// is batched on the shm channel is the wake-up of a sleeping daemon: at the
// latest after kBatchResults results, or once the batch has been open
// kBatchWindow, or when no further task is waiting. Tiny tasks share one
// eventfd write; the result of a long task is not held back.
constexpr int kBatchResults = 64;
constexpr auto kBatchWindow = 200us;
// How long the shm worker polls an empty task ring before it sleeps.
constexpr auto kSpin = 30us;
// The longest sleep on the task eventfd: the heartbeat cell is refreshed and
// the daemon's presence checked this often even when nothing happens.
constexpr auto kIdleWait = 1000ms;
constexpr size_t kReadChunk = 64 * 1024;

// Set by stop_after_this_task(), read by the serving loop after each task.
std::atomic<bool> g_stop_requested{false};

const char* program_name() { return program_invocation_short_name; }

void complain(const std::string& message) {
  std::string line = std::string(program_name()) + ": " + message + "\n";
  // One write, so that lines of several workers sharing a log do not mix.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

std::string errno_text(int err) { return std::string(strerror(err)); }

std::optional<uint64_t> parse_u64(std::string_view text) {
  uint64_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// A bad environment: what is wrong, said once; serve() returns 2.
struct EnvError {
  std::string message;
};

// "A,B" -> the two fds, each checked to be open.
std::pair<int, int> parse_fd_pair(const char* variable, const char* fallback) {
  const char* text = env_or_null(variable);
  std::string_view value = text != nullptr ? text : fallback;
  size_t comma = value.find(',');
  std::optional<uint64_t> first, second;
  if (comma != std::string_view::npos) {
    first = parse_u64(value.substr(0, comma));
    second = parse_u64(value.substr(comma + 1));
  }
  if (!first || !second || *first > INT32_MAX || *second > INT32_MAX) {
    throw EnvError{std::string(variable) + "=" + std::string(value) +
                   ": expected two fds, as in \"3,4\""};
  }
  for (uint64_t fd : {*first, *second}) {
    if (::fcntl(static_cast<int>(fd), F_GETFD) < 0) {
      throw EnvError{std::string(variable) + "=" + std::string(value) + ": fd " +
                     std::to_string(fd) + " is not open (" + errno_text(errno) + ")"};
    }
  }
  return {static_cast<int>(*first), static_cast<int>(*second)};
}

uint64_t max_task_bytes_from_env() {
  const char* text = env_or_null("CORRAL_MAX_TASK_BYTES");
  if (text == nullptr) return kDefaultMaxTaskBytes;
  std::optional<uint64_t> value = parse_u64(text);
  if (!value || *value == 0 || *value > (1ULL << 32)) {
    throw EnvError{std::string("CORRAL_MAX_TASK_BYTES=") + text +
                   ": expected a number of bytes between 1 and 4294967296"};
  }
  return *value;
}

// CORRAL_HEARTBEAT_MS, or zero when heartbeats are not asked for.
std::chrono::milliseconds heartbeat_period_from_env() {
  const char* text = env_or_null("CORRAL_HEARTBEAT_MS");
  if (text == nullptr) return 0ms;
  std::optional<uint64_t> value = parse_u64(text);
  if (!value || *value > 86'400'000) {
    throw EnvError{std::string("CORRAL_HEARTBEAT_MS=") + text +
                   ": expected a number of milliseconds"};
  }
  return std::chrono::milliseconds(*value);
}

uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Runs BEAT every PERIOD on its own thread until destroyed; nothing when
// PERIOD is zero. A thread, so that a long task does not silence the worker
// (a stopped or hung process does stop beating: SIGSTOP stops every thread).
class Heartbeat {
 public:
  Heartbeat(std::chrono::milliseconds period, std::function<void()> beat) {
    if (period <= 0ms) return;
    thread_ = std::thread([this, period, beat = std::move(beat)] {
      std::unique_lock lock(mutex_);
      while (!stop_) {
        if (cv_.wait_for(lock, period, [this] { return stop_; })) break;
        lock.unlock();
        beat();
        lock.lock();
      }
    });
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;
  ~Heartbeat() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// When a sleeping daemon should be woken for the results published since
// the last wake-up, besides when no further task is waiting (kBatchWindow).
class Batch {
 public:
  // Before running a task.
  void task_starting() {
    if (results_ == 0) opened_ = std::chrono::steady_clock::now();
  }
  // After its result is published; true when the daemon should be told now.
  bool result_added() {
    ++results_;
    return results_ >= kBatchResults || std::chrono::steady_clock::now() - opened_ >= kBatchWindow;
  }
  void sent() { results_ = 0; }

 private:
  int results_ = 0;
  std::chrono::steady_clock::time_point opened_;
};

// The handler's answer to one task, exceptions turned into failed results
// and results over the limit into a failure that says so.
Result run_handler(const Handler& handler, std::string_view task, size_t max_result_bytes) {
  std::optional<Result> result;
  try {
    result.emplace(handler(task));
  } catch (const std::exception& e) {
    result.emplace(Result::failure(e.what()));
  } catch (...) {
    result.emplace(Result::failure("the handler threw something that is not a std::exception"));
  }
  if (result->payload().size() > max_result_bytes) {
    std::string message = std::string(result->ok() ? "result" : "failure message") + " of " +
                          std::to_string(result->payload().size()) +
                          " bytes exceeds the limit of " + std::to_string(max_result_bytes) +
                          " bytes (CORRAL_MAX_TASK_BYTES)";
    if (message.size() > max_result_bytes) message.resize(max_result_bytes);
    result.emplace(Result::failure(std::move(message)));
  }
  return std::move(*result);
}

// ---- pipes ----

// Reads what is there (at least one byte), waiting if the fd is
// non-blocking. 0 at EOF, -1 with errno on error.
ssize_t read_some(int fd, char* buffer, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd, buffer, size);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, -1);
  }
}

// Writes all of DATA; false with errno on error (EPIPE: the daemon is gone).
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, -1);
  }
  return true;
}

// The OUT fd of a pipe worker, shared by the serving thread (results) and the
// heartbeat thread: every frame is written whole under the mutex.
class PipeOut {
 public:
  explicit PipeOut(int fd) : fd_(fd) {}
  // Writes BYTES (whole frames or lines); false with errno when it fails.
  bool write(std::string_view bytes) {
    std::lock_guard lock(mutex_);
    return write_all(fd_, bytes);
  }
  // write(), saying on stderr why it failed.
  bool send(std::string_view bytes) {
    if (write(bytes)) return true;
    complain("writing results: " + errno_text(errno));
    return false;
  }

 private:
  int fd_;
  std::mutex mutex_;
};

int serve_lines(const Handler& handler, int in, int out_fd, size_t max_task_bytes) {
  ipc::LineDecoder decoder(max_task_bytes);
  PipeOut out(out_fd);
  std::string line_out;
  auto buffer = std::make_unique_for_overwrite<char[]>(kReadChunk);
  for (;;) {
    std::string_view line;
    for (;;) {
      ipc::DecodeStatus status = decoder.next(line);
      if (status == ipc::DecodeStatus::kNeedMore) break;
      if (status == ipc::DecodeStatus::kError) {
        complain("reading tasks: " + decoder.error());
        return 1;
      }
      Result result = run_handler(handler, line, max_task_bytes);
      line_out = result.payload();
      // A line result cannot hold a line break: each becomes a space.
      std::replace(line_out.begin(), line_out.end(), '\n', ' ');
      line_out += '\n';
      if (!out.send(line_out)) return 1;
      if (g_stop_requested.load(std::memory_order_relaxed)) return 0;
    }
    ssize_t n = read_some(in, buffer.get(), kReadChunk);
    if (n < 0) {
      complain("reading tasks: " + errno_text(errno));
      return 1;
    }
    if (n == 0) {
      if (decoder.buffered() > 0) {
        complain("ignored " + std::to_string(decoder.buffered()) +
                 " bytes after the last newline at the end of the input");
      }
      return 0;  // EOF: the sentinel of line workers
    }
    decoder.feed(std::string_view(buffer.get(), static_cast<size_t>(n)));
  }
}

int serve_length(const Handler& handler, int in, int out_fd, size_t max_task_bytes,
                 std::chrono::milliseconds heartbeat_period) {
  ipc::FrameDecoder decoder(max_task_bytes + ipc::kResultHeaderBytes);
  PipeOut out(out_fd);
  std::string frame_out;
  ipc::append_control(frame_out, ipc::FrameType::kReady);
  if (!out.send(frame_out)) return 1;
  Heartbeat heartbeat(heartbeat_period, [&out] {
    std::string beat;
    ipc::append_control(beat, ipc::FrameType::kHeartbeat);
    // A failed write is the serving thread's to report: it sees the same pipe.
    out.write(beat);
  });

  auto buffer = std::make_unique_for_overwrite<char[]>(kReadChunk);
  bool warned_unexpected = false;
  for (;;) {
    ipc::Frame frame;
    for (;;) {
      ipc::DecodeStatus status = decoder.next(frame);
      if (status == ipc::DecodeStatus::kNeedMore) break;
      if (status == ipc::DecodeStatus::kError) {
        complain("reading tasks: " + decoder.error());
        return 1;
      }
      if (frame.type == ipc::FrameType::kShutdown) return 0;
      if (frame.type != ipc::FrameType::kTask) {
        if (!warned_unexpected) {
          complain("ignoring a frame of type " + std::to_string(static_cast<int>(frame.type)) +
                   " from the daemon (only TASK and SHUTDOWN are expected)");
          warned_unexpected = true;
        }
        continue;
      }
      Result result = run_handler(handler, frame.payload, max_task_bytes);
      frame_out.clear();
      ipc::append_result(frame_out, frame.id,
                         result.ok() ? ipc::ResultStatus::kOk : ipc::ResultStatus::kFailed,
                         result.payload());
      if (!out.send(frame_out)) return 1;
      if (g_stop_requested.load(std::memory_order_relaxed)) return 0;
    }
    ssize_t n = read_some(in, buffer.get(), kReadChunk);
    if (n < 0) {
      complain("reading tasks: " + errno_text(errno));
      return 1;
    }
    if (n == 0) {
      if (decoder.buffered() > 0) {
        complain("the daemon closed the channel inside a frame (" +
                 std::to_string(decoder.buffered()) + " bytes ignored)");
      }
      return 0;  // EOF: the daemon is done with this worker
    }
    decoder.feed(std::string_view(buffer.get(), static_cast<size_t>(n)));
  }
}

int serve_pipe(const Handler& handler) {
  const char* framing = env_or_null("CORRAL_FRAMING");
  std::string_view framing_name = framing != nullptr ? framing : "lines";
  if (framing_name != "lines" && framing_name != "length") {
    throw EnvError{"CORRAL_FRAMING=" + std::string(framing_name) + ": expected lines or length"};
  }
  auto [in, out] = parse_fd_pair("CORRAL_FDS", "3,4");
  uint64_t max_task_bytes = max_task_bytes_from_env();
  std::chrono::milliseconds heartbeat_period = heartbeat_period_from_env();
  // A daemon that goes away must show up as EPIPE, not kill the worker.
  ::signal(SIGPIPE, SIG_IGN);
  if (framing_name == "lines") return serve_lines(handler, in, out, max_task_bytes);
  return serve_length(handler, in, out, max_task_bytes, heartbeat_period);
}

// ---- shared memory ----

// The job's segment, attached once per process: by serve() or by the first
// shared_value()/shared_array(), whichever comes first.
struct ShmAttachment {
  std::optional<ipc::Segment> segment;
  uint32_t index = 0;
  std::string error;     // why segment is empty
  bool bad_env = false;  // the error is the environment's (exit 2)
};

ShmAttachment& shm_attachment() {
  static ShmAttachment attachment;
  static std::once_flag once;
  std::call_once(once, [] {
    ShmAttachment& a = attachment;
    const char* channel = env_or_null("CORRAL_CHANNEL");
    if (channel == nullptr || std::string_view(channel) != "shm") {
      a.error = std::string("the job's shared state needs the shm channel (CORRAL_CHANNEL=") +
                (channel != nullptr ? channel : "") + ")";
      a.bad_env = true;
      return;
    }
    const char* shm = env_or_null("CORRAL_SHM");
    std::string_view shm_value = shm != nullptr ? shm : "fd:3";
    std::optional<uint64_t> fd;
    if (shm_value.starts_with("fd:")) fd = parse_u64(shm_value.substr(3));
    if (!fd || *fd > INT32_MAX) {
      a.error = "CORRAL_SHM=" + std::string(shm_value) +
                ": expected fd:N, the inherited segment fd (named segments are not supported)";
      a.bad_env = true;
      return;
    }
    std::optional<uint64_t> index;
    if (const char* worker = env_or_null("CORRAL_WORKER")) index = parse_u64(worker);
    if (!index) {
      a.error = "CORRAL_WORKER is not a worker index";
      a.bad_env = true;
      return;
    }
    if (::fcntl(static_cast<int>(*fd), F_GETFD) < 0) {
      a.error = "CORRAL_SHM=" + std::string(shm_value) + ": fd " + std::to_string(*fd) +
                " is not open (" + errno_text(errno) + ")";
      a.bad_env = true;
      return;
    }
    std::string error;
    a.segment = ipc::Segment::attach(static_cast<int>(*fd), error);
    if (!a.segment) {
      a.error = "attaching the job's segment (CORRAL_SHM=" + std::string(shm_value) + "): " + error;
      return;
    }
    if (*index >= a.segment->worker_count()) {
      a.error = "CORRAL_WORKER=" + std::to_string(*index) + " but the segment has " +
                std::to_string(a.segment->worker_count()) + " workers";
      a.segment.reset();
      a.bad_env = true;
      return;
    }
    a.index = static_cast<uint32_t>(*index);
  });
  return attachment;
}

class ShmWorker {
 public:
  ShmWorker(const Handler& handler, ipc::Segment& segment, uint32_t index, ipc::EventFd wake_me,
            ipc::EventFd wake_daemon, size_t max_task_bytes)
      : handler_(handler),
        index_(index),
        slot_(segment.slot(index)),
        tasks_(segment.task_ring(index)),
        results_(segment.result_ring(index)),
        wake_me_(std::move(wake_me)),
        wake_daemon_(std::move(wake_daemon)),
        daemon_pid_(::getppid()) {
    size_t ring_max = ipc::SpscRing::max_record(results_.capacity());
    size_t ring_max_result =
        ring_max > ipc::kResultHeaderBytes ? ring_max - ipc::kResultHeaderBytes : 0;
    max_result_bytes_ = std::min(max_task_bytes, ring_max_result);
  }

  int run() {
    if (!tasks_.valid() || !results_.valid()) {
      complain("the job's segment holds no valid rings for worker " + std::to_string(index_));
      return 1;
    }
    slot_.pid.store(static_cast<uint32_t>(::getpid()), std::memory_order_relaxed);
    beat();
    char* ready = reserve(1);
    if (ready == nullptr) return 1;
    ready[0] = static_cast<char>(ipc::FrameType::kReady);
    results_.commit(1);
    results_.publish();
    wake_daemon_.signal();  // the daemon may not sleep yet; READY is rare, always say it

    ipc::Frame frame;
    std::string error;
    for (;;) {
      std::string_view record = tasks_.peek();
      if (record.data() == nullptr) {  // no task visible
        flush();
        if (!idle()) return 1;
        continue;
      }
      if (!ipc::parse_frame_body(record, frame, error)) {
        complain("a bad record in the task ring: " + error);
        flush();
        return 1;
      }
      if (frame.type == ipc::FrameType::kShutdown) {
        tasks_.consume();
        flush();
        return 0;
      }
      if (frame.type != ipc::FrameType::kTask) {
        tasks_.consume();  // nothing else is meant for a worker; skip it
        continue;
      }
      batch_.task_starting();
      Result result = run_handler(handler_, frame.payload, max_result_bytes_);
      tasks_.consume();  // the payload is not needed any more
      size_t size = ipc::kResultHeaderBytes + result.payload().size();
      char* dest = reserve(size);
      if (dest == nullptr) return 1;
      ipc::write_result_body(dest, frame.id,
                             result.ok() ? ipc::ResultStatus::kOk : ipc::ResultStatus::kFailed,
                             result.payload());
      results_.commit(size);
      slot_.tasks_done.fetch_add(1, std::memory_order_relaxed);
      // Visible at once (a crash in the next task must not take it along);
      // the daemon, if it sleeps, is woken with the batch.
      wake_owed_ = results_.publish() || wake_owed_;
      if (batch_.result_added()) flush();
      if (g_stop_requested.load(std::memory_order_relaxed)) {
        flush();
        return 0;
      }
    }
  }

  void beat() { slot_.heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed); }

 private:
  // Room for a result record of SIZE bytes, sleeping while the result ring
  // is full; nullptr when the daemon is gone.
  char* reserve(size_t size) {
    for (;;) {
      if (char* dest = results_.reserve(size)) return dest;
      flush();  // also publishes the padding reserve() may have written
      if (results_.corrupted()) {
        complain("the result ring is corrupted (the daemon's side wrote impossible indexes)");
        return nullptr;
      }
      if (results_.producer_prepare_sleep(size)) {
        if (!wait()) return nullptr;
      }
    }
  }

  // Returns consumed task space and publishes what is written, waking the
  // daemon if it sleeps on either ring (or slept when a result was published).
  void flush() {
    bool wake = tasks_.release();
    wake = results_.publish() || wake;
    wake = wake || wake_owed_;
    wake_owed_ = false;
    batch_.sent();
    if (wake) wake_daemon_.signal();
    beat();
  }

  // Nothing to do: spin a little, since a task often follows soon and a
  // wake-up costs tens of microseconds, then sleep on the task eventfd.
  bool idle() {
    auto until = std::chrono::steady_clock::now() + kSpin;
    do {
      for (int i = 0; i < 64; ++i) {
        if (tasks_.peek().data() != nullptr) return true;
        cpu_relax();
      }
    } while (std::chrono::steady_clock::now() < until);
    if (tasks_.corrupted()) {
      complain("the task ring is corrupted (the daemon's side wrote impossible indexes)");
      return false;
    }
    if (!tasks_.consumer_prepare_sleep()) return true;
    return wait();
  }

  // Sleeps on the task eventfd for at most kIdleWait; false when the daemon
  // is gone (this process was re-parented).
  bool wait() {
    bool signalled = wake_me_.wait(kIdleWait);
    beat();
    if (!signalled && ::getppid() != daemon_pid_) {
      complain("the daemon is gone (parent pid changed); exiting");
      return false;
    }
    return true;
  }

  const Handler& handler_;
  uint32_t index_;
  ipc::WorkerSlot& slot_;
  ipc::SpscRing tasks_;
  ipc::SpscRing results_;
  ipc::EventFd wake_me_;
  ipc::EventFd wake_daemon_;
  pid_t daemon_pid_;
  size_t max_result_bytes_ = 0;
  Batch batch_;
  bool wake_owed_ = false;  // publish() found the daemon asleep; it is not woken yet
};

int serve_shm(const Handler& handler) {
  ShmAttachment& attachment = shm_attachment();
  if (!attachment.segment) {
    if (attachment.bad_env) throw EnvError{attachment.error};
    complain(attachment.error);
    return 1;
  }
  auto [wake_me, wake_daemon] = parse_fd_pair("CORRAL_FDS", "4,5");
  uint64_t max_task_bytes = max_task_bytes_from_env();
  std::chrono::milliseconds heartbeat_period = heartbeat_period_from_env();
  ShmWorker worker(handler, *attachment.segment, attachment.index, ipc::EventFd::adopt(wake_me),
                   ipc::EventFd::adopt(wake_daemon), max_task_bytes);
  Heartbeat heartbeat(heartbeat_period, [&worker] { worker.beat(); });
  return worker.run();
}

const char* element_name(ipc::SharedElement type) {
  switch (type) {
    case ipc::SharedElement::kU64:
      return "u64";
    case ipc::SharedElement::kI64:
      return "i64";
    case ipc::SharedElement::kF64:
      return "f64";
  }
  return "of an unknown type";
}

template <class T>
void check_type(const ipc::SharedView& view, bool want_array) {
  ipc::SharedElement want = std::is_same_v<T, uint64_t>  ? ipc::SharedElement::kU64
                            : std::is_same_v<T, int64_t> ? ipc::SharedElement::kI64
                                                         : ipc::SharedElement::kF64;
  if (view.is_array != want_array) {
    throw std::runtime_error("shared " + std::string(view.is_array ? "array" : "value") + " '" +
                             std::string(view.name) + "' is not " +
                             (want_array ? "an array" : "a value"));
  }
  if (view.type != want) {
    throw std::runtime_error("shared " + std::string(want_array ? "array" : "value") + " '" +
                             std::string(view.name) + "' is " + element_name(view.type) + ", not " +
                             element_name(want));
  }
}

ipc::SharedView find_shared_or_throw(std::string_view name) {
  ShmAttachment& attachment = shm_attachment();
  if (!attachment.segment) throw std::runtime_error(attachment.error);
  std::optional<ipc::SharedView> view = attachment.segment->find_shared(name);
  if (!view) {
    throw std::runtime_error("the job '" + std::string(attachment.segment->job()) +
                             "' declares no shared value or array '" + std::string(name) + "'");
  }
  return *view;
}

template <class T>
uint64_t to_bits(T value) {
  return std::bit_cast<uint64_t>(value);
}
template <class T>
T from_bits(uint64_t bits) {
  return std::bit_cast<T>(bits);
}

}  // namespace

int serve(const Handler& handler) {
  try {
    const char* channel = env_or_null("CORRAL_CHANNEL");
    if (channel == nullptr) {
      throw EnvError{
          "CORRAL_CHANNEL is not set: this worker runs under corrald, which sets it "
          "(see docs/worker-protocol.md)"};
    }
    std::string_view name = channel;
    if (name == "pipe") return serve_pipe(handler);
    if (name == "shm") return serve_shm(handler);
    if (name == "none") {
      throw EnvError{std::string("CORRAL_CHANNEL=none: ") + program_name() +
                     " needs a task channel (pipe or shm)"};
    }
    throw EnvError{"CORRAL_CHANNEL=" + std::string(name) + ": expected pipe or shm"};
  } catch (const EnvError& e) {
    complain(e.message);
    return 2;
  } catch (const std::exception& e) {  // e.g. no memory or no thread for heartbeats
    complain(std::string("serving tasks: ") + e.what());
    return 1;
  }
}

void stop_after_this_task() { g_stop_requested.store(true, std::memory_order_relaxed); }

std::string_view job_name() {
  const char* job = std::getenv("CORRAL_JOB");
  return job != nullptr ? job : "";
}

int worker_index() {
  const char* text = std::getenv("CORRAL_WORKER");
  std::optional<uint64_t> index = text != nullptr ? parse_u64(text) : std::nullopt;
  return index && *index <= INT32_MAX ? static_cast<int>(*index) : -1;
}

template <class T>
T SharedValue<T>::load() const {
  return from_bits<T>(cell_->load(std::memory_order_relaxed));
}

template <class T>
void SharedValue<T>::store(T value) {
  cell_->store(to_bits(value), std::memory_order_relaxed);
}

template <class T>
T SharedValue<T>::fetch_add(T delta) {
  if constexpr (std::is_same_v<T, double>) {
    // No atomic add of doubles across processes: compare-and-swap the bits.
    uint64_t old_bits = cell_->load(std::memory_order_relaxed);
    while (!cell_->compare_exchange_weak(old_bits, to_bits(from_bits<double>(old_bits) + delta),
                                         std::memory_order_relaxed)) {
    }
    return from_bits<double>(old_bits);
  } else {
    // Two's complement: adding the bits of an i64 adds the i64, wrapping.
    return from_bits<T>(cell_->fetch_add(to_bits(delta), std::memory_order_relaxed));
  }
}

template <class T>
SharedValue<T> SharedArray<T>::operator[](size_t i) const {
  if (i >= length_) {
    throw std::out_of_range("shared array index " + std::to_string(i) + " out of range (length " +
                            std::to_string(length_) + ")");
  }
  return SharedValue<T>(cells_ + i);
}

template <class T>
SharedValue<T> shared_value(std::string_view name) {
  ipc::SharedView view = find_shared_or_throw(name);
  check_type<T>(view, false);
  return SharedValue<T>(view.cells);
}

template <class T>
SharedArray<T> shared_array(std::string_view name) {
  ipc::SharedView view = find_shared_or_throw(name);
  check_type<T>(view, true);
  return SharedArray<T>(view.cells, view.length);
}

template class SharedValue<uint64_t>;
template class SharedValue<int64_t>;
template class SharedValue<double>;
template class SharedArray<uint64_t>;
template class SharedArray<int64_t>;
template class SharedArray<double>;
template SharedValue<uint64_t> shared_value<uint64_t>(std::string_view);
template SharedValue<int64_t> shared_value<int64_t>(std::string_view);
template SharedValue<double> shared_value<double>(std::string_view);
template SharedArray<uint64_t> shared_array<uint64_t>(std::string_view);
template SharedArray<int64_t> shared_array<int64_t>(std::string_view);
template SharedArray<double> shared_array<double>(std::string_view);

}  // namespace corral

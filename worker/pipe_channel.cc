#include "worker/pipe_channel.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/io.h"
#include "base/result.h"
#include "ipc/frame.h"
#include "worker/heartbeat.h"

namespace corral::sdk {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

// serve() waits on its channel anyway; an fd that came non-blocking (from a
// parent other than corrald, which gives blocking pipes) is made blocking, so
// that a read or a write never fails with EAGAIN.
Status make_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return errno_error("fcntl F_GETFL of fd " + std::to_string(fd));
  if ((flags & O_NONBLOCK) == 0) return {};
  if (::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return errno_error("fcntl F_SETFL of fd " + std::to_string(fd));
  }
  return {};
}

// Reads what is there, at least one byte: the number read, 0 at EOF.
Result<size_t> read_some(int fd, char* buffer, size_t size) {
  for (;;) {
    const ssize_t n = ::read(fd, buffer, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return errno_error("reading tasks");
  }
}

// Feeds DECODER the next chunk of IN (BUFFER holds kReadChunk bytes): nothing
// while serving goes on, else the exit code. At EOF, bytes left undecoded are
// reported with the message LEFTOVER(count) makes.
template <typename Decoder, typename Leftover>
std::optional<int> feed_next(int in, char* buffer, Decoder& decoder, Leftover leftover) {
  Result<size_t> n = read_some(in, buffer, kReadChunk);
  if (!n) {
    complain(n.error().message());
    return kExitBroken;
  }
  if (*n == 0) {
    if (decoder.buffered() > 0) complain(leftover(decoder.buffered()));
    return kExitDone;
  }
  decoder.feed(std::string_view(buffer, *n));
  return std::nullopt;
}

// The OUT fd of a pipe worker, shared by the serving thread (results) and the
// heartbeat thread: every frame is written whole under the mutex.
class PipeOut {
 public:
  explicit PipeOut(int fd) : fd_(fd) {}
  // Writes BYTES (whole frames or lines).
  Status write(std::string_view bytes) {
    std::lock_guard lock(mutex_);
    return write_all(fd_, bytes, "writing results");
  }
  // write(), saying on stderr why it failed.
  bool send(std::string_view bytes) {
    Status written = write(bytes);
    if (!written) complain(written.error().message());
    return written.ok();
  }

 private:
  int fd_;
  std::mutex mutex_;
};

int serve_lines(const TaskHandler& handler, int in, int out_fd, size_t max_task_bytes) {
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
        return kExitBroken;
      }
      Answer answer = call_handler(handler, line, max_task_bytes);
      if (!answer.ok) {
        // A line has no status: written, the failure would read as a result.
        complain("task failed: " + answer.payload +
                 "; framing: lines cannot report a failed task, so the worker exits "
                 "(framing: length reports it)");
        return kExitTaskFailedOnLines;
      }
      line_out = std::move(answer.payload);
      // A line result cannot hold a line break: each becomes a space.
      std::replace(line_out.begin(), line_out.end(), '\n', ' ');
      line_out += '\n';
      if (!out.send(line_out)) return kExitBroken;
      if (stop_requested()) return kExitDone;
    }
    // EOF is the sentinel of line workers.
    auto ended = feed_next(in, buffer.get(), decoder, [](size_t bytes) {
      return "ignored " + std::to_string(bytes) +
             " bytes after the last newline at the end of the input";
    });
    if (ended) return *ended;
  }
}

int serve_length(const TaskHandler& handler, int in, int out_fd, const Limits& limits) {
  const size_t max_task_bytes = limits.max_task_bytes;
  ipc::FrameDecoder decoder(max_task_bytes + ipc::kResultHeaderBytes);
  PipeOut out(out_fd);
  std::string frame_out;
  if (limits.chunks) {
    ipc::append_ready(frame_out, ipc::kReadyTakesChunks);
  } else {
    ipc::append_control(frame_out, ipc::FrameType::kReady);
  }
  if (!out.send(frame_out)) return kExitBroken;
  const std::chrono::milliseconds heartbeat_period = limits.heartbeat;
  Heartbeat heartbeat(heartbeat_period, [&out] {
    std::string beat;
    ipc::append_control(beat, ipc::FrameType::kHeartbeat);
    // A failed write is the serving thread's to report: it sees the same pipe.
    [[maybe_unused]] Status written = out.write(beat);
  });

  // Runs task ID and writes its result before the next task starts; false
  // when the channel broke.
  auto answer = [&](uint64_t id, std::string_view payload) {
    Answer answer = call_handler(handler, payload, max_task_bytes);
    frame_out.clear();
    ipc::append_result(frame_out, id,
                       answer.ok ? ipc::ResultStatus::kOk : ipc::ResultStatus::kFailed,
                       answer.payload);
    return out.send(frame_out);
  };
  auto buffer = std::make_unique_for_overwrite<char[]>(kReadChunk);
  bool warned_unexpected = false;
  for (;;) {
    ipc::Frame frame;
    for (;;) {
      ipc::DecodeStatus status = decoder.next(frame);
      if (status == ipc::DecodeStatus::kNeedMore) break;
      if (status == ipc::DecodeStatus::kError) {
        complain("reading tasks: " + decoder.error());
        return kExitBroken;
      }
      if (frame.type == ipc::FrameType::kShutdown) return kExitDone;
      if (frame.type == ipc::FrameType::kTasks) {
        // A chunk: its tasks in order, each answered before the next.
        std::string_view items = frame.payload;
        for (uint32_t i = 0; i < frame.count; ++i) {
          if (!answer(frame.id + i, ipc::take_chunk_item(items))) return kExitBroken;
          if (stop_requested()) return kExitDone;
        }
        continue;
      }
      if (frame.type != ipc::FrameType::kTask) {
        if (!warned_unexpected) {
          complain("ignoring a frame of type " + std::to_string(static_cast<int>(frame.type)) +
                   " from the daemon (only TASK, TASKS and SHUTDOWN are expected)");
          warned_unexpected = true;
        }
        continue;
      }
      if (!answer(frame.id, frame.payload)) return kExitBroken;
      if (stop_requested()) return kExitDone;
    }
    // EOF: the daemon is done with this worker.
    auto ended = feed_next(in, buffer.get(), decoder, [](size_t bytes) {
      return "the daemon closed the channel inside a frame (" + std::to_string(bytes) +
             " bytes ignored)";
    });
    if (ended) return *ended;
  }
}

}  // namespace

int serve_pipe(const TaskHandler& handler, const PipeSettings& settings) {
  for (int fd : {settings.in, settings.out}) {
    if (Status blocking = make_blocking(fd); !blocking) {
      complain(blocking.error().message());
      return kExitBroken;
    }
  }
  // A daemon that goes away must show up as EPIPE, not kill the worker.
  ::signal(SIGPIPE, SIG_IGN);
  const size_t max_task_bytes = settings.limits.max_task_bytes;
  if (settings.framing == Framing::kLines) {
    return serve_lines(handler, settings.in, settings.out, max_task_bytes);
  }
  return serve_length(handler, settings.in, settings.out, settings.limits);
}

}  // namespace corral::sdk

// The C++ worker SDK's channels (worker/) against a test that plays corrald:
// each test forks a child that sets the environment and calls corral::serve()
// with one of the handlers of worker_sdk_handlers.h, then talks to it over
// pipes (both framings) or over a real job segment and two eventfds (shm),
// and checks what the child sends and how it exits.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/frame.h"
#include "ipc/segment.h"
#include "ipc/spsc_ring.h"
#include "ipc/wake.h"
#include "tests/support/poll.h"
#include "tests/unit/frame_assertions.h"
#include "tests/unit/worker_sdk_handlers.h"

namespace corral {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Env = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

// A pipe whose ends close with the object.
struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    read = fds[0];
    write = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (read >= 0) ::close(read);
    read = -1;
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
};

// Forks a worker: the child drops the parent's pipe ends (CLOSE), sets ENV
// (after unsetting every CORRAL_* variable a test may leave), sends stderr
// to STDERR_FD when given, and exits with serve() of the handler HANDLER.
pid_t fork_worker(const Env& env, const std::string& handler, std::vector<int> close = {},
                  int stderr_fd = -1) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  for (int fd : close) ::close(fd);
  for (const char* name :
       {"CORRAL_JOB", "CORRAL_WORKER", "CORRAL_CHANNEL", "CORRAL_FRAMING", "CORRAL_FDS",
        "CORRAL_SHM", "CORRAL_MAX_TASK_BYTES", "CORRAL_HEARTBEAT_MS", "CORRAL_CHUNKS"}) {
    ::unsetenv(name);
  }
  for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
  if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);
  ::_exit(sdk_test::serve_with(handler));
}

// The child's exit code, or -1 (and the child killed) if it did not exit in time.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout = 10s) {
  const int code = corral::testing::wait_for_exit(pid, timeout);
  if (code == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return code;
}

// Reads what is there within TIMEOUT; "" at EOF or timeout.
std::string read_some(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  char buffer[65536];
  ssize_t n = ::read(fd, buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

// Everything until EOF (at most TIMEOUT).
std::string read_to_eof(int fd, std::chrono::milliseconds timeout = 10s) {
  std::string all;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    all.append(buffer, static_cast<size_t>(n));
  }
  return all;
}

struct OwnedFrame {
  ipc::FrameType type = ipc::FrameType::kTask;
  uint64_t id = 0;
  ipc::ResultStatus status = ipc::ResultStatus::kOk;
  std::string payload;
  uint32_t features = 0;  // READY
};

// Frames from the worker's OUT pipe.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd), decoder_(1 << 20) {}
  // The next frame, or nullopt on EOF, timeout or a bad frame.
  std::optional<OwnedFrame> next(std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      ipc::Frame frame;
      ipc::DecodeStatus status = decoder_.next(frame);
      if (status == ipc::DecodeStatus::kItem) {
        return OwnedFrame{frame.type, frame.id, frame.status, std::string(frame.payload),
                          frame.features};
      }
      if (status == ipc::DecodeStatus::kError) return std::nullopt;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return std::nullopt;
      std::string bytes = read_some(fd_, left);
      if (bytes.empty()) return std::nullopt;
      decoder_.feed(bytes);
    }
  }
  // The next frame that is not a HEARTBEAT.
  std::optional<OwnedFrame> next_non_heartbeat(std::chrono::milliseconds timeout = 10s) {
    for (;;) {
      std::optional<OwnedFrame> frame = next(timeout);
      if (!frame || frame->type != ipc::FrameType::kHeartbeat) return frame;
    }
  }

 private:
  int fd_;
  ipc::FrameDecoder decoder_;
};

std::string task_frame(uint64_t id, std::string_view payload) {
  std::string out;
  ipc::append_task(out, id, payload);
  return out;
}

std::string control_frame(ipc::FrameType type) {
  std::string out;
  ipc::append_control(out, type);
  return out;
}

// The pipe channel: IN and OUT pipes and a child serving them.
class PipeWorker {
 public:
  PipeWorker(const std::string& framing, Env extra = {}, const std::string& handler = "upper") {
    Env env = {{"CORRAL_JOB", "test"},
               {"CORRAL_WORKER", "0"},
               {"CORRAL_CHANNEL", "pipe"},
               {"CORRAL_FRAMING", framing},
               {"CORRAL_FDS", std::to_string(in.read) + "," + std::to_string(out.write)},
               {"CORRAL_MAX_TASK_BYTES", "1024"}};
    env.insert(env.end(), extra.begin(), extra.end());
    pid = fork_worker(env, handler, {in.write, out.read, err.read}, err.write);
    in.close_read();
    out.close_write();
    err.close_write();
  }
  ~PipeWorker() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  int exit_code() {
    int code = wait_exit(pid);
    pid = -1;
    return code;
  }

  Pipe in, out, err;
  pid_t pid = -1;
};

// ---- lines ----

TEST(WorkerSdkLines, OneResultLinePerTaskInOrder) {
  PipeWorker worker("lines");
  ASSERT_TRUE(write_all(worker.in.write, "abc\ntwo lines\n\nxyz\n").ok());
  worker.in.close_write();  // EOF: the sentinel
  EXPECT_EQ(read_to_eof(worker.out.read), "ABC\nfirst second\n\nXYZ\n");
  EXPECT_EQ(worker.exit_code(), 0);
}

// A line has no status: a failure written as a line would read as an ok
// result. The worker says why and exits 3 instead; nothing after it is
// answered (the daemon redelivers those tasks).
TEST(WorkerSdkLines, AFailedTaskEndsTheWorkerRatherThanAnswerOk) {
  for (const char* failing : {"boom", "refuse"}) {
    PipeWorker worker("lines");
    ASSERT_TRUE(write_all(worker.in.write, "abc\n" + std::string(failing) + "\nxyz\n").ok());
    worker.in.close_write();
    EXPECT_EQ(read_to_eof(worker.out.read), "ABC\n") << failing;
    EXPECT_THAT(read_to_eof(worker.err.read),
                HasSubstr("task failed: " +
                          std::string(*failing == 'b' ? "it went boom" : "refused on purpose") +
                          "; framing: lines cannot report a failed task, so the worker exits"))
        << failing;
    EXPECT_EQ(worker.exit_code(), 3) << failing;
  }
}

TEST(WorkerSdkLines, TaskSplitAcrossReads) {
  PipeWorker worker("lines");
  ASSERT_TRUE(write_all(worker.in.write, "hel").ok());
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(write_all(worker.in.write, "lo\nwor").ok());
  EXPECT_EQ(read_some(worker.out.read, 5s), "HELLO\n");
  ASSERT_TRUE(write_all(worker.in.write, "ld\n").ok());
  EXPECT_EQ(read_some(worker.out.read, 5s), "WORLD\n");
  worker.in.close_write();
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLines, OverlongLineBreaksTheChannel) {
  PipeWorker worker("lines");
  ASSERT_TRUE(write_all(worker.in.write, std::string(2000, 'x') + "\n").ok());
  EXPECT_EQ(worker.exit_code(), 1);
  EXPECT_THAT(read_to_eof(worker.err.read), HasSubstr("reading tasks"));
}

// ---- length ----

TEST(WorkerSdkLength, ReadyThenResultsWithIdsAndStatuses) {
  PipeWorker worker("length");
  FrameReader reader(worker.out.read);
  std::optional<OwnedFrame> ready = reader.next();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, ipc::FrameType::kReady);

  const uint64_t big_id = (uint64_t{1} << 40) + 3;
  ASSERT_TRUE(write_all(worker.in.write, task_frame(5, "abc") + task_frame(big_id, "boom") +
                                             task_frame(7, "") + task_frame(9, "refuse"))
                  .ok());
  std::vector<OwnedFrame> results;
  for (int i = 0; i < 4; ++i) {
    std::optional<OwnedFrame> frame = reader.next();
    ASSERT_TRUE(frame) << "result " << i;
    ASSERT_EQ(frame->type, ipc::FrameType::kResult);
    results.push_back(*frame);
  }
  EXPECT_EQ(results[0].id, 5u);
  EXPECT_EQ(results[0].status, ipc::ResultStatus::kOk);
  EXPECT_EQ(results[0].payload, "ABC");
  EXPECT_EQ(results[1].id, big_id);
  EXPECT_EQ(results[1].status, ipc::ResultStatus::kFailed);
  EXPECT_EQ(results[1].payload, "it went boom");
  EXPECT_EQ(results[2].id, 7u);
  EXPECT_EQ(results[2].status, ipc::ResultStatus::kOk);
  EXPECT_EQ(results[2].payload, "");
  EXPECT_EQ(results[3].id, 9u);
  EXPECT_EQ(results[3].status, ipc::ResultStatus::kFailed);
  EXPECT_EQ(results[3].payload, "refused on purpose");

  ASSERT_TRUE(write_all(worker.in.write, control_frame(ipc::FrameType::kShutdown)).ok());
  EXPECT_FALSE(reader.next());  // the worker closed its end: nothing after the sentinel
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, EofOfInputExitsZero) {
  PipeWorker worker("length");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  ASSERT_TRUE(write_all(worker.in.write, task_frame(1, "a")).ok());
  std::optional<OwnedFrame> result = reader.next();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->payload, "A");
  worker.in.close_write();
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, FrameSplitAcrossReads) {
  PipeWorker worker("length");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  std::string frames = task_frame(11, "split me") + task_frame(12, "and me");
  ASSERT_TRUE(write_all(worker.in.write, frames.substr(0, 3)).ok());  // inside the length prefix
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(write_all(worker.in.write, frames.substr(3, 10)).ok());  // inside the id
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(write_all(worker.in.write, frames.substr(13)).ok());
  std::optional<OwnedFrame> first = reader.next();
  std::optional<OwnedFrame> second = reader.next();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->id, 11u);
  EXPECT_EQ(first->payload, "SPLIT ME");
  EXPECT_EQ(second->id, 12u);
  EXPECT_EQ(second->payload, "AND ME");
  ASSERT_TRUE(write_all(worker.in.write, control_frame(ipc::FrameType::kShutdown)).ok());
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, HeartbeatsWhileATaskRuns) {
  PipeWorker worker("length", {{"CORRAL_HEARTBEAT_MS", "20"}});
  FrameReader reader(worker.out.read);
  std::optional<OwnedFrame> ready = reader.next();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, ipc::FrameType::kReady);
  ASSERT_TRUE(write_all(worker.in.write, task_frame(3, "slow")).ok());  // 300 ms
  int heartbeats = 0;
  std::optional<OwnedFrame> frame;
  while ((frame = reader.next()) && frame->type == ipc::FrameType::kHeartbeat) ++heartbeats;
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->type, ipc::FrameType::kResult);
  EXPECT_EQ(frame->id, 3u);
  EXPECT_EQ(frame->payload, "SLOW");
  EXPECT_GE(heartbeats, 5);  // ~15 expected in 300 ms; the result frame was not torn by them
  ASSERT_TRUE(write_all(worker.in.write, control_frame(ipc::FrameType::kShutdown)).ok());
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, ResultOfALongTaskIsNotHeldBackByTheNextTasks) {
  PipeWorker worker("length");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  auto start = Clock::now();
  ASSERT_TRUE(write_all(worker.in.write,
                        task_frame(1, "slow") + task_frame(2, "slow") + task_frame(3, "slow"))
                  .ok());
  std::optional<OwnedFrame> first = reader.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, 1u);
  EXPECT_LT(Clock::now() - start, 550ms);  // 300 ms of work, not 900
  worker.in.close_write();
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, ResultsBeforeACrashAreSent) {
  PipeWorker worker("length", {}, "echo_or_crash");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  ASSERT_TRUE(
      write_all(worker.in.write, task_frame(1, "a") + task_frame(2, "b") + task_frame(3, "crash"))
          .ok());
  std::optional<OwnedFrame> a = reader.next(), b = reader.next();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->id, 2u);
  EXPECT_FALSE(reader.next());
  EXPECT_EQ(worker.exit_code(), 128 + SIGABRT);
}

std::string tasks_frame(uint64_t first_id, const std::vector<std::string>& payloads) {
  std::string items;
  for (const std::string& p : payloads) ipc::append_chunk_item(items, p);
  std::string out;
  ipc::append_tasks(out, first_id, static_cast<uint32_t>(payloads.size()), items);
  return out;
}

// CORRAL_CHUNKS=1: READY says the worker takes chunks, and a TASKS frame is
// answered one RESULT per task, in order, with each task's own id.
TEST(WorkerSdkLength, AChunkIsAnsweredTaskByTaskInOrder) {
  PipeWorker worker("length", {{"CORRAL_CHUNKS", "1"}});
  FrameReader reader(worker.out.read);
  std::optional<OwnedFrame> ready = reader.next();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, ipc::FrameType::kReady);
  EXPECT_EQ(ready->features, ipc::kReadyTakesChunks);
  ASSERT_TRUE(
      write_all(worker.in.write, tasks_frame(10, {"a", "boom", "", "c"}) + task_frame(20, "single"))
          .ok());
  const std::vector<std::pair<uint64_t, std::string>> expected = {
      {10, "A"}, {11, "it went boom"}, {12, ""}, {13, "C"}, {20, "SINGLE"}};
  for (const auto& [id, payload] : expected) {
    std::optional<OwnedFrame> result = reader.next();
    ASSERT_TRUE(result) << id;
    EXPECT_EQ(result->type, ipc::FrameType::kResult);
    EXPECT_EQ(result->id, id);
    EXPECT_EQ(result->payload, payload);
    EXPECT_EQ(result->status, id == 11 ? ipc::ResultStatus::kFailed : ipc::ResultStatus::kOk);
  }
  worker.in.close_write();
  EXPECT_EQ(worker.exit_code(), 0);
}

// Without CORRAL_CHUNKS (an older corrald), READY has no body: a body would
// be garbage to that daemon.
TEST(WorkerSdkLength, ReadyHasNoBodyUnlessTheDaemonOffersChunks) {
  for (const char* offer : {"", "0"}) {
    PipeWorker worker("length", {{"CORRAL_CHUNKS", offer}});
    std::string ready = read_some(worker.out.read, 10s);
    EXPECT_EQ(ready, control_frame(ipc::FrameType::kReady)) << offer;
    worker.in.close_write();
    EXPECT_EQ(worker.exit_code(), 0);
  }
}

TEST(WorkerSdkLength, ResultsOfAChunkBeforeACrashAreSent) {
  PipeWorker worker("length", {{"CORRAL_CHUNKS", "1"}}, "echo_or_crash");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  ASSERT_TRUE(write_all(worker.in.write, tasks_frame(1, {"a", "b", "crash", "never"})).ok());
  std::optional<OwnedFrame> a = reader.next(), b = reader.next();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id, 1u);
  EXPECT_EQ(b->id, 2u);
  EXPECT_FALSE(reader.next());
  EXPECT_EQ(worker.exit_code(), 128 + SIGABRT);
}

TEST(WorkerSdkLength, NoHeartbeatsUnlessAskedFor) {
  PipeWorker worker("length");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  ASSERT_TRUE(write_all(worker.in.write, task_frame(3, "slow")).ok());
  std::optional<OwnedFrame> frame = reader.next();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->type, ipc::FrameType::kResult);
  worker.in.close_write();
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, ResultOverTheLimitFails) {
  PipeWorker worker("length", {}, "oversize");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  ASSERT_TRUE(write_all(worker.in.write, task_frame(1, "x")).ok());
  std::optional<OwnedFrame> result = reader.next();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, ipc::ResultStatus::kFailed);
  EXPECT_THAT(result->payload, HasSubstr("exceeds the limit of 1024 bytes"));
  worker.in.close_write();
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, StopAfterThisTaskExitsOnceTheResultIsSent) {
  PipeWorker worker("length", {}, "stop_on_last");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());  // READY
  ASSERT_TRUE(write_all(worker.in.write,
                        task_frame(1, "a") + task_frame(2, "last") + task_frame(3, "never"))
                  .ok());
  std::optional<OwnedFrame> a = reader.next();
  std::optional<OwnedFrame> last = reader.next();
  ASSERT_TRUE(a && last);
  EXPECT_EQ(last->id, 2u);
  EXPECT_FALSE(reader.next());  // EOF: task 3 is left for the daemon to redeliver
  EXPECT_EQ(worker.exit_code(), 0);
}

TEST(WorkerSdkLength, GarbageFromTheDaemonBreaksTheChannel) {
  PipeWorker worker("length");
  FrameReader reader(worker.out.read);
  ASSERT_TRUE(reader.next());                                                            // READY
  ASSERT_TRUE(write_all(worker.in.write, std::string("\x01\x00\x00\x00\x63", 5)).ok());  // type 99
  EXPECT_EQ(worker.exit_code(), 1);
  EXPECT_THAT(read_to_eof(worker.err.read), HasSubstr("reading tasks"));
}

// ---- the environment ----

struct EnvCase {
  Env env;
  std::string message;
};

TEST(WorkerSdkEnvironment, BadEnvironmentExitsTwoWithAMessage) {
  const std::vector<EnvCase> cases = {
      {{}, "CORRAL_CHANNEL is not set"},
      {{{"CORRAL_CHANNEL", "none"}}, "CORRAL_CHANNEL=none: "},
      {{{"CORRAL_CHANNEL", "carrier-pigeon"}}, "expected pipe or shm"},
      {{{"CORRAL_CHANNEL", "pipe"}, {"CORRAL_FRAMING", "xml"}}, "CORRAL_FRAMING=xml"},
      {{{"CORRAL_CHANNEL", "pipe"}, {"CORRAL_FDS", "500,501"}}, "fd 500 is not open"},
      {{{"CORRAL_CHANNEL", "pipe"}, {"CORRAL_FDS", "three"}}, "expected two fds"},
      {{{"CORRAL_CHANNEL", "pipe"}, {"CORRAL_FDS", "0,1"}, {"CORRAL_MAX_TASK_BYTES", "lots"}},
       "CORRAL_MAX_TASK_BYTES=lots"},
      {{{"CORRAL_CHANNEL", "shm"}, {"CORRAL_WORKER", "0"}, {"CORRAL_SHM", "/corral-x"}},
       "expected fd:N"},
      {{{"CORRAL_CHANNEL", "shm"}, {"CORRAL_WORKER", "0"}, {"CORRAL_SHM", "fd:500"}},
       "fd 500 is not open"},
  };
  for (const EnvCase& c : cases) {
    Pipe err;
    pid_t pid = fork_worker(c.env, "upper", {err.read}, err.write);
    err.close_write();
    EXPECT_EQ(wait_exit(pid), 2) << c.message;
    EXPECT_THAT(read_to_eof(err.read), HasSubstr(c.message));
  }
}

TEST(WorkerSdkEnvironment, NoneChannelMessageNamesTheProgram) {
  Pipe err;
  pid_t pid = fork_worker({{"CORRAL_CHANNEL", "none"}}, "upper", {err.read}, err.write);
  err.close_write();
  EXPECT_EQ(wait_exit(pid), 2);
  EXPECT_THAT(read_to_eof(err.read),
              HasSubstr("CORRAL_CHANNEL=none: " + std::string(program_invocation_short_name) +
                        " needs a task channel (pipe or shm)"));
}

// ---- shm ----

// Plays the daemon's side of one worker's rings.
class ShmDaemon {
 public:
  static constexpr uint32_t kWorker = 1;  // not 0, to check the index is used

  explicit ShmDaemon(uint64_t ring_capacity = 64 * 1024) {
    ipc::SegmentSpec spec;
    spec.job = "shmtest";
    spec.workers = 2;
    spec.ring_capacity = ring_capacity;
    spec.shared = {{"processed", ipc::SharedElement::kU64, false, 1},
                   {"total", ipc::SharedElement::kF64, false, 1},
                   {"histogram", ipc::SharedElement::kI64, true, 8}};
    segment.emplace(*ipc::Segment::create(spec));
    task_wake.emplace(*ipc::EventFd::create());
    result_wake.emplace(*ipc::EventFd::create());
    tasks = segment->task_ring(kWorker);
    results = segment->result_ring(kWorker);
  }
  ~ShmDaemon() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  void start(const std::string& handler, Env extra = {}) {
    Env env = {
        {"CORRAL_JOB", "shmtest"},
        {"CORRAL_WORKER", std::to_string(kWorker)},
        {"CORRAL_CHANNEL", "shm"},
        {"CORRAL_SHM", "fd:" + std::to_string(segment->fd())},
        {"CORRAL_FDS", std::to_string(task_wake->fd()) + "," + std::to_string(result_wake->fd())},
        {"CORRAL_MAX_TASK_BYTES", "4096"}};
    env.insert(env.end(), extra.begin(), extra.end());
    pid = fork_worker(env, handler);
  }

  bool push_task(uint64_t id, std::string_view payload) {
    size_t size = ipc::kTaskHeaderBytes + payload.size();
    char* dest = tasks.reserve(size);
    if (dest == nullptr) return false;
    tasks.commit(ipc::write_task_body(dest, id, payload));
    return true;
  }
  bool push_chunk(uint64_t first_id, const std::vector<std::string>& payloads) {
    std::string items;
    for (const std::string& p : payloads) ipc::append_chunk_item(items, p);
    char* dest = tasks.reserve(ipc::kTasksHeaderBytes + items.size());
    if (dest == nullptr) return false;
    tasks.commit(
        ipc::write_tasks_body(dest, first_id, static_cast<uint32_t>(payloads.size()), items));
    return true;
  }
  void push_shutdown() {
    char* dest = tasks.reserve(1);
    ASSERT_NE(dest, nullptr);
    dest[0] = static_cast<char>(ipc::FrameType::kShutdown);
    tasks.commit(1);
    publish();
  }
  void publish() {
    if (tasks.publish()) task_wake->signal();
  }

  // Takes every visible result record; false on a bad record.
  bool drain_results(std::vector<OwnedFrame>& out) {
    for (;;) {
      std::string_view record = results.peek();
      if (record.data() == nullptr) break;
      ipc::Frame frame;
      if (::testing::AssertionResult parsed = ipc::parses(record, frame); !parsed) {
        ADD_FAILURE() << parsed.message();
        return false;
      }
      if (frame.type == ipc::FrameType::kResults) {
        // One entry per result, each under its own id.
        std::string_view items = frame.payload;
        for (uint32_t i = 0; i < frame.count; ++i) {
          const ipc::ResultItem item = ipc::take_result_item(items);
          out.push_back({frame.type, frame.id + i, item.status, std::string(item.payload), 0});
        }
      } else {
        out.push_back(
            {frame.type, frame.id, frame.status, std::string(frame.payload), frame.features});
      }
      results.consume();
    }
    if (results.release()) task_wake->signal();
    return true;
  }

  // Sleeps on the result eventfd as the daemon would, if nothing is visible.
  void sleep_for_results(std::chrono::milliseconds timeout) {
    if (results.consumer_prepare_sleep()) result_wake->wait(timeout);
  }

  // Waits for the READY record (its features into FEATURES if given).
  bool wait_ready(uint32_t* features = nullptr) {
    auto deadline = Clock::now() + 10s;
    std::vector<OwnedFrame> got;
    while (Clock::now() < deadline) {
      if (!drain_results(got)) return false;
      if (!got.empty() && features != nullptr) *features = got[0].features;
      if (!got.empty()) return got.size() == 1 && got[0].type == ipc::FrameType::kReady;
      sleep_for_results(100ms);
    }
    return false;
  }

  // Sends N tasks (payload PAYLOAD(i), id 1000 + i) and collects their N
  // results, keeping both rings moving; SLOW_READER makes the worker fill
  // its result ring and sleep for space.
  std::vector<OwnedFrame> exchange(int n, const std::function<std::string(int)>& payload,
                                   bool slow_reader = false) {
    std::vector<OwnedFrame> got;
    int sent = 0;
    auto deadline = Clock::now() + 30s;
    while (static_cast<int>(got.size()) < n && Clock::now() < deadline) {
      bool progress = false;
      while (sent < n && push_task(1000 + sent, payload(sent))) {
        ++sent;
        progress = true;
      }
      publish();
      if (slow_reader) std::this_thread::sleep_for(1ms);
      size_t before = got.size();
      if (!drain_results(got)) break;
      progress = progress || got.size() != before;
      if (progress) continue;
      bool sleep = results.consumer_prepare_sleep();
      if (sent < n) {
        size_t size = ipc::kTaskHeaderBytes + payload(sent).size();
        sleep = tasks.producer_prepare_sleep(size) && sleep;
      }
      if (sleep) result_wake->wait(200ms);
    }
    return got;
  }

  std::optional<ipc::Segment> segment;
  std::optional<ipc::EventFd> task_wake, result_wake;
  ipc::SpscRing tasks, results;
  pid_t pid = -1;
};

TEST(WorkerSdkShm, ManyTasksThenSentinel) {
  ShmDaemon daemon;
  daemon.start("shm");
  ASSERT_TRUE(daemon.wait_ready());
  const ipc::WorkerSlot& slot = daemon.segment->slot(ShmDaemon::kWorker);
  EXPECT_EQ(slot.pid.load(), static_cast<uint32_t>(daemon.pid));
  EXPECT_GT(slot.heartbeat_ns.load(), 0u);

  const int n = 5000;  // several laps of the 64 KiB rings
  std::vector<OwnedFrame> results =
      daemon.exchange(n, [](int i) { return "task-" + std::to_string(i); });
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(results[i].type, ipc::FrameType::kResult);
    ASSERT_EQ(results[i].id, 1000u + i);  // one worker: in order
    ASSERT_EQ(results[i].status, ipc::ResultStatus::kOk);
    ASSERT_EQ(results[i].payload, "<task-" + std::to_string(i) + ">");
  }
  EXPECT_EQ(slot.tasks_done.load(), static_cast<uint64_t>(n));
  EXPECT_EQ(daemon.segment->find_shared("processed")->cells[0].load(), static_cast<uint64_t>(n));
  EXPECT_EQ(std::bit_cast<double>(daemon.segment->find_shared("total")->cells[0].load()), n * 0.5);

  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, FailuresAndTypeErrorsAreFailedResults) {
  ShmDaemon daemon;
  daemon.start("shm");
  ASSERT_TRUE(daemon.wait_ready());
  std::vector<std::string> payloads = {"boom", "wrong type", "ok"};
  std::vector<OwnedFrame> results =
      daemon.exchange(3, [&](int i) { return payloads[static_cast<size_t>(i)]; });
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].status, ipc::ResultStatus::kFailed);
  EXPECT_EQ(results[0].payload, "it went boom");
  EXPECT_EQ(results[1].status, ipc::ResultStatus::kFailed);
  EXPECT_THAT(results[1].payload, HasSubstr("'processed' is u64, not f64"));
  EXPECT_EQ(results[2].status, ipc::ResultStatus::kOk);
  EXPECT_EQ(results[2].payload, "<ok>");
  EXPECT_EQ(daemon.segment->find_shared("processed")->cells[0].load(), 3u);
  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, ResultsBeforeACrashAreVisible) {
  // The daemon blames the oldest task a dead worker held: every finished
  // result must be in the ring before the next task runs.
  ShmDaemon daemon;
  daemon.start("echo_or_crash");
  ASSERT_TRUE(daemon.wait_ready());
  ASSERT_TRUE(daemon.push_task(1, "a"));
  ASSERT_TRUE(daemon.push_task(2, "b"));
  ASSERT_TRUE(daemon.push_task(3, "crash"));
  ASSERT_TRUE(daemon.push_task(4, "never"));
  daemon.publish();
  EXPECT_EQ(wait_exit(daemon.pid), 128 + SIGABRT);
  daemon.pid = -1;
  std::vector<OwnedFrame> results;
  ASSERT_TRUE(daemon.drain_results(results));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].id, 1u);
  EXPECT_EQ(results[1].id, 2u);
}

TEST(WorkerSdkShm, AChunksResultsGoAsResultsFramesAndTheSlotCountsWhatACrashLost) {
  ShmDaemon daemon;
  daemon.start("echo_or_crash", {{"CORRAL_CHUNKS", "1"}});
  uint32_t features = 0;
  ASSERT_TRUE(daemon.wait_ready(&features));
  EXPECT_EQ(features, ipc::kReadyTakesChunks);
  ASSERT_TRUE(daemon.push_chunk(50, {"a", "b", "c"}));
  ASSERT_TRUE(daemon.push_chunk(60, {"d", "crash", "never"}));
  daemon.publish();
  EXPECT_EQ(wait_exit(daemon.pid), 128 + SIGABRT);
  daemon.pid = -1;
  // The first chunk's results went as one RESULTS frame when the next task
  // was not the one after them; "d" was gathered and lost with the worker,
  // but counted: four tasks finished, so the fifth held ("crash") was
  // running.
  std::vector<OwnedFrame> results;
  ASSERT_TRUE(daemon.drain_results(results));
  ASSERT_EQ(results.size(), 3u);
  const std::vector<std::pair<uint64_t, std::string>> expected = {{50, "a"}, {51, "b"}, {52, "c"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(results[i].type, ipc::FrameType::kResults);
    EXPECT_EQ(results[i].id, expected[i].first);
    EXPECT_EQ(results[i].payload, expected[i].second);
  }
  EXPECT_EQ(daemon.segment->slot(ShmDaemon::kWorker).tasks_done.load(), 4u);
}

TEST(WorkerSdkShm, SingleTasksAreAnsweredAtOnceAfterTheResultsGatheredBeforeThem) {
  ShmDaemon daemon;
  daemon.start("echo_or_crash", {{"CORRAL_CHUNKS", "1"}});
  ASSERT_TRUE(daemon.wait_ready());
  ASSERT_TRUE(daemon.push_chunk(10, {"a", "b"}));
  ASSERT_TRUE(daemon.push_task(12, "c"));
  ASSERT_TRUE(daemon.push_task(13, "crash"));
  daemon.publish();
  EXPECT_EQ(wait_exit(daemon.pid), 128 + SIGABRT);
  daemon.pid = -1;
  std::vector<OwnedFrame> results;
  ASSERT_TRUE(daemon.drain_results(results));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].type, ipc::FrameType::kResults);
  EXPECT_EQ(results[0].id, 10u);
  EXPECT_EQ(results[1].type, ipc::FrameType::kResults);
  EXPECT_EQ(results[1].id, 11u);
  EXPECT_EQ(results[2].type, ipc::FrameType::kResult);
  EXPECT_EQ(results[2].id, 12u);
  EXPECT_EQ(results[2].payload, "c");
  EXPECT_EQ(daemon.segment->slot(ShmDaemon::kWorker).tasks_done.load(), 3u);
}

TEST(WorkerSdkShm, ReadyHasNoBodyUnlessTheDaemonOffersChunks) {
  ShmDaemon daemon;
  daemon.start("shm");
  // The record itself: one byte, READY's type.
  auto deadline = Clock::now() + 10s;
  std::string_view record;
  while ((record = daemon.results.peek()).data() == nullptr && Clock::now() < deadline) {
    daemon.sleep_for_results(100ms);
  }
  EXPECT_EQ(record, std::string(1, static_cast<char>(ipc::FrameType::kReady)));
}

TEST(WorkerSdkShm, FullResultRingMakesTheWorkerWait) {
  ShmDaemon daemon(4096);  // room for three 1000-byte results
  daemon.start("shm");
  ASSERT_TRUE(daemon.wait_ready());
  const int n = 300;
  std::vector<OwnedFrame> results = daemon.exchange(
      n, [](int i) { return "big" + std::to_string(i); }, /*slow_reader=*/true);
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(results[i].id, 1000u + i);
    ASSERT_EQ(results[i].payload, std::string(1000, 'b'));
  }
  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, HeartbeatCellMovesDuringALongTask) {
  ShmDaemon daemon;
  daemon.start("shm", {{"CORRAL_HEARTBEAT_MS", "20"}});
  ASSERT_TRUE(daemon.wait_ready());
  const ipc::WorkerSlot& slot = daemon.segment->slot(ShmDaemon::kWorker);
  ASSERT_TRUE(daemon.push_task(1, "slow"));  // 300 ms
  daemon.publish();
  std::this_thread::sleep_for(100ms);
  uint64_t early = slot.heartbeat_ns.load();
  std::this_thread::sleep_for(100ms);
  uint64_t later = slot.heartbeat_ns.load();
  EXPECT_GT(later, early);
  std::vector<OwnedFrame> results;
  auto deadline = Clock::now() + 10s;
  while (results.empty() && Clock::now() < deadline) {
    daemon.drain_results(results);
    if (results.empty()) daemon.sleep_for_results(100ms);
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].payload, "<slow>");
  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, WorkerIndexBeyondTheSegmentIsABadEnvironment) {
  ShmDaemon daemon;
  Pipe err;
  Env env = {{"CORRAL_CHANNEL", "shm"},
             {"CORRAL_WORKER", "7"},
             {"CORRAL_SHM", "fd:" + std::to_string(daemon.segment->fd())},
             {"CORRAL_FDS", std::to_string(daemon.task_wake->fd()) + "," +
                                std::to_string(daemon.result_wake->fd())}};
  pid_t pid = fork_worker(env, "shm", {err.read}, err.write);
  err.close_write();
  EXPECT_EQ(wait_exit(pid), 2);
  EXPECT_THAT(read_to_eof(err.read), HasSubstr("the segment has 2 workers"));
}

}  // namespace
}  // namespace corral

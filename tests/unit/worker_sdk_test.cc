// The C++ worker SDK's pipe channels (worker/) against a test that plays
// corrald: each test forks a child that sets the environment and calls
// corral::serve() with one of the handlers of worker_sdk_handlers.h, then
// talks to it over pipes (both framings) and checks what the child sends and
// how it exits. The shm channel's tests are in worker_sdk_shm_test.cc.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/frame.h"
#include "tests/support/poll.h"
#include "tests/unit/worker_sdk_fixtures.h"
#include "tests/unit/worker_sdk_handlers.h"

namespace corral {
namespace {

using namespace std::chrono_literals;
using namespace sdk_test;
using ::testing::HasSubstr;

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

  TestPipe in, out, err;
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
    TestPipe err;
    pid_t pid = fork_worker(c.env, "upper", {err.read}, err.write);
    err.close_write();
    EXPECT_EQ(wait_exit(pid), 2) << c.message;
    EXPECT_THAT(read_to_eof(err.read), HasSubstr(c.message));
  }
}

TEST(WorkerSdkEnvironment, NoneChannelMessageNamesTheProgram) {
  TestPipe err;
  pid_t pid = fork_worker({{"CORRAL_CHANNEL", "none"}}, "upper", {err.read}, err.write);
  err.close_write();
  EXPECT_EQ(wait_exit(pid), 2);
  EXPECT_THAT(read_to_eof(err.read),
              HasSubstr("CORRAL_CHANNEL=none: " + std::string(program_invocation_short_name) +
                        " needs a task channel (pipe or shm)"));
}

}  // namespace
}  // namespace corral

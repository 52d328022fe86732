// The Python SDK (worker/python/corral_worker.py) run by python3 over a pipe
// channel as corrald runs it: both framings, READY, ids and statuses,
// heartbeats, SHUTDOWN and EOF, and the example worker
// (examples/python_worker.py). Frames are encoded here by hand.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

enum : uint8_t { kTask = 1, kResult = 2, kShutdown = 3, kReady = 4, kHeartbeat = 5 };

std::string u32le(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}
std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}
std::string task(uint64_t id, const std::string& payload) {
  return u32le(static_cast<uint32_t>(9 + payload.size())) + char(kTask) + u64le(id) + payload;
}
std::string control(uint8_t type) { return u32le(1) + char(type); }

struct Frame {
  uint8_t type = 0;
  uint64_t id = 0;
  uint8_t status = 0;
  std::string payload;
};

// A Python worker whose channel is a pair of pipes on its fds 3 and 4.
class PythonChild {
 public:
  PythonChild(const std::vector<std::string>& args, const std::string& framing,
              const std::vector<std::string>& env = {}) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2");
    }
    std::vector<std::string> environment = {
        "CORRAL_JOB=py",
        "CORRAL_WORKER=0",
        "CORRAL_CHANNEL=pipe",
        "CORRAL_FRAMING=" + framing,
        "CORRAL_FDS=3,4",
        "CORRAL_MAX_TASK_BYTES=4096",
        std::string("PYTHONPATH=") + CORRAL_SOURCE_DIR + "/worker/python",
        "PYTHONDONTWRITEBYTECODE=1"};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "CORRAL_", 7) != 0 && std::strncmp(*e, "PYTHONPATH=", 11) != 0) {
        environment.emplace_back(*e);
      }
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<std::string> argv = {"python3"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int child_in = ::fcntl(in[0], F_DUPFD, 10), child_out = ::fcntl(out[1], F_DUPFD, 10);
      int child_err = ::fcntl(err[1], F_DUPFD, 10);
      ::dup2(child_in, 3);
      ::dup2(child_out, 4);
      ::dup2(child_err, 2);
      ::close_range(5, ~0U, 0);
      std::vector<char*> cargs, envp;
      for (const std::string& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
      cargs.push_back(nullptr);
      for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      ::execvpe(cargs[0], cargs.data(), envp.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
    ::fcntl(err_, F_SETFL, O_NONBLOCK);
  }
  ~PythonChild() {
    close_input();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }

  void send(const std::string& bytes) {
    ASSERT_EQ(::write(in_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  std::optional<Frame> frame(std::chrono::milliseconds timeout = 20s) {
    std::string header;
    if (!take(4, header, timeout)) return std::nullopt;
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= uint32_t(uint8_t(header[i])) << (8 * i);
    std::string body;
    if (length == 0 || !take(length, body, timeout)) return std::nullopt;
    Frame f;
    f.type = uint8_t(body[0]);
    if (f.type == kResult && body.size() >= 10) {
      for (int i = 0; i < 8; ++i) f.id |= uint64_t(uint8_t(body[1 + i])) << (8 * i);
      f.status = uint8_t(body[9]);
      f.payload = body.substr(10);
    }
    return f;
  }
  std::optional<Frame> result(std::chrono::milliseconds timeout = 20s) {
    std::optional<Frame> f;
    while ((f = frame(timeout)) && f->type == kHeartbeat) {
    }
    return f;
  }
  std::optional<std::string> line(std::chrono::milliseconds timeout = 20s) {
    std::string text;
    for (;;) {
      std::string c;
      if (!take(1, c, timeout)) return std::nullopt;
      if (c == "\n") return text;
      text += c;
    }
  }
  bool at_eof(std::chrono::milliseconds timeout = 20s) {
    std::string ignored;
    return !take(1, ignored, timeout) && eof_;
  }
  int wait_exit(std::chrono::milliseconds timeout = 20s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(2ms);
    }
    return -1;
  }
  std::string stderr_text() {
    std::string all;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(err_, buffer, sizeof buffer)) > 0) all.append(buffer, size_t(n));
    return all;
  }

 private:
  bool take(size_t n, std::string& out, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (buffer_.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return false;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t got = ::read(out_, chunk, sizeof chunk);
      if (got <= 0) {
        eof_ = true;
        return false;
      }
      buffer_.append(chunk, size_t(got));
    }
    out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return true;
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

const std::string kExample = std::string(CORRAL_SOURCE_DIR) + "/examples/python_worker.py";

// A worker for the tests: upper-cases, raises on "boom", sleeps on "slow",
// returns bytes on "bytes", a line break on "two lines", and stops after "last".
const std::string kTestWorker = R"(
import time, corral_worker
def handle(task):
    if task == "boom":
        raise RuntimeError("it went boom")
    if task == "slow":
        time.sleep(0.3)
    if task == "bytes":
        return b"\x00\xffraw"
    if task == "two lines":
        return "first\nsecond"
    if task == "last":
        corral_worker.stop_after_this_task()
    return task.upper()
raise SystemExit(corral_worker.serve(handle))
)";

TEST(PythonSdk, LengthFramingReadyResultsShutdown) {
  PythonChild child({"-c", kTestWorker}, "length");
  std::optional<Frame> ready = child.frame();
  ASSERT_TRUE(ready) << child.stderr_text();
  EXPECT_EQ(ready->type, kReady);
  const uint64_t big_id = (uint64_t{1} << 50) + 1;
  child.send(task(4, "abc") + task(big_id, "boom") + task(6, "bytes") + task(7, ""));
  std::vector<Frame> results;
  for (int i = 0; i < 4; ++i) {
    std::optional<Frame> f = child.result();
    ASSERT_TRUE(f) << child.stderr_text();
    ASSERT_EQ(f->type, kResult);
    results.push_back(*f);
  }
  EXPECT_EQ(results[0].id, 4u);
  EXPECT_EQ(results[0].status, 0);
  EXPECT_EQ(results[0].payload, "ABC");
  EXPECT_EQ(results[1].id, big_id);
  EXPECT_EQ(results[1].status, 1);
  EXPECT_EQ(results[1].payload, "it went boom");
  EXPECT_EQ(results[2].payload, std::string("\x00\xffraw", 5));
  EXPECT_EQ(results[3].id, 7u);
  EXPECT_EQ(results[3].payload, "");
  child.send(control(kShutdown));
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, LengthFramingSplitFramesAndEof) {
  PythonChild child({"-c", kTestWorker}, "length");
  ASSERT_TRUE(child.frame());  // READY
  std::string frames = task(1, "split") + task(2, "me");
  child.send(frames.substr(0, 2));
  std::this_thread::sleep_for(30ms);
  child.send(frames.substr(2, 9));
  std::this_thread::sleep_for(30ms);
  child.send(frames.substr(11));
  std::optional<Frame> a = child.result(), b = child.result();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payload, "SPLIT");
  EXPECT_EQ(b->payload, "ME");
  child.close_input();  // EOF
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, HeartbeatsWhileATaskRuns) {
  PythonChild child({"-c", kTestWorker}, "length", {"CORRAL_HEARTBEAT_MS=20"});
  std::optional<Frame> ready = child.frame();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, kReady);
  child.send(task(9, "slow"));
  int heartbeats = 0;
  std::optional<Frame> f;
  while ((f = child.frame()) && f->type == kHeartbeat) ++heartbeats;
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, kResult);
  EXPECT_EQ(f->id, 9u);
  EXPECT_EQ(f->payload, "SLOW");
  EXPECT_GE(heartbeats, 5);
  child.send(control(kShutdown));
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, ResultOfALongTaskIsNotHeldBackByTheNextTasks) {
  PythonChild child({"-c", kTestWorker}, "length");
  ASSERT_TRUE(child.frame());  // READY
  auto start = Clock::now();
  child.send(task(1, "slow") + task(2, "slow") + task(3, "slow"));
  std::optional<Frame> first = child.result();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, 1u);
  EXPECT_LT(Clock::now() - start, 550ms);  // 300 ms of work, not 900
  child.close_input();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, StopAfterThisTask) {
  PythonChild child({"-c", kTestWorker}, "length");
  ASSERT_TRUE(child.frame());  // READY
  child.send(task(1, "a") + task(2, "last") + task(3, "never"));
  std::optional<Frame> a = child.result(), last = child.result();
  ASSERT_TRUE(a && last);
  EXPECT_EQ(last->id, 2u);
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, LinesFramingInOrderAndEof) {
  PythonChild child({"-c", kTestWorker}, "lines");
  child.send("abc\nboom\ntwo lines\n\nx");
  EXPECT_EQ(child.line(), "ABC");
  EXPECT_EQ(child.line(), "it went boom");
  EXPECT_EQ(child.line(), "first second");
  EXPECT_EQ(child.line(), "");
  child.send("yz\n");
  EXPECT_EQ(child.line(), "XYZ");
  child.close_input();
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, ExampleWorkerCountsWordsOverBothFramings) {
  {
    PythonChild child({kExample}, "length");
    std::optional<Frame> ready = child.frame();
    ASSERT_TRUE(ready) << child.stderr_text();
    EXPECT_EQ(ready->type, kReady);
    child.send(task(1, "the quick brown fox") + task(2, "  "));
    std::optional<Frame> words = child.result(), none = child.result();
    ASSERT_TRUE(words && none);
    EXPECT_EQ(words->payload, "4");
    EXPECT_EQ(words->status, 0);
    EXPECT_EQ(none->status, 1);
    EXPECT_EQ(none->payload, "no words");
    child.send(control(kShutdown));
    EXPECT_EQ(child.wait_exit(), 0);
  }
  {
    PythonChild child({kExample}, "lines");
    child.send("one two\nthree\n");
    EXPECT_EQ(child.line(), "2");
    EXPECT_EQ(child.line(), "1");
    child.close_input();
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

TEST(PythonSdk, BadEnvironmentExitsTwo) {
  PythonChild shm({kExample}, "length", {"CORRAL_CHANNEL=shm"});
  EXPECT_EQ(shm.wait_exit(), 2);
  EXPECT_THAT(shm.stderr_text(), HasSubstr("pipe channel only"));
  PythonChild framing({kExample}, "xml");
  EXPECT_EQ(framing.wait_exit(), 2);
  EXPECT_THAT(framing.stderr_text(), HasSubstr("CORRAL_FRAMING=xml"));
}

}  // namespace
}  // namespace corral::testing

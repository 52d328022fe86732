// corral-worker, the real binary, driven over a pipe channel as corrald
// drives it (fds 3 and 4, or stdio): its handlers, its knobs, and how it
// exits. Frames are encoded here by hand, as a worker in another language
// would, to check the wire format against docs/worker-protocol.md.
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
#include <utility>
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

// A worker process whose task channel is a pair of pipes held by the test.
class PipeChild {
 public:
  // ARGV runs with CORRAL_CHANNEL=pipe, CORRAL_FRAMING=FRAMING and the
  // pipes on fds 3 (in) and 4 (out), or 0 and 1 with STDIO; ENV is added.
  PipeChild(const std::vector<std::string>& argv, const std::string& framing,
            const std::vector<std::string>& env = {}, bool stdio = false) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2");
    }
    std::vector<std::string> environment = {"CORRAL_JOB=test",
                                            "CORRAL_WORKER=0",
                                            "CORRAL_CHANNEL=pipe",
                                            "CORRAL_FRAMING=" + framing,
                                            std::string("CORRAL_FDS=") + (stdio ? "0,1" : "3,4"),
                                            "CORRAL_MAX_TASK_BYTES=65536"};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "CORRAL_", 7) != 0) environment.emplace_back(*e);
    }
    environment.insert(environment.end(), env.begin(), env.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      // High copies first, so that no dup2 below overwrites a pipe end.
      int child_in = ::fcntl(in[0], F_DUPFD, 10), child_out = ::fcntl(out[1], F_DUPFD, 10);
      int child_err = ::fcntl(err[1], F_DUPFD, 10);
      if (!stdio) {
        int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
      }
      ::dup2(child_in, stdio ? 0 : 3);
      ::dup2(child_out, stdio ? 1 : 4);
      ::dup2(child_err, 2);
      ::close_range(stdio ? 3 : 5, ~0U, 0);
      std::vector<char*> args, envp;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      ::execvpe(args[0], args.data(), envp.data());
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
  ~PipeChild() {
    close_input();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }
  pid_t pid() const { return pid_; }

  void send(const std::string& bytes) {
    ASSERT_EQ(::write(in_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  // The next frame, or nullopt at EOF or after TIMEOUT.
  std::optional<Frame> frame(std::chrono::milliseconds timeout = 10s) {
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
  // The next frame that is not a HEARTBEAT.
  std::optional<Frame> result(std::chrono::milliseconds timeout = 10s) {
    std::optional<Frame> f;
    while ((f = frame(timeout)) && f->type == kHeartbeat) {
    }
    return f;
  }
  // The next line without its '\n', or nullopt at EOF or after TIMEOUT.
  std::optional<std::string> line(std::chrono::milliseconds timeout = 10s) {
    std::string text;
    for (;;) {
      std::string c;
      if (!take(1, c, timeout)) return std::nullopt;
      if (c == "\n") return text;
      text += c;
    }
  }
  // True when the output is at EOF within TIMEOUT.
  bool at_eof(std::chrono::milliseconds timeout = 10s) {
    std::string ignored;
    return !take(1, ignored, timeout) && eof_;
  }

  // Exit code, 128 + signal when killed, -1 when it did not end in TIMEOUT.
  int wait_exit(std::chrono::milliseconds timeout = 10s) {
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
  bool wait_stopped(std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG | WUNTRACED) == pid_) return WIFSTOPPED(status);
      std::this_thread::sleep_for(2ms);
    }
    return false;
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

std::vector<std::string> worker(std::vector<std::string> args) {
  args.insert(args.begin(), CORRAL_WORKER_PATH);
  return args;
}

// Sends PAYLOAD as task 1 to a fresh length-framed worker; its result.
Frame one_task(const std::vector<std::string>& args, const std::string& payload) {
  PipeChild child(worker(args), "length");
  std::optional<Frame> ready = child.frame();
  EXPECT_TRUE(ready && ready->type == kReady);
  child.send(task(1, payload));
  std::optional<Frame> result = child.result();
  EXPECT_TRUE(result);
  child.send(control(kShutdown));
  EXPECT_EQ(child.wait_exit(), 0);
  return result.value_or(Frame{});
}

TEST(CorralWorker, Handlers) {
  struct Case {
    std::string handler, payload, result;
  };
  for (const Case& c : std::vector<Case>{{"echo", "any bytes\x01\xff", "any bytes\x01\xff"},
                                         {"echo", "", ""},
                                         {"sum", "0", "0"},
                                         {"sum", "10", "45"},
                                         {"sum", "100000", "4999950000"},
                                         {"primes", "2", "0"},
                                         {"primes", "3", "1"},
                                         {"primes", "100", "25"},
                                         {"primes", "1000000", "78498"},
                                         {"primes", " 10\r", "4"},
                                         {"sleep", "20", "ok"},
                                         {"leak", "2", "ok"}}) {
    Frame f = one_task({"--handler", c.handler}, c.payload);
    EXPECT_EQ(f.type, kResult) << c.handler << " " << c.payload;
    EXPECT_EQ(f.id, 1u);
    EXPECT_EQ(f.status, 0) << c.handler << " " << c.payload;
    EXPECT_EQ(f.payload, c.result) << c.handler << " " << c.payload;
  }
}

TEST(CorralWorker, NonDecimalPayloadFailsTheTask) {
  for (std::string handler : {"sum", "primes", "sleep", "leak"}) {
    Frame f = one_task({"--handler", handler}, "12x");
    EXPECT_EQ(f.status, 1) << handler;
    EXPECT_THAT(f.payload, HasSubstr("not a decimal number")) << handler;
  }
}

TEST(CorralWorker, LinesFramingOnExtraFdsAndOnStdio) {
  for (bool stdio : {false, true}) {
    PipeChild child(worker({"--handler", "sum"}), "lines", {}, stdio);
    child.send("10\n100\nnope\n4\n");
    EXPECT_EQ(child.line(), "45");
    EXPECT_EQ(child.line(), "4950");
    EXPECT_EQ(child.line(), "sum: the payload is not a decimal number: \"nope\"");
    EXPECT_EQ(child.line(), "6");
    child.close_input();  // EOF: the sentinel
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

TEST(CorralWorker, SumIsReallyComputed) {
  // A loop the compiler cannot fold: 10x the steps takes clearly longer.
  auto time_of = [](const std::string& n) {
    auto start = Clock::now();
    Frame f = one_task({"--handler", "sum"}, n);
    EXPECT_EQ(f.status, 0);
    return Clock::now() - start;
  };
  auto small = time_of("1000");
  auto big = time_of("400000000");
  EXPECT_GT(big - small, 50ms);
}

TEST(CorralWorker, FailOn) {
  PipeChild child(worker({"--handler", "echo", "--fail-on", "bad"}), "length");
  ASSERT_TRUE(child.frame());
  child.send(task(1, "good") + task(2, "bad"));
  std::optional<Frame> good = child.result(), bad = child.result();
  ASSERT_TRUE(good && bad);
  EXPECT_EQ(good->status, 0);
  EXPECT_EQ(bad->id, 2u);
  EXPECT_EQ(bad->status, 1);
  EXPECT_THAT(bad->payload, HasSubstr("--fail-on bad"));
  child.close_input();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(CorralWorker, CrashOnAborts) {
  PipeChild child(worker({"--handler", "echo", "--crash-on", "boom"}), "length");
  ASSERT_TRUE(child.frame());
  // Read together: the result of "fine" still goes out before "boom" runs.
  child.send(task(1, "fine") + task(2, "boom") + task(3, "never"));
  std::optional<Frame> fine = child.result();
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->payload, "fine");
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 128 + SIGABRT);
}

TEST(CorralWorker, HangOnStopsEverythingHeartbeatsToo) {
  PipeChild child(worker({"--handler", "echo", "--hang-on", "hang"}), "length",
                  {"CORRAL_HEARTBEAT_MS=20"});
  std::optional<Frame> ready = child.frame();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, kReady);
  std::optional<Frame> beat = child.frame();
  ASSERT_TRUE(beat);
  EXPECT_EQ(beat->type, kHeartbeat);
  child.send(task(1, "hang"));
  ASSERT_TRUE(child.wait_stopped());
  // Drain what was written before the stop; then silence.
  while (child.frame(100ms)) {
  }
  EXPECT_FALSE(child.frame(300ms));
  ::kill(child.pid(), SIGKILL);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
}

TEST(CorralWorker, ExitAfterSendsTheResultsFirst) {
  PipeChild child(worker({"--handler", "echo", "--exit-after", "2"}), "length");
  ASSERT_TRUE(child.frame());
  child.send(task(1, "a") + task(2, "b") + task(3, "c"));
  std::optional<Frame> a = child.result(), b = child.result();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id, 1u);
  EXPECT_EQ(b->id, 2u);
  EXPECT_TRUE(child.at_eof());  // no result for task 3
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(CorralWorker, ExitCodeBeforeReady) {
  PipeChild child(worker({"--handler", "echo", "--exit-code", "7"}), "length");
  EXPECT_TRUE(child.at_eof());  // no READY
  EXPECT_EQ(child.wait_exit(), 7);
}

TEST(CorralWorker, StartupDelayComesBeforeReady) {
  auto start = Clock::now();
  PipeChild child(worker({"--handler", "echo", "--startup-delay", "300ms"}), "length");
  std::optional<Frame> ready = child.frame();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, kReady);
  EXPECT_GE(Clock::now() - start, 300ms);
  child.send(control(kShutdown));
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(CorralWorker, UsageAndEnvironmentErrorsExitTwo) {
  RunResult no_handler = run({CORRAL_WORKER_PATH});
  EXPECT_EQ(no_handler.exit_code, 2);
  RunResult bad_handler = run({CORRAL_WORKER_PATH, "--handler", "nope"});
  EXPECT_EQ(bad_handler.exit_code, 2);
  RunResult bad_delay = run({CORRAL_WORKER_PATH, "--handler", "echo", "--startup-delay", "soon"});
  EXPECT_EQ(bad_delay.exit_code, 2);
  EXPECT_THAT(bad_delay.err, HasSubstr("--startup-delay"));
  RunResult no_channel =
      run({"/usr/bin/env", "CORRAL_CHANNEL=none", CORRAL_WORKER_PATH, "--handler", "echo"});
  EXPECT_EQ(no_channel.exit_code, 2);
  EXPECT_THAT(no_channel.err,
              HasSubstr("CORRAL_CHANNEL=none: corral-worker needs a task channel (pipe or shm)"));
}

}  // namespace
}  // namespace corral::testing

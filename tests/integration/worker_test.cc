// corral-worker, the real binary, driven over a pipe channel as corrald
// drives it (fds 3 and 4, or stdio): its handlers, its knobs, and how it
// exits. Frames are encoded here by hand, as a worker in another language
// would, to check the wire format against docs/worker-protocol.md.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
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
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::vector<std::string> worker(std::vector<std::string> args) {
  args.insert(args.begin(), CORRAL_WORKER_PATH);
  return args;
}

// Sends PAYLOAD as task 1 to a fresh length-framed worker; its result.
Frame one_task(const std::vector<std::string>& args, const std::string& payload) {
  PipeChild child(worker(args), "length");
  std::optional<Frame> ready = child.frame();
  EXPECT_TRUE(ready && ready->type == kReady);
  child.send(task_frame(1, payload));
  std::optional<Frame> result = child.result();
  EXPECT_TRUE(result);
  child.send(control_frame(kShutdown));
  EXPECT_EQ(child.wait_exit(), 0);
  return result.value_or(Frame{});
}

TEST(CorralWorker, Handlers) {
  struct Case {
    std::string handler, payload, result;
  };
  for (const Case& c :
       std::vector<Case>{{"echo", "any bytes\x01\xff", "any bytes\x01\xff"},
                         {"echo", "", ""},
                         {"sum", "0", "0"},
                         {"sum", "10", "45"},
                         {"sum", "100000", "4999950000"},
                         {"triangle", "0", "0"},
                         {"triangle", "1", "0"},
                         {"triangle", "10", "45"},
                         {"triangle", "99", "4851"},
                         {"triangle", "100000", "4999950000"},
                         // n(n-1)/2 mod 2^64, as sum's loop wraps.
                         {"triangle", "4294967296", "9223372034707292160"},
                         {"triangle", "18446744073709551615", "9223372036854775809"},
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
  for (std::string handler : {"sum", "triangle", "primes", "sleep", "leak"}) {
    Frame f = one_task({"--handler", handler}, "12x");
    EXPECT_EQ(f.status, 1) << handler;
    EXPECT_THAT(f.payload, HasSubstr("not a decimal number")) << handler;
  }
}

TEST(CorralWorker, LinesFramingOnExtraFdsAndOnStdio) {
  for (bool stdio : {false, true}) {
    PipeChild child(worker({"--handler", "sum"}), "lines", {}, stdio);
    child.send("10\n100\n4\n");
    EXPECT_EQ(child.line(), "45");
    EXPECT_EQ(child.line(), "4950");
    EXPECT_EQ(child.line(), "6");
    child.close_input();  // EOF: the sentinel
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

// Lines have no status: a failed task ends the worker (exit 3, why on
// stderr) instead of an "ok" line holding the error.
TEST(CorralWorker, AFailedTaskUnderLinesFramingEndsTheWorker) {
  for (bool stdio : {false, true}) {
    PipeChild child(worker({"--handler", "sum"}), "lines", {}, stdio);
    child.send("10\nnope\n4\n");
    EXPECT_EQ(child.line(), "45");
    EXPECT_EQ(child.wait_exit(), 3);
    EXPECT_THAT(child.stderr_text(),
                HasSubstr("task failed: sum: the payload is not a decimal number: \"nope\"; "
                          "framing: lines cannot report a failed task"));
  }
}

TEST(CorralWorker, SumIsReallyComputed) {
  // A loop the compiler cannot fold: 400 million steps cost the worker CPU
  // time (its own, from the kernel: whatever else loads the machine), a
  // thousand steps next to none.
  auto cpu_of = [](const std::string& n) {
    rusage before{}, after{};
    getrusage(RUSAGE_CHILDREN, &before);
    Frame f = one_task({"--handler", "sum"}, n);
    EXPECT_EQ(f.status, 0);
    getrusage(RUSAGE_CHILDREN, &after);
    auto micros = [](const timeval& t) { return t.tv_sec * 1'000'000L + t.tv_usec; };
    return std::chrono::microseconds(micros(after.ru_utime) - micros(before.ru_utime));
  };
  auto small = cpu_of("1000");
  auto big = cpu_of("400000000");
  EXPECT_GT(big - small, 50ms);
}

TEST(CorralWorker, FailOn) {
  PipeChild child(worker({"--handler", "echo", "--fail-on", "bad"}), "length");
  ASSERT_TRUE(child.frame());
  child.send(task_frame(1, "good") + task_frame(2, "bad"));
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
  child.send(task_frame(1, "fine") + task_frame(2, "boom") + task_frame(3, "never"));
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
  child.send(task_frame(1, "hang"));
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
  child.send(task_frame(1, "a") + task_frame(2, "b") + task_frame(3, "c"));
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
  child.send(control_frame(kShutdown));
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

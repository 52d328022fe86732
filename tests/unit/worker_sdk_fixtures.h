// What the tests of the C++ worker SDK share (worker_sdk_test.cc: pipes;
// worker_sdk_shm_test.cc: shm): a pipe, a forked worker serving one of the
// handlers of worker_sdk_handlers.h, its exit, reads with a timeout, and a
// frame the test owns.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ipc/frame.h"
#include "tests/support/poll.h"
#include "tests/unit/worker_sdk_handlers.h"

namespace corral::sdk_test {

using namespace std::chrono_literals;
using Env = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

// A pipe whose ends close with the object (plain fds, closed one by one).
struct TestPipe {
  int read = -1;
  int write = -1;
  TestPipe() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    read = fds[0];
    write = fds[1];
  }
  ~TestPipe() {
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
inline pid_t fork_worker(const Env& env, const std::string& handler, std::vector<int> close = {},
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
inline int wait_exit(pid_t pid, std::chrono::milliseconds timeout = 10s) {
  const int code = corral::testing::wait_for_exit(pid, timeout);
  if (code == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return code;
}

// Reads what is there within TIMEOUT; "" at EOF or timeout.
inline std::string read_some(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  char buffer[65536];
  ssize_t n = ::read(fd, buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

// Everything until EOF (at most TIMEOUT).
inline std::string read_to_eof(int fd, std::chrono::milliseconds timeout = 10s) {
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

}  // namespace corral::sdk_test

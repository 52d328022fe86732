// A worker process driven over a pipe channel by the test itself, as corrald
// drives it (fds 3 and 4, or stdio), with the length frames of
// docs/worker-protocol.md encoded here by hand, as a worker in another
// language would: the wire format is checked against the document, not
// against corral's own codec.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace corral::testing {

enum : uint8_t { kTask = 1, kResult = 2, kShutdown = 3, kReady = 4, kHeartbeat = 5, kTasks = 6 };

// A TASK frame, a TASKS frame (a chunk of tasks with ids FIRST..), and a
// frame of TYPE with no body (SHUTDOWN).
std::string task_frame(uint64_t id, const std::string& payload);
std::string tasks_frame(uint64_t first, const std::vector<std::string>& payloads);
std::string control_frame(uint8_t type);

struct Frame {
  uint8_t type = 0;
  uint64_t id = 0;
  uint8_t status = 0;
  std::string payload;  // RESULT: its payload; any other type: its body
};

class PipeChild {
 public:
  // ARGV runs with CORRAL_CHANNEL=pipe, CORRAL_FRAMING=FRAMING and the pipes
  // on fds 3 (in) and 4 (out), or 0 and 1 with STDIO. ENV entries
  // ("NAME=value") replace or add to the test's environment, whose CORRAL_
  // variables are dropped.
  PipeChild(const std::vector<std::string>& argv, const std::string& framing,
            const std::vector<std::string>& env = {}, bool stdio = false);
  ~PipeChild();
  PipeChild(const PipeChild&) = delete;
  PipeChild& operator=(const PipeChild&) = delete;

  pid_t pid() const { return pid_; }

  // Writes BYTES to the worker's input (all of them, or the test fails).
  void send(const std::string& bytes);
  void close_input();

  // The next frame, or nullopt at EOF or after TIMEOUT.
  std::optional<Frame> frame(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // The next frame that is not a HEARTBEAT.
  std::optional<Frame> result(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // The next line without its '\n', or nullopt at EOF or after TIMEOUT.
  std::optional<std::string> line(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // True when the output is at EOF within TIMEOUT.
  bool at_eof(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Exit code, 128 + signal when killed, -1 when it did not end in TIMEOUT.
  int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // True when the child is stopped (SIGSTOP) within TIMEOUT.
  bool wait_stopped(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // What the child wrote to stderr so far.
  std::string stderr_text();

 private:
  bool take(size_t n, std::string& out, std::chrono::milliseconds timeout);
  // One read of whatever the child wrote, waiting until DEADLINE; false at
  // EOF or when the deadline passed.
  bool read_more(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace corral::testing

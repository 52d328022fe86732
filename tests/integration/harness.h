// Test harness for integration tests: a temp dir, a real corrald started on a
// config written there, corralctl runs, and direct protocol requests. Every
// process it starts is ended by the destructors, even when a test fails.
// What is not about corrald (temp dirs, files, polls, /proc scans) is in
// tests/support/, included here for every integration test. A Daemon's
// queries (request, submit, ctl, worker, state) only read it, each on a
// connection or process of its own, and may run on several threads at once;
// the rest belongs to the test's thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "protocol/control.h"
#include "tests/support/file_io.h"
#include "tests/support/poll.h"
#include "tests/support/process_scan.h"
#include "tests/support/temp_dir.h"

namespace corral::testing {

using protocol::Json;
using namespace std::chrono_literals;

// Sanitizer reports (ASan, UBSan, LSan, TSan) written by any process a test
// started, directly or not: corrald's workers and children write to their own
// stderr, which no test reads, so the harness points every sanitizer's
// log_path into a directory of its own (when *SAN_OPTIONS are set) and fails
// the test when a report appears there. Checked when a Daemon is destroyed
// and once more when the test program ends. Returns the reports found (and
// removes them), adding a test failure for each.
std::vector<std::string> expect_no_sanitizer_reports(const std::string& where);

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs ARGV to completion (at most TIMEOUT, then SIGKILL).
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 30s);

// A connected fd (close-on-exec) on the Unix socket PATH, or -1. With a
// RECEIVE_TIMEOUT (scaled), a read that waits longer fails (EAGAIN), so that
// a test fails instead of hanging.
int connect_socket(const std::string& path, std::chrono::milliseconds receive_timeout = 0ms);
// Sends LINE (with its '\n') on a connected FD and reads one line back: the
// reply without its '\n', or "" when none came within TIMEOUT (scaled).
std::string exchange_line(int fd, const std::string& line, std::chrono::milliseconds timeout = 20s);
// A connected TCP socket (close-on-exec) to an IPv4 "HOST:PORT", or -1.
int connect_tcp(const std::string& address);
// One HTTP/1.0 exchange with an IPv4 "HOST:PORT": the whole response, or ""
// when no connection or nothing came within 20 s (scaled).
std::string http(const std::string& address, const std::string& request);
// The path of a system tool (/usr/bin, /bin, /usr/sbin, /sbin), or "".
std::string find_tool(const std::string& name);

// The `command:` of a job (a YAML flow list) running corral-worker with ARGS,
// e.g. worker_command("--handler, sum").
std::string worker_command(const std::string& args);
// What corral-worker's `sum` handler answers for N: the sum of 0..N-1.
std::string sum_below(uint64_t n);
// A `daemon:` entry: corrald samples its workers every 100 ms, and serves no
// metrics, for tests that wait for what the sampler sees.
inline const std::string kFastMetrics = "  metrics: {listen: off, interval: 100ms}\n";
// The name of a test instance whose parameter is a job's channel settings:
// Shm, PipeLength or PipeLines.
std::string channel_test_name(const ::testing::TestParamInfo<std::string>& info);

// A child of a daemon held by a pidfd, so that a signal sent later (SIGCONT
// after SIGSTOP) cannot reach a process that reused its pid.
class ChildHandle {
 public:
  // PID, if it is a live child of PARENT now.
  static std::optional<ChildHandle> of(pid_t parent, pid_t pid);
  pid_t pid() const { return pid_; }
  // False when the process is gone.
  bool signal(int sig) const;

 private:
  ChildHandle(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_ = 0;
  UniqueFd pidfd_;
};

// corrald on a config in its own temp dir. The config's `daemon:` section is
// written by the harness (socket and log_dir inside the temp dir); the test
// gives the `jobs:` part.
class Daemon {
 public:
  explicit Daemon(const std::string& jobs_yaml, const std::string& daemon_extra = "");
  ~Daemon();

  // Environment entries ("NAME=value") corrald gets besides the test's.
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }
  // A command that runs before corrald and execs it in the same process
  // (prlimit ... --, setpriv ... --), e.g. to start it under limits.
  void set_wrapper(std::vector<std::string> argv) { wrapper_ = std::move(argv); }
  // Starts corrald as a login shell's command would run: in a session of its
  // own with PATH (a terminal, e.g. a pty's slave) as its controlling
  // terminal and its stdin. Whoever holds the terminal's other side keeps it
  // open until corrald has stopped (a hangup is SIGHUP, a reload).
  void set_terminal(std::string path) { terminal_ = std::move(path); }
  // An entry of corrald's environment unique to this daemon; workers inherit
  // it, so processes_with_env(env_tag()) finds any worker left behind.
  std::string env_tag() const { return "CORRALTEST_DAEMON_DIR=" + dir_.path(); }
  // Writes the config again with JOBS_YAML (for reload tests).
  void rewrite_config(const std::string& jobs_yaml);
  // Puts corrald's socket at PATH instead of in the temp dir (before start()),
  // e.g. below directories that corrald must make itself.
  void set_socket(std::string path);

  // Starts corrald and waits until its socket answers; false if it did not.
  bool start();
  // SIGTERM, then wait for the exit; returns corrald's exit code.
  int stop(std::chrono::milliseconds timeout = 30s);
  void kill9();
  pid_t pid() const { return pid_; }

  // One request over the socket; the reply.
  Json request(const Json& message);
  // Submits PAYLOADS to JOB over the socket (the submit stream) and, with
  // WAIT, collects every result line; the last element is the end line (or
  // the error reply). BEFORE_READING, when given, runs before anything past
  // the acknowledgement is read (a client that is slow to read).
  // EXTRA: more fields of the submit request (e.g. deadline_s).
  std::vector<Json> submit(const std::string& job, const std::vector<std::string>& payloads,
                           bool wait = true, const std::function<void()>& before_reading = {},
                           const Json& extra = Json::object());
  // corralctl -s SOCKET ARGS...
  RunResult ctl(const std::vector<std::string>& args);

  Json worker(const std::string& name);  // its status object
  std::string state(const std::string& name);
  pid_t worker_pid(const std::string& name);
  // The worker's process, if it has one that is this daemon's child.
  std::optional<ChildHandle> worker_process(const std::string& name);
  bool wait_state(const std::string& name, const std::string& state,
                  std::chrono::milliseconds timeout = 10s);

  const TempDir& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  std::string config() const { return dir_.file("corral.yaml"); }
  std::string log_dir() const { return dir_.file("logs"); }
  std::string state_dir_path() const { return dir_.file("state"); }
  std::string daemon_log() const { return read_file(dir_.file("corrald.log")); }

 private:
  TempDir dir_;
  std::string socket_ = dir_.file("corral.sock");
  std::string jobs_yaml_;
  std::string daemon_extra_;
  std::vector<std::string> env_;
  std::vector<std::string> wrapper_;
  std::string terminal_;
  pid_t pid_ = 0;
};

}  // namespace corral::testing

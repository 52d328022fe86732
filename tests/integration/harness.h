// Test harness for integration tests: a temp dir, a real corrald started on a
// config written there, corralctl runs, and direct protocol requests. Every
// process it starts is ended by the destructors, even when a test fails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocol/control.h"

namespace corral::testing {

using protocol::Json;
using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// TIMEOUT times CORRAL_TEST_TIME_SCALE (scripts/test sets it for sanitizer
// builds, which run everything several times slower). Only for deadlines that
// say how long to wait for something, never for a duration being measured.
std::chrono::milliseconds scaled(std::chrono::milliseconds timeout);

// Sanitizer reports (ASan, UBSan, LSan, TSan) written by any process a test
// started, directly or not: corrald's workers and children write to their own
// stderr, which no test reads, so the harness points every sanitizer's
// log_path into a directory of its own (when *SAN_OPTIONS are set) and fails
// the test when a report appears there. Checked when a Daemon is destroyed
// and once more when the test program ends. Returns the reports found (and
// removes them), adding a test failure for each.
std::vector<std::string> expect_no_sanitizer_reports(const std::string& where);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs ARGV to completion (at most TIMEOUT, then SIGKILL).
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 30s);

// Polls PREDICATE every few milliseconds until it holds or TIMEOUT passes.
bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout = 10s);

bool process_alive(pid_t pid);  // exists and is not a zombie

// corrald on a config in its own temp dir. The config's `daemon:` section is
// written by the harness (socket and log_dir inside the temp dir); the test
// gives the `jobs:` part.
class Daemon {
 public:
  explicit Daemon(const std::string& jobs_yaml, const std::string& daemon_extra = "");
  ~Daemon();

  // Environment entries ("NAME=value") corrald gets besides the test's.
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }
  // Writes the config again with JOBS_YAML (for reload tests).
  void rewrite_config(const std::string& jobs_yaml);

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
  std::vector<Json> submit(const std::string& job, const std::vector<std::string>& payloads,
                           bool wait = true, const std::function<void()>& before_reading = {});
  // corralctl -s SOCKET ARGS...
  RunResult ctl(const std::vector<std::string>& args);

  Json worker(const std::string& name);  // its status object
  std::string state(const std::string& name);
  pid_t worker_pid(const std::string& name);
  bool wait_state(const std::string& name, const std::string& state,
                  std::chrono::milliseconds timeout = 10s);

  const TempDir& dir() const { return dir_; }
  std::string socket() const { return dir_.file("corral.sock"); }
  std::string config() const { return dir_.file("corral.yaml"); }
  std::string log_dir() const { return dir_.file("logs"); }
  std::string daemon_log() const { return read_file(dir_.file("corrald.log")); }

 private:
  static int socket_fd_probe(const std::string& path);  // a connected fd, or -1
  TempDir dir_;
  std::string daemon_extra_;
  std::vector<std::string> env_;
  pid_t pid_ = 0;
};

}  // namespace corral::testing

// Tests of config/parse.h: good files read into the expected specs, and each
// kind of mistake is reported with its file:line:column, all at once.
#include "config/parse.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/config_diagnostics.h"

namespace corral::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr unsigned kCpus = 8;

ParseResult load(const std::string& text) { return load_string(text, "test.yaml", kCpus); }

// Loads TEXT, expects exactly one error and returns it.
Diagnostic only_error(const std::string& text) {
  ParseResult result = load(text);
  EXPECT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  return errors_of(result).empty() ? Diagnostic{} : errors_of(result)[0];
}

// Expects the one error of TEXT at LINE:COLUMN with MESSAGE.
void expect_error(const std::string& text, int line, int column, const std::string& message) {
  Diagnostic d = only_error(text);
  EXPECT_EQ(d.file, "test.yaml");
  EXPECT_EQ(d.line, line) << d.str();
  EXPECT_EQ(d.column, column) << d.str();
  EXPECT_EQ(d.message, message) << d.str();
}

// The full example of docs/configuration.md, without its include.
constexpr const char* kSpecExample = R"(daemon:
  socket: /run/corral/corral.sock     # control socket path
  socket_mode: "0660"
  allow_users: []                     # besides root and the daemon's own uid
  allow_groups: []
  log_dir: /var/log/corral            # worker stdout/stderr files
  log_level: info
  log_rotate: {max_size: 10MiB, keep: 5}
  metrics: {listen: "127.0.0.1:9464", interval: 1s}   # listen: off to disable
jobs:
  primes:                             # job name: [A-Za-z0-9_.-]+
    command: [corral-worker, --handler, primes]   # argv list, or a string split like a shell
    workers: 4                        # integer >= 0, or "auto" = number of CPUs
    autostart: true
    channel: shm                      # none | pipe | shm
    pipe: {fds: extra, framing: length}  # fds: extra (3 in, 4 out) | stdio (0 in, 1 out)
    queue:
      capacity: 65536
      max_task_bytes: 65536
      prefetch: 64
      max_attempts: 3
      task_timeout: off
    restart:
      policy: on-failure              # always | on-failure | never
      exit_codes: [0]                 # clean exits for on-failure
      backoff: {initial: 100ms, max: 30s, multiplier: 2.0, jitter: 0.1}
      reset_after: 60s
      max_restarts: 10
      window: 60s
      cooldown: 60s
    start: {settle: 1s, retries: off}
    stop: {signal: TERM, timeout: 10s, kill_after: 5s}
    health: {heartbeat_timeout: off}
    limits: {memory: off, max_tasks: off, cpus: off, nice: 0, nofile: off}
    env: {KEY: value}
    cwd: /srv/app
    user: app                         # needs root
    shared:
      values: {processed: u64, best: f64}       # u64 | i64 | f64
      arrays: {histogram: {type: u64, length: 64}}
    source: {range: {from: 0, to: 1000}}         # or {file: PATH}; optional
    sink: {file: /var/lib/corral/primes.jsonl}   # or none (default: results counted only)
)";

TEST(LoadStringTest, ReadsTheSpecExample) {
  ParseResult result = load(kSpecExample);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const Config& c = result.value();
  EXPECT_EQ(c.file, "test.yaml");
  EXPECT_EQ(c.daemon, DaemonSpec{});  // the example spells out the defaults
  ASSERT_EQ(c.jobs.size(), 1u);

  JobSpec expected;
  expected.name = "primes";
  expected.command = {"corral-worker", "--handler", "primes"};
  expected.workers = 4;
  expected.channel = Channel::kShm;
  expected.env = {{"KEY", "value"}};
  expected.cwd = "/srv/app";
  expected.user = "app";
  expected.shared.values = {{"processed", SharedType::kU64}, {"best", SharedType::kF64}};
  expected.shared.arrays = {{"histogram", SharedArraySpec{SharedType::kU64, 64}}};
  expected.source.kind = SourceSpec::Kind::kRange;
  expected.source.from = 0;
  expected.source.to = 1000;
  expected.sink.kind = SinkSpec::Kind::kFile;
  expected.sink.file = "/var/lib/corral/primes.jsonl";
  expected.queue.prefetch = 64;  // the example's; the default is auto
  EXPECT_EQ(c.jobs[0], expected);
  // Spelled out, the fields whose defaults the comparison above relies on.
  const JobSpec& job = c.jobs[0];
  EXPECT_EQ(job.queue.capacity, 65536u);
  EXPECT_EQ(job.queue.max_task_bytes, 65536u);
  EXPECT_EQ(job.queue.task_timeout, std::nullopt);
  EXPECT_EQ(job.restart.backoff.initial, milliseconds(100));
  EXPECT_EQ(job.restart.backoff.max, seconds(30));
  EXPECT_DOUBLE_EQ(job.restart.backoff.multiplier, 2.0);
  EXPECT_DOUBLE_EQ(job.restart.backoff.jitter, 0.1);
  EXPECT_EQ(job.restart.window, seconds(60));
  EXPECT_EQ(job.stop.signal, 15);
  EXPECT_EQ(job.stop.kill_after, seconds(5));
  EXPECT_EQ(c.daemon.socket_mode, 0660u);
  EXPECT_EQ(c.daemon.log_rotate.max_size, 10 * kMiB);
  EXPECT_EQ(c.daemon.metrics.listen, "127.0.0.1:9464");
}

TEST(LoadStringTest, EmptyFileIsTheDefaultConfig) {
  for (const char* text : {"", "# only a comment\n\n   # and another\n", "---\n", "jobs:\n"}) {
    ParseResult result = load(text);
    ASSERT_TRUE(result.ok()) << text << all_errors(result);
    Config expected;
    expected.file = "test.yaml";
    EXPECT_EQ(result.value(), expected) << text;
  }
}

TEST(LoadStringTest, JobDefaults) {
  ParseResult result = load("jobs:\n  j:\n    command: [prog]\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  JobSpec expected;
  expected.name = "j";
  expected.command = {"prog"};
  EXPECT_EQ(result.value().jobs.at(0), expected);
  EXPECT_EQ(expected.workers, 1u);
  EXPECT_TRUE(expected.autostart);
  EXPECT_EQ(expected.channel, Channel::kNone);
  EXPECT_EQ(expected.restart.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(expected.restart.exit_codes, std::vector<int>{0});
}

TEST(LoadStringTest, WorkersAutoIsTheCpuCount) {
  ParseResult result = load_string("jobs:\n  j: {command: x, workers: auto}\n", "f.yaml", 12);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].workers, 12u);
  EXPECT_TRUE(result.value().jobs[0].workers_auto);

  result = load("jobs:\n  j: {command: x, workers: 0}\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].workers, 0u);
  EXPECT_FALSE(result.value().jobs[0].workers_auto);
}

TEST(LoadStringTest, PrefetchIsAutoUnlessACountIsGiven) {
  ParseResult result = load("jobs:\n  j: {command: x}\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].queue.prefetch, std::nullopt);
  result = load("jobs:\n  j: {command: x, queue: {prefetch: auto}}\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].queue.prefetch, std::nullopt);
  result = load("jobs:\n  j: {command: x, queue: {prefetch: 1000}}\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].queue.prefetch, 1000u);
  expect_error("jobs:\n  j: {command: x, queue: {prefetch: 4294967296}}\n", 2, 37,
               R"(queue.prefetch of job "j": expected an integer >= 1 or auto, got "4294967296")");
}

TEST(LoadStringTest, CommandStringIsSplitLikeAShell) {
  ParseResult result = load("jobs:\n  j:\n    command: \"sh -c 'echo hi; sleep 1'\"\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].command,
            (std::vector<std::string>{"sh", "-c", "echo hi; sleep 1"}));

  result = load("jobs:\n  j:\n    command: [sleep, 5, '']\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs[0].command, (std::vector<std::string>{"sleep", "5", ""}));
}

TEST(LoadStringTest, ReadsOtherSpellingsOfValues) {
  ParseResult result = load(R"(daemon:
  socket_mode: 0640
  log_level: debug
  metrics: {listen: off, interval: 250ms}
  allow_users: [alice, 1000]
jobs:
  b:
    command: x
    autostart: no
    channel: pipe
    pipe: {fds: stdio, framing: length}
    queue: {max_task_bytes: 1MiB, task_timeout: 1.5s}
    restart: {policy: always, exit_codes: [2, 0, 2], cooldown: 5m}
    stop: {signal: SIGINT}
    health: {heartbeat_timeout: 3s}
    limits: {memory: 512MiB, max_tasks: 1000, cpus: "0-2,5", nice: -5, nofile: 4096}
    env: {NUM: 5, FLAG: true, EMPTY: ""}
    source: {file: /tmp/in.txt}
    sink: none
  a:
    command: y
    limits: {cpus: auto}
    source: none
)");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const Config& c = result.value();
  EXPECT_EQ(c.daemon.socket_mode, 0640u);
  EXPECT_EQ(c.daemon.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.daemon.metrics.listen, std::nullopt);
  EXPECT_EQ(c.daemon.metrics.interval, milliseconds(250));
  EXPECT_EQ(c.daemon.allow_users, (std::vector<std::string>{"alice", "1000"}));
  ASSERT_EQ(c.jobs.size(), 2u);
  EXPECT_EQ(c.jobs[0].name, "a");  // sorted by name
  EXPECT_EQ(c.jobs[0].limits.cpus.mode, CpuSpec::Mode::kAuto);
  EXPECT_EQ(c.jobs[0].source.kind, SourceSpec::Kind::kNone);
  const JobSpec& b = c.jobs[1];
  EXPECT_FALSE(b.autostart);
  EXPECT_EQ(b.channel, Channel::kPipe);
  EXPECT_EQ(b.pipe.fds, PipeFds::kStdio);
  EXPECT_EQ(b.pipe.framing, Framing::kLength);
  EXPECT_EQ(b.queue.max_task_bytes, kMiB);
  EXPECT_EQ(b.queue.task_timeout, milliseconds(1500));
  EXPECT_EQ(b.restart.policy, RestartPolicy::kAlways);
  EXPECT_EQ(b.restart.exit_codes, (std::vector<int>{0, 2}));
  EXPECT_EQ(b.restart.cooldown, std::chrono::minutes(5));
  EXPECT_EQ(b.stop.signal, 2);
  EXPECT_EQ(b.health.heartbeat_timeout, seconds(3));
  EXPECT_EQ(b.limits.memory, 512 * kMiB);
  EXPECT_EQ(b.limits.max_tasks, 1000u);
  EXPECT_EQ(b.limits.cpus.mode, CpuSpec::Mode::kList);
  EXPECT_EQ(b.limits.cpus.cpus, (std::vector<int>{0, 1, 2, 5}));
  EXPECT_EQ(b.limits.nice, -5);
  EXPECT_EQ(b.limits.nofile, 4096u);
  EXPECT_EQ(b.env,
            (std::map<std::string, std::string>{{"NUM", "5"}, {"FLAG", "true"}, {"EMPTY", ""}}));
  EXPECT_EQ(b.source.kind, SourceSpec::Kind::kFile);
  EXPECT_EQ(b.source.file, "/tmp/in.txt");
  EXPECT_EQ(b.sink.kind, SinkSpec::Kind::kNone);
}

// A worker with fds of its own speaks the protocol (length frames, READY,
// failed tasks); a filter on stdin/stdout gets lines. Given, it is kept.
TEST(LoadStringTest, FramingFollowsTheFdsUnlessGiven) {
  auto framing_of = [](const std::string& pipe) {
    ParseResult result = load("jobs:\n  j:\n    command: x\n    channel: pipe\n" + pipe);
    EXPECT_TRUE(result.ok()) << all_errors(result);
    return result.ok() ? result.value().jobs[0].pipe.framing : Framing::kLines;
  };
  EXPECT_EQ(framing_of(""), Framing::kLength);
  EXPECT_EQ(framing_of("    pipe: {fds: extra}\n"), Framing::kLength);
  EXPECT_EQ(framing_of("    pipe: {fds: stdio}\n"), Framing::kLines);
  EXPECT_EQ(framing_of("    pipe: {fds: extra, framing: lines}\n"), Framing::kLines);
  EXPECT_EQ(framing_of("    pipe: {framing: length, fds: stdio}\n"), Framing::kLength);
}

TEST(LoadStringTest, StartRetriesAndMaxRestartsMayBeOff) {
  ParseResult result = load(
      "jobs:\n  j:\n    command: x\n    start: {retries: 3}\n    restart: {max_restarts: off, "
      "cooldown: off}\n  k: {command: x}\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const JobSpec& j = result.value().jobs[0];
  EXPECT_EQ(j.start.retries, 3u);
  EXPECT_EQ(j.restart.max_restarts, std::nullopt);
  EXPECT_EQ(j.restart.cooldown, std::nullopt);
  const JobSpec& k = result.value().jobs[1];
  EXPECT_EQ(k.start.retries, std::nullopt);
  EXPECT_EQ(k.restart.max_restarts, 10u);
  EXPECT_EQ(k.restart.cooldown, seconds(60));
  expect_error("jobs:\n  j:\n    command: x\n    start: {retries: -1}\n", 4, 22,
               R"(start.retries of job "j": expected an integer >= 0 or off, got "-1")");
}

TEST(DiagnosticTest, Str) {
  EXPECT_EQ((Diagnostic{"a.yaml", 3, 7, "boom"}).str(), "a.yaml:3:7: boom");
  EXPECT_EQ((Diagnostic{"a.yaml", 0, 0, "boom"}).str(), "a.yaml: boom");
}

TEST(ConfigErrorsTest, UnknownKeyNamesTheClosestValidKey) {
  expect_error("jobs:\n  primes:\n    command: x\n    wokers: 4\n", 4, 5,
               R"(unknown key "wokers" in job "primes"; did you mean "workers"?)");
  expect_error("jbos: {}\n", 1, 1, R"(unknown key "jbos" at the top level; did you mean "jobs"?)");
  expect_error("jobs:\n  p:\n    command: x\n    restart: {backoff: {intial: 1s}}\n", 4, 25,
               R"(unknown key "intial" in restart.backoff of job "p"; did you mean "initial"?)");
  expect_error("daemon:\n  metrics: {listne: off}\n", 2, 13,
               R"(unknown key "listne" in daemon.metrics; did you mean "listen"?)");
}

TEST(ConfigErrorsTest, PrivateDirsIsTrueUnlessSaidOtherwise) {
  EXPECT_TRUE(load("").value().daemon.private_dirs);
  ParseResult off = load("daemon:\n  private_dirs: false\n");
  ASSERT_TRUE(off.ok()) << all_errors(off);
  EXPECT_FALSE(off.value().daemon.private_dirs);
  expect_error("daemon:\n  private_dirs: sometimes\n", 2, 17,
               R"(daemon.private_dirs: expected true or false, got "sometimes")");
  expect_error("daemon:\n  private_dir: false\n", 2, 3,
               R"(unknown key "private_dir" in daemon; did you mean "private_dirs"?)");
}

TEST(ConfigErrorsTest, UnknownKeyFarFromAnyListsTheValidKeys) {
  expect_error("daemon:\n  metrics: {zzzzzzzzz: 1}\n", 2, 13,
               R"(unknown key "zzzzzzzzz" in daemon.metrics; valid keys: listen, interval)");
}

TEST(ConfigErrorsTest, BadDurationSaysWhatWasExpected) {
  expect_error(
      "jobs:\n  j:\n    command: x\n    queue: {task_timeout: abc}\n", 4, 27,
      R"(queue.task_timeout of job "j": expected a duration like 250ms, 30s or off, got "abc" (it does not start with a number))");
  expect_error(
      "jobs:\n  j:\n    command: x\n    start: {settle: off}\n", 4, 21,
      R"(start.settle of job "j": expected a duration like 250ms or 30s, got "off" (this one cannot be turned off))");
  expect_error(
      "jobs:\n  j:\n    command: x\n    health: {heartbeat_timeout: 0}\n", 4, 33,
      R"(health.heartbeat_timeout of job "j": expected a duration > 0 like 250ms or 30s, or off, got "0")");
  expect_error("daemon:\n  metrics:\n    interval: 0s\n", 3, 15,
               R"(daemon.metrics.interval: expected a duration > 0 like 250ms or 30s, got "0s")");
}

TEST(ConfigErrorsTest, BadSize) {
  expect_error(
      "daemon:\n  log_rotate: {max_size: 10 parsecs}\n", 2, 26,
      R"(daemon.log_rotate.max_size: expected a size like 512KiB or 10MiB (at least 1B), got "10 parsecs" (unknown unit "parsecs"; use B, KiB, MiB, GiB or TiB))");
  expect_error(
      "jobs:\n  j: {command: x, limits: {memory: 0}}\n", 2, 36,
      R"(limits.memory of job "j": expected a size like 512MiB or 2GiB (more than 0), or off, got "0")");
}

TEST(ConfigErrorsTest, DuplicateKeys) {
  expect_error("jobs:\n  j:\n    command: x\n    workers: 1\n    workers: 2\n", 5, 5,
               R"(duplicate key "workers" in job "j"; the first is at line 4, column 5)");
  expect_error("daemon: {}\ndaemon: {}\n", 2, 1,
               R"(duplicate key "daemon" at the top level; the first is at line 1, column 1)");
  expect_error("jobs:\n  j: {command: x}\n  j: {command: y}\n", 3, 3,
               R"(duplicate key "j" in jobs; the first is at line 2, column 3)");
}

TEST(ConfigErrorsTest, WrongTypes) {
  expect_error("jobs:\n  j:\n    command: x\n    workers: {a: 1}\n", 4, 14,
               R"(workers of job "j": expected an integer from 0 to 10000 or auto, got a map)");
  expect_error("daemon:\n  socket: [a, b]\n", 2, 11,
               R"(daemon.socket: expected a string, got a list)");
  expect_error("daemon: 5\n", 1, 9, R"(daemon: expected a map, got "5")");
  expect_error("jobs:\n  j:\n    command: x\n    autostart: maybe\n", 4, 16,
               R"(autostart of job "j": expected true or false, got "maybe")");
  expect_error("jobs:\n  j:\n    command: x\n    cwd:\n", 4, 5,
               R"(cwd of job "j": expected a string, got nothing)");
  expect_error("jobs:\n  j: {command: x, env: {A: {b: 1}}}\n", 2, 28,
               R"(env.A of job "j": expected a string, got a map)");
  expect_error("jobs: [a]\n", 1, 7, R"(jobs: expected a map of job names to jobs, got a list)");
  expect_error("jobs:\n  j: run\n", 2, 6, R"(jobs.j: expected a map of job settings, got "run")");
}

TEST(ConfigErrorsTest, CountsOutOfRange) {
  auto job = [](const std::string& settings) {
    return "jobs:\n  j:\n    command: x\n    " + settings + "\n";
  };
  expect_error(job("workers: -1"), 4, 14,
               R"(workers of job "j": expected an integer from 0 to 10000 or auto, got "-1")");
  expect_error(job("workers: 1.5"), 4, 14,
               R"(workers of job "j": expected an integer from 0 to 10000 or auto, got "1.5")");
  expect_error(job("queue: {capacity: 0}"), 4, 23,
               R"(queue.capacity of job "j": expected an integer >= 1, got "0")");
  expect_error(
      job("queue: {max_task_bytes: 0}"), 4, 29,
      R"(queue.max_task_bytes of job "j": expected a size like 512KiB or 10MiB (at least 1B), got "0")");
  expect_error(job("queue: {prefetch: 0}"), 4, 23,
               R"(queue.prefetch of job "j": expected an integer >= 1 or auto, got "0")");
  expect_error(job("queue: {max_attempts: 0}"), 4, 27,
               R"(queue.max_attempts of job "j": expected an integer >= 1, got "0")");
  expect_error(
      job("restart: {backoff: {multiplier: 0.5}}"), 4, 37,
      R"(restart.backoff.multiplier of job "j": expected a number >= 1 like 2.0, got "0.5")");
  expect_error(
      job("restart: {backoff: {jitter: 1}}"), 4, 33,
      R"(restart.backoff.jitter of job "j": expected a number from 0 up to (not including) 1, like 0.1, got "1")");
  expect_error(job("restart: {exit_codes: [0, 256]}"), 4, 31,
               R"(restart.exit_codes[1] of job "j": expected an integer from 0 to 255, got "256")");
  expect_error(job("limits: {nice: 20}"), 4, 20,
               R"(limits.nice of job "j": expected an integer from -20 to 19, got "20")");
  expect_error(
      job("shared: {arrays: {h: {length: 0}}}"), 4, 35,
      R"(shared.arrays.h.length of job "j": expected an integer from 1 to 134217728, got "0")");
}

TEST(ConfigErrorsTest, BackoffInitialLongerThanMax) {
  expect_error("jobs:\n  j:\n    command: x\n    restart:\n      backoff: {initial: 1m}\n", 5, 26,
               R"(restart.backoff.initial of job "j": 1m is longer than max (30s))");
}

TEST(ConfigErrorsTest, MissingOrEmptyCommand) {
  expect_error("jobs:\n  j:\n    workers: 2\n", 2, 3,
               R"(job "j" has no command; add command: [program, args...])");
  expect_error("jobs:\n  j:\n", 2, 3, R"(job "j" has no command; add command: [program, args...])");
  expect_error("jobs:\n  j:\n    command: []\n", 3, 14,
               R"(command of job "j": must not be empty; it needs at least the program to run)");
  expect_error("jobs:\n  j:\n    command: \"  \"\n", 3, 14,
               R"(command of job "j": must not be empty; it needs at least the program to run)");
  expect_error("jobs:\n  j:\n    command: \"a 'b\"\n", 3, 14,
               R"(command of job "j": unterminated quote or trailing backslash in "a 'b")");
  expect_error("jobs:\n  j:\n    command: [x, [y]]\n", 3, 18,
               R"(command[1] of job "j": expected a string, got a list)");
}

TEST(ConfigErrorsTest, InvalidJobName) {
  expect_error("jobs:\n  \"my job\": {command: x}\n", 2, 3,
               R"(invalid job name "my job": use letters, digits, '_', '.' and '-')");
  expect_error("jobs:\n  ..: {command: x}\n", 2, 3,
               R"(invalid job name "..": use letters, digits, '_', '.' and '-')");
}

TEST(ConfigErrorsTest, InvalidChoicesSuggestTheClosestName) {
  expect_error(
      "jobs:\n  j: {command: x, channel: shmm}\n", 2, 28,
      R"(channel of job "j": expected one of none, pipe or shm, got "shmm"; did you mean "shm"?)");
  expect_error(
      "jobs:\n  j: {command: x, channel: SHM}\n", 2, 28,
      R"(channel of job "j": expected one of none, pipe or shm, got "SHM"; did you mean "shm"?)");
  expect_error(
      "daemon: {log_level: loud}\n", 1, 21,
      R"(daemon.log_level: expected one of trace, debug, info, warn or error, got "loud")");
  expect_error(
      "jobs:\n  j: {command: x, restart: {policy: on_failure}}\n", 2, 37,
      R"(restart.policy of job "j": expected one of always, on-failure or never, got "on_failure"; did you mean "on-failure"?)");
}

TEST(ConfigErrorsTest, OtherValues) {
  expect_error("daemon: {socket_mode: \"0999\"}\n", 1, 23,
               R"(daemon.socket_mode: expected an octal file mode like "0660", got "0999")");
  expect_error(
      "daemon: {metrics: {listen: localhost}}\n", 1, 28,
      R"(daemon.metrics.listen: expected HOST:PORT like "127.0.0.1:9464", or off, got "localhost")");
  expect_error("daemon: {socket: /" + std::string(120, 'x') + "}\n", 1, 18,
               "daemon.socket: is 121 bytes long; a Unix socket path holds at most 107");
  expect_error(
      "jobs:\n  j: {command: x, stop: {signal: TERMINATE}}\n", 2, 34,
      R"(stop.signal of job "j": expected a signal name or number like TERM, INT or 15, got "TERMINATE")");
  expect_error(
      "jobs:\n  j: {command: x, limits: {cpus: 3-1}}\n", 2, 34,
      R"(limits.cpus of job "j": expected off, auto or a CPU list like "0-3,6", got "3-1")");
  expect_error("jobs:\n  j: {command: x, env: {\"A=B\": 1}}\n", 2, 25,
               R"(invalid environment variable name "A=B")");
  expect_error(
      "jobs:\n  j: {command: x, shared: {values: {x: u32}}}\n", 2, 40,
      R"(shared.values.x of job "j": expected one of u64, i64 or f64, got "u32"; did you mean "u64"?)");
  expect_error("jobs:\n  j: {command: x, shared: {values: {x: u64}, arrays: {x: {length: 2}}}}\n",
               2, 55, R"(shared name "x" is both a value and an array)");
  expect_error("jobs:\n  j: {command: x, shared: {arrays: {h: {type: f64}}}}\n", 2, 37,
               R"(shared.arrays.h of job "j" needs length:)");
}

TEST(ConfigErrorsTest, SourceAndSink) {
  expect_error("jobs:\n  j: {command: x, source: {range: {from: 5, to: 3}}}\n", 2, 42,
               R"(source.range of job "j": from (5) must not be greater than to (3))");
  expect_error("jobs:\n  j: {command: x, source: {range: {from: 5}}}\n", 2, 28,
               R"(source.range of job "j" needs both from: and to:)");
  expect_error("jobs:\n  j: {command: x, source: {range: {from: 0, to: 1}, file: f}}\n", 2, 19,
               R"(source of job "j" takes range or file, not both)");
  expect_error("jobs:\n  j: {command: x, source: {}}\n", 2, 19,
               R"(source of job "j" needs range: or file: (or write none))");
  expect_error(
      "jobs:\n  j: {command: x, source: everything}\n", 2, 27,
      R"(source of job "j": expected none, {range: {from: 0, to: 1000}} or {file: PATH}, got "everything")");
  expect_error("jobs:\n  j: {command: x, sink: {}}\n", 2, 19,
               R"(sink of job "j" needs file: (or write none))");
}

TEST(ConfigErrorsTest, TopLevelMustBeAMap) {
  expect_error("- a\n- b\n", 1, 1,
               "the top level must be a map with keys like daemon: and jobs:, got a list");
  expect_error("just words\n", 1, 1,
               R"(the top level must be a map with keys like daemon: and jobs:, got "just words")");
}

TEST(ConfigErrorsTest, AllAreReportedAtOnceInFileOrder) {
  ParseResult result = load(R"(daemon:
  log_level: loud
jobs:
  a:
    wokers: 4
    queue: {capacity: 0, prefetch: -1}
  b:
    command: x
    stop: {timeout: forever}
bogus: 1
)");
  ASSERT_EQ(errors_of(result).size(), 7u) << all_errors(result);
  std::vector<std::pair<int, int>> places;
  for (const Diagnostic& d : errors_of(result)) places.emplace_back(d.line, d.column);
  EXPECT_EQ(places, (std::vector<std::pair<int, int>>{
                        {2, 14}, {4, 3}, {5, 5}, {6, 23}, {6, 36}, {9, 21}, {10, 1}}))
      << all_errors(result);
}

TEST(ConfigErrorsTest, TabIndentationIsASyntaxErrorWithItsPlace) {
  Diagnostic d = only_error("jobs:\n  a:\n\tcommand: x\n");
  EXPECT_EQ(d.line, 3) << d.str();
  EXPECT_EQ(d.column, 2) << d.str();
  EXPECT_NE(d.message.find("YAML syntax error"), std::string::npos) << d.str();
  EXPECT_NE(d.message.find("tab"), std::string::npos) << d.str();
}

TEST(ConfigErrorsTest, SyntaxErrorsHaveTheirPlace) {
  Diagnostic d = only_error("jobs:\n  a: {command: x\n");
  EXPECT_GT(d.line, 0) << d.str();
  EXPECT_NE(d.message.find("YAML syntax error"), std::string::npos) << d.str();
  d = only_error("daemon:\n  socket: *nowhere\n");
  EXPECT_EQ(d.line, 2) << d.str();
  EXPECT_EQ(d.column, 11) << d.str();
}

TEST(ConfigErrorsTest, BinaryJunkIsRefused) {
  std::string junk = "jobs:\n  a:\n    command: x";
  junk += '\0';
  expect_error(junk, 3, 15, "not a text file: it contains a NUL byte");
  std::string high = "daemon:\n  log_dir: \xff\xfe\x01\n";
  expect_error(high, 2, 12, "not a text file: byte 0xff is not UTF-8");
  std::string random;
  uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1103515245 + 12345;
    random += static_cast<char>(x >> 24);
  }
  EXPECT_FALSE(load(random).ok());
}

TEST(ConfigErrorsTest, DeepNestingIsRefused) {
  Diagnostic d = only_error("jobs: " + std::string(10000, '[') + std::string(10000, ']') + "\n");
  EXPECT_EQ(d.line, 1) << d.str();
  EXPECT_NE(d.message.find("nested too deeply"), std::string::npos) << d.str();
}

TEST(ConfigErrorsTest, OneDocumentPerFile) {
  expect_error("jobs: {}\n---\njobs: {}\n", 3, 1,
               "a config file holds one YAML document; this is another");
}

// yaml-cpp 0.7's LoadAll reads a document that starts with a stray ',' as
// endless empty documents and collects them until memory runs out: corrald
// hung at start or on a reload (found by tests/fuzz/config_parse).
TEST(ConfigErrorsTest, StrayCommaIsASyntaxErrorNotAHang) {
  expect_error(",", 1, 1, "YAML syntax error: unexpected \",\"");
  expect_error(",}\n{\n", 1, 1, "YAML syntax error: unexpected \",\"");
  expect_error(", restart: {policy: never}}\njobs:\n  a: {<<:  {\"A=Btype:y<s\n", 1, 1,
               "YAML syntax error: unexpected \",\"");
  expect_error("jobs: {}\n---\n,\n", 3, 1, "YAML syntax error: unexpected \",\"");
  // Empty documents after the config are fine; a full one is not.
  EXPECT_TRUE(load("jobs: {}\n...\n---\n---\n").ok());
  EXPECT_EQ(only_error("jobs: {}\n---\n---\njobs: {}\n").line, 4);
}

TEST(ConfigErrorsTest, HugeTextIsRefused) {
  std::string text = "# " + std::string(kMaxConfigBytes, 'x') + "\n";
  Diagnostic d = only_error(text);
  EXPECT_EQ(d.line, 0);
  EXPECT_NE(d.message.find("at most 4MiB"), std::string::npos) << d.str();
}

TEST(ConfigErrorsTest, AQuoteNeverClosedIsAnError) {
  // yaml-cpp takes the rest of the file into the value when the file ends
  // with a newline; the mistake would be silent.
  expect_error("jobs:\n  a:\n    command: \"x y\n    workers: 2\n", 3, 14,
               "YAML syntax error: the \" that starts this value is never closed, so the value "
               "runs to the end of the file");
  expect_error("jobs:\n  a:\n    command: x\n    cwd: &dir '/srv\n", 4, 15,
               "YAML syntax error: the ' that starts this value is never closed, so the value "
               "runs to the end of the file");
  expect_error("\xEF\xBB\xBFjobs:\n  a:\n    command: \"x\n", 3, 14,
               "YAML syntax error: the \" that starts this value is never closed, so the value "
               "runs to the end of the file");
  // In brackets, yaml-cpp misses the closing bracket; the hint names the quote.
  expect_error("jobs:\n  a: {command: \"x\n", 3, 1,
               "YAML syntax error: end of map flow not found (the \" at line 2, column 16 is "
               "never closed)");
  // Without the newline yaml-cpp finds it; the hint says where the quote is.
  expect_error("jobs:\n  a:\n    command: \"x y", 3, 18,
               "YAML syntax error: illegal EOF in scalar (the \" at line 3, column 14 is never "
               "closed)");
  // Quotes inside quotes, closed at the end.
  for (const char* last : {R"("a \" b")", "'it''s'", R"("C:\\")", "plain \"text"}) {
    ParseResult result = load(std::string("jobs:\n  a: {command: x, cwd: ") + last + "}\n");
    EXPECT_TRUE(result.ok()) << last << "\n" << all_errors(result);
  }
  ParseResult plain = load("jobs:\n  a:\n    command: x\n    env: {MSG: say \"hi}\n");
  EXPECT_TRUE(plain.ok()) << all_errors(plain);  // a plain value may hold a quote
}

TEST(ConfigErrorsTest, SyntaxErrorsSayWhatUsuallyCausesThem) {
  expect_error("jobs:\n  a:\n    command: [x, y\n    workers: 2\n", 4, 12,
               "YAML syntax error: end of sequence flow not found (the [ at line 3, column 14 has "
               "no closing ])");
  expect_error("jobs: {a: {command: x}\n", 2, 1,
               "YAML syntax error: end of map flow not found (the { at line 1, column 7 has no "
               "closing })");
  expect_error("jobs: ]\n", 1, 7,
               "YAML syntax error: illegal flow end (a ] or } without its opening [ or {)");
  expect_error("jobs:\n  a:\n    command: x\n   workers: 2\n", 4, 4,
               "YAML syntax error: end of map not found (check the indentation: the keys of one "
               "map, and the items of one list, line up)");
  expect_error("jobs:\n  a:\n    command: echo a: b\n", 3, 20,
               "YAML syntax error: illegal map value (check the indentation of this line, or "
               "quote a value that holds \": \")");
  expect_error("jobs:\n  a:\n    command: \"a\\q\"\n", 3, 18,
               "YAML syntax error: unknown escape character: q (in double quotes a backslash "
               "starts an escape: write \\\\, or use single quotes)");
  expect_error("jobs:\n  a:\n    command: @x\n", 3, 14,
               "YAML syntax error: unknown token (a value cannot start with @ or `; quote it)");
}

TEST(ConfigErrorsTest, DeepFlowNestingIsRefusedBeforeYamlCppReadsIt) {
  // yaml-cpp would read all of it ahead (hundreds of MB) before its own
  // depth check; the quick scan stops at the 500th bracket.
  std::string deep = "jobs: " + std::string(kMaxConfigBytes - 100, '[') + "\n";
  Diagnostic d = only_error(deep);
  EXPECT_EQ(d.str(), "test.yaml:1:506: lists and maps are nested too deeply (500 levels)");
  d = only_error("jobs:\n  a: " + std::string(2000, '{') + "\n");
  EXPECT_EQ(d.line, 2) << d.str();
  EXPECT_NE(d.message.find("nested too deeply"), std::string::npos) << d.str();
  // Brackets in quotes, comments, plain values and block scalars are no nesting.
  std::string many(600, '[');
  ParseResult result = load("# " + many + "\njobs:\n  a:\n    command: [\"" + many + "\", '" +
                            many + "']\n    cwd: x" + many + "\n    user: x \"" + many +
                            "\n    env:\n      A: |\n        " + many + "\n\n        " + many +
                            "\n      B: >-\n        " + many + "\n");
  EXPECT_TRUE(result.ok()) << all_errors(result);
  // A quote inside a plain value opens nothing that could hide the brackets.
  d = only_error("x: say \"hi\ny: " + many + "\n");
  EXPECT_EQ(d.str(), "test.yaml:2:503: lists and maps are nested too deeply (500 levels)");
}

TEST(ConfigErrorsTest, TooManyValuesAreRefused) {
  std::string list = "daemon:\n  allow_users: [";
  for (int i = 0; i < 100001; ++i) list += "u, ";
  Diagnostic d = only_error(list + "u]\n");
  EXPECT_EQ(d.line, 2) << d.str();
  EXPECT_EQ(d.message,
            "the config holds more than 100000 values, counting its included files and each "
            "alias as the values it repeats; a config this large is a mistake");
  // A billion laughs: ten aliases of ten aliases of... never expanded.
  std::string laughs = "x: [&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]";
  for (int i = 1; i < 10; ++i) {
    laughs += ", &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) laughs += (k ? ", *a" : "*a") + std::to_string(i - 1);
    laughs += "]";
  }
  d = only_error(laughs + "]\n");
  EXPECT_NE(d.message.find("more than 100000 values"), std::string::npos) << d.str();
  // An alias that refers to its own map is one value, and a mistake of its own.
  ParseResult cycle = load("jobs: &all\n  web: *all\n");
  EXPECT_FALSE(cycle.ok());
  EXPECT_NE(all_errors(cycle).find("unknown key \"web\" in job \"web\""), std::string::npos)
      << all_errors(cycle);
  // Aliases shared by jobs are fine below the limit.
  std::string shared = "x: &env {A: '1', B: '2'}\njobs:\n";
  for (int i = 0; i < 1000; ++i)
    shared += "  j" + std::to_string(i) + ": {command: x, env: *env}\n";
  ParseResult ok = load(shared);
  ASSERT_EQ(errors_of(ok).size(), 1u) << all_errors(ok);  // the unknown key "x" only
  EXPECT_EQ(errors_of(ok)[0].message,
            R"(unknown key "x" at the top level; valid keys: daemon, include, jobs)");
}

TEST(ConfigErrorsTest, Utf16IsNamed) {
  expect_error(std::string("\xFF\xFEj\0o\0b\0s\0:\0", 12), 1, 1,
               "the file is UTF-16 text; save it as UTF-8");
  expect_error(std::string("j\0o\0b\0s\0", 8), 1, 1, "the file is UTF-16 text; save it as UTF-8");
}

TEST(ConfigErrorsTest, InvisibleCharactersAreShownEscaped) {
  expect_error("jobs:\n  a:\n    command: x\n    workers\xC2\xA0: 2\n", 4, 5,
               R"(unknown key "workers\u00a0" in job "a"; did you mean "workers"?)");
  expect_error("jobs:\n  a:\n    command: x\n    \xEF\xBB\xBFworkers: 2\n", 4, 5,
               R"(unknown key "\ufeffworkers" in job "a"; did you mean "workers"?)");
  expect_error(
      "jobs:\n  a:\n    command: x\n    work\xE2\x80\x8B"
      "ers: 2\n",
      4, 5, R"(unknown key "work\u200bers" in job "a"; did you mean "workers"?)");
}

TEST(ConfigErrorsTest, MergeKeysAndMissingSpacesAreNamed) {
  expect_error("jobs:\n  a:\n    command: x\n    <<: {workers: 2}\n", 4, 5,
               "YAML merge keys (<<) are not supported in job \"a\"; write the keys out, or use "
               "an alias (*name) for a whole value");
  expect_error(
      "jobs:\n  a:\n    command:x\n", 3, 5,
      R"(jobs.a: expected a map of job settings, got "command:x" (a key needs a space after its colon, like "key: value"))");
}

// Config files in a fresh temp dir, removed afterwards.
class LoadFileTest : public ::testing::Test {
 protected:
  // Writes TEXT to NAME (which may hold directories) in the temp dir; its path.
  std::string write(const std::string& name, const std::string& text) {
    std::string path = temp_.file(name);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    corral::testing::write_file(path, text);
    return path;
  }
  corral::testing::TempDir temp_{"corral-config"};
  const std::string& dir_ = temp_.path();
};

TEST_F(LoadFileTest, ReadsAFile) {
  std::string path = write("corral.yaml", kSpecExample);
  ParseResult result = load_file(path, kCpus);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().file, path);
  EXPECT_EQ(result.value().jobs.size(), 1u);
}

TEST_F(LoadFileTest, MissingFile) {
  ParseResult result = load_file(dir_ + "/nope.yaml", kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u);
  EXPECT_EQ(errors_of(result)[0].str(),
            dir_ + "/nope.yaml: cannot open: No such file or directory");
}

TEST_F(LoadFileTest, RefusesAFileOverTheLimit) {
  std::string path = write("big.yaml", "# " + std::string(5 * 1024 * 1024, 'x') + "\n");
  ParseResult result = load_file(path, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u);
  EXPECT_EQ(errors_of(result)[0].line, 0);
  EXPECT_EQ(errors_of(result)[0].message,
            "file is 5242883 bytes; a config file may hold at most 4MiB");
}

TEST_F(LoadFileTest, IncludesJobsFromGlobsRelativeToTheFile) {
  write("jobs.d/b.yaml", "jobs:\n  b: {command: [b]}\n  c: {command: [c]}\n");
  write("jobs.d/a.yaml", "# only a comment\n");
  write("jobs.d/ignored.txt", "not: yaml: at all\n");
  std::string main = write("corral.yaml",
                           "include: [\"jobs.d/*.yaml\", \"none.d/*.yaml\"]\n"
                           "jobs:\n  z: {command: [z]}\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().include, (std::vector<std::string>{"jobs.d/*.yaml", "none.d/*.yaml"}));
  std::vector<std::string> names;
  for (const JobSpec& job : result.value().jobs) names.push_back(job.name);
  EXPECT_EQ(names, (std::vector<std::string>{"b", "c", "z"}));
}

TEST_F(LoadFileTest, AbsoluteGlobsAndLoadStringIncludeFromDisk) {
  write("extra/x.yaml", "jobs:\n  x: {command: [x]}\n");
  ParseResult result =
      load_string("include: [\"" + dir_ + "/extra/*.yaml\"]\n", dir_ + "/main.yaml", kCpus);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  ASSERT_EQ(result.value().jobs.size(), 1u);
  EXPECT_EQ(result.value().jobs[0].name, "x");
}

TEST_F(LoadFileTest, AFileMatchedTwiceOrItselfIsReadOnce) {
  write("jobs.d/a.yaml", "jobs:\n  a: {command: [a]}\n");
  std::string main =
      write("corral.yaml", "include: [\"jobs.d/*.yaml\", \"jobs.d/a.yaml\", \"*.yaml\"]\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().jobs.size(), 1u);
}

TEST_F(LoadFileTest, DuplicateJobAcrossFiles) {
  std::string included =
      write("jobs.d/a.yaml", "jobs:\n  other: {command: y}\n  a: {command: y}\n");
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\njobs:\n  a: {command: x}\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            included + ":3:3: job \"a\" is already defined at " + main + ":3:3");
}

TEST_F(LoadFileTest, IncludedFilesHoldOnlyJobs) {
  std::string included =
      write("jobs.d/a.yaml", "daemon: {}\ninclude: []\njbs: {}\njobs:\n  a: {command: x}\n");
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 3u) << all_errors(result);
  std::string from = " (included from " + main + ":1:11)";
  EXPECT_EQ(errors_of(result)[0].str(), included +
                                            ":1:1: \"daemon\" is not allowed in an included file" +
                                            from + "; it holds only a jobs: map");
  EXPECT_EQ(errors_of(result)[1].str(), included +
                                            ":2:1: \"include\" is not allowed in an included file" +
                                            from + "; it holds only a jobs: map");
  EXPECT_EQ(errors_of(result)[2].str(),
            included + ":3:1: unknown key \"jbs\" at the top level; did you mean \"jobs\"?");
}

TEST_F(LoadFileTest, ErrorsInIncludedFilesNameThatFile) {
  std::string included = write("jobs.d/a.yaml", "jobs:\n  a:\n    command: x\n    wokers: 2\n");
  std::string broken = write("jobs.d/b.yaml", "jobs: [\n");
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\ndaemon: {log_level: x}\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 3u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].file, main);  // the main file's errors come first
  EXPECT_EQ(errors_of(result)[1].str(),
            included + ":4:5: unknown key \"wokers\" in job \"a\"; did you mean \"workers\"?");
  EXPECT_EQ(errors_of(result)[2].file, broken);
  EXPECT_GT(errors_of(result)[2].line, 0);
}

TEST_F(LoadFileTest, AnUnreadableMatchIsAnError) {
  std::string subdir = dir_ + "/jobs.d/sub.yaml";
  std::filesystem::create_directories(subdir);
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            subdir + ": cannot read: it is a directory (included from " + main + ":1:11)");
}

TEST_F(LoadFileTest, OnlyRegularFilesAreRead) {
  // Opening a FIFO for reading would wait for a writer: --check and a
  // reload would hang.
  std::string fifo = dir_ + "/fifo.yaml";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ParseResult result = load_file(fifo, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            fifo + ": cannot read: it is a FIFO (named pipe), not a regular file");
  result = load_file("/dev/null", kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            "/dev/null: cannot read: it is a character device, not a regular file");

  std::filesystem::create_directories(dir_ + "/jobs.d");
  std::string included = dir_ + "/jobs.d/pipe.yaml";
  ASSERT_EQ(mkfifo(included.c_str(), 0600), 0);
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            included +
                ": cannot read: it is a FIFO (named pipe), not a regular "
                "file (included from " +
                main + ":1:11)");
}

TEST_F(LoadFileTest, AConfigThatOthersMayWriteIsRefused) {
  // The config says what corrald runs as root: like sudoers, it must be
  // writable by no one but its owner (root, or the user reading it).
  std::string included = write("jobs.d/a.yaml", "jobs:\n  a: {command: x}\n");
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  ASSERT_EQ(chmod(included.c_str(), 0646), 0);
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(), included +
                                            ": refused: it is writable by others (mode 0646); fix: "
                                            "chmod o-w " +
                                            included + " (included from " + main + ":1:11)");
  ASSERT_EQ(chmod(main.c_str(), 0602), 0);
  result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            main + ": refused: it is writable by others (mode 0602); fix: chmod o-w " + main);
}

TEST_F(LoadFileTest, AConfigThatAGroupButRootsMayWriteIsRefused) {
  // Root's group (and the reader's own) may write the config; others not.
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the file is given to gid 65534";
  std::string main = write("corral.yaml", "jobs: {}\n");
  ASSERT_EQ(chmod(main.c_str(), 0664), 0);
  const gid_t group = 65534;
  ASSERT_EQ(chown(main.c_str(), static_cast<uid_t>(-1), group), 0);
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].message.rfind("refused: it is writable by group ", 0), 0u)
      << errors_of(result)[0].message;
  EXPECT_NE(errors_of(result)[0].message.find("(gid " + std::to_string(group) + ")"),
            std::string::npos);
  EXPECT_NE(errors_of(result)[0].message.find("(mode 0664); fix: chmod g-w " + main),
            std::string::npos);
  ASSERT_EQ(chown(main.c_str(), static_cast<uid_t>(-1), 0), 0);
  result = load_file(main, kCpus);
  EXPECT_TRUE(result.ok()) << all_errors(result);
}

TEST_F(LoadFileTest, AConfigOfAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the file is given to uid 65534";
  std::string included = write("jobs.d/a.yaml", "jobs:\n  a: {command: x}\n");
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  ASSERT_EQ(chown(included.c_str(), 65534, 65534), 0);
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  const std::string& message = errors_of(result)[0].message;
  EXPECT_EQ(errors_of(result)[0].file, included);
  EXPECT_EQ(message.rfind("refused: it is owned by ", 0), 0u) << message;
  EXPECT_NE(message.find("(uid 65534), not by root or the user reading the config ("),
            std::string::npos)
      << message;
  EXPECT_NE(
      message.find("(uid 0)); fix: chown root " + included + " (included from " + main + ":1:11)"),
      std::string::npos)
      << message;
}

TEST_F(LoadFileTest, AFileNamedWithoutWildcardsMustExist) {
  std::string main =
      write("corral.yaml", "include: [jobs.d/web.yaml, \"none.d/*.yaml\", /no/such.yaml]\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 2u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            main + ":1:11: include[0]: no file \"" + dir_ +
                "/jobs.d/web.yaml\" (a name without *, ? or [ must name "
                "an existing file)");
  EXPECT_EQ(errors_of(result)[1].str(), main +
                                            ":1:45: include[2]: no file \"/no/such.yaml\" (a name "
                                            "without *, ? or [ must name an existing file)");
}

TEST_F(LoadFileTest, TheValueLimitCountsIncludedFilesToo) {
  std::string list = "[";
  for (int i = 0; i < 30000; ++i) list += "u, ";
  write("jobs.d/a.yaml", "jobs:\n  a: {command: x, env: {}}\nx: " + list + "u]\n");
  write("jobs.d/b.yaml", "jobs:\n  b: {command: x}\nx: " + list + "u]\n");
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\nx: " + list + "u]\n");
  std::string last = write("jobs.d/c.yaml", "jobs:\n  c: {command: x}\nx: " + list + "u]\n");
  ParseResult result = load_file(main, kCpus);
  std::string errors = all_errors(result);
  EXPECT_NE(errors.find(last + ":3:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("more than 100000 values"), std::string::npos) << errors;
}

TEST_F(LoadFileTest, AFileWithoutReadPermissionIsAnError) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  std::string locked = write("jobs.d/locked.yaml", "jobs: {}\n");
  chmod(locked.c_str(), 0);
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  ParseResult result = load_file(main, kCpus);
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(),
            locked + ": cannot open: Permission denied (included from " + main + ":1:11)");
}

TEST_F(LoadFileTest, AnUnreadableDirectoryIsAnError) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any directory";
  write("jobs.d/a.yaml", "jobs: {}\n");
  chmod((dir_ + "/jobs.d").c_str(), 0);
  std::string main = write("corral.yaml", "include: [jobs.d/*.yaml]\n");
  ParseResult result = load_file(main, kCpus);
  chmod((dir_ + "/jobs.d").c_str(), 0700);  // so that TearDown can remove it
  ASSERT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  EXPECT_EQ(errors_of(result)[0].str(), main + ":1:11: include[0]: cannot expand \"" + dir_ +
                                            "/jobs.d/*.yaml\": " + dir_ +
                                            "/jobs.d: Permission denied");
}

TEST(LoadStringTest, PassEnvNamesVariablesOfTheDaemon) {
  ParseResult result = load("daemon:\n  pass_env: [LANG, http_proxy, _X1]\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_EQ(result.value().daemon.pass_env,
            (std::vector<std::string>{"LANG", "http_proxy", "_X1"}));
  EXPECT_TRUE(load("daemon: {pass_env: []}\n").value().daemon.pass_env.empty());
  EXPECT_TRUE(load("").value().daemon.pass_env.empty());
}

TEST(ConfigErrorsTest, PassEnvTakesOnlyNamesThatCorraldMayPassOn) {
  constexpr const char* kName =
      "expected an environment variable name (letters, digits and '_', not starting with a digit)";
  expect_error("daemon:\n  pass_env: [LANG, 1X]\n", 2, 20,
               std::string("daemon.pass_env[1]: ") + kName + R"(, got "1X")");
  expect_error("daemon:\n  pass_env: [\"A=B\"]\n", 2, 14,
               std::string("daemon.pass_env[0]: ") + kName + R"(, got "A=B")");
  expect_error("daemon:\n  pass_env: [\"MY VAR\"]\n", 2, 14,
               std::string("daemon.pass_env[0]: ") + kName + R"(, got "MY VAR")");
  expect_error("daemon:\n  pass_env: [\"\"]\n", 2, 14, "daemon.pass_env[0]: must not be empty");
  expect_error("daemon:\n  pass_env: LANG\n", 2, 13,
               R"(daemon.pass_env: expected a list of environment variable names like [LANG, )"
               R"(http_proxy], got "LANG")");
  expect_error("daemon:\n  pass_env: [TZ, NOTIFY_SOCKET]\n", 2, 18,
               R"(daemon.pass_env[1]: "NOTIFY_SOCKET" belongs to corrald itself (its service )"
               R"(manager or corral) and is never passed on to workers)");
  expect_error("daemon:\n  pass_env: [CORRAL_SOCKET]\n", 2, 14,
               R"(daemon.pass_env[0]: "CORRAL_SOCKET" belongs to corrald itself (its service )"
               R"(manager or corral) and is never passed on to workers)");
  ParseResult result = load("daemon:\n  pass_env: [1A, WATCHDOG_USEC, ok, \"-\"]\n");
  EXPECT_EQ(errors_of(result).size(), 3u) << all_errors(result);
  expect_error("daemon:\n  pass_envs: [LANG]\n", 2, 3,
               R"(unknown key "pass_envs" in daemon; did you mean "pass_env"?)");
}

}  // namespace
}  // namespace corral::config

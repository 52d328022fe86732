// corrald with real children: restart after kill -9, backoff then FATAL,
// stop escalation, no orphans after kill -9 of the daemon, no fd leaks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

TEST(SupervisionTest, KilledWorkerComesBackWithANewPid) {
  Daemon d(R"(
jobs:
  sleepers:
    command: [sleep, "1000"]
    workers: 2
    start: {settle: 0}
    restart: {backoff: {initial: 10ms}}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sleepers:1", "RUNNING"));
  pid_t before = d.worker_pid("sleepers:1");
  pid_t other = d.worker_pid("sleepers:0");
  ASSERT_GT(before, 0);
  kill(before, SIGKILL);
  ASSERT_TRUE(wait_until([&] {
    pid_t now = d.worker_pid("sleepers:1");
    return now > 0 && now != before && d.state("sleepers:1") == "RUNNING";
  }));
  Json w = d.worker("sleepers:1");
  EXPECT_EQ(w["restarts"], 1);
  EXPECT_EQ(w["exit_description"], "killed by SIGKILL");
  EXPECT_EQ(w["exit_status"], 128 + SIGKILL);
  EXPECT_EQ(d.worker_pid("sleepers:0"), other);  // the other worker was not touched
  EXPECT_EQ(d.stop(), 0);
  EXPECT_FALSE(process_alive(other));
}

TEST(SupervisionTest, FailingWorkerBacksOffWithGrowingDelaysThenFatalAndStartRevivesIt) {
  TempDir work;
  std::string starts = work.file("starts");
  std::string ok = work.file("ok");
  Daemon d("jobs:\n  flaky:\n    command: [sh, -c, 'date +%s%N >> " + starts + "; test -f " + ok +
           " || exit 1; exec sleep 1000']\n"
           "    start: {settle: 0}\n"
           "    restart: {max_restarts: 4, window: 60s, backoff: {initial: 50ms, multiplier: 2, "
           "jitter: 0}}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("flaky:0", "FATAL", 20s)) << d.daemon_log();
  std::vector<long long> times;
  std::istringstream lines(read_file(starts));
  for (long long ns; lines >> ns;) times.push_back(ns);
  ASSERT_EQ(times.size(), 5u);  // the first start and 4 restarts
  for (size_t i = 1; i < times.size(); ++i) {
    long long gap_ms = (times[i] - times[i - 1]) / 1000000;
    long long nominal_ms = 50LL << (i - 1);
    EXPECT_GE(gap_ms, nominal_ms) << "restart " << i;
  }
  Json w = d.worker("flaky:0");
  EXPECT_EQ(w["exit_status"], 1);
  EXPECT_THAT(w["description"].get<std::string>(), HasSubstr("too many restarts"));
  RunResult status = d.ctl({"status", "flaky"});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_THAT(status.out, HasSubstr("FATAL"));

  write_file(ok, "");
  RunResult start = d.ctl({"start", "flaky"});
  EXPECT_EQ(start.exit_code, 0) << start.out << start.err;
  EXPECT_EQ(start.out, "flaky:0: started\n");
  EXPECT_EQ(d.state("flaky:0"), "RUNNING");
}

TEST(SupervisionTest, StopEscalatesToSigkillForAWorkerThatIgnoresSigterm) {
  Daemon d(R"(
jobs:
  stubborn:
    command: [sh, -c, 'trap "" TERM; echo ready; while :; do sleep 0.05; done']
    start: {settle: 0}
    stop: {signal: TERM, timeout: 300ms}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(
      wait_until([&] { return read_file(d.log_dir() + "/stubborn-0.out.log") == "ready\n"; }));
  pid_t pid = d.worker_pid("stubborn:0");
  auto t0 = std::chrono::steady_clock::now();
  RunResult stop = d.ctl({"stop", "stubborn:0"});
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "stubborn:0: stopped\n");
  EXPECT_GE(took, 300ms);
  Json w = d.worker("stubborn:0");
  EXPECT_EQ(w["state"], "STOPPED");
  EXPECT_EQ(w["exit_description"], "killed by SIGKILL");
  EXPECT_FALSE(process_alive(pid));
  EXPECT_THAT(d.daemon_log(), HasSubstr("did not stop in time; sending SIGKILL"));
}

TEST(SupervisionTest, NoWorkerSurvivesKill9OfTheDaemon) {
  Daemon d(R"(
jobs:
  pool:
    command: [sleep, "1000"]
    workers: 4
    start: {settle: 0}
  shells:
    command: [sh, -c, 'sleep 1000 & sleep 1000']
    workers: 2
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i) {
    std::string name = "pool:" + std::to_string(i);
    ASSERT_TRUE(d.wait_state(name, "RUNNING"));
    pids.push_back(d.worker_pid(name));
  }
  std::vector<pid_t> groups;
  for (int i = 0; i < 2; ++i) {
    std::string name = "shells:" + std::to_string(i);
    ASSERT_TRUE(d.wait_state(name, "RUNNING"));
    groups.push_back(d.worker_pid(name));
  }
  d.kill9();
  EXPECT_TRUE(wait_until(
      [&] {
        return std::none_of(pids.begin(), pids.end(), [](pid_t p) { return process_alive(p); });
      },
      2s));
  // The workers' own children outlive a kill -9 of the daemon (only the
  // worker gets the parent-death signal): the test ends them itself.
  for (pid_t group : groups) ::kill(-group, SIGKILL);
}

TEST(SupervisionTest, OnlyStdioFdsReachAWorker) {
  Daemon d(R"(
jobs:
  lister:
    command: [sh, -c, 'ls /proc/$$/fd; exec sleep 1000']
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::string log = d.log_dir() + "/lister-0.out.log";
  ASSERT_TRUE(wait_until([&] { return !read_file(log).empty(); }));
  EXPECT_EQ(read_file(log), "0\n1\n2\n");
}

TEST(SupervisionTest, WorkerEnvironmentNamesItsJobAndIndex) {
  Daemon d(R"(
jobs:
  env:
    command: [sh, -c, 'echo "$CORRAL_JOB $CORRAL_WORKER $CORRAL_CHANNEL $GREETING"; exec sleep 1000']
    workers: 2
    start: {settle: 0}
    env: {GREETING: hi}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::string log = d.log_dir() + "/env-1.out.log";
  ASSERT_TRUE(wait_until([&] { return !read_file(log).empty(); }));
  EXPECT_EQ(read_file(log), "env 1 none hi\n");
}

TEST(SupervisionTest, StdoutAndStderrAreCapturedAndRotated) {
  Daemon d(R"(
jobs:
  talker:
    command: [sh, -c, 'i=0; while [ $i -lt 500 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done; exec sleep 1000']
    start: {settle: 0}
)",
           "  log_rotate: {max_size: 1KiB, keep: 2}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::string out = d.log_dir() + "/talker-0.out.log";
  ASSERT_TRUE(wait_until([&] { return read_file(out).find("line 499\n") != std::string::npos; }));
  EXPECT_LE(read_file(out).size(), 1024u);
  EXPECT_FALSE(read_file(out + ".1").empty());
  EXPECT_FALSE(read_file(out + ".2").empty());
  EXPECT_TRUE(read_file(out + ".3").empty());
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.log_dir() + "/talker-0.err.log").find("err 499\n") != std::string::npos;
  }));
}

TEST(SupervisionTest, SpawnErrorIsShownAndTheDaemonGoesOn) {
  Daemon d(R"(
jobs:
  missing:
    command: [no-such-program-anywhere]
    restart: {max_restarts: 1, backoff: {initial: 10ms}}
  fine:
    command: [sleep, "1000"]
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("missing:0", "FATAL"));
  Json w = d.worker("missing:0");
  EXPECT_EQ(w["spawn_error"], "exec no-such-program-anywhere: not found in PATH");
  EXPECT_EQ(d.state("fine:0"), "RUNNING");
  RunResult start = d.ctl({"start", "missing"});
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_EQ(start.out, "missing:0: ERROR (spawn error)\n");
}

// corrald ignores SIGPIPE and SIGXFSZ and blocks the signals it reads; a
// worker starts with every disposition at its default and nothing blocked,
// whether the spawn server started it or corrald itself.
TEST(SupervisionTest, AWorkerStartsWithDefaultSignalsAndAnEmptyMask) {
  Daemon d(R"yaml(
jobs:
  signals:
    command: [sh, -c, 'grep -E "^Sig(Blk|Ign)" /proc/self/status; exec sleep 1000']
    start: {settle: 0}
)yaml");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string log = d.log_dir() + "/signals-0.out.log";
  const std::string clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
  ASSERT_TRUE(wait_until([&] { return !read_file(log).empty(); }));
  EXPECT_EQ(read_file(log), clean);

  // Again from corrald itself, without its spawn server.
  for (pid_t server : children_named(d.pid(), "corral-spawn")) ::kill(server, SIGKILL);
  pid_t before = d.worker_pid("signals:0");
  ASSERT_EQ(::kill(before, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return read_file(log).size() == 2 * clean.size(); }))
      << read_file(log) << d.daemon_log();
  EXPECT_EQ(read_file(log), clean + clean);
  EXPECT_THAT(d.daemon_log(), HasSubstr("starting workers from corrald from now on"));
}

TEST(SupervisionTest, TheSpawnServerStartsWorkersAsTheDaemonsOwnChildren) {
  Daemon d(R"(
jobs:
  sleepers:
    command: [sleep, "1000"]
    workers: 3
    start: {settle: 0}
  lost:
    command: [sleep, "1000"]
    cwd: /no/such/dir
    restart: {max_restarts: 1, backoff: {initial: 10ms}}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sleepers:2", "RUNNING"));
  ASSERT_TRUE(d.wait_state("lost:0", "FATAL"));
  EXPECT_EQ(d.worker("lost:0")["spawn_error"], "chdir /no/such/dir: No such file or directory");
  EXPECT_EQ(zombies_of(d.pid()), 0);  // the children that failed before exec were reaped
  // A child is named corral-spawn from its clone until its exec (or its
  // reaping): once every worker has settled, the server is the only one.
  std::vector<pid_t> servers;
  ASSERT_TRUE(wait_until([&] {
    servers = children_named(d.pid(), "corral-spawn");
    return servers.size() == 1;
  })) << servers.size();
  // Made by the server with CLONE_PARENT: corrald's children, reaped by it.
  EXPECT_EQ(children_named(d.pid(), "sleep").size(), 3u);

  // Without its server corrald starts workers itself.
  ASSERT_EQ(::kill(servers[0], SIGKILL), 0);
  pid_t before = d.worker_pid("sleepers:0");
  ASSERT_EQ(::kill(before, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] {
    Json w = d.worker("sleepers:0");
    return w["state"] == "RUNNING" && w["pid"].get<pid_t>() != before;
  })) << d.daemon_log();
  EXPECT_EQ(children_named(d.pid(), "sleep").size(), 3u);
  EXPECT_THAT(d.daemon_log(), HasSubstr("starting workers from corrald from now on"));
  EXPECT_TRUE(children_named(d.pid(), "corral-spawn").empty());
  EXPECT_EQ(zombies_of(d.pid()), 0);  // the server it killed was reaped too
  EXPECT_EQ(d.stop(), 0);
}

TEST(SupervisionTest, SigtermStopsEverythingAndExitsZero) {
  Daemon d(R"(
jobs:
  pool:
    command: [sleep, "1000"]
    workers: 3
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    std::string name = "pool:" + std::to_string(i);
    ASSERT_TRUE(d.wait_state(name, "RUNNING"));
    pids.push_back(d.worker_pid(name));
  }
  EXPECT_EQ(d.stop(), 0);
  for (pid_t p : pids) EXPECT_FALSE(process_alive(p));
  EXPECT_FALSE(std::filesystem::exists(d.socket()));
}

TEST(SupervisionTest, ShutdownCommandStopsTheDaemon) {
  Daemon d("jobs:\n  one:\n    command: [sleep, '1000']\n    start: {settle: 0}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult r = d.ctl({"shutdown"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return !process_alive(d.pid()); }));
}

TEST(SupervisionTest, ASecondDaemonOnTheSameSocketRefusesToStart) {
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult second = run({CORRALD_PATH, "-c", d.config()}, 10s);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("another corrald is running"));
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);  // the first is unharmed
}

TEST(SupervisionTest, AStaleSocketOfADeadDaemonIsReplaced) {
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  d.kill9();
  ASSERT_TRUE(std::filesystem::exists(d.socket()));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);
}

TEST(SupervisionTest, RestartGivesNewPidsAndStatusReadsLikeSupervisorctl) {
  Daemon d(R"(
jobs:
  web:
    command: [sleep, "1000"]
    workers: 2
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("web:1", "RUNNING"));
  pid_t before = d.worker_pid("web:0");
  RunResult r = d.ctl({"restart", "web"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "web:0: started\nweb:1: started\n");
  EXPECT_NE(d.worker_pid("web:0"), before);
  EXPECT_EQ(d.worker("web:0")["restarts"], 0);  // a person's restart is not a failure
  RunResult status = d.ctl({"status"});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_THAT(status.out, ::testing::ContainsRegex("web:0 +RUNNING +pid [0-9]+, uptime 0:00:0"));
  RunResult unknown = d.ctl({"stop", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no such job: nope"));
}

TEST(SupervisionTest, BadRequestsGetErrorsAndTheDaemonGoesOn) {
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult garbage = run({"/bin/sh", "-c",
                           "printf 'not json\\n{\"cmd\":\"version\"}\\n' | "
                           "python3 -c \"import socket,sys; s=socket.socket(socket.AF_UNIX); "
                           "s.connect('" +
                               d.socket() +
                               "'); s.sendall(sys.stdin.buffer.read()); "
                               "s.shutdown(socket.SHUT_WR); print(s.makefile().read(), end='')\""});
  EXPECT_THAT(garbage.out, HasSubstr("\"error\":\"bad JSON in request\""));
  EXPECT_THAT(garbage.out, HasSubstr("\"version\""));
  EXPECT_EQ(d.request({{"cmd", "nope"}})["error"], "unknown command: nope");
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);
}

TEST(SupervisionTest, UnreachableDaemonExitsThree) {
  TempDir dir;
  RunResult r = run({CORRALCTL_PATH, "-s", dir.file("none.sock"), "status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot reach corrald"));
}

TEST(SupervisionTest, CheckValidatesTheConfig) {
  TempDir dir;
  write_file(dir.file("good.yaml"), "jobs:\n  a:\n    command: [sleep, '1']\n");
  RunResult good = run({CORRALD_PATH, "--check", "-c", dir.file("good.yaml")});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_THAT(good.out, HasSubstr("command: [sleep, \"1\"]"));
  write_file(dir.file("bad.yaml"), "jobs:\n  a:\n    comand: [sleep, '1']\n    workers: -1\n");
  RunResult bad = run({CORRALD_PATH, "--check", "-c", dir.file("bad.yaml")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("bad.yaml:3:5"));
  EXPECT_THAT(bad.err, HasSubstr("did you mean \"command\""));
  EXPECT_THAT(bad.err, HasSubstr("bad.yaml:4:"));
}

}  // namespace
}  // namespace corral::testing

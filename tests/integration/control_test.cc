// The control socket and corralctl as an operator uses them: signal, tail
// (-f), clear, restart --rolling, and a socket that strangers cannot use and
// that no client can jam: bad, truncated and oversized requests, unknown
// fields, hundreds of clients, a client that never reads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A worker that prints "line N" to stdout and "err N" to stderr every 20 ms
// and says "got HUP" on SIGHUP.
const std::string kChatty = R"(
  chatty:
    command: [sh, -c, 'trap "echo got HUP" HUP; i=0; while :; do echo line $i; echo err $i >&2; i=$((i+1)); sleep 0.02; done']
    start: {settle: 0s}
)";

// Everything the daemon sends on FD until it closes it (or 20 s pass).
std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, size_t(n));
  return out;
}

TEST(ControlTest, SignalReachesTheWorkerProcess) {
  Daemon d("jobs:" + kChatty);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("chatty:0", "RUNNING"));
  RunResult r = d.ctl({"signal", "HUP", "chatty:0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "chatty:0: signalled\n");
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.log_dir() + "/chatty-0.out.log").find("got HUP") != std::string::npos;
  }));
  EXPECT_EQ(d.ctl({"signal", "NOPE", "chatty"}).exit_code, 2);
  ASSERT_EQ(d.ctl({"stop", "chatty"}).exit_code, 0);
  RunResult stopped = d.ctl({"signal", "USR1", "chatty"});
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_THAT(stopped.out, HasSubstr("chatty:0: ERROR (not running)"));
}

TEST(ControlTest, TailShowsTheLastLinesAndFollowsNewOnes) {
  Daemon d("jobs:" + kChatty);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.log_dir() + "/chatty-0.out.log").find("line 5\n") != std::string::npos;
  }));
  RunResult three = d.ctl({"tail", "-n", "3", "chatty:0"});
  EXPECT_EQ(three.exit_code, 0) << three.err;
  EXPECT_EQ(std::count(three.out.begin(), three.out.end(), '\n'), 3) << three.out;
  EXPECT_THAT(three.out, HasSubstr("line "));
  RunResult err = d.ctl({"tail", "--stderr", "-n", "1", "chatty:0"});
  EXPECT_THAT(err.out, HasSubstr("err "));
  EXPECT_THAT(err.out, Not(HasSubstr("line ")));

  // -f: the lines that come after it started, as they come.
  PipeChild follower({CORRALCTL_PATH, "-s", d.socket(), "tail", "-f", "-n", "1", "chatty:0"},
                     "lines", {}, true);
  auto first = follower.line();
  ASSERT_TRUE(first) << follower.stderr_text();
  int first_n = std::stoi(first->substr(5));
  bool later = false;
  for (int i = 0; i < 50 && !later; ++i) {
    auto next = follower.line();
    ASSERT_TRUE(next) << follower.stderr_text();
    if (next->starts_with("line ") && std::stoi(next->substr(5)) > first_n + 3) later = true;
  }
  EXPECT_TRUE(later);

  // supervisorctl's `tail NAME`: the job of one worker names it.
  RunResult by_job = d.ctl({"tail", "-n", "2", "chatty"});
  EXPECT_EQ(by_job.exit_code, 0) << by_job.err;
  EXPECT_THAT(by_job.out, HasSubstr("line "));
  EXPECT_EQ(d.ctl({"tail", "all"}).exit_code, 2);       // not one worker
  EXPECT_EQ(d.ctl({"tail", "chatty:7"}).exit_code, 1);  // no such worker
  EXPECT_EQ(d.ctl({"tail", "-n", "x", "chatty:0"}).exit_code, 2);
}

TEST(ControlTest, TailOfAJobOfSeveralWorkersAsksForOne) {
  Daemon d(
      "jobs:\n  pair:\n    command: [sleep, '60']\n    workers: 2\n"
      "    start: {settle: 0s}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult r = d.ctl({"tail", "pair"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("pair has 2 workers; name one as JOB:INDEX"));
  EXPECT_EQ(d.ctl({"tail", "pair:1"}).exit_code, 0);
  EXPECT_EQ(d.ctl({"tail", "nosuch"}).exit_code, 1);
}

TEST(ControlTest, ClearEmptiesTheCapturedOutput) {
  Daemon d("jobs:" + kChatty);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string log = d.log_dir() + "/chatty-0.out.log";
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("line 3\n") != std::string::npos; }));
  ASSERT_EQ(d.ctl({"stop", "chatty"}).exit_code, 0);
  RunResult r = d.ctl({"clear", "chatty"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "chatty:0: cleared\n");
  EXPECT_EQ(read_file(log), "");
  EXPECT_EQ(read_file(d.log_dir() + "/chatty-0.err.log"), "");
  ASSERT_EQ(d.ctl({"start", "chatty"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return read_file(log).starts_with("line 0\n"); }));
}

TEST(ControlTest, LogrotateCreateWithSigusr1AndCopytruncateBothWork) {
  Daemon d("jobs:" + kChatty);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string log = d.log_dir() + "/chatty-0.out.log";
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("line 2\n") != std::string::npos; }));

  // create: the file is moved away, then SIGUSR1 makes the daemon open a new one.
  ASSERT_EQ(::rename(log.c_str(), (log + ".old").c_str()), 0);
  ::kill(d.pid(), SIGUSR1);
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("line ") != std::string::npos; }));
  std::string moved = read_file(log + ".old");
  EXPECT_THAT(moved, HasSubstr("line 2\n"));

  // copytruncate: the file is emptied in place and nothing is signalled;
  // the next lines start at its beginning, with no hole of zeros.
  ASSERT_EQ(::truncate(log.c_str(), 0), 0);
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("line ") != std::string::npos; }));
  EXPECT_TRUE(read_file(log).starts_with("line ")) << read_file(log).substr(0, 40);
}

TEST(ControlTest, RollingRestartReplacesEveryWorkerOneAtATime) {
  Daemon d(
      "jobs:\n  pool:\n    command: [sleep, '1000']\n    workers: 3\n"
      "    start: {settle: 100ms}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(d.wait_state("pool:" + std::to_string(i), "RUNNING"));
  std::vector<pid_t> before;
  for (int i = 0; i < 3; ++i) before.push_back(d.worker_pid("pool:" + std::to_string(i)));
  RunResult r = d.ctl({"restart", "--rolling", "pool"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "pool:0: restarted\npool:1: restarted\npool:2: restarted\n");
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(d.worker_pid("pool:" + std::to_string(i)), before[size_t(i)]);
    EXPECT_FALSE(process_alive(before[size_t(i)]));
  }
  // One at a time: each was stopped only after the one before it ran again.
  std::string log = d.daemon_log();
  size_t running0 = log.rfind("pool:0: STARTING -> RUNNING");
  size_t stopping1 = log.rfind("pool:1: RUNNING -> STOPPING");
  ASSERT_NE(running0, std::string::npos) << log;
  ASSERT_NE(stopping1, std::string::npos) << log;
  EXPECT_LT(running0, stopping1);
}

TEST(ControlTest, BadTruncatedOversizedAndUnknownRequestsGetErrors) {
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_EQ(d.request({{"cmd", "status"}, {"targetz", {"all"}}})["error"],
            "unknown field \"targetz\" in a status request (it takes fields, targets)");
  EXPECT_EQ(d.request({{"cmd", "version"}, {"x", 1}})["error"],
            "unknown field \"x\" in a version request (it takes none)");
  EXPECT_EQ(d.request(Json::array({1, 2}))["error"], "a request is a JSON object");

  // Truncated: half a request, then the client goes.
  int half = connect_socket(d.socket(), 20s);
  ASSERT_GE(half, 0);
  ASSERT_EQ(::write(half, "{\"cmd\":\"sta", 11), 11);
  ::close(half);

  // Oversized: a line over 1 MiB gets an error and the connection ends.
  int big = connect_socket(d.socket(), 20s);
  ASSERT_GE(big, 0);
  std::string huge(2 << 20, 'x');
  std::thread writer([&] { (void)!::write(big, huge.data(), huge.size()); });
  std::string reply = read_all(big);
  ::shutdown(big, SHUT_RDWR);
  writer.join();
  ::close(big);
  EXPECT_THAT(reply, HasSubstr("request line longer than 1048576 bytes"));
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);
}

TEST(ControlTest, TwoHundredClientsAtOnceAllGetAnswers) {
  Daemon d("jobs:\n  a:\n    command: [sleep, '1000']\n    workers: 4\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // 200 idle connections that never send anything...
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(connect_socket(d.socket(), 20s));
  // ...and 200 clients asking at once.
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i) {
    clients.emplace_back([&] {
      try {
        if (d.request({{"cmd", "status"}})["workers"].size() == 4) ++answered;
      } catch (const std::exception&) {
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 200);
  for (int fd : idle) {
    EXPECT_GE(fd, 0);
    if (fd >= 0) ::close(fd);
  }
}

TEST(ControlTest, AClientThatNeverReadsATailDoesNotJamOthers) {
  // A worker that writes fast; its follower never reads a byte.
  Daemon d(R"(jobs:
  flood:
    command: [sh, -c, 'while :; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done']
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // Resident kB. Compared with the figure before the tail rather than taken
  // alone: under ASan the daemon starts out some 50 MB larger (shadow memory,
  // the allocator's quarantine).
  auto rss_kb = [&] {
    std::string status = read_file("/proc/" + std::to_string(d.pid()) + "/status");
    size_t at = status.find("VmRSS:");
    return at == std::string::npos ? -1L : std::stol(status.substr(at + 6));
  };
  long before = rss_kb();
  ASSERT_GT(before, 0);
  int deaf = connect_socket(d.socket(), 20s);
  ASSERT_GE(deaf, 0);
  std::string request =
      protocol::encode_line(Json{{"cmd", "tail"}, {"target", "flood:0"}, {"follow", true}});
  ASSERT_EQ(::write(deaf, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(d.request({{"cmd", "status"}})["ok"], true);
  }
  // The daemon read no more than the client's backlog allows: it holds at
  // most 54 MB more than before (under 64 MB in all, in a plain build).
  EXPECT_LT(rss_kb() - before, 54 * 1024) << "kB more than " << before << " kB";
  ::close(deaf);
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);
}

TEST(ControlTest, AStrangerIsRefusedAndAnAllowedUserIsNot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  for (bool allowed : {false, true}) {
    Daemon d("jobs: {}\n",
             std::string("  socket_mode: 0666\n") + (allowed ? "  allow_users: [nobody]\n" : ""));
    ::chmod(d.dir().path().c_str(), 0755);
    ASSERT_TRUE(d.start()) << d.daemon_log();
    RunResult r = run({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                       CORRALCTL_PATH, "-s", d.socket(), "version"});
    if (allowed) {
      EXPECT_EQ(r.exit_code, 0) << r.err;
    } else {
      EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
      EXPECT_THAT(r.err, HasSubstr("permission denied"));
    }
  }
}

}  // namespace
}  // namespace corral::testing

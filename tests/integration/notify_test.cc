// corrald under a service manager: the test plays systemd's part with a
// datagram socket in NOTIFY_SOCKET and checks READY, STATUS, the watchdog
// pings (and that they stop while the event loop is held), RELOADING then
// READY on SIGHUP, and STOPPING on SIGTERM.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// The service manager's end: a datagram socket (PATH, or a name in the
// abstract namespace when it starts with '@', as systemd's may); each message
// with the time it came.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    socklen_t size = sizeof addr;
    if (path[0] == '@') {
      addr.sun_path[0] = '\0';
      size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), size) != 0) {
      throw std::runtime_error("bind " + path);
    }
    timeval timeout{0, 50000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() { ::close(fd_); }

  struct Message {
    std::string text;
    Clock::time_point at;
  };
  // Everything received until PREDICATE holds for the last message or
  // TIMEOUT passes.
  std::vector<Message> until(const std::function<bool(const std::string&)>& predicate,
                             std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    std::vector<Message> got;
    while (Clock::now() < deadline) {
      char buffer[4096];
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      got.push_back({std::string(buffer, size_t(n)), Clock::now()});
      if (predicate(got.back().text)) break;
    }
    return got;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

bool has(const std::string& text, const std::string& line) {
  return ("\n" + text + "\n").find("\n" + line) != std::string::npos;
}

TEST(NotifyTest, ReadyStatusWatchdogReloadAndStopReachTheServiceManager) {
  Daemon d("jobs:\n  sums:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
           ", --handler, sum]\n    channel: shm\n");
  NotifySocket manager(d.dir().file("notify.sock"));
  d.set_env({"NOTIFY_SOCKET=" + d.dir().file("notify.sock"), "WATCHDOG_USEC=200000",
             "CORRAL_TEST_HOOKS=1"});
  ASSERT_TRUE(d.start()) << d.daemon_log();

  auto ready = manager.until([](const std::string& m) { return has(m, "READY=1"); });
  ASSERT_FALSE(ready.empty());
  ASSERT_TRUE(has(ready.back().text, "READY=1")) << ready.back().text;
  EXPECT_THAT(ready.back().text, HasSubstr("STATUS=1 job, "));
  EXPECT_THAT(ready.back().text, HasSubstr("tasks/s"));

  // Pings every 100 ms (half of 200 ms): about ten in a second.
  auto start = Clock::now();
  auto second = manager.until([&](const std::string&) { return Clock::now() - start > 1s; }, 2s);
  auto pings = std::count_if(second.begin(), second.end(),
                             [](const auto& m) { return has(m.text, "WATCHDOG=1"); });
  EXPECT_GE(pings, 5);
  EXPECT_LE(pings, 15);

  // The loop held for 700 ms: no ping in that time (the gap is measured
  // from the last ping before the hold).
  Json blocked;
  std::thread blocker([&] { blocked = d.request({{"cmd", "test-block-loop"}, {"ms", 700}}); });
  auto around = manager.until([&](const std::string&) { return false; }, 2s);
  blocker.join();
  EXPECT_EQ(blocked["ok"], true) << blocked.dump();
  std::vector<Clock::time_point> at;
  for (const auto* batch : {&second, &around}) {
    for (const auto& m : *batch) {
      if (has(m.text, "WATCHDOG=1")) at.push_back(m.at);
    }
  }
  auto longest = Clock::duration::zero();
  for (size_t i = 1; i < at.size(); ++i) longest = std::max(longest, at[i] - at[i - 1]);
  EXPECT_GE(longest, 550ms);
  // ...and they come again once the loop runs: 1.3 s of the 2 s are free.
  EXPECT_GE(std::count_if(around.begin(), around.end(),
                          [](const auto& m) { return has(m.text, "WATCHDOG=1"); }),
            6);

  // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
  ::kill(d.pid(), SIGHUP);
  auto reload = manager.until([](const std::string& m) { return has(m, "READY=1"); });
  auto reloading = std::find_if(reload.begin(), reload.end(),
                                [](const auto& m) { return has(m.text, "RELOADING=1"); });
  ASSERT_NE(reloading, reload.end());
  EXPECT_TRUE(has(reloading->text, "MONOTONIC_USEC=")) << reloading->text;
  ASSERT_TRUE(has(reload.back().text, "READY=1"));

  // STATUS= comes again on its own (every 5 s), READY or not.
  auto refresh = manager.until(
      [](const std::string& m) { return has(m, "STATUS=") && !has(m, "READY=1"); }, 7s);
  ASSERT_FALSE(refresh.empty());
  EXPECT_THAT(refresh.back().text, HasSubstr("STATUS=1 job, 1/1 workers running, "));

  // SIGTERM: STOPPING=1.
  ::kill(d.pid(), SIGTERM);
  auto stop = manager.until([](const std::string& m) { return has(m, "STOPPING=1"); });
  ASSERT_FALSE(stop.empty());
  EXPECT_TRUE(has(stop.back().text, "STOPPING=1"));
  EXPECT_EQ(d.stop(), 0);
}

// An abstract socket name, and a WATCHDOG_PID that names another process:
// the watchdog is not corrald's, so it does not ping.
TEST(NotifyTest, AnAbstractSocketIsReachedAndAnotherProcesssWatchdogIsLeftAlone) {
  Daemon d("jobs: {}\n");
  const std::string name = "@corral-notify-test-" + std::to_string(getpid());
  NotifySocket manager(name);
  d.set_env({"NOTIFY_SOCKET=" + name, "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto ready = manager.until([](const std::string& m) { return has(m, "READY=1"); });
  ASSERT_FALSE(ready.empty());
  EXPECT_TRUE(has(ready.back().text, "READY=1")) << ready.back().text;
  auto after = manager.until([](const std::string&) { return false; }, 500ms);
  EXPECT_EQ(std::count_if(after.begin(), after.end(),
                          [](const auto& m) { return has(m.text, "WATCHDOG=1"); }),
            0);
  EXPECT_THAT(d.daemon_log(), ::testing::Not(HasSubstr("systemd watchdog")));
}

// A NOTIFY_SOCKET corrald cannot use is reported, and corrald runs on.
TEST(NotifyTest, AnUnusableNotifySocketIsReportedAndIgnored) {
  Daemon d("jobs: {}\n");
  d.set_env({"NOTIFY_SOCKET=vsock:2:1234"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_EQ(d.request({{"cmd", "status"}})["ok"], true);
  EXPECT_THAT(d.daemon_log(), HasSubstr("NOTIFY_SOCKET=vsock:2:1234: not a unix socket path"));
}

TEST(NotifyTest, WithoutNotifySocketNothingIsSentAndTheHookIsOff) {
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_EQ(d.request({{"cmd", "test-block-loop"}, {"ms", 10}})["error"],
            "unknown command: test-block-loop");
  EXPECT_THAT(d.daemon_log(), ::testing::Not(HasSubstr("watchdog")));
}

TEST(NotifyTest, UnderJournaldEachLineCarriesItsSyslogPriority) {
  Daemon d("jobs:\n  broken:\n    command: [/bin/false]\n    restart: {max_restarts: 0}\n");
  d.set_env({"JOURNAL_STREAM=8:12345"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return d.state("broken:0") == "FATAL"; }));
  std::string log = d.daemon_log();
  EXPECT_THAT(log, HasSubstr("\n<6>corrald 0.1.0 running"));
  EXPECT_THAT(log, HasSubstr("\n<4>broken:0: STARTING -> FATAL"));
  // No timestamps: the journal keeps its own.
  EXPECT_THAT(log, ::testing::Not(HasSubstr(" info ")));
}

}  // namespace
}  // namespace corral::testing

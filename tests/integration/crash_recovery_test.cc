// kill -9 of corrald under load. Every worker ends with it: channel workers
// busy with tasks, plain workers, and (as root) a worker switched to another
// user, whose parent-death signal the credential change would have cleared.
// A new corrald on the same config replaces the stale socket and serves
// tasks; while it runs, another one on that config refuses to start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::set<std::string> corral_entries_in_dev_shm() {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    std::string name = entry.path().filename().string();
    if (name.find("corral") != std::string::npos) out.insert(name);
  }
  return out;
}

TEST(CrashRecoveryTest, WorkersEndWithAKilledDaemonAndANewDaemonServesAgain) {
  const bool root = geteuid() == 0;
  std::string jobs = "jobs:\n  feed:\n    command: " + worker_command("--handler, sum") +
                     "\n    workers: 3\n    channel: shm\n"
                     "  pipes:\n    command: " +
                     worker_command("--handler, sum") +
                     "\n    workers: 2\n    channel: pipe\n    pipe: {framing: length}\n"
                     "  plain:\n    command: [sleep, '1000']\n    workers: 2\n"
                     "    start: {settle: 0}\n";
  if (root) {
    jobs += "  switched:\n    command: [sleep, '1000']\n    user: nobody\n    start: {settle: 0}\n";
  }
  // A worker of another user gets none of corrald's environment unless
  // pass_env names it: so the tag (Daemon::env_tag) finds that one too.
  Daemon d(jobs, root ? "  pass_env: [CORRALTEST_DAEMON_DIR]\n" : "");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> names = {"feed:0",  "feed:1",  "feed:2", "pipes:0",
                                    "pipes:1", "plain:0", "plain:1"};
  if (root) names.push_back("switched:0");
  for (const auto& name : names) ASSERT_TRUE(d.wait_state(name, "RUNNING")) << name;
  const std::set<std::string> shm_before = corral_entries_in_dev_shm();

  // Load: big tasks, so that every channel worker holds some when the daemon dies.
  std::string tasks;
  for (int i = 0; i < 20000; ++i) tasks += "200000\n";
  write_file(d.dir().file("tasks"), tasks);
  std::vector<std::unique_ptr<PipeChild>> submitters;
  std::vector<std::thread> readers;
  for (const char* job : {"feed", "pipes"}) {
    submitters.push_back(std::make_unique<PipeChild>(
        std::vector<std::string>{CORRALCTL_PATH, "-s", d.socket(), "submit", job, "--file",
                                 d.dir().file("tasks"), "--wait"},
        "lines", std::vector<std::string>{}, /*stdio=*/true));
    PipeChild* submitter = submitters.back().get();
    readers.emplace_back([submitter] {
      while (submitter->line(60s)) {
      }
    });
  }
  auto busy = [&](const char* job) {
    Json stats = d.request({{"cmd", "stats"}, {"job", job}})["jobs"][job];
    return stats["ok"].get<uint64_t>() > 50 && stats["in_flight"].get<uint64_t>() > 0;
  };
  ASSERT_TRUE(wait_until([&] { return busy("feed") && busy("pipes"); }, 30s));

  std::vector<pid_t> pids;
  for (const auto& name : names) pids.push_back(d.worker_pid(name));
  const std::string tag = d.env_tag();
  d.kill9();
  const auto killed_at = Clock::now();
  const bool all_gone = wait_until(
      [&] {
        return std::none_of(pids.begin(), pids.end(), [](pid_t p) { return process_alive(p); });
      },
      5s);
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at).count();
  std::printf("crash figures: workers=%zu gone_after_ms=%lld\n", pids.size(),
              static_cast<long long>(took));
  std::fflush(stdout);
  EXPECT_TRUE(all_gone);
  for (size_t i = 0; i < pids.size(); ++i) {
    EXPECT_FALSE(process_alive(pids[i])) << names[i] << " (pid " << pids[i] << ") outlived corrald";
  }
  EXPECT_EQ(processes_with_env(tag), std::vector<pid_t>{});
  // The submitters hear that the daemon went away.
  for (auto& submitter : submitters) {
    EXPECT_NE(submitter->wait_exit(30s), 0);
    EXPECT_THAT(submitter->stderr_text(), HasSubstr("corrald closed the connection"));
  }
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(corral_entries_in_dev_shm(), shm_before);

  // The socket file is stale: nobody listens on it.
  ASSERT_TRUE(std::filesystem::exists(d.socket()));
  EXPECT_EQ(d.ctl({"version"}).exit_code, 3);

  // A new daemon on the same config replaces it and serves tasks.
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (const auto& name : names) ASSERT_TRUE(d.wait_state(name, "RUNNING")) << name;
  for (const char* job : {"feed", "pipes"}) {
    RunResult r = d.ctl({"submit", job, "--data", "10", "--data", "20", "--wait"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("\"result\":\"45\""));
    EXPECT_THAT(r.out, HasSubstr("\"result\":\"190\""));
  }
  EXPECT_THAT(d.daemon_log(), ::testing::Not(HasSubstr("error")));

  // While it runs, a second daemon on the same config refuses, clearly, and
  // leaves the first one's socket alone.
  RunResult second = run({CORRALD_PATH, "-c", d.config()}, 10s);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("another corrald is running on " + d.socket()));
  EXPECT_EQ(d.ctl({"version"}).exit_code, 0);

  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(processes_with_env(tag), std::vector<pid_t>{});
  EXPECT_FALSE(std::filesystem::exists(d.socket()));
}

}  // namespace
}  // namespace corral::testing

// Measuring and bounding workers through a real corrald: CPU and memory as
// /proc has them, heartbeats, limits.memory, limits.max_tasks, cpus: auto.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// A fast sampler, and no metrics listener.
const std::string kFastMetrics = "  metrics: {listen: off, interval: 100ms}\n";

uint64_t proc_rss(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::stoull(status.substr(at + 6)) * 1024;
}

TEST(HealthTest, ABusyWorkerShowsItsCpuGrowingAboutOneSecondPerSecond) {
  Daemon d("jobs:\n  burn:\n    command: [sh, -c, 'while :; do :; done']\n", kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("burn:0", "RUNNING"));
  ASSERT_TRUE(wait_until([&] { return d.worker("burn:0")["cpu_s"].get<double>() > 0.2; }));
  double before = d.worker("burn:0")["cpu_s"];
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  double after = d.worker("burn:0")["cpu_s"];
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // One core of two on a shared, maybe loaded machine: some of it (seconds,
  // not ticks), never more than all.
  EXPECT_GT((after - before) / elapsed, 0.05);
  EXPECT_LT((after - before) / elapsed, 1.15);
  EXPECT_GT(d.worker("burn:0")["cpu_percent"].get<double>(), 5);
}

TEST(HealthTest, ReportedMemoryMatchesProc) {
  Daemon d(
      "jobs:\n  leaky:\n    command: " + worker_command("--handler, leak") + "\n    channel: shm\n",
      kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("leaky", {"64"});
  ASSERT_EQ(lines.front()["status"], "ok");
  pid_t pid = d.worker_pid("leaky:0");
  ASSERT_TRUE(wait_until([&] {
    double reported = d.worker("leaky:0")["rss_bytes"].get<double>();
    double real = static_cast<double>(proc_rss(pid));
    return reported > 64 << 20 && std::abs(reported - real) < real * 0.1;
  })) << d.worker("leaky:0").dump()
      << " /proc: " << proc_rss(pid);
}

TEST(HealthTest, AHungWorkerIsKilledAfterHeartbeatTimeoutAndItsTaskRedelivered) {
  Daemon d("jobs:\n  beats:\n    command: " + worker_command("--handler, echo, --hang-on, stuck") +
               "\n    channel: shm\n    workers: 2\n    health: {heartbeat_timeout: 500ms}\n"
               "    queue: {max_attempts: 2}\n    restart: {backoff: {initial: 10ms}}\n",
           kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("beats", {"a", "stuck", "b"});
  ASSERT_EQ(lines.size(), 4u);
  std::map<std::string, std::string> status;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    status[lines[i]["result"]] = lines[i]["status"];
    if (lines[i]["seq"] == 1) {
      EXPECT_EQ(lines[i]["status"], "dead");
      EXPECT_EQ(lines[i]["attempts"], 2);
    }
  }
  EXPECT_EQ(status["a"], "ok");
  EXPECT_EQ(status["b"], "ok");
  Json stats = d.request({{"cmd", "stats"}, {"job", "beats"}})["jobs"]["beats"];
  EXPECT_GE(stats["redelivered"], 1);
  uint64_t heartbeat_kills = 0;
  for (const char* name : {"beats:0", "beats:1"}) {
    heartbeat_kills += d.worker(name)["enforced"].value("heartbeat", 0);
  }
  EXPECT_EQ(heartbeat_kills, 2u);
  EXPECT_THAT(d.daemon_log(), HasSubstr("health.heartbeat_timeout"));
}

TEST(HealthTest, AWorkerAboveLimitsMemoryIsRestarted) {
  Daemon d("jobs:\n  leaky:\n    command: " + worker_command("--handler, leak") +
               "\n    channel: shm\n    limits: {memory: 100MiB}\n",
           kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("leaky:0", "RUNNING"));
  pid_t first = d.worker_pid("leaky:0");
  auto lines = d.submit("leaky", {"80", "80"});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["status"], "ok");
  ASSERT_TRUE(wait_until([&] {
    return d.worker("leaky:0")["enforced"].value("memory", 0) >= 1 &&
           d.state("leaky:0") == "RUNNING" && d.worker_pid("leaky:0") != first;
  })) << d.worker("leaky:0").dump();
  EXPECT_THAT(d.daemon_log(), HasSubstr("above limits.memory"));
}

TEST(HealthTest, MaxTasksRecyclesWorkersWithoutLosingATask) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
               "\n    channel: shm\n    workers: 2\n    limits: {max_tasks: 100}\n"
               "    queue: {prefetch: 8}\n    restart: {backoff: {initial: 10ms}}\n",
           kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> tasks(1000, "10");
  auto lines = d.submit("sums", tasks);
  ASSERT_EQ(lines.size(), 1001u);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    ASSERT_EQ(lines[i]["status"], "ok") << lines[i].dump();
    ASSERT_EQ(lines[i]["result"], "45");
    ASSERT_EQ(lines[i]["attempts"], 1);  // recycling redelivers nothing
  }
  uint64_t recycled = 0;
  for (const char* name : {"sums:0", "sums:1"}) {
    recycled += d.worker(name)["enforced"].value("max_tasks", 0);
  }
  EXPECT_GE(recycled, 8u);
  Json stats = d.request({{"cmd", "stats"}, {"job", "sums"}})["jobs"]["sums"];
  EXPECT_EQ(stats["redelivered"], 0);
  EXPECT_EQ(stats["ok"], 1000);
}

TEST(HealthTest, CpusAutoPinsWorkerIToCpuIModN) {
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &mine)) cpus.push_back(c);
  }
  Daemon d(
      "jobs:\n  pinned:\n    command: [sleep, '1000']\n    workers: 3\n"
      "    limits: {cpus: auto}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (int i = 0; i < 3; ++i) {
    std::string name = "pinned:" + std::to_string(i);
    ASSERT_TRUE(d.wait_state(name, "RUNNING"));
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(d.worker_pid(name), sizeof set, &set), 0);
    EXPECT_EQ(CPU_COUNT(&set), 1) << name;
    EXPECT_TRUE(CPU_ISSET(cpus[static_cast<size_t>(i) % cpus.size()], &set)) << name;
  }
}

TEST(HealthTest, NiceNofileAndUserAreSetInTheWorker) {
  if (geteuid() != 0) GTEST_SKIP() << "user: needs root";
  Daemon d(R"yaml(jobs:
  limited:
    command: [sh, -c, 'echo "uid=$(id -u) nofile=$(ulimit -n) nice=$(nice)"; exec sleep 1000']
    user: nobody
    cwd: /
    limits: {nice: 5, nofile: 256}
)yaml");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  std::string expected = "uid=" + std::to_string(nobody->pw_uid) + " nofile=256 nice=5";
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.log_dir() + "/limited-0.out.log").find(expected) != std::string::npos;
  })) << read_file(d.log_dir() + "/limited-0.out.log");
}

}  // namespace
}  // namespace corral::testing

// Measuring and bounding workers through a real corrald: CPU and memory as
// /proc has them, heartbeats (their period, and a hung worker's end),
// limits.memory, limits.max_tasks, cpus: auto.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include "ipc/segment.h"
#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

uint64_t proc_rss(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::stoull(status.substr(at + 6)) * 1024;
}

// The CPU seconds (user and system) /proc/PID/stat has counted so far.
double proc_cpu_s(pid_t pid) {
  const std::vector<std::string> field = stat_fields(pid);  // from field 3, the state
  if (field.size() < 13) return 0;
  // Fields 14 and 15 (utime, stime), in clock ticks.
  return static_cast<double>(std::stoull(field[11]) + std::stoull(field[12])) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(HealthTest, ABusyWorkersCpuIsWhatTheKernelCounted) {
  Daemon d("jobs:\n  burn:\n    command: [sh, -c, 'while :; do :; done']\n", kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("burn:0", "RUNNING"));
  const pid_t pid = d.worker_pid("burn:0");
  // Past 1.5 CPU seconds, so that a value in the wrong unit, or off by a
  // factor of two, is off by more than the bounds below allow.
  ASSERT_TRUE(wait_until([&] { return proc_cpu_s(pid) > 1.5; }, 60s));
  const double floor = proc_cpu_s(pid);
  // A sample taken from now on reports FLOOR or more, and never more than
  // the kernel has counted when it is read. It comes within a fraction of a
  // CPU second (samples are 100 ms apart, and the worker gets at most one
  // CPU second per second): a halved value would not reach FLOOR before
  // the worker had burnt FLOOR again, a doubled one is above the kernel's.
  double reported = 0, counted = 0;
  ASSERT_TRUE(wait_until([&] {
    reported = d.worker("burn:0")["cpu_s"].get<double>();
    counted = proc_cpu_s(pid);
    return reported >= floor - 0.02;
  })) << "reported "
      << reported << " s, the kernel counted " << counted << " s";
  EXPECT_LE(reported, counted + 0.02);
  EXPECT_LT(counted - floor, 0.6) << "reported " << reported << " s";
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

TEST(HealthTest, HeartbeatsComeAtThePeriodTheDaemonAskedFor) {
  // A quarter of heartbeat_timeout: corrald asks for a beat every 100 ms.
  Daemon d("jobs:\n  beats:\n    command: " + worker_command("--handler, sleep") +
               "\n    channel: shm\n    health: {heartbeat_timeout: 400ms}\n",
           kFastMetrics);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("beats:0", "RUNNING", scaled(10s)));
  const pid_t pid = d.worker_pid("beats:0");
  ASSERT_EQ(environment_value(pid, "CORRAL_HEARTBEAT_MS"), "100");
  constexpr int64_t kPeriodNs = 100'000'000;

  // The worker's slot, read through its own fd of the job's segment: the
  // heartbeat cell holds the CLOCK_MONOTONIC time of the latest beat.
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/fd/3").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  void* mapped = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(mapped, MAP_FAILED) << std::strerror(errno);
  ipc::SegmentHeader header;
  std::memcpy(&header, mapped, sizeof header);
  ASSERT_EQ(header.magic, ipc::kSegmentMagic);
  const auto* slot =
      reinterpret_cast<const ipc::WorkerSlot*>(static_cast<char*>(mapped) + header.slots_offset);

  // A task of 8 s: meanwhile only the heartbeat thread writes the cell (the
  // serving thread beats when it waits for tasks, not inside one).
  ASSERT_EQ(d.submit("beats", {"8000"}, false).back()["submitted"], 1);
  std::this_thread::sleep_for(1s);  // the task has started: beats before it are not counted
  std::vector<uint64_t> beats;
  const auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    const uint64_t beat = slot[0].heartbeat_ns.load();
    if (beats.empty() || beat != beats.back()) beats.push_back(beat);
    std::this_thread::sleep_for(2ms);
  }
  ::munmap(mapped, static_cast<size_t>(st.st_size));

  // Some 40 beats. Each gap is a period plus the time the thread took to
  // wake, or two when this sampler slept through one: the middle gap is the
  // period. A doubled rate (50 ms) or a halved one (200 ms) is far outside.
  ASSERT_GE(beats.size(), 11u) << "too few beats to measure a period";
  std::vector<int64_t> gaps;
  for (size_t i = 1; i < beats.size(); ++i) {
    gaps.push_back(static_cast<int64_t>(beats[i] - beats[i - 1]));
  }
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  const int64_t median = gaps[gaps.size() / 2];
  EXPECT_GE(median, kPeriodNs * 9 / 10) << beats.size() << " beats";
  EXPECT_LE(median, kPeriodNs * 3 / 2) << beats.size() << " beats";
  EXPECT_LE(beats.size(), static_cast<size_t>(4s / 100ms) + 3)
      << "more beats than 4 s of 100 ms periods hold";
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

// No orphans, ever (docs/supervision.md): a worker whose grandchild
// double-forks into a session of its own, holding a port. With
// daemon.cgroup each worker runs in a cgroup of its own: a stop ends all
// of it and frees the port, and a corrald started after a kill -9 of the
// last one ends what that one left. Without cgroups corrald, the child
// subreaper, gets the orphans back and ends them with their worker.
//
// Each test with cgroups makes its own cgroup in the machine's cgroup2
// hierarchy and removes it; where none is writable they skip and say so.
#include <arpa/inet.h>
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// The cgroup2 mount point, from /proc/self/mountinfo ("" when none).
std::string cgroup2_root() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    size_t dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, mount;
    if (fields >> id >> parent >> dev >> root >> mount && root == "/") return mount;
  }
  return "";
}

// A cgroup of the test's own, made writable or not at all; removed with
// whatever is left in it.
class TestCgroup {
 public:
  TestCgroup() {
    std::string root = cgroup2_root();
    if (root.empty()) {
      why_not_ = "no cgroup2 hierarchy is mounted";
      return;
    }
    static int count = 0;
    path_ = root + "/corral-test-" + std::to_string(getpid()) + "-" + std::to_string(++count);
    if (mkdir(path_.c_str(), 0755) < 0 || access((path_ + "/cgroup.procs").c_str(), W_OK) != 0) {
      why_not_ = root + " is not writable here (" + strerror(errno) + ")";
      path_.clear();
    }
  }
  ~TestCgroup() {
    if (!path_.empty()) remove_tree(path_);
  }
  const std::string& path() const { return path_; }
  const std::string& why_not() const { return why_not_; }

 private:
  static void remove_tree(const std::string& dir) {
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') remove_tree(dir + "/" + e->d_name);
      }
      closedir(d);
    }
    write_file(dir + "/cgroup.kill", "1");
    wait_until(
        [&] { return read_file(dir + "/cgroup.events").find("populated 0") != std::string::npos; },
        5s);
    rmdir(dir.c_str());
  }
  std::string path_;
  std::string why_not_;
};

#define SKIP_WITHOUT_CGROUPS(cgroup) \
  if ((cgroup).path().empty())       \
  GTEST_SKIP() << "no writable cgroup v2 hierarchy: " << (cgroup).why_not()

// A loopback port nobody listens on now.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool listening(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return connected;
}

// Live processes (not zombies) whose command line holds MARKER.
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string dir = std::string("/proc/") + e->d_name;
    std::string cmdline = read_file(dir + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    std::string stat = read_file(dir + "/stat");
    size_t close = stat.rfind(')');
    bool zombie = close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
    if (!zombie && cmdline.find(marker) != std::string::npos) pids.push_back(std::stoi(e->d_name));
  }
  closedir(proc);
  return pids;
}

// A worker whose grandchild escapes it the classic way (a fork that
// exits, then setsid) and listens on PORT; every process of it has MARKER
// in its command line.
std::string escaping_job(const TempDir& dir, int port, const std::string& marker) {
  const std::string script = dir.file("escape.sh");
  write_file(script,
             "( setsid /usr/bin/python3 -c 'import socket, sys, time\n"
             "s = socket.socket()\n"
             "s.bind((\"127.0.0.1\", int(sys.argv[1])))\n"
             "s.listen()\n"
             "time.sleep(1000)' " +
                 std::to_string(port) + " " + marker +
                 " & )\nexec /usr/bin/python3 -c 'import time; time.sleep(1000)' " + marker + "\n");
  return "jobs:\n  net:\n    command: [sh, " + script + ", " + marker +
         "]\n    start: {settle: 0}\n    restart: {backoff: {initial: 10ms}}\n";
}

std::string unique_marker() {
  static int count = 0;
  return "corral-escape-" + std::to_string(getpid()) + "-" + std::to_string(++count);
}

TEST(CgroupTest, AStopEndsEveryProcessOfTheWorkerAndFreesItsGrandchildsPort) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  TempDir work;
  const int port = free_port();
  const std::string marker = unique_marker();
  Daemon d(escaping_job(work, port, marker), "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("net:0", "RUNNING"));
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  // The grandchild left the worker's session, not its cgroup.
  const std::string leaf = cgroup.path() + "/job:net/0";
  EXPECT_EQ(d.worker("net:0")["cgroup"], leaf);
  EXPECT_FALSE(d.worker("net:0").contains("cgroup_off"));
  std::vector<pid_t> escaped = processes_with(marker);
  ASSERT_GE(escaped.size(), 2u);
  const std::string procs = read_file(leaf + "/cgroup.procs");
  for (pid_t pid : escaped) EXPECT_THAT(procs, HasSubstr(std::to_string(pid) + "\n"));

  RunResult stopped = d.ctl({"stop", "net:0"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  // Once the stop has answered: nothing of it is left, the port is free.
  EXPECT_FALSE(listening(port));
  EXPECT_THAT(processes_with(marker), ::testing::IsEmpty());
  // Its cgroup is gone once empty: the next process of the slot gets a new one.
  EXPECT_NE(access(leaf.c_str(), F_OK), 0);

  EXPECT_EQ(d.ctl({"start", "net:0"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_FALSE(listening(port));
  EXPECT_THAT(processes_with(marker), ::testing::IsEmpty());
  // corrald's clean exit removed the workers' cgroups.
  EXPECT_NE(access(leaf.c_str(), F_OK), 0);
}

TEST(CgroupTest, ACorraldStartedAfterAKillDashNineEndsWhatTheLastOneLeft) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  TempDir work;
  const int port = free_port();
  const std::string marker = unique_marker();
  Daemon d(escaping_job(work, port, marker), "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  d.kill9();
  // The worker dies with corrald (PR_SET_PDEATHSIG); its grandchild does not.
  ASSERT_TRUE(wait_until([&] { return processes_with(marker).size() == 1; }));
  EXPECT_TRUE(listening(port));

  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_THAT(d.daemon_log(),
              HasSubstr("ended what an earlier corrald left in " + cgroup.path() + "/job:net/0"));
  // The new worker listens again: the port was freed first.
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_THAT(processes_with(marker), ::testing::IsEmpty());
}

TEST(CgroupTest, ASecondCorraldOnTheSameCgroupIsRefused) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  const std::string jobs = "jobs:\n  s:\n    command: [sleep, '1000']\n";
  Daemon first(jobs, "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(first.start()) << first.daemon_log();
  ASSERT_TRUE(first.wait_state("s:0", "RUNNING"));
  const pid_t worker = first.worker_pid("s:0");
  Daemon second(jobs, "  cgroup: " + cgroup.path() + "\n");
  EXPECT_FALSE(second.start());
  EXPECT_THAT(second.daemon_log(),
              HasSubstr("daemon.cgroup " + cgroup.path() + " is in use by another corrald"));
  // The first one's worker was not touched.
  EXPECT_EQ(first.worker_pid("s:0"), worker);
  EXPECT_EQ(first.state("s:0"), "RUNNING");
}

TEST(CgroupTest, ACorraldThatRunsInItsCgroupMovesIntoALeafOfIt) {
  // As systemd starts it with Delegate=yes: in the cgroup it is given.
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  Daemon d("jobs:\n  s:\n    command: [sleep, '1000']\n    workers: 2\n",
           "  cgroup: " + cgroup.path() + "\n");
  d.set_wrapper(
      {"/bin/sh", "-c", "echo $$ > " + cgroup.path() + "/cgroup.procs && exec \"$@\"", "sh"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("s:1", "RUNNING"));
  EXPECT_EQ(read_file(cgroup.path() + "/daemon/cgroup.procs").find(std::to_string(d.pid()) + "\n"),
            0u);
  EXPECT_EQ(read_file(cgroup.path() + "/cgroup.procs"), "");  // no process in DIR itself
  EXPECT_EQ(read_file(cgroup.path() + "/job:s/1/cgroup.procs"),
            std::to_string(d.worker_pid("s:1")) + "\n");
  EXPECT_EQ(d.stop(), 0);
}

TEST(CgroupTest, AWorkerOverMemoryMaxIsKilledByTheKernelAndSaysSo) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  const std::string offered = read_file(cgroup.path() + "/cgroup.controllers");
  if (offered.find("memory") == std::string::npos) {
    GTEST_SKIP() << "the memory controller is not delegated to " << cgroup.path()
                 << " (it offers: " << offered << ")";
  }
  Daemon d(
      "jobs:\n  hog:\n    command: [/usr/bin/python3, -c, 'x = bytearray(256 << 20); "
      "import time; time.sleep(1000)']\n    limits: {memory: 32MiB, pids: 16}\n"
      "    restart: {policy: never}\n",
      "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return d.state("hog:0") == "EXITED"; })) << d.daemon_log();
  Json w = d.worker("hog:0");
  EXPECT_EQ(w["exit_description"], "killed by the kernel: memory.max 32MiB reached") << w;
  EXPECT_EQ(w["limits"]["memory"], "memory.max");
  EXPECT_EQ(w["limits"]["pids"], "pids.max");
}

TEST(CgroupTest, WithoutControllersTheLimitsSayTheyAreNotInForce) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  Daemon d(
      "jobs:\n  s:\n    command: [sleep, '1000']\n"
      "    limits: {memory: 1GiB, cpu: 50%, pids: 64}\n",
      "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("s:0", "RUNNING"));
  const std::string offered = read_file(cgroup.path() + "/cgroup.controllers");
  Json limits = d.worker("s:0")["limits"];
  EXPECT_EQ(limits["memory"],
            offered.find("memory") != std::string::npos ? "memory.max" : "sampled");
  EXPECT_EQ(limits["cpu"], offered.find("cpu") != std::string::npos ? "cpu.max" : "not in force");
  EXPECT_EQ(limits["pids"],
            offered.find("pids") != std::string::npos ? "pids.max" : "not in force");
}

TEST(CgroupTest, AWorkersCpuTimeCountsEveryProcessOfItsCgroup) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  // The worker itself sleeps; its child spins.
  Daemon d(
      "jobs:\n  busy:\n    command: [sh, -c, 'while :; do :; done & exec sleep 1000']\n"
      "    start: {settle: 0}\n",
      "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("busy:0", "RUNNING"));
  EXPECT_TRUE(wait_until([&] { return d.worker("busy:0")["cpu_s"].get<double>() > 0.3; }))
      << d.worker("busy:0");
  const std::string offered = read_file(cgroup.path() + "/cgroup.controllers");
  EXPECT_EQ(d.worker("busy:0")["cgroup_memory_bytes"].is_null(),
            offered.find("memory") == std::string::npos);
  EXPECT_EQ(d.stop(), 0);
}

TEST(CgroupTest, ABadCgroupPathIsAnErrorAtStart) {
  Daemon d("jobs:\n  s:\n    command: [sleep, '1000']\n", "  cgroup: /tmp\n");
  EXPECT_FALSE(d.start());
  EXPECT_THAT(d.daemon_log(),
              HasSubstr("daemon.cgroup /tmp: not a directory of a cgroup2 hierarchy"));
}

TEST(CgroupTest, WithoutCgroupsTheOrphansOfAStoppedWorkerComeBackAndAreEnded) {
  TempDir work;
  const int port = free_port();
  const std::string marker = unique_marker();
  Daemon d(escaping_job(work, port, marker));  // the harness's cgroup: off
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  EXPECT_TRUE(d.worker("net:0")["cgroup"].is_null());
  EXPECT_EQ(d.worker("net:0")["cgroup_off"], "daemon.cgroup: off");
  // The orphan came back to corrald, the subreaper, not to init.
  std::vector<pid_t> escaped = processes_with(marker);
  ASSERT_EQ(escaped.size(), 2u);
  const pid_t worker = d.worker_pid("net:0");
  const pid_t orphan = escaped[0] == worker ? escaped[1] : escaped[0];
  EXPECT_THAT(read_file("/proc/" + std::to_string(orphan) + "/status"),
              HasSubstr("PPid:\t" + std::to_string(d.pid()) + "\n"));

  EXPECT_EQ(d.ctl({"stop", "net:0"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return processes_with(marker).empty(); })) << d.daemon_log();
  EXPECT_TRUE(wait_until([&] { return !listening(port); }));

  // A worker started again, then corrald stopped: its orphan ends too.
  EXPECT_EQ(d.ctl({"start", "net:0"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_THAT(processes_with(marker), ::testing::IsEmpty());
  EXPECT_THAT(d.daemon_log(), HasSubstr("orphaned process"));
}

// A worker with a child in its own process group, both marked.
std::string grouped_job(const std::string& marker) {
  return "jobs:\n  net:\n    command: [sh, -c, '/usr/bin/python3 -c \"import time; "
         "time.sleep(1000)\" " +
         marker + " & exec /usr/bin/python3 -c \"import time; time.sleep(1000)\" " + marker +
         "']\n    start: {settle: 0}\n";
}

TEST(CgroupTest, WithoutCgroupsTheRecordInTheStateDirEndsWhatAKilledCorraldLeft) {
  const std::string marker = unique_marker();
  Daemon d(grouped_job(marker));  // the harness's cgroup: off
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("net:0", "RUNNING"));
  ASSERT_TRUE(wait_until([&] { return processes_with(marker).size() == 2; }));
  const pid_t worker = d.worker_pid("net:0");
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.state_dir_path() + "/workers").find(std::to_string(worker) + " ") !=
           std::string::npos;
  })) << read_file(d.state_dir_path() + "/workers");
  d.kill9();
  // The worker dies with corrald; its child, in its group, does not.
  ASSERT_TRUE(wait_until([&] { return processes_with(marker).size() == 1; }));
  const pid_t child = processes_with(marker).at(0);

  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr("ended what an earlier corrald left: " +
                                        std::to_string(child) + " (python3), left by net:0"));
  EXPECT_TRUE(wait_until([&] { return !process_alive(child); }));
  EXPECT_EQ(d.stop(), 0);
  EXPECT_THAT(processes_with(marker), ::testing::IsEmpty());
  // A clean stop leaves an empty record.
  EXPECT_EQ(read_file(d.state_dir_path() + "/workers").find("net:0"), std::string::npos);
}

TEST(CgroupTest, WithoutCgroupsAGrandchildThatLeftItsSessionIsEndedAfterAKillDashNine) {
  TempDir work;
  const int port = free_port();
  const std::string marker = unique_marker();
  Daemon d(escaping_job(work, port, marker));  // the harness's cgroup: off
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.state_dir_path() + "/workers").find("net:0") != std::string::npos;
  }));
  d.kill9();
  ASSERT_TRUE(wait_until([&] { return processes_with(marker).size() == 1; }));
  EXPECT_TRUE(listening(port));  // the grandchild, in a session of its own, lives on
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr("ended what an earlier corrald left: "));
  EXPECT_THAT(d.daemon_log(), HasSubstr("(python3), left by a worker (CORRAL_INSTANCE "));
  ASSERT_TRUE(wait_until([&] { return listening(port); })) << d.daemon_log();  // the new one's
  EXPECT_EQ(d.stop(), 0);
  EXPECT_THAT(processes_with(marker), ::testing::IsEmpty());
}

TEST(CgroupTest, WithoutItsStateDirACorraldRunsWithoutTheRecordAndSaysSo) {
  const std::string jobs = "jobs:\n  s:\n    command: [sleep, '1000']\n";
  Daemon first(jobs);
  ASSERT_TRUE(first.start()) << first.daemon_log();
  // The first one holds that state_dir's lock; no job of the second is durable.
  Daemon second(jobs, "  state_dir: " + first.state_dir_path() + "\n");
  ASSERT_TRUE(second.start()) << second.daemon_log();
  ASSERT_TRUE(second.wait_state("s:0", "RUNNING"));
  EXPECT_THAT(second.daemon_log(), HasSubstr("no record of the workers is kept"));
  EXPECT_EQ(second.stop(), 0);
  EXPECT_EQ(first.stop(), 0);
}

TEST(CgroupTest, APidOfTheRecordNowHeldByAnotherProcessIsNeverKilled) {
  // An unrelated process that leads its own session, with a child in it,
  // both started by the test, and a record that names its pid with another
  // start time: the pid of a worker of an earlier life, reused.
  const std::string marker = unique_marker();
  TempDir work;
  PipeChild unrelated({"setsid", "sh", "-c",
                       "/usr/bin/python3 -c 'import time; time.sleep(1000)' " + marker +
                           " & exec /usr/bin/python3 -c 'import time; time.sleep(1000)' " + marker},
                      "lines");
  ASSERT_TRUE(wait_until([&] { return processes_with(marker).size() == 2; }));
  std::vector<pid_t> pids = processes_with(marker);
  Daemon d("jobs:\n  s:\n    command: [sleep, '1000']\n");
  mkdir(d.state_dir_path().c_str(), 0700);
  const std::string boot = read_file("/proc/sys/kernel/random/boot_id");
  std::string record = "corral-workers 2\nboot " + boot.substr(0, boot.find('\n')) +
                       "\ninstance 0123456789abcdef 1\n";
  for (pid_t pid : pids) record += std::to_string(pid) + " 1 s:0\n";  // started at tick 1
  write_file(d.state_dir_path() + "/workers", record);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("s:0", "RUNNING"));
  EXPECT_EQ(d.daemon_log().find("ended what an earlier corrald left"), std::string::npos)
      << d.daemon_log();
  for (pid_t pid : pids) EXPECT_TRUE(process_alive(pid)) << pid;
  EXPECT_EQ(d.stop(), 0);
  for (pid_t pid : pids) kill(pid, SIGKILL);
}

// A worker that appends a line to FILE every 10 ms.
std::string ticking_job(const std::string& file) {
  return "jobs:\n  tick:\n    command: [sh, -c, 'while :; do echo t >> " + file +
         "; sleep 0.01; done']\n    start: {settle: 0}\n";
}

size_t lines_in(const std::string& file) {
  std::string text = read_file(file);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

void expect_pause_and_resume(Daemon& d, const std::string& file) {
  ASSERT_TRUE(wait_until([&] { return lines_in(file) > 5; }));
  RunResult paused = d.ctl({"pause", "tick:0"});
  EXPECT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, "tick:0: paused\n");
  EXPECT_EQ(d.worker("tick:0")["paused"], true);
  EXPECT_THAT(d.ctl({"status", "tick:0"}).out, HasSubstr("RUNNING   paused; pid"));
  std::this_thread::sleep_for(100ms);  // what was on its way is written
  const size_t frozen = lines_in(file);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(lines_in(file), frozen);  // nothing of it ran
  EXPECT_EQ(d.ctl({"resume", "tick:0"}).out, "tick:0: resumed\n");
  EXPECT_TRUE(wait_until([&] { return lines_in(file) > frozen + 5; }));
  EXPECT_EQ(d.worker("tick:0")["paused"], false);
  EXPECT_EQ(d.worker("tick:0")["restarts"], 0);
  // A paused worker stops when asked: it is thawed first.
  EXPECT_EQ(d.ctl({"pause", "tick:0"}).exit_code, 0);
  EXPECT_EQ(d.ctl({"stop", "tick:0"}).exit_code, 0);
  EXPECT_EQ(d.state("tick:0"), "STOPPED");
  RunResult stopped = d.ctl({"pause", "tick:0"});
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_THAT(stopped.out, HasSubstr("tick:0: ERROR (not running)"));
}

TEST(CgroupTest, PauseFreezesTheWorkersCgroupAndResumeThawsIt) {
  TestCgroup cgroup;
  SKIP_WITHOUT_CGROUPS(cgroup);
  TempDir work;
  Daemon d(ticking_job(work.file("ticks")), "  cgroup: " + cgroup.path() + "\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("tick:0", "RUNNING"));
  ASSERT_TRUE(wait_until([&] { return lines_in(work.file("ticks")) > 5; }));
  EXPECT_EQ(d.ctl({"pause", "tick:0"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] {
    return read_file(cgroup.path() + "/job:tick/0/cgroup.events").find("frozen 1") !=
           std::string::npos;
  }));
  EXPECT_EQ(d.ctl({"resume", "tick:0"}).exit_code, 0);
  EXPECT_THAT(d.daemon_log(), HasSubstr("tick:0: paused (cgroup.freeze)"));
  expect_pause_and_resume(d, work.file("ticks"));
}

TEST(CgroupTest, WithoutCgroupsPauseStopsTheProcessGroup) {
  TempDir work;
  Daemon d(ticking_job(work.file("ticks")));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("tick:0", "RUNNING"));
  expect_pause_and_resume(d, work.file("ticks"));
  EXPECT_THAT(d.daemon_log(), HasSubstr("tick:0: paused (SIGSTOP)"));
}

TEST(CgroupTest, APausedWorkerIsNotKilledForItsSilenceNorItsTasksTimedOut) {
  Daemon d("jobs:\n  hb:\n    command: [" CORRAL_WORKER_PATH
           ", --handler, sleep]\n    channel: shm\n"
           "    health: {heartbeat_timeout: 400ms}\n    queue: {task_timeout: 600ms}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("hb:0", "RUNNING"));
  PipeChild submit({CORRALCTL_PATH, "-s", d.socket(), "submit", "hb", "--data", "300", "--wait"},
                   "lines", {}, /*stdio=*/true);
  std::this_thread::sleep_for(100ms);  // the task runs
  EXPECT_EQ(d.ctl({"pause", "hb:0"}).exit_code, 0);
  std::this_thread::sleep_for(1500ms);  // past both, frozen
  EXPECT_EQ(d.ctl({"resume", "hb:0"}).exit_code, 0);
  EXPECT_EQ(submit.wait_exit(30s), 0) << submit.stderr_text();
  Json w = d.worker("hb:0");
  EXPECT_EQ(w["restarts"], 0) << w;
  EXPECT_EQ(w["enforced"].value("heartbeat", 0), 0) << w;
  EXPECT_EQ(w["enforced"].value("task_timeout", 0), 0) << w;
}

}  // namespace
}  // namespace corral::testing

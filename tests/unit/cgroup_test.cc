// The pure side of workers' cgroups: daemon.cgroup as the config reads it,
// the cgroup2 mount and corrald's own cgroup as /proc says them,
// cgroup.events, a process's identity from /proc/PID/stat; and the spawner
// putting a child into its cgroup by clone3() and by the fallback that
// writes cgroup.procs, in a cgroup of the test's own where one is writable.
#include "daemon/cgroup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "config/parse.h"
#include "daemon/proc_stats.h"
#include "daemon/spawner.h"
#include "tests/unit/config_diagnostics.h"

namespace corral::daemon {
namespace {

config::ParseResult load_daemon(const std::string& daemon) {
  return config::load_string("daemon:\n" + daemon + "jobs:\n  w:\n    command: [w]\n", "c.yaml", 4);
}

TEST(CgroupSettingTest, AutoOffOrAnAbsolutePath) {
  config::ParseResult defaults = load_daemon("  log_level: info\n");
  ASSERT_TRUE(defaults.ok()) << config::all_errors(defaults);
  EXPECT_EQ(defaults->daemon.cgroup, "auto");
  for (const char* value : {"auto", "off", "/sys/fs/cgroup/corral"}) {
    config::ParseResult result = load_daemon(std::string("  cgroup: ") + value + "\n");
    ASSERT_TRUE(result.ok()) << config::all_errors(result);
    EXPECT_EQ(result->daemon.cgroup, value);
  }
  config::ParseResult slash = load_daemon("  cgroup: /sys/fs/cgroup/corral/\n");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->daemon.cgroup, "/sys/fs/cgroup/corral");
  for (const char* bad : {"relative/path", "/sys/fs/cgroup/../etc", "on", "/"}) {
    config::ParseResult result = load_daemon(std::string("  cgroup: ") + bad + "\n");
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_NE(config::all_errors(result).find(
                  "daemon.cgroup: expected auto, off, or the absolute path of a cgroup2 directory"),
              std::string::npos)
        << config::all_errors(result);
  }
}

config::ParseResult load_limits(const std::string& limits) {
  return config::load_string("jobs:\n  w:\n    command: [w]\n    limits: " + limits + "\n",
                             "c.yaml", 4);
}

TEST(CgroupSettingTest, TheLimitsTheKernelEnforces) {
  config::ParseResult result =
      load_limits("{memory: 512MiB, memory_high: 400MiB, cpu: 150%, pids: 64}");
  ASSERT_TRUE(result.ok()) << config::all_errors(result);
  const config::LimitsSpec& l = result->jobs.at(0).limits;
  EXPECT_EQ(l.memory, uint64_t{512} << 20);
  EXPECT_EQ(l.memory_high, uint64_t{400} << 20);
  EXPECT_EQ(l.cpu, 150u);
  EXPECT_EQ(l.pids, 64u);
  config::ParseResult off = load_limits("{cpu: off, pids: off, memory_high: off}");
  ASSERT_TRUE(off.ok()) << config::all_errors(off);
  EXPECT_EQ(off->jobs.at(0).limits.cpu, 0u);
  EXPECT_FALSE(off->jobs.at(0).limits.pids);
  for (const char* bad : {"{cpu: 150}", "{cpu: 0%}", "{cpu: lots}", "{pids: 0}",
                          "{memory: 1GiB, memory_high: 2GiB}"}) {
    EXPECT_FALSE(load_limits(bad).ok()) << bad;
  }
  EXPECT_NE(config::all_errors(load_limits("{memory: 1GiB, memory_high: 2GiB}"))
                .find("limits.memory_high of job \"w\": 2GiB is above memory (1GiB)"),
            std::string::npos)
      << config::all_errors(load_limits("{memory: 1GiB, memory_high: 2GiB}"));
  EXPECT_NE(config::all_errors(load_limits("{cpu: 150}"))
                .find("expected a share of one CPU like 50% or 150%, or off"),
            std::string::npos);
}

TEST(CgroupProcTest, TheCgroup2MountAndOwnCgroup) {
  const std::string mountinfo =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "30 22 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "31 22 0:27 /sub /mnt/bound rw - cgroup2 cgroup2 rw\n"
      "32 22 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
  EXPECT_EQ(cgroup2_mount(mountinfo), "/sys/fs/cgroup/unified");
  EXPECT_EQ(cgroup2_mount("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), std::nullopt);
  EXPECT_EQ(own_cgroup("1:cpu:/x\n0::/system.slice/corrald.service\n"),
            "/system.slice/corrald.service");
  EXPECT_EQ(own_cgroup("0::/\n"), "/");
  EXPECT_EQ(own_cgroup("4:memory:/a\n"), std::nullopt);
}

TEST(CgroupProcTest, EventsFlags) {
  EXPECT_EQ(events_flag("populated 1\nfrozen 0\n", "populated"), true);
  EXPECT_EQ(events_flag("populated 0\nfrozen 1\n", "populated"), false);
  EXPECT_EQ(events_flag("populated 0\nfrozen 1\n", "frozen"), true);
  EXPECT_EQ(events_flag("populated\n", "populated"), std::nullopt);
  EXPECT_EQ(events_flag("", "frozen"), std::nullopt);
}

TEST(CgroupProcTest, AProcessIdentityFromItsStat) {
  // A command name with spaces and parentheses; the fields after it count.
  const std::string stat =
      "4242 (a (b) c) S 1 4242 4241 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1000 100 "
      "18446744073709551615";
  std::optional<ProcIdentity> id = parse_identity(stat);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->ppid, 1);
  EXPECT_EQ(id->pgid, 4242);
  EXPECT_EQ(id->sid, 4241);
  EXPECT_EQ(id->start_ticks, 987654u);
  EXPECT_EQ(parse_identity("4242 (x) S 1 2"), std::nullopt);
  std::optional<ProcIdentity> self = read_identity(getpid());
  ASSERT_TRUE(self);
  EXPECT_EQ(self->ppid, getppid());
  EXPECT_EQ(self->sid, getsid(0));
  EXPECT_LE(self->start_ticks, boot_ticks_now());
}

TEST(CgroupChoiceTest, OffIsOffAndAPathIsTaken) {
  EXPECT_EQ(choose_cgroup("off").dir, "");
  EXPECT_EQ(choose_cgroup("off").why_off, "");
  EXPECT_EQ(choose_cgroup("/sys/fs/cgroup/x").dir, "/sys/fs/cgroup/x");
  // auto: a directory, or off with the reason.
  CgroupChoice automatic = choose_cgroup("auto");
  EXPECT_NE(automatic.dir.empty(), automatic.why_off.empty());
}

// A cgroup of the test's own in the machine's cgroup2 hierarchy; empty
// where none is writable.
class OwnCgroup {
 public:
  OwnCgroup() {
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream text;
    text << in.rdbuf();
    std::optional<std::string> mount = cgroup2_mount(text.str());
    if (!mount) return;
    static int count = 0;
    std::string path =
        *mount + "/corral-unit-" + std::to_string(getpid()) + "-" + std::to_string(++count);
    if (mkdir(path.c_str(), 0755) == 0) path_ = path;
  }
  ~OwnCgroup() {
    if (path_.empty()) return;
    std::ofstream(path_ + "/cgroup.kill") << "1";
    for (int i = 0; i < 500 && rmdir(path_.c_str()) != 0; ++i) usleep(2000);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The cgroup2 path of PID as /proc/PID/cgroup says it.
std::string cgroup_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::stringstream text;
  text << in.rdbuf();
  return own_cgroup(text.str()).value_or("");
}

class SpawnIntoCgroupTest : public ::testing::TestWithParam<bool> {};

TEST_P(SpawnIntoCgroupTest, TheChildRunsInItsCgroupFromTheStart) {
  OwnCgroup cgroup;
  if (cgroup.path().empty()) GTEST_SKIP() << "no writable cgroup v2 hierarchy here";
  UniqueFd dir(open(cgroup.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir);
  use_clone3(GetParam());
  SpawnRequest request;
  request.argv = {"/bin/sleep", "1000"};
  request.env = {"PATH=/usr/bin:/bin"};
  request.cgroup_fd = dir.get();
  rlimit nofile{1024, 1024};
  Launched launched = launch(request, {}, nofile);
  use_clone3(true);
  ASSERT_GT(launched.pid, 0) << launched.error;
  const std::string mount = cgroup.path().substr(0, cgroup.path().rfind('/'));
  EXPECT_EQ(mount + cgroup_of(launched.pid), cgroup.path());
  kill(launched.pid, SIGKILL);
  siginfo_t info{};
  waitid(P_PIDFD, static_cast<id_t>(launched.pidfd.get()), &info, WEXITED);
}

INSTANTIATE_TEST_SUITE_P(Clone3OrCgroupProcs, SpawnIntoCgroupTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Clone3" : "CgroupProcs";
                         });

}  // namespace
}  // namespace corral::daemon

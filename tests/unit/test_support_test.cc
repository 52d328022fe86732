// The helpers of tests/support/ that other tests trust to see processes and
// files: each is checked against a process or file this test makes itself,
// so that a helper that saw nothing would fail here, not pass elsewhere.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/file_io.h"
#include "tests/support/forked_child.h"
#include "tests/support/poll.h"
#include "tests/support/process_scan.h"
#include "tests/support/temp_dir.h"
#include "tests/support/text.h"

namespace corral::testing {
namespace {

bool holds(const std::vector<pid_t>& pids, pid_t pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

TEST(TempDirTest, IsADirectoryRemovedWithWhatItHolds) {
  std::string path;
  {
    TempDir dir("corral-support");
    path = dir.path();
    EXPECT_TRUE(path.starts_with("/tmp/corral-support-")) << path;
    write_file(dir.file("a"), "text");
    EXPECT_EQ(read_file(dir.file("a")), "text");
    ASSERT_EQ(::symlink("/nonexistent", dir.file("dangling").c_str()), 0);
    EXPECT_TRUE(path_exists(dir.file("dangling")));
    EXPECT_FALSE(path_resolves(dir.file("dangling")));
    EXPECT_TRUE(path_resolves(dir.file("a")));
  }
  EXPECT_FALSE(path_exists(path));
}

TEST(CountOfTest, CountsOverlappingOccurrences) {
  EXPECT_EQ(count_of("aaa", "aa"), 2u);
  EXPECT_EQ(count_of("line\nline\n", "\n"), 2u);
  EXPECT_EQ(count_of("", "x"), 0u);
}

TEST(ProcessScanTest, ReadsThisProcess) {
  const pid_t self = ::getpid();
  std::vector<std::string> fields = stat_fields(self);
  ASSERT_GE(fields.size(), 5u);
  EXPECT_EQ(fields[0], "R");  // reading its own stat, it runs
  EXPECT_EQ(parent_of(self), ::getppid());
  EXPECT_TRUE(process_alive(self));
  EXPECT_FALSE(comm_of(self).empty());
  const char* path = ::getenv("PATH");  // as at exec, which /proc shows
  ASSERT_NE(path, nullptr);
  EXPECT_EQ(environment_value(self, "PATH"), path);
  EXPECT_EQ(environment_value(self, "NO_SUCH_VARIABLE_HERE"), "");
}

TEST(ProcessScanTest, SeesAChildRunningThenAsAZombieThenReaped) {
  ForkedChild child([] {
    ::pause();
    return 0;
  });
  ASSERT_TRUE(child.started());
  const pid_t self = ::getpid();
  EXPECT_TRUE(holds(children_of(self), child.pid()));
  EXPECT_TRUE(process_alive(child.pid()));
  EXPECT_EQ(parent_of(child.pid()), self);
  EXPECT_TRUE(holds(children_named(self, comm_of(self)), child.pid()));
  EXPECT_FALSE(holds(children_named(self, "no-such-name"), child.pid()));

  ASSERT_EQ(::kill(child.pid(), SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return !process_alive(child.pid()); }));
  EXPECT_FALSE(holds(children_of(self), child.pid()));  // a zombie is not alive
  EXPECT_GE(zombies_of(self), 1);
  EXPECT_FALSE(stat_fields(child.pid()).empty());  // still in /proc, as a zombie
  EXPECT_EQ(child.wait(), -1);                     // killed: reaped, no exit code
  EXPECT_TRUE(stat_fields(child.pid()).empty());
}

TEST(ProcessScanTest, OpenFdsNameWhatEachFdIs) {
  TempDir dir("corral-support");
  write_file(dir.file("held"), "");
  std::vector<std::string> before = open_fds(::getpid());
  FILE* held = std::fopen(dir.file("held").c_str(), "r");
  ASSERT_NE(held, nullptr);
  std::vector<std::string> during = open_fds(::getpid());
  std::fclose(held);
  EXPECT_EQ(during.size(), before.size() + 1);
  EXPECT_NE(std::find(during.begin(), during.end(), dir.file("held")), during.end());
  EXPECT_EQ(open_fds(::getpid()), before);
}

// A child forked here, not through ForkedChild, which would reap it itself.
pid_t fork_exiting_with(int code, bool pause_first) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (pause_first) ::pause();
    ::_exit(code);
  }
  return pid;
}

TEST(WaitForExitTest, GivesTheExitCodeOrTheSignalAndLeavesARunningChild) {
  pid_t exiting = fork_exiting_with(7, false);
  ASSERT_GT(exiting, 0);
  EXPECT_EQ(wait_for_exit(exiting, 10s), 7);
  EXPECT_EQ(wait_for_exit(exiting, 10s), -1);  // reaped: no longer a child

  pid_t pausing = fork_exiting_with(0, true);
  ASSERT_GT(pausing, 0);
  EXPECT_EQ(wait_for_exit(pausing, 50ms), -1);  // still running, left so
  EXPECT_TRUE(process_alive(pausing));
  ASSERT_EQ(::kill(pausing, SIGKILL), 0);
  EXPECT_EQ(wait_for_exit(pausing, 10s), 128 + SIGKILL);
}

}  // namespace
}  // namespace corral::testing

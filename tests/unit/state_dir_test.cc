// Tests of daemon/state_dir.h in a temp dir: the directory and spool/ made
// private, the lock that keeps a second corrald out (naming the first one's
// pid), and the links and writable directories it refuses.
#include "daemon/state_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/spool.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

namespace corral::daemon::state_dir_test {

using corral::testing::path_exists;
using corral::testing::read_file;
using corral::testing::TempDir;
using corral::testing::write_file;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(StateDirTest, MakesTheDirectoryAndItsSpoolsPrivateAndHoldsThePid) {
  TempDir dir("corral-state");
  const std::string path = dir.file("var/lib/corral");
  auto state = StateDir::open(path);
  ASSERT_TRUE(state.ok()) << state.error().message();
  EXPECT_EQ(mode_of(path), 0700u);
  EXPECT_EQ(mode_of(path + "/spool"), 0700u);
  EXPECT_EQ(read_file(path + "/corrald.lock"), std::to_string(::getpid()) + "\n");
  EXPECT_EQ(state->spool_path("web"), path + "/spool/web.sqlite");
  EXPECT_EQ(state->warning(), "");
}

TEST(StateDirTest, ASecondOpenIsRefusedWithTheHoldersPid) {
  TempDir dir("corral-state");
  const std::string path = dir.file("state");
  {
    auto first = StateDir::open(path);
    ASSERT_TRUE(first.ok()) << first.error().message();
    // flock belongs to an open file description: a second open in this
    // process conflicts just as another corrald's does.
    auto second = StateDir::open(path);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().message(), "state_dir " + path +
                                            " is in use by another corrald (pid " +
                                            std::to_string(::getpid()) + ")");
  }
  // The lock goes with its holder.
  auto third = StateDir::open(path);
  EXPECT_TRUE(third.ok()) << third.error().message();
}

TEST(StateDirTest, ADirectoryOthersCanWriteIsRefusedUnlessPrivateDirsIsOff) {
  TempDir dir("corral-state");
  const std::string path = dir.file("state");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0777), 0);
  auto refused = StateDir::open(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("daemon.state_dir " + path + " is not private: " + path +
                                           " is writable by others"),
            std::string::npos)
      << refused.error().message();
  EXPECT_FALSE(path_exists(path + "/corrald.lock"));
  auto warned = StateDir::open(path, /*enforce_private=*/false);
  ASSERT_TRUE(warned.ok()) << warned.error().message();
  EXPECT_NE(warned->warning().find("is not private"), std::string::npos);
}

TEST(StateDirTest, ASpoolDirectoryOthersCanWriteIsRefused) {
  TempDir dir("corral-state");
  const std::string path = dir.file("state");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((path + "/spool").c_str(), 0700), 0);
  ASSERT_EQ(::chmod((path + "/spool").c_str(), 0777), 0);
  auto refused = StateDir::open(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "daemon.state_dir " + path + "/spool is not private: " + path +
                "/spool is writable by others, mode 0777; fix: chmod o-w " + path +
                "/spool, or set daemon.private_dirs: false");
}

TEST(StateDirTest, ASymbolicLinkIsRefused) {
  TempDir dir("corral-state");
  ASSERT_EQ(::mkdir(dir.file("real").c_str(), 0700), 0);
  const std::string path = dir.file("state");
  ASSERT_EQ(::symlink(dir.file("real").c_str(), path.c_str()), 0);
  auto refused = StateDir::open(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "daemon.state_dir " + path +
                " is a symbolic link: refused (corrald keeps its state only in a real directory: "
                "set state_dir to the directory the link leads to)");
  EXPECT_FALSE(path_exists(dir.file("real/corrald.lock")));
}

TEST(StateDirTest, ALockFileThatIsALinkIsNeverFollowed) {
  TempDir dir("corral-state");
  const std::string path = dir.file("state");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  const std::string victim = dir.file("victim");
  ASSERT_EQ(::symlink(victim.c_str(), (path + "/corrald.lock").c_str()), 0);
  auto refused = StateDir::open(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "lock file " + path + "/corrald.lock is a symbolic link: refused");
  EXPECT_FALSE(path_exists(victim));
}

// A link above the state directory (/var/lib -> /data/lib) is allowed; the
// spools are then named by the real path, which SQLite opens without
// following any link.
TEST(StateDirTest, SpoolsAreNamedThroughTheRealPath) {
  TempDir dir("corral-state");
  ASSERT_EQ(::mkdir(dir.file("data").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.file("data").c_str(), dir.file("lib").c_str()), 0);
  auto state = StateDir::open(dir.file("lib/corral"));
  ASSERT_TRUE(state.ok()) << state.error().message();
  EXPECT_EQ(state->spool_path("web"), dir.file("data/corral/spool/web.sqlite"));
  SpoolOptions options;
  options.path = state->spool_path("web");
  SpoolContents contents;
  auto spool = Spool::open(
      options, [](std::function<void()> f) { f(); }, &contents);
  EXPECT_TRUE(spool.ok()) << spool.error().message();
}

}  // namespace corral::daemon::state_dir_test

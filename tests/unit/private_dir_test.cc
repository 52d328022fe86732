// Tests of daemon/private_dir.h: the rule on made-up walks from / (owners,
// modes, sticky directories, links), its words, and the walk of real
// directories in a temp dir, links followed by hand included.
#include "daemon/private_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/temp_dir.h"
#include "tests/support/users.h"

namespace corral::daemon {
namespace {

using corral::testing::kNobodyUid;
using corral::testing::kNogroupGid;

PathStep dir(const std::string& path, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
  return PathStep{path, uid, gid, S_IFDIR | mode};
}

PathStep link_step(const std::string& path, uid_t uid = 0) {
  return PathStep{path, uid, 0, S_IFLNK | 0777};
}

TEST(PrivateDirProblemTest, RootsOwnDirectoriesArePrivate) {
  EXPECT_EQ(private_dir_problem({dir("/", 0755), dir("/var", 0755), dir("/var/log", 0755),
                                 dir("/var/log/corral", 0750)},
                                0, 0),
            std::nullopt);
}

TEST(PrivateDirProblemTest, TheDaemonsOwnUserMayOwnThem) {
  EXPECT_EQ(
      private_dir_problem({dir("/", 0755), dir("/srv", 0755, 1000), dir("/srv/logs", 0700, 1000)},
                          1000, 1000),
      std::nullopt);
  auto problem = private_dir_problem({dir("/", 0755), dir("/srv", 0755, 1000)}, 0, 0);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->step, 1u);
  EXPECT_TRUE(problem->foreign_owner);
}

TEST(PrivateDirProblemTest, ADirectoryOfAnotherUserIsNotPrivate) {
  auto problem = private_dir_problem({dir("/", 0755), dir("/tmp", 01777), dir("/tmp/x", 0700),
                                      dir("/tmp/x/logs", 0755, kNobodyUid)},
                                     0, 0);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->step, 3u);
  EXPECT_TRUE(problem->foreign_owner);
  EXPECT_FALSE(problem->group_writable);
  EXPECT_FALSE(problem->other_writable);
}

TEST(PrivateDirProblemTest, AnAncestorOfAnotherUserIsNotPrivateEither) {
  auto problem = private_dir_problem({dir("/", 0755), dir("/home", 0755),
                                      dir("/home/alice", 0755, 1000), dir("/home/alice/l", 0755)},
                                     0, 0);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->step, 2u);
}

TEST(PrivateDirProblemTest, WritableByOthersOrANonRootGroupIsNotPrivate) {
  auto others = private_dir_problem({dir("/", 0755), dir("/logs", 0757)}, 0, 0);
  ASSERT_TRUE(others);
  EXPECT_TRUE(others->other_writable);
  EXPECT_FALSE(others->group_writable);
  auto group =
      private_dir_problem({dir("/", 0755), dir("/srv", 0775, 0, 50), dir("/srv/l", 0750)}, 0, 0);
  ASSERT_TRUE(group);
  EXPECT_EQ(group->step, 1u);
  EXPECT_TRUE(group->group_writable);
  // Root's group is root.
  EXPECT_EQ(private_dir_problem({dir("/", 0755), dir("/srv", 0775, 0, 0)}, 0, 0), std::nullopt);
  // A corrald of its own user trusts its own group as root trusts root's.
  EXPECT_EQ(private_dir_problem({dir("/", 0755), dir("/srv", 0775, 1000, 1000)}, 1000, 1000),
            std::nullopt);
  EXPECT_TRUE(private_dir_problem({dir("/", 0755), dir("/srv", 0775, 1000, 50)}, 1000, 1000));
}

TEST(PrivateDirProblemTest, AStickyDirectoryIsFineAboveButNotAsTheDirectory) {
  // /tmp: anyone may add names, but no one may rename ours.
  EXPECT_EQ(
      private_dir_problem({dir("/", 0755), dir("/tmp", 01777), dir("/tmp/corral", 0750)}, 0, 0),
      std::nullopt);
  auto last = private_dir_problem({dir("/", 0755), dir("/tmp", 01777)}, 0, 0);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->step, 1u);
  EXPECT_TRUE(last->other_writable);
  EXPECT_TRUE(last->group_writable == false);
  // Sticky, but what is below it is someone else's: they can swap it.
  auto below =
      private_dir_problem({dir("/", 0755), dir("/tmp", 01777), dir("/tmp/c", 0750, 1000)}, 0, 0);
  ASSERT_TRUE(below);
  EXPECT_EQ(below->step, 2u);
  EXPECT_TRUE(below->foreign_owner);
}

TEST(PrivateDirProblemTest, LinksCountByOwnerNotMode) {
  EXPECT_EQ(private_dir_problem({dir("/", 0755), dir("/var", 0755), link_step("/var/run"),
                                 dir("/run", 0755), dir("/run/corral", 0755)},
                                0, 0),
            std::nullopt);
  auto foreign = private_dir_problem(
      {dir("/", 0755), dir("/tmp", 01777), link_step("/tmp/logs", 1000), dir("/etc", 0755)}, 0, 0);
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->step, 2u);
  EXPECT_TRUE(foreign->foreign_owner);
}

TEST(DescribeProblemTest, SaysWhoOwnsOrMayWriteAndHowToFixIt) {
  DirProblem owner{3, true, false, false};
  PathStep logs = dir("/tmp/x/logs", 0755, kNobodyUid, kNogroupGid);
  EXPECT_EQ(describe_problem(owner, logs, "nobody", "nogroup"),
            "/tmp/x/logs is owned by nobody (uid 65534), mode 0755");
  EXPECT_EQ(fix_for_problem(owner, logs), "chown root /tmp/x/logs");

  DirProblem writable{1, false, true, true};
  PathStep srv = dir("/srv", 0777, 0, 50);
  EXPECT_EQ(describe_problem(writable, srv, "root", ""),
            "/srv is writable by group gid 50 and others, mode 0777");
  EXPECT_EQ(fix_for_problem(writable, srv), "chmod go-w /srv");

  DirProblem all{1, true, true, false};
  PathStep mine = dir("/srv", 0775, 1000, 1000);
  EXPECT_EQ(describe_problem(all, mine, "alice", "alice"),
            "/srv is owned by alice (uid 1000) and is writable by group alice (gid 1000), mode "
            "0775");
  EXPECT_EQ(fix_for_problem(all, mine), "chown root /srv and chmod g-w /srv");

  DirProblem link_owner{2, true, false, false};
  PathStep planted = link_step("/tmp/logs", 1000);
  EXPECT_EQ(describe_problem(link_owner, planted, "", ""),
            "the symbolic link /tmp/logs is owned by uid 1000");
  EXPECT_EQ(fix_for_problem(link_owner, planted), "chown -h root /tmp/logs");
}

class OpenPrivateDirTest : public ::testing::Test {
 protected:
  static mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  corral::testing::TempDir temp_{"corral-private-dir"};
  const std::string& root_ = temp_.path();
};

TEST_F(OpenPrivateDirTest, MakesWhatIsMissingPrivateAndHoldsIt) {
  ::umask(022);
  const std::string path = root_ + "/a/b/logs";
  PrivateDir opened = open_private_dir(path, "daemon.log_dir", true, true);
  ASSERT_TRUE(opened.dir) << opened.error;
  EXPECT_EQ(opened.error, "");
  EXPECT_EQ(opened.warning, "");
  EXPECT_EQ(opened.dir->path(), path);
  for (const char* made : {"/a", "/a/b", "/a/b/logs"}) EXPECT_EQ(mode_of(root_ + made), 0750u);
  // The fd is the directory: a file made through it is there.
  Result<OpenedFile> file = opened.dir->open("x.log", FileUse::kAppend, "log file");
  ASSERT_TRUE(file) << message_of(file);
  EXPECT_TRUE(std::filesystem::exists(path + "/x.log"));
}

TEST_F(OpenPrivateDirTest, WithoutCreateAMissingDirectoryIsMissing) {
  PrivateDir opened = open_private_dir(root_ + "/none/logs", "daemon.log_dir", false, true);
  EXPECT_FALSE(opened.dir);
  EXPECT_TRUE(opened.missing);
  EXPECT_EQ(opened.error, "daemon.log_dir " + root_ + "/none/logs: " + root_ +
                              "/none: No such file or directory");
  EXPECT_FALSE(std::filesystem::exists(root_ + "/none"));
}

TEST_F(OpenPrivateDirTest, PrivateDirsGiveTheDirectoryOrWhyNot) {
  PrivateDirs dirs(true);
  Result<std::shared_ptr<SafeDir>> missing = dirs.open(root_ + "/none", "sink directory", false);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "sink directory " + root_ + "/none: " + root_ + "/none: No such file or directory");
  Result<std::shared_ptr<SafeDir>> made = dirs.open(root_ + "/none", "sink directory", true);
  ASSERT_TRUE(made) << made.error().message();
  ASSERT_NE(*made, nullptr);
  EXPECT_EQ((*made)->path(), root_ + "/none");
  EXPECT_TRUE(std::filesystem::is_directory(root_ + "/none"));
}

TEST_F(OpenPrivateDirTest, ADirectoryOfAnotherUserIsRefusedOrWarnedAbout) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the directory is given to uid 65534 (nobody)";
  const std::string logs = root_ + "/logs";
  ASSERT_EQ(mkdir(logs.c_str(), 0755), 0);
  ASSERT_EQ(chmod(logs.c_str(), 0755), 0);
  ASSERT_EQ(chown(logs.c_str(), kNobodyUid, kNogroupGid), 0);
  PrivateDir refused = open_private_dir(logs, "daemon.log_dir", true, true);
  EXPECT_FALSE(refused.dir);
  EXPECT_EQ(refused.error.rfind("daemon.log_dir " + logs + " is not private: " + logs +
                                    " is owned by nobody (uid 65534), mode 0755; ",
                                0),
            0u)
      << refused.error;
  EXPECT_NE(refused.error.find("fix: chown root " + logs + ", or set daemon.private_dirs: false"),
            std::string::npos)
      << refused.error;

  PrivateDir warned = open_private_dir(logs, "daemon.log_dir", true, false);
  ASSERT_TRUE(warned.dir) << warned.error;
  EXPECT_EQ(warned.error, "");
  EXPECT_NE(warned.warning.find("is owned by nobody (uid 65534)"), std::string::npos);
  EXPECT_NE(warned.warning.find("daemon.private_dirs is false: going on"), std::string::npos);
}

TEST_F(OpenPrivateDirTest, ALinkIsFollowedAndWhatItLeadsThroughIsJudged) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: a directory is given to uid 65534 (nobody)";
  // ROOT/ok -> ROOT/theirs/logs: the link is root's, but the directory it
  // leads through is nobody's, who could swap logs for a link of their own.
  const std::string theirs = root_ + "/theirs";
  ASSERT_EQ(mkdir(theirs.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((theirs + "/logs").c_str(), 0755), 0);
  ASSERT_EQ(chown(theirs.c_str(), kNobodyUid, kNogroupGid), 0);
  ASSERT_EQ(symlink("theirs/logs", (root_ + "/ok").c_str()), 0);
  PrivateDir refused = open_private_dir(root_ + "/ok", "daemon.log_dir", false, true);
  EXPECT_FALSE(refused.dir);
  EXPECT_NE(refused.error.find(": " + theirs + " is owned by nobody (uid 65534)"),
            std::string::npos)
      << refused.error;

  // A link of root's to a private directory is fine.
  ASSERT_EQ(mkdir((root_ + "/mine").c_str(), 0750), 0);
  ASSERT_EQ(symlink((root_ + "/mine").c_str(), (root_ + "/also").c_str()), 0);
  PrivateDir opened = open_private_dir(root_ + "/also/../also/.", "daemon.log_dir", false, true);
  ASSERT_TRUE(opened.dir) << opened.error;
  struct stat held {
  }, mine{};
  ASSERT_EQ(fstat(opened.dir->fd(), &held), 0);
  ASSERT_EQ(stat((root_ + "/mine").c_str(), &mine), 0);
  EXPECT_EQ(held.st_ino, mine.st_ino);
}

TEST_F(OpenPrivateDirTest, AFileInThePathIsNotADirectory) {
  ASSERT_EQ(close(creat((root_ + "/file").c_str(), 0600)), 0);
  PrivateDir opened = open_private_dir(root_ + "/file/logs", "daemon.log_dir", true, true);
  EXPECT_FALSE(opened.dir);
  EXPECT_EQ(opened.error,
            "daemon.log_dir " + root_ + "/file/logs: " + root_ + "/file: Not a directory");
}

}  // namespace
}  // namespace corral::daemon

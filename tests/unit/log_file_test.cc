// Tests of daemon/log_file.h (corrald --log-file) in a real temp dir: lines
// appended through spdlog, a rotation followed on reopen, and the names and
// directories that corrald, as root, must refuse.
#include "daemon/log_file.h"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

namespace corral::daemon {
namespace {

using corral::testing::path_exists;
using corral::testing::read_file;
using corral::testing::write_file;

// A logger whose only sink is LOG, with the bare message as its line.
std::shared_ptr<spdlog::logger> logger_to(LogFile& log) {
  auto sink = make_log_file_sink(log);
  sink->set_pattern("%l %v");
  return std::make_shared<spdlog::logger>("log-file-test", std::move(sink));
}

class LogFileTest : public ::testing::Test {
 protected:
  corral::testing::TempDir tmp_;
};

TEST_F(LogFileTest, LinesAreAppendedAfterWhatTheFileHeld) {
  write_file(tmp_.file("corrald.log"), "from before\n");
  auto log = LogFile::open(tmp_.file("corrald.log"), true);
  ASSERT_TRUE(log) << log.error().message();
  auto logger = logger_to(**log);
  logger->info("running");
  logger->warn("a warning");
  EXPECT_EQ(read_file(tmp_.file("corrald.log")), "from before\ninfo running\nwarning a warning\n");
}

TEST_F(LogFileTest, AMissingDirectoryIsMadePrivate) {
  const std::string path = tmp_.file("var/log/corral/corrald.log");
  auto log = LogFile::open(path, true);
  ASSERT_TRUE(log) << log.error().message();
  logger_to(**log)->info("here");
  EXPECT_EQ(read_file(path), "info here\n");
  struct stat st {};
  ASSERT_EQ(::stat(tmp_.file("var/log/corral").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(LogFileTest, ReopenFollowsARotation) {
  const std::string path = tmp_.file("corrald.log");
  auto log = LogFile::open(path, true);
  ASSERT_TRUE(log) << log.error().message();
  auto logger = logger_to(**log);
  logger->info("before");
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  logger->info("moved, not reopened yet");
  ASSERT_TRUE((*log)->reopen());
  logger->info("after");
  EXPECT_EQ(read_file(path + ".1"), "info before\ninfo moved, not reopened yet\n");
  EXPECT_EQ(read_file(path), "info after\n");
}

TEST_F(LogFileTest, ASymbolicLinkAtTheNameIsRefusedAndNotFollowed) {
  write_file(tmp_.file("target"), "root's file\n");
  ASSERT_EQ(::symlink(tmp_.file("target").c_str(), tmp_.file("corrald.log").c_str()), 0);
  auto log = LogFile::open(tmp_.file("corrald.log"), true);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message(),
            "--log-file " + tmp_.file("corrald.log") + " is a symbolic link: refused");
  EXPECT_EQ(read_file(tmp_.file("target")), "root's file\n");
}

TEST_F(LogFileTest, ALinkPlantedBeforeAReopenIsRefusedAndTheOldFileKept) {
  const std::string path = tmp_.file("corrald.log");
  auto log = LogFile::open(path, true);
  ASSERT_TRUE(log) << log.error().message();
  auto logger = logger_to(**log);
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  write_file(tmp_.file("target"), "");
  ASSERT_EQ(::symlink(tmp_.file("target").c_str(), path.c_str()), 0);
  Status reopened = (*log)->reopen();
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().message(), "--log-file " + path + " is a symbolic link: refused");
  logger->info("still here");
  EXPECT_EQ(read_file(path + ".1"), "info still here\n");
  EXPECT_EQ(read_file(tmp_.file("target")), "");
}

TEST_F(LogFileTest, ADirectoryOthersCanWriteIsRefusedUnlessPrivateDirsIsOff) {
  const std::string dir = tmp_.file("open");
  ASSERT_EQ(::mkdir(dir.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  auto refused = LogFile::open(dir + "/corrald.log", true);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("--log-file's directory " + dir), std::string::npos)
      << refused.error().message();
  EXPECT_FALSE(path_exists(dir + "/corrald.log"));

  std::string warning;
  auto allowed = LogFile::open(dir + "/corrald.log", false, &warning);
  ASSERT_TRUE(allowed) << allowed.error().message();
  EXPECT_NE(warning.find("--log-file's directory " + dir), std::string::npos) << warning;
}

TEST_F(LogFileTest, APathWithoutAFileNameIsAnError) {
  auto log = LogFile::open(tmp_.path() + "/", true);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message(), "--log-file " + tmp_.path() + "/: not a file name");
}

}  // namespace
}  // namespace corral::daemon

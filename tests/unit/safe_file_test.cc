// Tests of daemon/safe_file.h: the rule on made-up stat results, and files
// planted in a real temp dir (links, FIFOs, hard links, other owners) that
// must be refused without being followed, opened for long or waited on.
#include "daemon/safe_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"
#include "tests/support/users.h"

namespace corral::daemon {
namespace {

using corral::testing::kNobodyUid;
using corral::testing::kNogroupGid;
using corral::testing::path_exists;
using corral::testing::read_file;
using corral::testing::write_file;

struct stat file_with(mode_t mode, nlink_t links = 1, uid_t uid = 0) {
  struct stat st {};
  st.st_mode = mode;
  st.st_nlink = links;
  st.st_uid = uid;
  return st;
}

TEST(FileRefusalTest, ARegularFileOfRootsOrOursWithOneLinkIsFine) {
  EXPECT_EQ(file_refusal(file_with(S_IFREG | 0640), 0), std::nullopt);
  EXPECT_EQ(file_refusal(file_with(S_IFREG | 0640, 1, 1000), 1000), std::nullopt);
  EXPECT_EQ(file_refusal(file_with(S_IFREG | 0600, 1, 0), 1000), std::nullopt);
}

TEST(FileRefusalTest, AnythingButARegularFileIsRefused) {
  EXPECT_EQ(file_refusal(file_with(S_IFLNK | 0777), 0), "is a symbolic link");
  EXPECT_EQ(file_refusal(file_with(S_IFIFO | 0644), 0), "is a FIFO (named pipe)");
  EXPECT_EQ(file_refusal(file_with(S_IFSOCK | 0755), 0), "is a socket");
  EXPECT_EQ(file_refusal(file_with(S_IFCHR | 0666), 0), "is a character device");
  EXPECT_EQ(file_refusal(file_with(S_IFBLK | 0660), 0), "is a block device");
  EXPECT_EQ(file_refusal(file_with(S_IFDIR | 0755), 0), "is a directory");
}

TEST(FileRefusalTest, AHardLinkOrAnotherUsersFileIsRefused) {
  EXPECT_EQ(file_refusal(file_with(S_IFREG | 0640, 2), 0), "has 2 hard links");
  EXPECT_EQ(file_refusal(file_with(S_IFREG | 0640, 1, kNobodyUid), 0),
            "is owned by uid 65534, not by root or corrald's uid 0");
  EXPECT_EQ(file_refusal(file_with(S_IFREG | 0640, 1, 1000), 1001),
            "is owned by uid 1000, not by root or corrald's uid 1001");
}

TEST(SplitFilePathTest, DirectoryAndName) {
  EXPECT_EQ(split_file_path("/a/b.log"), std::make_pair(std::string("/a"), std::string("b.log")));
  EXPECT_EQ(split_file_path("/b.log"), std::make_pair(std::string("/"), std::string("b.log")));
  EXPECT_EQ(split_file_path("b.log"), std::make_pair(std::string("."), std::string("b.log")));
  EXPECT_EQ(split_file_path("/a/"), std::make_pair(std::string("/a"), std::string("")));
}

class SafeDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir((root_ + "/logs").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/victim").c_str(), 0700), 0);
    int fd = ::open((root_ + "/logs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    dir_ = std::make_unique<SafeDir>(root_ + "/logs", UniqueFd(fd));
  }
  void TearDown() override { dir_.reset(); }
  std::string logs(const std::string& name) const { return root_ + "/logs/" + name; }
  std::string victim(const std::string& name) const { return root_ + "/victim/" + name; }
  corral::testing::TempDir temp_{"corral-safe-file"};
  const std::string& root_ = temp_.path();
  std::unique_ptr<SafeDir> dir_;
};

// The error of an open that failed; "" when it did not.
std::string error_of(const Result<OpenedFile>& file) { return message_of(file); }

TEST_F(SafeDirTest, AppendCreatesAPrivateFileAndAppends) {
  ::umask(022);
  {
    Result<OpenedFile> file = dir_->open("w-0.out.log", FileUse::kAppend, "log file");
    ASSERT_TRUE(file) << error_of(file);
    ASSERT_EQ(::write(file->fd.get(), "one\n", 4), 4);
  }
  Result<OpenedFile> again = dir_->open("w-0.out.log", FileUse::kAppend, "log file");
  ASSERT_TRUE(again) << error_of(again);
  EXPECT_FALSE(again->missing);
  EXPECT_EQ(again->st.st_size, 4);
  EXPECT_EQ(again->st.st_mode & 0777, 0640u);
  ASSERT_EQ(::write(again->fd.get(), "two\n", 4), 4);
  EXPECT_EQ(read_file(logs("w-0.out.log")), "one\ntwo\n");
}

TEST_F(SafeDirTest, ASymbolicLinkIsNeitherWrittenNorReadNorTruncatedThrough) {
  write_file(victim("shadow"), "secret\n");
  ASSERT_EQ(symlink(victim("shadow").c_str(), logs("w-0.out.log").c_str()), 0);
  for (FileUse use : {FileUse::kAppend, FileUse::kTruncate, FileUse::kRead}) {
    Result<OpenedFile> file = dir_->open("w-0.out.log", use, "log file");
    EXPECT_FALSE(file);
    EXPECT_EQ(error_of(file), "log file " + logs("w-0.out.log") + " is a symbolic link: refused");
  }
  EXPECT_EQ(read_file(victim("shadow")), "secret\n");
}

TEST_F(SafeDirTest, ADanglingLinkCreatesNothing) {
  ASSERT_EQ(symlink(victim("made-by-root").c_str(), logs("w-0.err.log").c_str()), 0);
  Result<OpenedFile> file = dir_->open("w-0.err.log", FileUse::kAppend, "log file");
  EXPECT_FALSE(file);
  EXPECT_EQ(error_of(file), "log file " + logs("w-0.err.log") + " is a symbolic link: refused");
  EXPECT_FALSE(path_exists(victim("made-by-root")));
}

TEST_F(SafeDirTest, AFifoIsRefusedWithoutWaitingForAPeer) {
  ASSERT_EQ(mkfifo(logs("w-1.out.log").c_str(), 0666), 0);
  // Opened the old way, each of these would wait for a peer that never comes.
  for (FileUse use : {FileUse::kAppend, FileUse::kTruncate, FileUse::kRead}) {
    Result<OpenedFile> file = dir_->open("w-1.out.log", use, "log file");
    EXPECT_FALSE(file);
    EXPECT_EQ(error_of(file),
              "log file " + logs("w-1.out.log") + " is a FIFO (named pipe): refused");
  }
}

TEST_F(SafeDirTest, AFifoWithAReaderIsStillRefused) {
  ASSERT_EQ(mkfifo(logs("w-1.out.log").c_str(), 0666), 0);
  UniqueFd reader(::open(logs("w-1.out.log").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader.valid());
  Result<OpenedFile> file = dir_->open("w-1.out.log", FileUse::kAppend, "log file");
  EXPECT_FALSE(file);
  EXPECT_EQ(error_of(file), "log file " + logs("w-1.out.log") + " is a FIFO (named pipe): refused");
}

TEST_F(SafeDirTest, ASocketOrADirectoryIsRefused) {
  int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  UniqueFd owned(sock);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = logs("w-2.out.log");
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  Result<OpenedFile> file = dir_->open("w-2.out.log", FileUse::kAppend, "log file");
  EXPECT_EQ(error_of(file), "log file " + path + " is a socket: refused");

  ASSERT_EQ(mkdir(logs("w-3.out.log").c_str(), 0755), 0);
  file = dir_->open("w-3.out.log", FileUse::kRead, "log file");
  EXPECT_EQ(error_of(file), "log file " + logs("w-3.out.log") + " is a directory: refused");
}

TEST_F(SafeDirTest, AHardLinkToAnotherFileIsRefused) {
  write_file(victim("passwd"), "root:x:0:0\n");
  ASSERT_EQ(::link(victim("passwd").c_str(), logs("w-0.out.log").c_str()), 0);
  Result<OpenedFile> file = dir_->open("w-0.out.log", FileUse::kAppend, "log file");
  EXPECT_FALSE(file);
  EXPECT_EQ(error_of(file), "log file " + logs("w-0.out.log") + " has 2 hard links: refused");
  file = dir_->open("w-0.out.log", FileUse::kTruncate, "log file");
  EXPECT_FALSE(file);
  EXPECT_EQ(read_file(victim("passwd")), "root:x:0:0\n");
}

TEST_F(SafeDirTest, AFileOfAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the file is given to uid 65534 (nobody)";
  write_file(logs("w-0.out.log"), "planted\n");
  ASSERT_EQ(chown(logs("w-0.out.log").c_str(), kNobodyUid, kNogroupGid), 0);
  Result<OpenedFile> file = dir_->open("w-0.out.log", FileUse::kRead, "log file");
  EXPECT_FALSE(file);
  EXPECT_EQ(error_of(file), "log file " + logs("w-0.out.log") +
                                " is owned by uid 65534, not by root or corrald's uid 0: refused");
}

TEST_F(SafeDirTest, NothingThereIsMissingUnlessCreated) {
  Result<OpenedFile> file = dir_->open("none.log", FileUse::kRead, "log file");
  ASSERT_TRUE(file) << error_of(file);
  EXPECT_TRUE(file->missing);
  EXPECT_FALSE(file->fd.valid());
  file = dir_->open("none.log", FileUse::kTruncate, "log file");
  ASSERT_TRUE(file) << error_of(file);
  EXPECT_TRUE(file->missing);
  EXPECT_FALSE(path_exists(logs("none.log")));
}

TEST_F(SafeDirTest, NamesWithASlashAreRefused) {
  Result<OpenedFile> file = dir_->open("../victim/x", FileUse::kAppend, "log file");
  EXPECT_FALSE(file);
  EXPECT_EQ(error_of(file), "log file " + logs("../victim/x") + " is not a file name: refused");
  EXPECT_FALSE(path_exists(victim("x")));
}

TEST_F(SafeDirTest, StatAndRenameStayInTheDirectoryAndFollowNoLink) {
  write_file(victim("target"), "keep\n");
  ASSERT_EQ(symlink(victim("target").c_str(), logs("w-0.out.log.1").c_str()), 0);
  write_file(logs("w-0.out.log"), "log\n");
  auto st = dir_->stat("w-0.out.log.1");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISLNK(st->st_mode));
  // The rotation's rename replaces the link itself.
  EXPECT_EQ(dir_->rename("w-0.out.log", "w-0.out.log.1"), 0);
  EXPECT_EQ(read_file(logs("w-0.out.log.1")), "log\n");
  EXPECT_EQ(read_file(victim("target")), "keep\n");
  EXPECT_EQ(dir_->rename("none", "other"), ENOENT);
}

}  // namespace
}  // namespace corral::daemon

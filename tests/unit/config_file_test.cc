// Tests of config/config_file.h: which config files corrald trusts, judged
// on a made-up stat (the reading itself, with real files, is in
// parse_test.cc).
#include "config/config_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace corral::config {
namespace {

struct stat file(uid_t uid, gid_t gid, mode_t mode) {
  struct stat st {};
  st.st_uid = uid;
  st.st_gid = gid;
  st.st_mode = S_IFREG | mode;
  return st;
}

constexpr uid_t kUser = 4242;
constexpr gid_t kGroup = 4343;

TEST(CheckConfigOwnerTest, TrustsRootAndTheReader) {
  EXPECT_TRUE(check_config_owner(file(0, 0, 0644), "/etc/corral.yaml", 0, 0).ok());
  EXPECT_TRUE(check_config_owner(file(0, 0, 0664), "/etc/corral.yaml", kUser, kGroup).ok());
  EXPECT_TRUE(check_config_owner(file(kUser, kGroup, 0664), "c.yaml", kUser, kGroup).ok());
}

TEST(CheckConfigOwnerTest, RefusesAnotherOwner) {
  Status status = check_config_owner(file(kUser, 0, 0644), "/etc/corral.yaml", 0, 0);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message(),
            "refused: it is owned by uid 4242, not by root or the user "
            "reading the config (root (uid 0)); fix: chown root "
            "/etc/corral.yaml");
}

TEST(CheckConfigOwnerTest, RefusesWritableByOthers) {
  Status status = check_config_owner(file(0, 0, 0646), "/etc/corral.yaml", 0, 0);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message(),
            "refused: it is writable by others (mode 0646); fix: chmod o-w /etc/corral.yaml");
}

TEST(CheckConfigOwnerTest, RefusesWritableByAnotherGroup) {
  Status status = check_config_owner(file(0, kGroup, 0664), "/etc/corral.yaml", 0, 0);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message(),
            "refused: it is writable by group gid 4343 (mode 0664); "
            "fix: chmod g-w /etc/corral.yaml");
  // The same group may write it when it is the reader's own.
  EXPECT_TRUE(check_config_owner(file(0, kGroup, 0664), "/etc/corral.yaml", 0, kGroup).ok());
  // Readable by the group only: no one else can change it.
  EXPECT_TRUE(check_config_owner(file(0, kGroup, 0644), "/etc/corral.yaml", 0, 0).ok());
}

}  // namespace
}  // namespace corral::config

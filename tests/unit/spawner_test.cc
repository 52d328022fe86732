// Who a worker runs as: lookup_user resolves a job's `user:` (a name, or a
// uid that is no user's name) to its ids and groups, and says which user it
// could not find.
#include "daemon/spawner.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace corral::daemon {
namespace {

TEST(LookupUserTest, AnUnknownUserIsAnErrorNamingIt) {
  Result<UserIds> user = lookup_user("corral-no-such-user");
  ASSERT_FALSE(user);
  EXPECT_EQ(user.error().message(), "user corral-no-such-user: no such user");
  Result<UserIds> uid = lookup_user("4000000000");
  ASSERT_FALSE(uid);
  EXPECT_EQ(uid.error().message(), "user 4000000000: no such user");
  EXPECT_FALSE(lookup_user(""));
}

TEST(LookupUserTest, ANameOrItsUidGivesTheIdsAndThePrimaryGroup) {
  for (const char* name : {"root", "0"}) {
    Result<UserIds> user = lookup_user(name);
    ASSERT_TRUE(user) << user.error().message();
    EXPECT_EQ(user->uid, 0u) << name;
    EXPECT_EQ(user->gid, 0u) << name;
    EXPECT_NE(std::find(user->groups.begin(), user->groups.end(), 0u), user->groups.end()) << name;
  }
}

TEST(FindAccountTest, ReadsTheSameEntriesAsLookupUser) {
  auto root = find_account("0");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->name, "root");
  EXPECT_FALSE(find_account("corral-no-such-user"));
}

}  // namespace
}  // namespace corral::daemon

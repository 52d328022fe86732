// Who may reach the control socket (allow_users, allow_groups resolved on
// made-up accounts, and the warnings of corrald --check), and which
// directories are safe to hold it.
#include "daemon/socket_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace corral::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class FakeAccounts : public Accounts {
 public:
  FakeAccounts() {
    users_["alice"] = {1000, {1000, 100}};
    users_["bob"] = {1001, {1001}};
    users_["svc"] = {993, {993, 50}};
    groups_["ops"] = 50;
    groups_["users"] = 100;
  }
  std::optional<UserEntry> user(const std::string& name) const override {
    auto it = users_.find(name);
    if (it == users_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<UserEntry> user(uid_t uid) const override {
    for (const auto& [name, entry] : users_) {
      if (entry.uid == uid) return entry;
    }
    return std::nullopt;
  }
  std::optional<gid_t> group(const std::string& name) const override {
    auto it = groups_.find(name);
    if (it == groups_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<std::string, UserEntry> users_;
  std::map<std::string, gid_t> groups_;
};

config::DaemonSpec spec(std::vector<std::string> users, std::vector<std::string> groups,
                        unsigned mode = 0660) {
  config::DaemonSpec daemon;
  daemon.allow_users = std::move(users);
  daemon.allow_groups = std::move(groups);
  daemon.socket_mode = mode;
  return daemon;
}

SocketAccess plan(const config::DaemonSpec& daemon, gid_t file_gid = 0) {
  return plan_socket_access(daemon, FakeAccounts(), 0, file_gid);
}

TEST(SocketAccessTest, UidsAndGidsAreAcceptedAsNumbers) {
  SocketAccess access = plan(spec({"993", "4242", "alice"}, {"77", "ops"}, 0666));
  EXPECT_EQ(access.uids, (std::set<uid_t>{993, 4242, 1000}));
  EXPECT_EQ(access.gids, (std::set<gid_t>{77, 50}));
  EXPECT_THAT(access.warnings, IsEmpty());
}

TEST(SocketAccessTest, NamesThatAreNoOneAreWarnedOf) {
  SocketAccess access = plan(spec({"mallory", "-1"}, {"nogroup-here"}, 0666));
  EXPECT_THAT(access.uids, IsEmpty());
  EXPECT_THAT(access.gids, IsEmpty());
  EXPECT_THAT(access.warnings,
              ElementsAre("daemon.allow_users: no such user \"mallory\" (a user name or a uid)",
                          "daemon.allow_users: no such user \"-1\" (a user name or a uid)",
                          "daemon.allow_groups: no such group \"nogroup-here\" (a group name or a "
                          "gid)"));
}

TEST(SocketAccessTest, OneAllowedGroupBecomesTheSocketsGroup) {
  SocketAccess access = plan(spec({}, {"ops"}));
  EXPECT_EQ(access.socket_group, gid_t{50});
  EXPECT_THAT(access.warnings, IsEmpty());  // 0660 lets the group in
  // With a user besides, or two groups, there is no one group to give it.
  EXPECT_EQ(plan(spec({"bob"}, {"ops"}, 0666)).socket_group, std::nullopt);
  EXPECT_EQ(plan(spec({}, {"ops", "users"}, 0666)).socket_group, std::nullopt);
}

TEST(SocketAccessTest, AllowedUsersWhomTheModeKeepsOutAreWarnedOf) {
  SocketAccess access = plan(spec({"svc"}, {}));
  ASSERT_EQ(access.warnings.size(), 1u);
  EXPECT_EQ(access.warnings[0],
            "daemon.allow_users: svc cannot connect: socket_mode 0660 lets only its owner (uid 0) "
            "and its group (gid 0) connect; set socket_mode: \"0666\" (every peer is still "
            "checked with SO_PEERCRED)");
  EXPECT_THAT(plan(spec({"svc"}, {}, 0666)).warnings, IsEmpty());
  // A member of the socket's group gets in with 0660.
  EXPECT_THAT(plan(spec({"alice"}, {"users"}), 100).warnings, IsEmpty());
  // The one group without group write: its members cannot connect.
  EXPECT_THAT(plan(spec({}, {"ops"}, 0600)).warnings,
              ElementsAre(HasSubstr("daemon.allow_groups: ops cannot connect: socket_mode 0600 "
                                    "lets only its owner (uid 0) connect")));
  EXPECT_THAT(plan(spec({}, {"ops", "users"})).warnings,
              ElementsAre(HasSubstr("daemon.allow_groups: ops cannot connect"),
                          HasSubstr("daemon.allow_groups: users cannot connect")));
}

}  // namespace
}  // namespace corral::daemon

// Who a worker runs as: lookup_user resolves a job's `user:` (a name, or a
// uid that is no user's name) to its ids and groups, and says which user it
// could not find. And which signals a spawn's child resets: those
// /proc/self/status lists as ignored or caught (signal_mask_in_status).
#include "daemon/spawner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

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

bool mask_of(const std::string& status, const char* key, uint64_t& mask) {
  return signal_mask_in_status(status.data(), status.size(), key, mask);
}

TEST(SignalMaskInStatusTest, ReadsTheMaskOfItsKeyAtTheStartOfALine) {
  const std::string status =
      "Name:\tcorral-spawn\nSigQ:\t0/95384\nSigPnd:\t0000000000000000\n"
      "SigBlk:\t0000000000010000\nSigIgn:\t0000000000001007\nSigCgt:\t00000001800004ec\n"
      "CapInh:\t0000000000000000\n";
  uint64_t mask = 0;
  ASSERT_TRUE(mask_of(status, "SigIgn:", mask));
  EXPECT_EQ(mask, 0x1007u);  // SIGHUP, SIGINT, SIGQUIT, SIGPIPE (bits 0, 1, 2, 12)
  ASSERT_TRUE(mask_of(status, "SigCgt:", mask));
  EXPECT_EQ(mask, 0x1800004ecu);
  ASSERT_TRUE(mask_of(status, "SigBlk:", mask));
  EXPECT_EQ(mask, 0x10000u);
}

TEST(SignalMaskInStatusTest, AMissingCutShortOrMalformedLineIsNotRead) {
  uint64_t mask = 7;
  EXPECT_FALSE(mask_of("SigBlk:\t0000000000000000\n", "SigIgn:", mask));
  EXPECT_FALSE(mask_of("SigIgn:\t00000000000010", "SigIgn:", mask));  // no end of line
  EXPECT_FALSE(mask_of("SigIgn:\t\n", "SigIgn:", mask));
  EXPECT_FALSE(mask_of("SigIgn:\t00000000000x1007\n", "SigIgn:", mask));
  EXPECT_FALSE(mask_of("SigIgn:\t00000000000000001007\n", "SigIgn:", mask));  // over 64 bits
  EXPECT_FALSE(mask_of("XSigIgn:\t0000000000001007\n", "SigIgn:", mask));  // not at a line's start
  EXPECT_EQ(mask, 7u);
}

TEST(SignalMaskInStatusTest, AgreesWithThisProcesssDispositions) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGUSR2, &ignore, &before), 0);
  std::ifstream file("/proc/self/status");
  std::stringstream text;
  text << file.rdbuf();
  sigaction(SIGUSR2, &before, nullptr);
  uint64_t ignored = 0;
  ASSERT_TRUE(mask_of(text.str(), "SigIgn:", ignored)) << text.str();
  EXPECT_NE(ignored >> (SIGUSR2 - 1) & 1, 0u);
}

}  // namespace
}  // namespace corral::daemon

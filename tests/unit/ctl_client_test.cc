// corralctl's check of the process that serves the socket, before it sends
// anything: root, the caller, or the owner of a directory nobody else may
// write in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "ctl/client.h"

namespace corral::ctl {
namespace {

using ::testing::HasSubstr;

TEST(CtlClientTest, RootTheCallerAndTheOwnerOfAPrivateDirectoryAreTrusted) {
  SocketDirectory run{"/run/corral", 990, 0755};
  EXPECT_TRUE(trust_peer(0, 1000, run).ok());
  EXPECT_TRUE(trust_peer(1000, 1000, run).ok());
  EXPECT_TRUE(trust_peer(990, 0, run).ok());  // corrald run as its own user
  EXPECT_TRUE(trust_peer(0, 1000, std::nullopt).ok());
}

TEST(CtlClientTest, AnyoneElseIsRefusedWithTheReason) {
  EXPECT_EQ(message_of(trust_peer(65534, 0, SocketDirectory{"/run/corral", 0, 0755})),
            "the process serving it runs as uid 65534, which is neither root nor you (uid 0) nor "
            "uid 0, the owner of /run/corral: corralctl sent it nothing");
  // Others may write in the directory: its owner does not vouch for what is in it.
  for (mode_t mode : {0777, 01777, 0775}) {
    EXPECT_EQ(message_of(trust_peer(65534, 0, SocketDirectory{"/tmp/x", 65534, mode})),
              "the process serving it runs as uid 65534, which is neither root nor you (uid 0); "
              "the owner of /tmp/x does not count, since others may write in it: corralctl sent "
              "it nothing")
        << std::oct << mode;
  }
  EXPECT_THAT(message_of(trust_peer(65534, 0, std::nullopt)),
              HasSubstr("the socket's directory cannot be read"));
}

}  // namespace
}  // namespace corral::ctl

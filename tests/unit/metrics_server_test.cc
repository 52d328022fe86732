// Where /metrics listens: open() reads daemon.metrics.listen as HOST:PORT
// and says what is wrong with it.
#include "daemon/metrics_server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace corral::daemon {
namespace {

TEST(MetricsServerTest, OpenSaysWhyAnAddressCannotBeListenedOn) {
  boost::asio::io_context io;
  MetricsServer server(io, [] { return std::string(); });
  Status no_port = server.open("localhost");
  ASSERT_FALSE(no_port);
  EXPECT_EQ(no_port.error().message(), "metrics.listen localhost: expected HOST:PORT");
  Status bad_port = server.open("127.0.0.1:http");
  ASSERT_FALSE(bad_port);
  EXPECT_EQ(bad_port.error().message().rfind("metrics.listen 127.0.0.1:http: ", 0), 0u);
  EXPECT_EQ(server.address(), "");
}

TEST(MetricsServerTest, OpenListensOnAPortItPicks) {
  boost::asio::io_context io;
  MetricsServer server(io, [] { return std::string(); });
  Status opened = server.open("127.0.0.1:0");
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_EQ(server.address().rfind("127.0.0.1:", 0), 0u) << server.address();
  EXPECT_NE(server.address(), "127.0.0.1:0");
}

}  // namespace
}  // namespace corral::daemon

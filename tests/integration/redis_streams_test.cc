// The stream commands a broker job uses, against a real redis-server, read
// with redis/streams.h: a group read, the pending history with an entry
// deleted meanwhile, a claim that counts a delivery, and XAUTOCLAIM of an
// idle consumer's entries; and which of them count a delivery (every read
// and claim but a JUSTID claim), on which a broker's global attempt count
// rests. Pins the reply shapes of the Redis that
// scripts/setup-deps installs.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <thread>

#include "redis/connection.h"
#include "redis/streams.h"
#include "tests/support/poll.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace corral::testing {
namespace {

using redis::Reply;

class RedisStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kMissing;
    ::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(server_.start()) << server_.log();
    auto address = redis::parse_address(server_.url());
    ASSERT_TRUE(address);
    connection_.emplace(io_, redis::Connection::Options{*address, 5s}, [](const Error&) {});
  }

  Reply call(std::vector<std::string> command) {
    std::optional<Result<Reply>> got;
    connection_->command(std::move(command), [&](Result<Reply> r) { got = std::move(r); });
    const auto deadline = std::chrono::steady_clock::now() + scaled(10s);
    while (!got && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(got && *got);
    return got && *got ? **got : Reply::error("no reply");
  }

  TempDir dir_{"corral-redis"};
  RedisServer server_{dir_.path()};
  boost::asio::io_context io_;
  std::optional<redis::Connection> connection_;
};

TEST_F(RedisStreamsTest, GroupReadsPendingHistoryClaimsAndAutoclaim) {
  ASSERT_EQ(call({"XGROUP", "CREATE", "t", "g", "0", "MKSTREAM"}), Reply::status("OK"));
  std::vector<std::string> ids;
  for (const char* payload : {"a", "b", "c"}) {
    Reply id = call({"XADD", "t", "*", "payload", payload});
    ASSERT_TRUE(id.is_string()) << describe(id);
    ids.push_back(id.text);
  }
  auto fresh = redis::read_entries(
      call({"XREADGROUP", "GROUP", "g", "node-a", "COUNT", "10", "STREAMS", "t", ">"}));
  ASSERT_TRUE(fresh) << fresh.error().message();
  ASSERT_EQ(fresh->size(), 3u);
  EXPECT_EQ(*(*fresh)[1].field("payload"), "b");
  EXPECT_EQ((*fresh)[2].id, ids[2]);
  // Nothing new: BLOCK times out with nil.
  auto none = redis::read_entries(call(
      {"XREADGROUP", "GROUP", "g", "node-a", "COUNT", "10", "BLOCK", "10", "STREAMS", "t", ">"}));
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_TRUE(none->empty());

  // One deleted while pending: the history shows it without fields.
  ASSERT_EQ(call({"XDEL", "t", ids[0]}), Reply::number(1));
  auto history = redis::read_entries(
      call({"XREADGROUP", "GROUP", "g", "node-a", "COUNT", "10", "STREAMS", "t", "0"}));
  ASSERT_TRUE(history) << history.error().message();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_TRUE((*history)[0].deleted);
  EXPECT_FALSE((*history)[1].deleted);

  // A claim to itself counts a delivery; JUSTID does not.
  ASSERT_TRUE(redis::entry_list(call({"XCLAIM", "t", "g", "node-a", "0", ids[1]})));
  ASSERT_TRUE(call({"XCLAIM", "t", "g", "node-a", "0", ids[2], "JUSTID"}).is_array());
  auto pending = redis::pending_entries(call({"XPENDING", "t", "g", "-", "+", "10"}));
  ASSERT_TRUE(pending) << pending.error().message();
  ASSERT_EQ(pending->size(), 3u);
  EXPECT_EQ((*pending)[1].id, ids[1]);
  EXPECT_EQ((*pending)[1].consumer, "node-a");
  // Delivered by the first read, again by the read of the history (a node
  // that takes back its own pending entries counts a delivery), and by
  // the claim; the JUSTID claim counted nothing.
  EXPECT_EQ((*pending)[1].deliveries, 3);
  EXPECT_EQ((*pending)[2].deliveries, 2);

  // Another node takes what has been idle long enough, and learns of the
  // deleted one.
  std::this_thread::sleep_for(50ms);
  auto taken = redis::claimed(call({"XAUTOCLAIM", "t", "g", "node-b", "20", "0-0", "COUNT", "10"}));
  ASSERT_TRUE(taken) << taken.error().message();
  EXPECT_EQ(taken->next, "0-0");
  ASSERT_EQ(taken->entries.size(), 2u);
  EXPECT_EQ(*taken->entries[0].field("payload"), "b");
  EXPECT_EQ(taken->deleted, std::vector<std::string>{ids[0]});
  pending = redis::pending_entries(call({"XPENDING", "t", "g", "-", "+", "10"}));
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].consumer, "node-b");
  EXPECT_EQ((*pending)[0].deliveries, 4);
  EXPECT_EQ((*pending)[1].deliveries, 3);
}

}  // namespace
}  // namespace corral::testing

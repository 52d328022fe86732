// redis::Connection (hiredis driven from Asio) against a real redis-server
// of the test's own: pipelined commands answered in order and binary-safe,
// Redis's own errors as replies, a server that is not there, that stops
// answering (every command has a deadline) or dies, and a connection
// closed or destroyed with commands in flight: their DONEs fail or are
// dropped, and the socket's fd is closed exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <optional>

#include "redis/connection.h"
#include "tests/support/poll.h"
#include "tests/support/process_scan.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace corral::testing {
namespace {

using redis::Connection;
using redis::Reply;

class RedisConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kMissing;
    // As corrald does (see connection.h).
    ::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(server_.start()) << server_.log();
  }

  Connection::Options options(std::chrono::milliseconds timeout = 5s) const {
    auto address = redis::parse_address(server_.url());
    EXPECT_TRUE(address);
    return Connection::Options{*address, timeout};
  }

  // Runs the loop until PREDICATE holds (or a scaled deadline passes).
  bool run_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    while (!predicate()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // COMMAND's reply, through a fresh connection.
  Result<Reply> call(Connection& c, std::vector<std::string> command) {
    std::optional<Result<Reply>> got;
    c.command(std::move(command), [&](Result<Reply> r) { got = std::move(r); });
    EXPECT_TRUE(run_until([&] { return got.has_value(); }));
    return got ? std::move(*got) : Result<Reply>(Error("no reply"));
  }

  TempDir dir_{"corral-redis"};
  RedisServer server_{dir_.path()};
  boost::asio::io_context io_;
};

TEST_F(RedisConnectionTest, PipelinedCommandsAreAnsweredInOrderAndBytesStayBytes) {
  std::optional<Error> closed;
  Connection c(io_, options(), [&](const Error& e) { closed = e; });
  const std::string binary("a\0b\r\n\xff", 6);
  std::vector<Reply> replies;
  constexpr int kCommands = 2000;
  c.command({"SET", "bytes", binary}, [&](Result<Reply> r) { replies.push_back(*r); });
  for (int i = 0; i < kCommands; ++i) {
    c.command({"INCR", "n"}, [&](Result<Reply> r) {
      ASSERT_TRUE(r) << r.error().message();
      replies.push_back(*r);
    });
  }
  c.command({"GET", "bytes"}, [&](Result<Reply> r) { replies.push_back(*r); });
  c.command({"GET", "missing"}, [&](Result<Reply> r) { replies.push_back(*r); });
  EXPECT_GT(c.pending(), 0u);
  ASSERT_TRUE(run_until([&] { return replies.size() == kCommands + 3; }));
  EXPECT_EQ(replies.front(), Reply::status("OK"));
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(replies[1 + i], Reply::number(i + 1));
  EXPECT_EQ(replies[kCommands + 1], Reply::string(binary));
  EXPECT_TRUE(replies[kCommands + 2].is_nil());
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_FALSE(closed);
}

TEST_F(RedisConnectionTest, RedisErrorsAreRepliesAndTheConnectionGoesOn) {
  Connection c(io_, options(), [](const Error&) {});
  Result<Reply> wrong = call(c, {"XADD", "s", "not-an-id", "f", "v"});
  ASSERT_TRUE(wrong);
  EXPECT_TRUE(wrong->is_error());
  EXPECT_NE(wrong->text.find("Invalid stream ID"), std::string::npos) << describe(*wrong);
  Result<Reply> xadd = call(c, {"XADD", "s", "*", "f", "v"});
  ASSERT_TRUE(xadd);
  EXPECT_TRUE(xadd->is_string()) << describe(*xadd);
  Result<Reply> range = call(c, {"XRANGE", "s", "-", "+"});
  ASSERT_TRUE(range);
  EXPECT_EQ(describe(*range), "[[" + describe(*xadd) + ", [\"f\", \"v\"]]]");
}

TEST_F(RedisConnectionTest, ADatabaseInTheUrlIsSelectedBeforeAnyCommand) {
  auto address = redis::parse_address(server_.url() + "?db=3");
  ASSERT_TRUE(address);
  Connection c(io_, Connection::Options{*address, 5s}, [](const Error&) {});
  ASSERT_TRUE(call(c, {"SET", "where", "three"}));
  EXPECT_EQ(server_.cli("-n 3 GET where"), "three\n");
  EXPECT_EQ(server_.cli("-n 0 EXISTS where"), "0\n");
}

TEST_F(RedisConnectionTest, AServerThatIsNotThereIsAClearError) {
  auto address = redis::parse_address("unix://" + dir_.file("nobody.sock"));
  ASSERT_TRUE(address);
  std::optional<Error> closed;
  Connection c(io_, Connection::Options{*address, 5s}, [&](const Error& e) { closed = e; });
  std::optional<Result<Reply>> got;
  c.command({"PING"}, [&](Result<Reply> r) { got = std::move(r); });
  ASSERT_TRUE(run_until([&] { return closed.has_value() && got.has_value(); }));
  EXPECT_NE(closed->message().find("redis unix://"), std::string::npos) << closed->message();
  EXPECT_NE(closed->message().find("No such file or directory"), std::string::npos)
      << closed->message();
  ASSERT_FALSE(*got);
  EXPECT_FALSE(c.connected());
}

TEST_F(RedisConnectionTest, ACommandWithoutAReplyByItsDeadlineEndsTheConnection) {
  std::optional<Error> closed;
  Connection c(io_, options(300ms), [&](const Error& e) { closed = e; });
  ASSERT_TRUE(call(c, {"PING"}));
  // Blocks forever in Redis, and the deadline has no room for it.
  std::optional<Result<Reply>> blocked, after;
  c.command({"BLPOP", "nothing", "0"}, [&](Result<Reply> r) { blocked = std::move(r); });
  c.command({"PING"}, [&](Result<Reply> r) { after = std::move(r); });
  ASSERT_TRUE(run_until([&] { return closed && blocked && after; }));
  EXPECT_NE(closed->message().find("no reply within 300ms"), std::string::npos)
      << closed->message();
  ASSERT_FALSE(*blocked);
  EXPECT_EQ(blocked->error().message(), closed->message());
  EXPECT_FALSE(*after);
  // With room for its block it is answered.
  Connection d(io_, options(300ms), [](const Error&) {});
  std::optional<Result<Reply>> waited;
  d.command(
      {"BLPOP", "nothing", "0.5"}, [&](Result<Reply> r) { waited = std::move(r); }, 1s);
  ASSERT_TRUE(run_until([&] { return waited.has_value(); }));
  ASSERT_TRUE(*waited) << waited->error().message();
  EXPECT_TRUE((*waited)->is_nil());
}

TEST_F(RedisConnectionTest, AServerThatDiesFailsWhatWaitsAndSaysSo) {
  std::optional<Error> closed;
  Connection c(io_, options(), [&](const Error& e) { closed = e; });
  ASSERT_TRUE(call(c, {"PING"}));
  std::optional<Result<Reply>> blocked;
  c.command(
      {"BLPOP", "nothing", "0"}, [&](Result<Reply> r) { blocked = std::move(r); }, 60s);
  ASSERT_TRUE(run_until([&] { return c.pending() == 1; }));
  server_.kill9();
  ASSERT_TRUE(run_until([&] { return closed && blocked; }));
  ASSERT_FALSE(*blocked);
  EXPECT_NE(closed->message().find("redis unix://"), std::string::npos) << closed->message();
  std::optional<Result<Reply>> later;
  c.command({"PING"}, [&](Result<Reply> r) { later = std::move(r); });
  ASSERT_TRUE(run_until([&] { return later.has_value(); }));
  EXPECT_FALSE(*later);
}

TEST_F(RedisConnectionTest, CloseFailsWhatWaitsAndDestroyingDropsItWithoutADoubleClose) {
  {
    // The loop's own fds (epoll, its timers) are made at its first use.
    Connection warm(io_, options(), [](const Error&) {});
    ASSERT_TRUE(call(warm, {"PING"}));
  }
  const std::vector<std::string> fds_before = open_fds(::getpid());
  {
    bool closed_called = false;
    Connection c(io_, options(), [&](const Error&) { closed_called = true; });
    ASSERT_TRUE(call(c, {"PING"}));
    std::optional<Result<Reply>> blocked;
    c.command(
        {"BLPOP", "nothing", "0"}, [&](Result<Reply> r) { blocked = std::move(r); }, 60s);
    c.close();
    ASSERT_TRUE(run_until([&] { return blocked.has_value(); }));
    ASSERT_FALSE(*blocked);
    EXPECT_NE(blocked->error().message().find("closed"), std::string::npos);
    io_.restart();
    io_.run_for(50ms);
    EXPECT_FALSE(closed_called) << "close() is the owner's: ON_CLOSED stays quiet";
  }
  {
    bool called = false;
    auto c = std::make_unique<Connection>(io_, options(), [&](const Error&) { called = true; });
    ASSERT_TRUE(call(*c, {"PING"}));
    c->command(
        {"BLPOP", "nothing", "0"}, [&](Result<Reply>) { called = true; }, 60s);
    // A DONE may destroy its connection.
    c->command({"PING"}, [&](Result<Reply>) { c.reset(); });
    c.reset();
    io_.restart();
    io_.run_for(100ms);
    EXPECT_FALSE(called) << "destroyed: nothing of it runs";
  }
  std::optional<Result<Reply>> last;
  auto c = std::make_unique<Connection>(io_, options(), [](const Error&) {});
  c->command({"PING"}, [&](Result<Reply> r) {
    last = std::move(r);
    c.reset();
  });
  ASSERT_TRUE(run_until([&] { return last.has_value(); }));
  EXPECT_TRUE(*last);
  EXPECT_EQ(open_fds(::getpid()), fds_before) << "every socket closed once, none leaked";
}

}  // namespace
}  // namespace corral::testing

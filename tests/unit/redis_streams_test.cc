// Streams' replies read from hand-made replies: every shape Redis 7 gives,
// and replies of other shapes refused with what was wrong (the tests against
// a real redis-server are in tests/integration/redis_streams_test.cc).
#include <gtest/gtest.h>

#include "redis/streams.h"

namespace corral::redis {
namespace {

Reply s(std::string text) { return Reply::string(std::move(text)); }
Reply entry_reply(std::string id, std::vector<std::string> fields) {
  std::vector<Reply> f;
  for (auto& x : fields) f.push_back(s(std::move(x)));
  return Reply::array({s(std::move(id)), Reply::array(std::move(f))});
}

TEST(RedisStreamsTest, ReadEntriesOfOneStreamAndNilWhenBlockTimedOut) {
  Reply reply = Reply::array({Reply::array(
      {s("tasks"), Reply::array({entry_reply("1-0", {"payload", "42", "submit", "n1:3"}),
                                 Reply::array({s("2-0"), Reply::nil()})})})});
  auto got = read_entries(reply);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, "1-0");
  ASSERT_NE((*got)[0].field("payload"), nullptr);
  EXPECT_EQ(*(*got)[0].field("payload"), "42");
  EXPECT_EQ(*(*got)[0].field("submit"), "n1:3");
  EXPECT_EQ((*got)[0].field("nothing"), nullptr);
  EXPECT_FALSE((*got)[0].deleted);
  EXPECT_TRUE((*got)[1].deleted);
  auto none = read_entries(Reply::nil());
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(RedisStreamsTest, OtherShapesAreRefusedWithWhatWasWrong) {
  struct Case {
    Reply reply;
    const char* says;
  };
  std::vector<Case> cases = {
      {Reply::error("NOGROUP No such key"), "NOGROUP"},
      {Reply::number(3), "not [[stream, entries]]"},
      {Reply::array({Reply::array({s("t")})}), "not [stream, entries]"},
      {Reply::array({Reply::array({s("t"), Reply::array({s("1-0")})})}), "not [id, fields]"},
      {Reply::array({Reply::array({s("t"), Reply::array({entry_reply("1-0", {"odd"})})})}),
       "not pairs"},
      {Reply::array(
           {Reply::array({s("t"), Reply::array({Reply::array({s(""), Reply::array({})})})})}),
       "without an id"},
  };
  for (const Case& c : cases) {
    auto got = read_entries(c.reply);
    ASSERT_FALSE(got) << describe(c.reply);
    EXPECT_NE(got.error().message().find(c.says), std::string::npos) << got.error().message();
  }
}

TEST(RedisStreamsTest, AutoclaimHasItsNextStartEntriesAndDeletedIds) {
  Reply reply = Reply::array(
      {s("0-0"), Reply::array({entry_reply("5-1", {"payload", "x"})}), Reply::array({s("4-0")})});
  auto got = claimed(reply);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->next, "0-0");
  ASSERT_EQ(got->entries.size(), 1u);
  EXPECT_EQ(got->entries[0].id, "5-1");
  EXPECT_EQ(got->deleted, std::vector<std::string>{"4-0"});
  EXPECT_FALSE(claimed(Reply::array({s("0-0")})));
}

TEST(RedisStreamsTest, PendingEntriesWithTheirDeliveries) {
  Reply reply =
      Reply::array({Reply::array({s("1-0"), s("node-a"), Reply::number(1500), Reply::number(2)})});
  auto got = pending_entries(reply);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, (std::vector<PendingEntry>{{"1-0", "node-a", 1500, 2}}));
  EXPECT_FALSE(pending_entries(Reply::array({Reply::array({s("1-0"), s("a"), s("x"), s("y")})})));
}

TEST(RedisStreamsTest, GroupInfoOfTheNamedGroup) {
  auto group = [](std::string name, int64_t pending, Reply lag) {
    return Reply::array({s("name"), s(std::move(name)), s("consumers"), Reply::number(3),
                         s("pending"), Reply::number(pending), s("last-delivered-id"), s("5-0"),
                         s("entries-read"), Reply::number(5), s("lag"), std::move(lag)});
  };
  Reply reply =
      Reply::array({group("other", 9, Reply::number(1)), group("corral", 4, Reply::number(7))});
  auto got = group_info(reply, "corral");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, (GroupInfo{3, 4, 7}));
  auto unknown_lag = group_info(Reply::array({group("corral", 2, Reply::nil())}), "corral");
  ASSERT_TRUE(unknown_lag);
  EXPECT_EQ(unknown_lag->lag, -1);
  auto missing = group_info(reply, "nobody");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "XINFO GROUPS reply: no group \"nobody\"");
  EXPECT_FALSE(group_info(Reply::array({Reply::array({s("name")})}), "corral"));
  EXPECT_FALSE(group_info(Reply::error("ERR no such key"), "corral"));
}

TEST(RedisStreamsTest, StreamIdsAreTwoNumbers) {
  EXPECT_EQ(parse_stream_id("1700000000000-5"),
            std::make_pair(uint64_t{1700000000000}, uint64_t{5}));
  EXPECT_EQ(parse_stream_id("0-0"), std::make_pair(uint64_t{0}, uint64_t{0}));
  for (const char* bad :
       {"", "-", "1-", "-1", "1", "a-1", "1-b", "1-2-3", "18446744073709551616-0"}) {
    EXPECT_FALSE(parse_stream_id(bad)) << bad;
  }
}

}  // namespace
}  // namespace corral::redis

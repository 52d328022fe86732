// The Redis URLs a broker config names, and the mistakes in them.
#include <gtest/gtest.h>

#include "redis/address.h"

namespace corral::redis {
namespace {

TEST(RedisAddressTest, UnixSocketsWithAndWithoutADatabase) {
  auto a = parse_address("unix:///run/redis/redis.sock");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(a->db, 0);
  EXPECT_EQ(a->url, "unix:///run/redis/redis.sock");
  auto b = parse_address("unix:///tmp/r.sock?db=5");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->unix_path, "/tmp/r.sock");
  EXPECT_EQ(b->db, 5);
}

TEST(RedisAddressTest, TcpWithDefaults) {
  auto a = parse_address("redis://queue.example");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->host, "queue.example");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->db, 0);
  auto b = parse_address("redis://10.0.0.7:6380/2");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->host, "10.0.0.7");
  EXPECT_EQ(b->port, 6380);
  EXPECT_EQ(b->db, 2);
  auto c = parse_address("redis://[::1]:7000/");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 7000);
  EXPECT_TRUE(c->unix_path.empty());
}

TEST(RedisAddressTest, MistakesSayWhatIsWrong) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c :
       {Case{"http://x", "unknown scheme"}, Case{"redis://", "no host"},
        Case{"redis://h:0", "the port must be a number from 1 to 65535"},
        Case{"redis://h:65536", "the port"}, Case{"redis://h:x", "the port"},
        Case{"redis://h/db", "the database must be a number"},
        Case{"redis://user:secret@h", "a password does not belong in the URL"},
        Case{"redis://[::1", "needs its ]"}, Case{"unix://relative.sock", "must be absolute"},
        Case{"unix:///x.sock?timeout=1", "the only option"},
        Case{"unix:///x.sock?db=-1", "db must be a number"}}) {
    auto a = parse_address(c.url);
    ASSERT_FALSE(a) << c.url;
    EXPECT_NE(a.error().message().find(c.says), std::string::npos) << a.error().message();
    EXPECT_NE(a.error().message().find(std::string("\"") + c.url + "\""), std::string::npos)
        << a.error().message();
  }
}

}  // namespace
}  // namespace corral::redis

// Where a Redis server listens, from the URL a config names:
//   unix:///run/redis/redis.sock[?db=N]   a Unix socket (an absolute path)
//   redis://HOST[:PORT][/DB]              TCP; PORT 6379 and DB 0 by default
// Nothing else (no password in a URL: it would end up in logs and `status`).
// The config checks a broker's URL with it, redis/ connects to it.
//
// Header-only and dependent on nothing of corral's but base/; pure.
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral {

struct RedisAddress {
  std::string unix_path;  // set for unix://
  std::string host;       // set for redis://
  int port = 6379;
  int db = 0;
  // How logs and errors name it: the URL as given.
  std::string url;
  bool operator==(const RedisAddress&) const = default;
};

namespace redis_url_detail {

constexpr std::string_view kUnix = "unix://";
constexpr std::string_view kTcp = "redis://";

// A whole decimal number in [0, MAX], or nullopt.
inline std::optional<int> number(std::string_view text, int max) {
  int value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > max) {
    return std::nullopt;
  }
  return value;
}

constexpr int kMaxDb = 1 << 20;  // Redis's `databases` is 16 by default

}  // namespace redis_url_detail

inline Result<RedisAddress> parse_redis_url(std::string_view url) {
  using redis_url_detail::kMaxDb;
  using redis_url_detail::kTcp;
  using redis_url_detail::kUnix;
  using redis_url_detail::number;
  auto bad = [&](std::string_view why) {
    return Error("redis URL \"" + std::string(url) + "\": " + std::string(why) +
                 " (unix:///PATH[?db=N] or redis://HOST[:PORT][/DB])");
  };
  RedisAddress address;
  address.url = std::string(url);
  if (url.starts_with(kUnix)) {
    std::string_view rest = url.substr(kUnix.size());
    if (auto query = rest.find('?'); query != std::string_view::npos) {
      std::string_view option = rest.substr(query + 1);
      rest = rest.substr(0, query);
      if (!option.starts_with("db=")) return bad("the only option of a socket is db=N");
      auto db = number(option.substr(3), kMaxDb);
      if (!db) return bad("db must be a number from 0");
      address.db = *db;
    }
    if (rest.empty() || rest.front() != '/') return bad("a socket's path must be absolute");
    address.unix_path = std::string(rest);
    return address;
  }
  if (!url.starts_with(kTcp)) return bad("unknown scheme");
  std::string_view rest = url.substr(kTcp.size());
  if (rest.find('@') != std::string_view::npos) {
    return bad("a password does not belong in the URL");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db_text = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db_text.empty()) {
      auto db = number(db_text, kMaxDb);
      if (!db) return bad("the database must be a number from 0");
      address.db = *db;
    }
  }
  std::string_view host = rest;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address needs its ]");
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return bad("junk after the IPv6 address");
  } else if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    rest = rest.substr(colon);
  } else {
    rest = {};
  }
  if (!rest.empty()) {
    auto port = number(rest.substr(1), 65535);
    if (!port || *port == 0) return bad("the port must be a number from 1 to 65535");
    address.port = *port;
  }
  if (host.empty()) return bad("no host");
  address.host = std::string(host);
  return address;
}

}  // namespace corral

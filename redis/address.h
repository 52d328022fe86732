// Where a Redis server listens, from the URL a config names:
//   unix:///run/redis/redis.sock[?db=N]   a Unix socket (an absolute path)
//   redis://HOST[:PORT][/DB]              TCP; PORT 6379 and DB 0 by default
// Nothing else (no password in a URL: it would end up in logs and `status`).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::redis {

struct Address {
  std::string unix_path;  // set for unix://
  std::string host;       // set for redis://
  int port = 6379;
  int db = 0;
  // How logs and errors name it: the URL as given.
  std::string url;
  bool operator==(const Address&) const = default;
};

// The address of URL, or why it is not one ("redis URL \"x\": ...").
Result<Address> parse_address(std::string_view url);

}  // namespace corral::redis

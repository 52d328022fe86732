// Where a Redis server listens: base/redis_url.h's address, by the name
// redis/ uses for it.
#pragma once

#include <string_view>

#include "base/redis_url.h"

namespace corral::redis {

using Address = RedisAddress;

// The address of URL, or why it is not one ("redis URL \"x\": ...").
inline Result<Address> parse_address(std::string_view url) { return parse_redis_url(url); }

}  // namespace corral::redis

// A test's own synchronous Redis client, on corral's redis::Connection: a
// command or a pipeline of them, answered before the call returns (or a
// failed expectation and an error reply after 10 s, scaled). For adding
// tasks to a stream and looking at what a broker job left there.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "redis/connection.h"
#include "redis/streams.h"

namespace corral::testing {

class RedisClient {
 public:
  // URL: "unix:///..." (RedisServer::url()).
  explicit RedisClient(const std::string& url);
  ~RedisClient();

  redis::Reply call(std::vector<std::string> command);
  // Sends every command before reading any reply.
  std::vector<redis::Reply> pipeline(std::vector<std::vector<std::string>> commands);
  // XLEN KEY.
  int64_t length(const std::string& key);
  // Every entry of stream KEY (XRANGE - +).
  std::vector<redis::StreamEntry> entries(const std::string& key);
  // XADD KEY * payload P for each of PAYLOADS; their ids.
  std::vector<std::string> add(const std::string& key, const std::vector<std::string>& payloads);

 private:
  boost::asio::io_context io_;
  std::unique_ptr<redis::Connection> connection_;
};

}  // namespace corral::testing

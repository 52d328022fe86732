#include "tests/support/redis_client.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <optional>

#include "tests/support/poll.h"

namespace corral::testing {

using namespace std::chrono_literals;

RedisClient::RedisClient(const std::string& url) {
  ::signal(SIGPIPE, SIG_IGN);  // hiredis writes with write(2)
  auto address = redis::parse_address(url);
  EXPECT_TRUE(address) << address.error().message();
  if (address) {
    connection_ = std::make_unique<redis::Connection>(
        io_, redis::Connection::Options{*address, 10s}, [](const Error&) {});
  }
}

RedisClient::~RedisClient() = default;

std::vector<redis::Reply> RedisClient::pipeline(std::vector<std::vector<std::string>> commands) {
  std::vector<std::optional<Result<redis::Reply>>> got(commands.size());
  if (!connection_) return std::vector<redis::Reply>(commands.size(), redis::Reply::error("none"));
  size_t answered = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    connection_->command(std::move(commands[i]), [&, i](Result<redis::Reply> r) {
      got[i] = std::move(r);
      ++answered;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + scaled(10s) + got.size() * 1ms;
  while (answered < got.size() && std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    io_.run_for(5ms);
  }
  std::vector<redis::Reply> out;
  out.reserve(got.size());
  for (auto& r : got) {
    EXPECT_TRUE(r && *r) << (r ? r->error().message() : "no reply within the deadline");
    out.push_back(r && *r ? std::move(**r) : redis::Reply::error("no reply"));
  }
  return out;
}

redis::Reply RedisClient::call(std::vector<std::string> command) {
  std::vector<std::vector<std::string>> one;
  one.push_back(std::move(command));
  return std::move(pipeline(std::move(one)).front());
}

int64_t RedisClient::length(const std::string& key) {
  redis::Reply reply = call({"XLEN", key});
  EXPECT_EQ(reply.type, redis::Reply::Type::kInteger) << redis::describe(reply);
  return reply.integer;
}

std::vector<redis::StreamEntry> RedisClient::entries(const std::string& key) {
  auto entries = redis::entry_list(call({"XRANGE", key, "-", "+"}));
  EXPECT_TRUE(entries) << entries.error().message();
  return entries ? std::move(*entries) : std::vector<redis::StreamEntry>{};
}

std::vector<std::string> RedisClient::add(const std::string& key,
                                          const std::vector<std::string>& payloads) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(payloads.size());
  for (const std::string& p : payloads) commands.push_back({"XADD", key, "*", "payload", p});
  std::vector<std::string> ids;
  for (redis::Reply& r : pipeline(std::move(commands))) ids.push_back(r.text);
  return ids;
}

}  // namespace corral::testing

// The queue keys of a job that decide what becomes of its tasks (retry,
// deadline, durable, durability, keep_results) and daemon.state_dir: read
// into the spec, defaults, every mistake with its place, and the emitted
// config read back the same.
#include <gtest/gtest.h>

#include "config/emit.h"
#include "config/parse.h"
#include "tests/unit/config_diagnostics.h"

namespace corral::config {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

ParseResult load_queue(const std::string& queue, const std::string& extra = "") {
  return load_string(
      "jobs:\n  w:\n    command: [w]\n    channel: shm\n    queue:\n" + queue + extra, "q.yaml", 4);
}

// The one error of QUEUE: "line:column: message".
std::string queue_error(const std::string& queue, const std::string& extra = "") {
  ParseResult result = load_queue(queue, extra);
  if (errors_of(result).size() != 1) return "errors: " + all_errors(result);
  const Diagnostic& d = errors_of(result)[0];
  return std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message;
}

TEST(ParseQueue, Defaults) {
  ParseResult result = load_queue("      capacity: 10\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const QueueSpec& q = result->jobs.at(0).queue;
  EXPECT_FALSE(q.retry);
  EXPECT_FALSE(q.deadline);
  EXPECT_FALSE(q.durable);
  EXPECT_EQ(q.durability, Durability::kCrash);
  EXPECT_EQ(q.keep_results, minutes(10));
  EXPECT_EQ(result->daemon.state_dir, "/var/lib/corral");
}

TEST(ParseQueue, RetryDeadlineAndDurability) {
  ParseResult result = load_queue(
      "      retry: {on: [failed, timeout], backoff: {initial: 2s, max: 1m, jitter: 0.3}}\n"
      "      deadline: 30s\n      durable: true\n      durability: power\n"
      "      keep_results: 1h\n",
      "daemon:\n  state_dir: /srv/corral\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const QueueSpec& q = result->jobs.at(0).queue;
  ASSERT_TRUE(q.retry);
  EXPECT_TRUE(q.retry->on_failed);
  EXPECT_FALSE(q.retry->on_crashed);
  EXPECT_TRUE(q.retry->on_timeout);
  EXPECT_EQ(q.retry->backoff.initial, seconds(2));
  EXPECT_EQ(q.retry->backoff.max, minutes(1));
  EXPECT_EQ(q.retry->backoff.multiplier, 2.0);  // the default
  EXPECT_EQ(q.retry->backoff.jitter, 0.3);
  EXPECT_EQ(q.deadline, seconds(30));
  EXPECT_TRUE(q.durable);
  EXPECT_EQ(q.durability, Durability::kPower);
  EXPECT_EQ(q.keep_results, minutes(60));
  EXPECT_EQ(result->daemon.state_dir, "/srv/corral");
}

TEST(ParseQueue, AnEmptyRetryRetriesEverythingWithItsDefaultBackoff) {
  ParseResult result = load_queue("      retry: {}\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const auto& retry = result->jobs.at(0).queue.retry;
  ASSERT_TRUE(retry);
  EXPECT_TRUE(retry->on_failed && retry->on_crashed && retry->on_timeout);
  EXPECT_EQ(retry->backoff.initial, seconds(1));
  EXPECT_EQ(retry->backoff.max, minutes(5));
}

TEST(ParseQueue, Mistakes) {
  EXPECT_EQ(queue_error("      retry: {on: [failed, crashd]}\n"),
            "6:28: queue.retry.on[1] of job \"w\": expected one of failed, crashed or timeout, got "
            "\"crashd\"; did you mean \"crashed\"?");
  EXPECT_EQ(queue_error("      retry: {on: []}\n"),
            "6:19: queue.retry.on of job \"w\": lists no cause: name at least one of failed, "
            "crashed, timeout, or leave queue.retry out");
  EXPECT_EQ(queue_error("      retry: {backoff: {initial: 2m, max: 1m}}\n"),
            "6:34: queue.retry.backoff.initial of job \"w\": 2m is longer than max (1m)");
  EXPECT_EQ(queue_error("      retry: {tries: 3}\n").substr(0, 5), "6:15:");
  EXPECT_EQ(queue_error("      durability: disk\n"),
            "6:19: queue.durability of job \"w\": expected one of crash or power, got \"disk\"");
  EXPECT_EQ(queue_error("      deadline: soon\n").substr(0, 5), "6:17:");
  EXPECT_EQ(queue_error("      durable: yes please\n").substr(0, 5), "6:16:");
}

TEST(ParseQueue, ADurableJobTakesNoSource) {
  std::string error =
      queue_error("      durable: true\n", "    source: {range: {from: 0, to: 9}}\n");
  EXPECT_NE(error.find("a durable job (queue.durable: true) takes its tasks from submits"),
            std::string::npos)
      << error;
}

TEST(ParseQueue, TheEmittedConfigReadsBackTheSame) {
  ParseResult result = load_queue(
      "      retry: {on: [crashed], backoff: {initial: 250ms, max: 10s, multiplier: 3}}\n"
      "      deadline: 5m\n      durable: true\n      keep_results: 30s\n",
      "daemon:\n  state_dir: /srv/x\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  std::string text = to_yaml(*result);
  ParseResult again = load_string(text, "emitted.yaml", 4);
  ASSERT_TRUE(again.ok()) << all_errors(again) << text;
  EXPECT_EQ(again->jobs.at(0).queue, result->jobs.at(0).queue) << text;
  EXPECT_EQ(again->daemon.state_dir, "/srv/x");
}

}  // namespace
}  // namespace corral::config

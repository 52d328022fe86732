// A job's `broker:` (a Redis stream shared by several corralds): the URL
// checked by the one rule redis/ connects by, names derived from the job,
// every mistake with its place, the settings it cannot go with, and the
// emitted config read back the same.
#include <gtest/gtest.h>

#include "config/emit.h"
#include "config/parse.h"
#include "tests/unit/config_diagnostics.h"

namespace corral::config {
namespace {

using std::chrono::seconds;

ParseResult load_broker(const std::string& redis, const std::string& extra = "") {
  return load_string("jobs:\n  sums:\n    command: [w]\n    channel: shm\n" + extra +
                         "    broker:\n      redis:\n" + redis,
                     "b.yaml", 4);
}

// Every error of the config, as "line:column: message", one per line.
std::string errors(const ParseResult& result) {
  std::string out;
  for (const Diagnostic& d : errors_of(result)) {
    out += std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message + "\n";
  }
  return out;
}

TEST(ParseBroker, NamesComeFromTheJobUnlessGiven) {
  ParseResult result = load_broker("        url: unix:///run/redis/redis.sock\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const JobSpec& job = result->jobs.at(0);
  ASSERT_EQ(job.broker.kind, BrokerSpec::Kind::kRedis);
  const RedisBrokerSpec& b = job.broker.redis;
  EXPECT_EQ(b.url.unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(b.stream, "corral:sums");
  EXPECT_EQ(b.group, "corral");
  EXPECT_EQ(b.consumer, "");  // the host's name, where corrald runs
  EXPECT_EQ(b.results, "corral:sums:results");
  EXPECT_EQ(b.dead, "corral:sums:dead");
  EXPECT_EQ(b.claim_idle, seconds(30));
  EXPECT_EQ(b.results_maxlen, 1000000u);
  EXPECT_EQ(b.dead_maxlen, 100000u);
  EXPECT_EQ(b.high_water, 100000u);
  EXPECT_EQ(b.timeout, seconds(5));

  EXPECT_EQ(load_string("jobs:\n  j: {command: [w]}\n", "b.yaml", 4)->jobs.at(0).broker.kind,
            BrokerSpec::Kind::kNone);
}

TEST(ParseBroker, ReadsEveryKey) {
  ParseResult result = load_broker(
      "        url: redis://queue.example:6380/2\n"
      "        stream: jobs\n        group: workers\n        consumer: node-a\n"
      "        results: jobs:out\n        dead: jobs:dead\n        claim_idle: 5s\n"
      "        results_maxlen: off\n        dead_maxlen: 50\n        high_water: 1000\n"
      "        timeout: 2s\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const RedisBrokerSpec& b = result->jobs.at(0).broker.redis;
  EXPECT_EQ(b.url.host, "queue.example");
  EXPECT_EQ(b.url.port, 6380);
  EXPECT_EQ(b.url.db, 2);
  EXPECT_EQ(b.stream, "jobs");
  EXPECT_EQ(b.group, "workers");
  EXPECT_EQ(b.consumer, "node-a");
  EXPECT_EQ(b.results, "jobs:out");
  EXPECT_EQ(b.dead, "jobs:dead");
  EXPECT_EQ(b.claim_idle, seconds(5));
  EXPECT_EQ(b.results_maxlen, std::nullopt);
  EXPECT_EQ(b.dead_maxlen, 50u);
  EXPECT_EQ(b.high_water, 1000u);
  EXPECT_EQ(b.timeout, seconds(2));
}

TEST(ParseBroker, MistakesSayWhatAndWhere) {
  EXPECT_EQ(errors(load_broker("        url: http://x\n")),
            "7:14: broker.redis.url of job \"sums\": redis URL \"http://x\": unknown scheme "
            "(unix:///PATH[?db=N] or redis://HOST[:PORT][/DB])\n");
  EXPECT_EQ(errors(load_broker("        stream: s\n")),
            "6:7: broker.redis of job \"sums\" needs url: (unix:///PATH or "
            "redis://HOST:PORT/DB)\n");
  EXPECT_EQ(
      errors(load_broker("        url: unix:///r.sock\n        claim_idle: 10ms\n")).substr(0, 5),
      "8:21:");
  EXPECT_EQ(errors(load_broker("        url: unix:///r.sock\n        group: \"a b\"\n")),
            "8:16: broker.redis.group of job \"sums\": expected a name without spaces or control "
            "characters, got \"a b\"\n");
  EXPECT_EQ(errors(load_broker("        url: unix:///r.sock\n        results: corral:sums\n")),
            "8:18: broker.redis.stream of job \"sums\" and results are both \"corral:sums\"; "
            "each needs a stream of its own\n");
  EXPECT_EQ(errors(load_broker("        url: unix:///r.sock\n        stram: x\n")).substr(0, 60),
            errors(load_broker("        url: unix:///r.sock\n        stram: x\n")).substr(0, 60));
  EXPECT_NE(errors(load_broker("        url: unix:///r.sock\n        stram: x\n"))
                .find("did you mean \"stream\""),
            std::string::npos)
      << errors(load_broker("        url: unix:///r.sock\n        stram: x\n"));
  EXPECT_NE(errors(load_string("jobs:\n  j:\n    command: [w]\n    channel: shm\n    broker: {}\n",
                               "b.yaml", 4))
                .find("broker of job \"j\" needs redis: (or write none)"),
            std::string::npos);
}

TEST(ParseBroker, RefusesWhatCannotGoWithIt) {
  std::string no_channel = errors(load_string(
      "jobs:\n  j:\n    command: [w]\n    broker: {redis: {url: unix:///r.sock}}\n", "b.yaml", 4));
  EXPECT_NE(no_channel.find("4:13: broker of job \"j\": a job fed by a broker needs a channel"),
            std::string::npos)
      << no_channel;
  std::string durable =
      errors(load_broker("        url: unix:///r.sock\n", "    queue: {durable: true}\n"));
  EXPECT_NE(durable.find("keeps its tasks in the broker; queue.durable: true would keep them a "
                         "second time"),
            std::string::npos)
      << durable;
  std::string source = errors(
      load_broker("        url: unix:///r.sock\n", "    source: {range: {from: 0, to: 5}}\n"));
  EXPECT_NE(source.find("a broker job takes its tasks from the stream"), std::string::npos)
      << source;
}

TEST(ParseBroker, TheEmittedConfigReadsBackTheSame) {
  for (const char* consumer : {"", "        consumer: node-b\n"}) {
    ParseResult result =
        load_broker(std::string("        url: unix:///run/r.sock?db=3\n") + consumer +
                    "        claim_idle: 2s\n        dead_maxlen: off\n");
    ASSERT_TRUE(result.ok()) << all_errors(result);
    std::string text = to_yaml(*result);
    ParseResult again = load_string(text, "emitted.yaml", 4);
    ASSERT_TRUE(again.ok()) << all_errors(again) << text;
    EXPECT_EQ(again->jobs.at(0).broker, result->jobs.at(0).broker) << text;
  }
}

}  // namespace
}  // namespace corral::config

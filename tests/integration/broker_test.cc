// Jobs fed by a Redis stream (broker: {redis: ...}), with real corralds,
// real workers and a redis-server of the test's own (a temp dir, a Unix
// socket, appendonly yes, appendfsync always): results recorded and their
// entries acknowledged and deleted, poison tasks in the dead stream after
// exactly max_attempts, submits through corrald, a node that restarts taking
// back its own pending entries, a dead node's entries claimed by another
// after claim_idle, a long task never taken from a live node, Redis absent
// at start and killed mid-stream.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/integration/harness.h"
#include "tests/support/file_io.h"
#include "tests/support/redis_client.h"
#include "tests/support/redis_server.h"

namespace corral::testing {
namespace {

constexpr const char* kStream = "corral:sums";
constexpr const char* kResults = "corral:sums:results";
constexpr const char* kDead = "corral:sums:dead";

struct Node {
  std::string consumer;
  std::string worker_args = "--handler, sum, --crash-on, poison";
  int workers = 2;
  int prefetch = 16;
  std::string claim_idle = "30s";
  std::string extra_redis;  // more keys of broker.redis, ", key: value"
};

std::string node_jobs(const std::string& url, const Node& node) {
  return "jobs:\n  sums:\n    command: " + worker_command(node.worker_args) +
         "\n    workers: " + std::to_string(node.workers) +
         "\n    channel: shm\n"
         "    queue: {prefetch: " +
         std::to_string(node.prefetch) +
         ", max_attempts: 3}\n"
         "    restart: {max_restarts: 1000, backoff: {initial: 10ms, max: 200ms}}\n"
         "    stop: {timeout: 2s, kill_after: 1s}\n"
         "    broker: {redis: {url: \"" +
         url + "\", consumer: " + node.consumer + ", claim_idle: " + node.claim_idle +
         node.extra_redis + "}}\n";
}

// The results stream by task id: every result each task got.
std::map<std::string, std::vector<redis::StreamEntry>> results_by_task(RedisClient& redis) {
  std::map<std::string, std::vector<redis::StreamEntry>> out;
  for (redis::StreamEntry& e : redis.entries(kResults)) {
    const std::string* task = e.field("task");
    EXPECT_NE(task, nullptr) << e.id;
    if (task != nullptr) out[*task].push_back(std::move(e));
  }
  return out;
}

std::string field(const redis::StreamEntry& e, const char* name) {
  const std::string* value = e.field(name);
  return value != nullptr ? *value : "(none)";
}

// Entries of the group pending with CONSUMER (XPENDING's summary).
int64_t pending_of(RedisClient& redis, const std::string& consumer) {
  redis::Reply summary = redis.call({"XPENDING", kStream, "corral"});
  const redis::Reply* consumers = summary.at(3);
  if (consumers == nullptr || !consumers->is_array()) return 0;
  for (const redis::Reply& c : consumers->elements) {
    if (c.at(0) != nullptr && c.at(0)->text == consumer && c.at(1) != nullptr) {
      return std::stoll(c.at(1)->text);
    }
  }
  return 0;
}

int64_t pending_total(RedisClient& redis) {
  redis::Reply summary = redis.call({"XPENDING", kStream, "corral"});
  return summary.at(0) != nullptr ? summary.at(0)->integer : -1;
}

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kMissing;
    ASSERT_TRUE(server_.start()) << server_.log();
    redis_ = std::make_unique<RedisClient>(server_.url());
  }

  std::unique_ptr<Daemon> start_node(const Node& node) {
    // Not the fast sampler: a node must not need it to see the stream.
    auto daemon = std::make_unique<Daemon>(node_jobs(server_.url(), node));
    EXPECT_TRUE(daemon->start());
    for (int i = 0; i < node.workers; ++i) {
      EXPECT_TRUE(daemon->wait_state("sums:" + std::to_string(i), "RUNNING"));
    }
    return daemon;
  }

  // Waits until every one of IDS has a result.
  bool all_have_results(const std::vector<std::string>& ids, std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
          if (redis_->length(kResults) < static_cast<int64_t>(ids.size())) return false;
          auto results = results_by_task(*redis_);
          for (const std::string& id : ids) {
            if (!results.contains(id)) return false;
          }
          return true;
        },
        timeout);
  }

  TempDir dir_{"corral-broker"};
  RedisServer server_{dir_.path()};
  std::unique_ptr<RedisClient> redis_;
};

TEST_F(BrokerTest, TasksAnyClientAddsRunOnceAndPoisonEndsInTheDeadStream) {
  auto node = start_node({"node-a"});
  std::vector<std::string> payloads;
  for (int i = 0; i < 500; ++i) payloads.push_back(std::to_string(i));
  payloads.push_back("poison");
  std::vector<std::string> ids = redis_->add(kStream, payloads);
  ASSERT_TRUE(all_have_results(ids, 30s)) << redis_->length(kResults) << " results\n"
                                          << node->daemon_log();
  auto results = results_by_task(*redis_);
  for (size_t i = 0; i < payloads.size(); ++i) {
    ASSERT_EQ(results[ids[i]].size(), 1u) << ids[i];
    const redis::StreamEntry& r = results[ids[i]].front();
    EXPECT_EQ(field(r, "node"), "node-a");
    if (payloads[i] == "poison") {
      EXPECT_EQ(field(r, "status"), "dead");
      EXPECT_EQ(field(r, "attempts"), "3");
    } else {
      EXPECT_EQ(field(r, "status"), "ok") << payloads[i];
      EXPECT_EQ(field(r, "result"), sum_below(i));
      EXPECT_EQ(field(r, "attempts"), "1");
    }
  }
  // Acknowledged and deleted: nothing pending, nothing left in the stream.
  EXPECT_TRUE(wait_until([&] { return pending_total(*redis_) == 0; }, 5s));
  EXPECT_EQ(redis_->length(kStream), 0);
  // The poison task in the dead stream, with its payload, after exactly
  // max_attempts deliveries.
  auto dead = redis_->entries(kDead);
  ASSERT_EQ(dead.size(), 1u);
  // (Entries that cannot be tasks are tested below.)
  EXPECT_EQ(field(dead[0], "task"), ids.back());
  EXPECT_EQ(field(dead[0], "payload"), "poison");
  EXPECT_EQ(field(dead[0], "attempts"), "3");
  EXPECT_EQ(field(dead[0], "status"), "dead");

  // status and stats show the broker, its group's backlog and this node's work.
  // (The group's counts are those of the last sample: a later one has them.)
  RunResult status;
  wait_until(
      [&] {
        status = node->ctl({"status"});
        return status.out.find("lag 0, pending 0 (0 here)") != std::string::npos;
      },
      5s);
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_NE(status.out.find("sums (broker)  READY     ready: " + server_.url() +
                            " stream corral:sums as node-a, lag 0, pending 0 (0 here)"),
            std::string::npos)
      << status.out;
  Json stats = node->request({{"cmd", "stats"}, {"job", "sums"}});
  const Json& broker = stats["jobs"]["sums"]["broker"];
  EXPECT_EQ(broker.value("acked", 0), 501) << stats.dump();
  EXPECT_EQ(broker.value("dead", 0), 1);
  EXPECT_EQ(broker.value("read", 0), 501);
  EXPECT_EQ(broker.value("held", -1), 0);
  EXPECT_EQ(broker.value("state", ""), "ready");

  // Its letters are entries of the dead stream: a local requeue is refused.
  RunResult retry = node->ctl({"retry", "sums"});
  EXPECT_NE(retry.exit_code, 0);
  EXPECT_NE(retry.err.find("its dead letters are entries of its dead stream; add one again with "
                           "XADD corral:sums * payload PAYLOAD"),
            std::string::npos)
      << retry.err;
}

TEST_F(BrokerTest, ASubmitThroughCorraldIsAcknowledgedOnceRedisHasIt) {
  auto node = start_node({"node-a"});
  std::vector<std::string> payloads = {"10", "20", "30"};
  std::vector<Json> lines = node->submit("sums", payloads, false);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().value("submitted", -1), 3) << lines.back().dump();
  ASSERT_TRUE(wait_until([&] { return redis_->length(kResults) == 3; }, 10s)) << node->daemon_log();
  std::set<std::string> got;
  for (const redis::StreamEntry& r : redis_->entries(kResults)) {
    got.insert(field(r, "result"));
    EXPECT_EQ(field(r, "reply").substr(0, 7), "node-a/") << field(r, "reply");
  }
  EXPECT_EQ(got, (std::set<std::string>{sum_below(10), sum_below(20), sum_below(30)}));
}

TEST_F(BrokerTest, SubmitWaitGetsEveryResultWhicheverNodeRanIt) {
  Node a{"node-a", "--handler, sleep", 2, 2};
  Node b{"node-b", "--handler, sleep", 2, 2};
  auto node_a = start_node(a);
  auto node_b = start_node(b);
  std::vector<std::string> payloads(200, "5");
  payloads[17] = "poison";  // not a number: a failed task
  std::vector<Json> lines = node_a->submit("sums", payloads, true);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().value("submitted", -1), 200) << lines.back().dump();
  std::set<uint64_t> seqs;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const Json& line = lines[i];
    seqs.insert(line.value("seq", uint64_t{999}));
    EXPECT_EQ(line.value("id", -1), 0);
    EXPECT_FALSE(line.value("task", "").empty()) << line.dump();
    EXPECT_EQ(line.value("status", ""), line.value("seq", 0) == 17 ? "failed" : "ok")
        << line.dump();
  }
  EXPECT_EQ(seqs.size(), 200u);
  EXPECT_EQ(lines.size(), 201u);
  // Both nodes ran some of them.
  std::map<std::string, int> by_node;
  for (const redis::StreamEntry& r : redis_->entries(kResults)) ++by_node[field(r, "node")];
  EXPECT_GT(by_node["node-a"], 0);
  EXPECT_GT(by_node["node-b"], 0);
}

TEST_F(BrokerTest, ADeadNodesTasksAreClaimedAfterClaimIdleAndItsNextLifeFindsNone) {
  Node a{"node-a", "--handler, sleep", 2, 2, "2s"};
  auto node_a = start_node(a);
  std::vector<std::string> ids = redis_->add(kStream, std::vector<std::string>(4, "1500"));
  // node-a holds all four: two running, two waiting behind them.
  ASSERT_TRUE(wait_until([&] { return pending_of(*redis_, "node-a") == 4; }, 10s));
  node_a->kill9();
  Node b{"node-b", "--handler, sleep", 2, 2, "2s"};
  auto node_b = start_node(b);
  const auto claimed_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(all_have_results(ids, 30s)) << node_b->daemon_log();
  // Within claim_idle + 1 s of the start, plus two rounds of 1.5 s tasks.
  EXPECT_LT(std::chrono::steady_clock::now() - claimed_from, scaled(2s + 1s + 3s + 2s));
  for (const auto& [id, results] : results_by_task(*redis_)) {
    EXPECT_EQ(results.size(), 1u) << id;
    EXPECT_EQ(field(results.front(), "node"), "node-b");
    // Delivered to node-a, then claimed by node-b: two attempts.
    EXPECT_EQ(field(results.front(), "attempts"), "2");
  }
  // node-a's next life under its name: nothing of its own is pending.
  node_a = start_node(a);
  EXPECT_EQ(pending_of(*redis_, "node-a"), 0);
  EXPECT_EQ(redis_->length(kStream), 0);
}

TEST_F(BrokerTest, ANodeThatRestartsTakesBackItsOwnPendingTasks) {
  Node a{"node-a", "--handler, sleep", 1, 1, "30s"};
  auto node_a = start_node(a);
  std::vector<std::string> ids = redis_->add(kStream, {"3000"});
  ASSERT_TRUE(wait_until([&] { return pending_of(*redis_, "node-a") == 1; }, 10s));
  node_a->kill9();
  node_a = start_node(a);
  // Long before claim_idle: its own entry, taken back at once.
  ASSERT_TRUE(all_have_results(ids, 15s)) << node_a->daemon_log();
  auto results = results_by_task(*redis_);
  EXPECT_EQ(field(results[ids[0]].front(), "attempts"), "2");
}

TEST_F(BrokerTest, AShutdownLeavesWhatItHeldPendingForItsNextLife) {
  Node a{"node-a", "--handler, sleep", 2, 4};
  auto node_a = start_node(a);
  std::vector<std::string> ids = redis_->add(kStream, std::vector<std::string>(40, "50"));
  ASSERT_TRUE(wait_until([&] { return redis_->length(kResults) >= 4; }, 10s));
  EXPECT_EQ(node_a->stop(), 0);
  // Nothing lost: each task has its result (and left the stream), or is
  // still in the stream, unread or pending with node-a.
  auto results = results_by_task(*redis_);
  EXPECT_EQ(static_cast<int64_t>(results.size()) + redis_->length(kStream), 40)
      << results.size() << " results";
  EXPECT_EQ(pending_total(*redis_), pending_of(*redis_, "node-a"));
  EXPECT_LT(results.size(), 40u);
  EXPECT_NE(node_a->daemon_log().find("stay pending in corral:sums"), std::string::npos)
      << node_a->daemon_log();
  EXPECT_EQ(node_a->daemon_log().find("results not written"), std::string::npos);
  node_a = start_node(a);
  ASSERT_TRUE(all_have_results(ids, 20s)) << node_a->daemon_log();
}

TEST_F(BrokerTest, ALongTaskIsNeverTakenFromALiveNode) {
  Node a{"node-a", "--handler, sleep", 1, 1, "1s"};
  Node b{"node-b", "--handler, sleep", 1, 1, "1s"};
  auto node_a = start_node(a);
  auto node_b = start_node(b);
  std::vector<std::string> ids = redis_->add(kStream, {"4000"});
  ASSERT_TRUE(all_have_results(ids, 20s));
  // Four times claim_idle, renewed all along: one run, one attempt.
  std::this_thread::sleep_for(1500ms);
  auto results = results_by_task(*redis_);
  ASSERT_EQ(results[ids[0]].size(), 1u);
  EXPECT_EQ(field(results[ids[0]].front(), "attempts"), "1");
}

TEST_F(BrokerTest, RedisAbsentAtStartThenKilledMidStreamLosesNothing) {
  server_.stop();
  auto node = start_node({"node-a"});
  // The workers run without Redis; the broker waits for it.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(node->state("sums:0"), "RUNNING");
  RunResult down = node->ctl({"status"});
  EXPECT_EQ(down.exit_code, 1) << down.out;
  EXPECT_NE(down.out.find("sums (broker)  DOWN      down: " + server_.url()), std::string::npos)
      << down.out;
  EXPECT_NE(down.out.find("No such file or directory"), std::string::npos) << down.out;
  ASSERT_TRUE(server_.start()) << server_.log();
  redis_ = std::make_unique<RedisClient>(server_.url());
  std::vector<std::string> payloads;
  for (int i = 0; i < 20000; ++i) payloads.push_back(std::to_string(i % 100));
  std::vector<std::string> ids = redis_->add(kStream, payloads);
  ASSERT_TRUE(wait_until([&] { return redis_->length(kResults) > 500; }, 20s))
      << node->daemon_log();
  server_.kill9();
  // Mid-stream: the kill came while tasks were still to run.
  ASSERT_TRUE(server_.start()) << server_.log();
  const int64_t kept = RedisClient(server_.url()).length(kResults);
  EXPECT_GT(kept, 500);
  EXPECT_LT(kept, 20000);
  server_.kill9();
  ASSERT_TRUE(server_.start()) << server_.log();
  redis_ = std::make_unique<RedisClient>(server_.url());
  // Every task acknowledged before the kill kept its result (appendfsync
  // always), and the rest ran after the restart.
  ASSERT_TRUE(all_have_results(ids, 30s)) << node->daemon_log();
  EXPECT_TRUE(wait_until([&] { return pending_total(*redis_) == 0; }, 5s));
  EXPECT_EQ(redis_->length(kStream), 0);
}

TEST_F(BrokerTest, AStreamOfTheWrongTypeIsAClearErrorAndFixingItIsEnough) {
  ASSERT_EQ(redis_->call({"SET", kStream, "not a stream"}), redis::Reply::status("OK"));
  auto node = start_node({"node-a"});
  RunResult status;
  ASSERT_TRUE(wait_until(
      [&] {
        status = node->ctl({"status"});
        return status.out.find("DOWN") != std::string::npos;
      },
      10s));
  EXPECT_NE(status.out.find("redis key corral:sums is a string, not a stream"), std::string::npos)
      << status.out;
  EXPECT_EQ(status.exit_code, 1);
  // The workers run meanwhile; once the key is gone the broker comes up.
  EXPECT_EQ(node->state("sums:0"), "RUNNING");
  redis_->call({"DEL", kStream});
  std::vector<std::string> ids = redis_->add(kStream, {"7"});
  ASSERT_TRUE(all_have_results(ids, 10s)) << node->daemon_log();
  EXPECT_NE(node->daemon_log().find("is a string, not a stream"), std::string::npos);
}

TEST_F(BrokerTest, EntriesThatCannotBeTasksGoToTheDeadStreamWithWhy) {
  auto node = start_node({"node-a"});
  std::vector<std::vector<std::string>> adds = {
      {"XADD", kStream, "*", "data", "no payload field"},
      {"XADD", kStream, "*", "payload", std::string(70000, 'x')},
      {"XADD", kStream, "*", "payload", "5", "deadline", "soon"},
      {"XADD", kStream, "*", "payload", "6", "deadline", "1000"},  // long past: expired
      {"XADD", kStream, "*", "payload", "7"}};
  std::vector<std::string> ids;
  for (redis::Reply& r : redis_->pipeline(adds)) ids.push_back(r.text);
  ASSERT_TRUE(all_have_results(ids, 10s)) << node->daemon_log();
  auto results = results_by_task(*redis_);
  EXPECT_EQ(field(results[ids[0]].front(), "result"), "the entry has no payload field");
  EXPECT_EQ(field(results[ids[1]].front(), "result"),
            "task of 70000 bytes exceeds queue.max_task_bytes (65536)");
  EXPECT_EQ(field(results[ids[2]].front(), "result"),
            "its deadline \"soon\" is not a Unix time in milliseconds");
  EXPECT_EQ(field(results[ids[3]].front(), "status"), "expired");
  EXPECT_EQ(field(results[ids[4]].front(), "result"), sum_below(7));
  std::set<std::string> dead;
  for (const redis::StreamEntry& d : redis_->entries(kDead)) dead.insert(field(d, "task"));
  EXPECT_EQ(dead, (std::set<std::string>{ids[0], ids[1], ids[2]}));
}

TEST_F(BrokerTest, SubmitsWaitWhileTheBacklogIsAboveHighWater) {
  // node-a runs nothing (no workers): what it adds stays in the stream.
  Node a{"node-a", "--handler, sum", 0, 16, "30s", ", high_water: 100"};
  auto node_a = start_node(a);
  std::vector<std::string> payloads(1000, "3");
  std::vector<Json> lines;
  std::thread submitter([&] { lines = node_a->submit("sums", payloads, false); });
  // It stops adding near the mark (a batch may pass it).
  ASSERT_TRUE(wait_until([&] { return redis_->length(kStream) >= 100; }, 10s));
  std::this_thread::sleep_for(500ms);
  const int64_t held_back = redis_->length(kStream);
  EXPECT_LE(held_back, 101) << "the submit did not wait at the mark";
  // A node that runs them drains the backlog, and the submit goes on.
  auto node_b = start_node({"node-b", "--handler, sum"});
  submitter.join();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().value("submitted", -1), 1000) << lines.back().dump();
  EXPECT_TRUE(wait_until([&] { return redis_->length(kResults) == 1000; }, 20s));
}

TEST_F(BrokerTest, MetricsShowTheBrokerAndPromtoolAcceptsThem) {
  Daemon node(node_jobs(server_.url(), {"node-a"}),
              "  metrics: {listen: 127.0.0.1:0, interval: 100ms}\n");
  ASSERT_TRUE(node.start()) << node.daemon_log();
  ASSERT_TRUE(node.wait_state("sums:0", "RUNNING"));
  std::vector<std::string> ids = redis_->add(kStream, {"1", "2", "poison"});
  ASSERT_TRUE(all_have_results(ids, 10s));
  const std::string address = node.request({{"cmd", "stats"}})["daemon"]["metrics"];
  std::string body;
  ASSERT_TRUE(wait_until(
      [&] {
        std::string response = http(address, "GET /metrics HTTP/1.0\r\n\r\n");
        body = response.substr(std::min(response.size(), response.find("\r\n\r\n") + 4));
        // (The group's counts are the last sample's: a later scrape has them.)
        return body.find("corral_broker_acked_total{job=\"sums\"} 3") != std::string::npos &&
               body.find("corral_broker_pending{job=\"sums\"} 0") != std::string::npos &&
               body.find("corral_broker_lag{job=\"sums\"} 0") != std::string::npos;
      },
      10s))
      << body;
  EXPECT_NE(body.find("corral_broker_up{job=\"sums\"} 1"), std::string::npos);
  EXPECT_NE(body.find("corral_broker_held{job=\"sums\"} 0"), std::string::npos);
  EXPECT_NE(body.find("corral_broker_read_total{job=\"sums\"} 3"), std::string::npos);
  EXPECT_NE(body.find("corral_broker_dead_total{job=\"sums\"} 1"), std::string::npos);
  EXPECT_NE(body.find("corral_broker_reconnects_total{job=\"sums\"} 0"), std::string::npos);
  write_file(node.dir().file("metrics.txt"), body);
  RunResult check =
      run({"/bin/sh", "-c", "promtool check metrics < " + node.dir().file("metrics.txt")});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST_F(BrokerTest, TheResultsStreamIsTrimmedAndTheTaskStreamNever) {
  // Redis trims whole nodes of its stream (100 entries): about the maxlen.
  Node a{"node-a", "--handler, sum", 2, 16, "30s", ", results_maxlen: 100"};
  auto node = start_node(a);
  std::vector<std::string> ids = redis_->add(kStream, std::vector<std::string>(2000, "5"));
  ASSERT_TRUE(wait_until([&] { return redis_->length(kStream) == 0; }, 20s));
  EXPECT_TRUE(wait_until([&] { return pending_total(*redis_) == 0; }, 5s));
  const int64_t kept = redis_->length(kResults);
  EXPECT_GE(kept, 100);
  EXPECT_LE(kept, 300) << "the results stream was not trimmed";
  // (corrald counts an acknowledgement when EXEC's reply reaches it.)
  EXPECT_TRUE(wait_until(
      [&] {
        Json stats = node->request({{"cmd", "stats"}, {"job", "sums"}});
        return stats["jobs"]["sums"]["broker"].value("acked", 0) == 2000;
      },
      5s));
}

TEST_F(BrokerTest, ASlowNodeHoldsNoTaskAnIdleNodeCouldRun) {
  // node-a sleeps 400 ms per task; node-b echoes at once. With prefetch 1,
  // node-a holds at most what its one worker runs.
  Node a{"node-a", "--handler, sleep", 1, 1};
  Node b{"node-b", "--handler, echo", 1, 1};
  auto node_a = start_node(a);
  auto node_b = start_node(b);
  std::vector<std::string> ids = redis_->add(kStream, std::vector<std::string>(40, "400"));
  int64_t most_held_by_a = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        most_held_by_a = std::max(most_held_by_a, pending_of(*redis_, "node-a"));
        return redis_->length(kResults) >= 40;
      },
      20s));
  std::map<std::string, int> by_node;
  for (const redis::StreamEntry& r : redis_->entries(kResults)) ++by_node[field(r, "node")];
  EXPECT_LE(most_held_by_a, 2);  // its one task, and one claim's overshoot at most
  EXPECT_LE(by_node["node-a"], 4) << by_node["node-a"] << " of 40 ran on the slow node";
  EXPECT_GE(by_node["node-b"], 36);
}

// The scenario: three nodes share 200,000 tasks with unique ids, a
// few of them poison (they crash their worker); one node is killed -9 at
// about 30%.
TEST_F(BrokerTest, ThreeNodesShareAStreamAndLoseNothingWhenOneIsKilled) {
  const int total = CORRAL_SANITIZED ? 30000 : 200000;
  const int poison_every = total / 20;  // 20 poison tasks
  std::vector<std::unique_ptr<Daemon>> nodes;
  std::vector<Node> specs;
  for (const char* name : {"node-a", "node-b", "node-c"}) {
    specs.push_back(Node{name, "--handler, sum, --crash-on, poison", 2, 64, "2s"});
    nodes.push_back(start_node(specs.back()));
  }
  std::vector<std::string> payloads;
  payloads.reserve(total);
  std::set<size_t> poison;
  for (int i = 0; i < total; ++i) {
    if (i % poison_every == poison_every / 2) {
      payloads.push_back("poison");
      poison.insert(i);
    } else {
      payloads.push_back(std::to_string(i % 1000));
    }
  }
  std::vector<std::string> ids;
  for (size_t from = 0; from < payloads.size(); from += 10000) {
    std::vector<std::string> chunk(payloads.begin() + from,
                                   payloads.begin() + std::min(payloads.size(), from + 10000));
    for (std::string& id : redis_->add(kStream, chunk)) ids.push_back(std::move(id));
  }
  ASSERT_EQ(ids.size(), payloads.size());
  ASSERT_TRUE(wait_until([&] { return redis_->length(kResults) >= total * 3 / 10; }, 120s));
  nodes[2]->kill9();
  const int64_t held_by_c = pending_of(*redis_, "node-c");
  // No hoarding: a node holds at most its workers' room (2 x prefetch 64),
  // the tasks done but not yet acknowledged included.
  EXPECT_LE(held_by_c, 128);
  ASSERT_TRUE(wait_until([&] { return redis_->length(kResults) >= total; }, 240s))
      << redis_->length(kResults) << " of " << total;
  EXPECT_TRUE(wait_until([&] { return pending_total(*redis_) == 0; }, 10s));
  EXPECT_EQ(redis_->length(kStream), 0);

  auto results = results_by_task(*redis_);
  int64_t duplicates = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = results.find(ids[i]);
    ASSERT_NE(it, results.end()) << "task " << i << " has no result";
    duplicates += static_cast<int64_t>(it->second.size()) - 1;
    if (poison.contains(i)) continue;
    bool ok = false;
    for (const redis::StreamEntry& r : it->second) {
      ok = ok || (field(r, "status") == "ok" && field(r, "result") == sum_below(i % 1000));
    }
    EXPECT_TRUE(ok) << "task " << i << " has no ok result";
  }
  // At least once, and no more than the killed node held.
  EXPECT_LE(duplicates, held_by_c);
  // Each poison task in the dead stream once, after exactly max_attempts.
  std::map<std::string, int> dead_count;
  for (const redis::StreamEntry& d : redis_->entries(kDead)) {
    ++dead_count[field(d, "task")];
    EXPECT_EQ(field(d, "attempts"), "3") << field(d, "task");
    EXPECT_EQ(field(d, "payload"), "poison");
  }
  EXPECT_EQ(dead_count.size(), poison.size());
  for (size_t i : poison) EXPECT_EQ(dead_count[ids[i]], 1) << "poison task " << i;
  // The killed node, back under its name, finds nothing of its own pending.
  nodes[2] = start_node(specs[2]);
  EXPECT_EQ(pending_of(*redis_, "node-c"), 0);
}

}  // namespace
}  // namespace corral::testing

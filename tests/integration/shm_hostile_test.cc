// Shared-memory workers that attack the daemon through their job's segment
// (tests/integration/helpers/shm_hostile_worker.cc): they scribble on every
// field of the segment header, their own slot and rings, a neighbour's and
// an unused slot's, or fake a heartbeat in the future. corrald must stay up,
// end only the worker at fault (and a neighbour it killed), keep the other
// workers and jobs serving, and lose no task.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// As root, the workers of the hostile job run as nobody: what it can do is
// what any unprivileged process given the segment can do.
std::string user_line() { return ::geteuid() == 0 ? "    user: nobody\n" : ""; }

// A directory where the hostile worker, as nobody, can leave its marker
// file (it does harm once; the next process in its slot behaves).
std::string marker_dir(const Daemon& d) {
  const std::string dir = d.dir().file("markers");
  ::chmod(d.dir().path().c_str(), 0711);
  ::mkdir(dir.c_str(), 0777);
  ::chmod(dir.c_str(), 0777);
  return dir;
}

std::vector<std::string> payloads(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// Every task of a submit --wait came back once, ok, with its payload echoed.
void expect_all_echoed(const std::vector<Json>& lines, const std::vector<std::string>& sent) {
  ASSERT_EQ(lines.size(), sent.size() + 1) << (lines.empty() ? "" : lines.back().dump());
  std::set<uint64_t> seen;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const Json& line = lines[i];
    ASSERT_TRUE(line.contains("seq")) << line.dump();
    const uint64_t seq = line["seq"];
    ASSERT_LT(seq, sent.size());
    EXPECT_TRUE(seen.insert(seq).second) << "twice: " << line.dump();
    EXPECT_EQ(line["status"], "ok") << line.dump();
    EXPECT_EQ(line["result"], sent[seq]) << line.dump();
  }
  EXPECT_EQ(seen.size(), sent.size());
}

uint64_t tasks_ok(Daemon& d, const std::string& name) {
  return d.worker(name).value("tasks_ok", uint64_t{0});
}

enum class End { kExit, kKilled, kKeepsRunning };

std::string end_word(End end) {
  switch (end) {
    case End::kExit:
      return "exit";
    case End::kKilled:
      return "killed";
    case End::kKeepsRunning:
      return "hang";
  }
  return "";
}

class ShmHostileTest : public ::testing::TestWithParam<End> {};

// Job `mixed`: worker 0 is hostile; it scribbles on the segment header and
// shared table, its own slot and rings, worker 1's slot and ring headers
// (then kills worker 1), and slot 3's slot and rings (no worker there yet).
// Workers 1 and 2 and job `other` are corral-worker echo workers.
//
// Expected to be ended: mixed:0 (it exits, is killed, or, when it keeps
// running, is killed by corrald for the protocol error its result ring
// shows) and mixed:1 (killed by mixed:0). Nothing else: mixed:2 and both
// workers of `other` keep their process, and corrald its pid.
TEST_P(ShmHostileTest, CorraldSurvivesAndOnlyTheHostileWorkerIsEnded) {
  const End end = GetParam();
  const std::string hostile = std::string(SHM_HOSTILE_WORKER_PATH) +
                              " --scribble --neighbour 1 --unused 3 --end " + end_word(end);
  auto config = [&](const std::string& markers, int mixed_workers) {
    return "jobs:\n"
           "  mixed:\n"
           "    command: [sh, -c, 'if [ \"$CORRAL_WORKER\" = 0 ]; then exec " +
           hostile + " --marker " + markers + "/mixed-0; else exec " + CORRAL_WORKER_PATH +
           " --handler echo; fi']\n"
           "    channel: shm\n"
           "    workers: " +
           std::to_string(mixed_workers) +
           "\n"
           "    queue: {prefetch: 4, max_attempts: 5}\n"
           "    health: {heartbeat_timeout: 1s}\n"
           "    restart: {backoff: {initial: 10ms}}\n"
           "    shared: {values: {processed: u64}}\n" +
           user_line() +
           "  other:\n"
           "    command: " +
           worker_command("--handler, echo") +
           "\n"
           "    channel: shm\n"
           "    workers: 2\n";
  };
  Daemon d("jobs: {}\n", kFastMetrics);
  const std::string markers = marker_dir(d);
  d.rewrite_config(config(markers, 3));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (const char* name : {"mixed:0", "mixed:1", "mixed:2", "other:0", "other:1"}) {
    ASSERT_TRUE(d.wait_state(name, "RUNNING")) << name << "\n" << d.daemon_log();
  }
  const pid_t corrald = d.pid();
  std::map<std::string, pid_t> before;
  for (const char* name : {"mixed:0", "mixed:1", "mixed:2", "other:0", "other:1"}) {
    before[name] = d.worker_pid(name);
  }

  // The hostile worker takes its first tasks and does its harm; every task
  // still comes back, from the workers left or their successors.
  const std::vector<std::string> first = payloads("first-", 300);
  expect_all_echoed(d.submit("mixed", first), first);
  ASSERT_TRUE(process_alive(corrald)) << d.daemon_log();
  EXPECT_EQ(d.pid(), corrald);
  ASSERT_TRUE(wait_until([&] {
    return d.state("mixed:0") == "RUNNING" && d.worker_pid("mixed:0") != before["mixed:0"] &&
           d.state("mixed:1") == "RUNNING" && d.worker_pid("mixed:1") != before["mixed:1"];
  })) << d.worker("mixed:0").dump()
      << d.worker("mixed:1").dump() << "\n"
      << d.daemon_log();
  Json stats = d.request({{"cmd", "stats"}, {"job", "mixed"}})["jobs"]["mixed"];
  EXPECT_GE(stats["redelivered"], 1) << stats.dump();
  EXPECT_EQ(stats["dead"], 0) << stats.dump();
  if (end == End::kKeepsRunning) {
    EXPECT_EQ(d.worker("mixed:0")["enforced"].value("protocol", 0), 1) << d.worker("mixed:0");
    EXPECT_THAT(d.daemon_log(), HasSubstr("protocol error: the worker corrupted its"));
  }

  // The others were never touched.
  for (const char* name : {"mixed:2", "other:0", "other:1"}) {
    EXPECT_EQ(d.worker_pid(name), before[name]) << name;
    EXPECT_EQ(d.worker(name)["restarts"], 0) << name;
  }

  // Everybody serves, the new mixed:0 and mixed:1 included: they started
  // from clean slots and rings.
  const uint64_t ok0 = tasks_ok(d, "mixed:0"), ok1 = tasks_ok(d, "mixed:1");
  const std::vector<std::string> second = payloads("second-", 300);
  expect_all_echoed(d.submit("mixed", second), second);
  EXPECT_GT(tasks_ok(d, "mixed:0"), ok0);
  EXPECT_GT(tasks_ok(d, "mixed:1"), ok1);
  const std::vector<std::string> others = payloads("other-", 100);
  expect_all_echoed(d.submit("other", others), others);

  // A worker spawned into the slot that had no worker when it was
  // scribbled on starts clean too.
  d.rewrite_config(config(markers, 4));
  RunResult update = d.ctl({"update"});
  ASSERT_EQ(update.exit_code, 0) << update.err;
  ASSERT_TRUE(d.wait_state("mixed:3", "RUNNING")) << d.worker("mixed:3") << d.daemon_log();
  const std::vector<std::string> third = payloads("third-", 400);
  expect_all_echoed(d.submit("mixed", third), third);
  EXPECT_GT(tasks_ok(d, "mixed:3"), 0u);
  EXPECT_EQ(d.worker("mixed:3")["restarts"], 0);

  stats = d.request({{"cmd", "stats"}, {"job", "mixed"}})["jobs"]["mixed"];
  EXPECT_EQ(stats["submitted"], 1000) << stats.dump();
  EXPECT_EQ(stats["ok"], 1000) << stats.dump();
  EXPECT_EQ(d.pid(), corrald);
  EXPECT_EQ(d.ctl({"status"}).exit_code, 0);
  EXPECT_EQ(d.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Ends, ShmHostileTest,
                         ::testing::Values(End::kExit, End::kKilled, End::kKeepsRunning),
                         [](const ::testing::TestParamInfo<End>& info) {
                           switch (info.param) {
                             case End::kExit:
                               return std::string("ItExits");
                             case End::kKilled:
                               return std::string("ItIsKilled");
                             case End::kKeepsRunning:
                               return std::string("ItKeepsRunning");
                           }
                           return std::string();
                         });

TEST(ShmHostileHeartbeatTest, AHungWorkerWithAHeartbeatInTheFutureIsKilledAfterTheTimeout) {
  // It takes a task, writes a heartbeat an hour ahead and stops. The daemon
  // judges by its own clock when it saw the cell change, so the worker is
  // killed once health.heartbeat_timeout has passed, and its task goes to
  // the worker spawned after it.
  Daemon d("jobs: {}\n", kFastMetrics);
  const std::string markers = marker_dir(d);
  d.rewrite_config(
      "jobs:\n"
      "  liar:\n"
      "    command: [" +
      std::string(SHM_HOSTILE_WORKER_PATH) + ", --future-heartbeat, --marker, " + markers +
      "/liar-0]\n"
      "    channel: shm\n"
      "    health: {heartbeat_timeout: 1s}\n"
      "    restart: {backoff: {initial: 10ms}}\n" +
      user_line());
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("liar:0", "RUNNING")) << d.daemon_log();
  const pid_t liar = d.worker_pid("liar:0");
  std::vector<Json> ack = d.submit("liar", {"held"}, /*wait=*/false);
  ASSERT_FALSE(ack.empty());
  ASSERT_TRUE(
      wait_until([&] { return d.worker("liar:0")["enforced"].value("heartbeat", 0) == 1; }, 20s))
      << d.worker("liar:0").dump() << "\n"
      << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr("health.heartbeat_timeout (1s)"));
  ASSERT_TRUE(wait_until([&] {
    Json stats = d.request({{"cmd", "stats"}, {"job", "liar"}})["jobs"]["liar"];
    return stats["ok"] == 1;
  })) << d.daemon_log();
  EXPECT_NE(d.worker_pid("liar:0"), liar);
  Json stats = d.request({{"cmd", "stats"}, {"job", "liar"}})["jobs"]["liar"];
  EXPECT_EQ(stats["redelivered"], 1) << stats.dump();
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace corral::testing

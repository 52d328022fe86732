// reread, update, reload and SIGHUP against a real corrald: only what
// changed is touched, a `workers` change starts or stops just the
// difference, and a broken config changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string sleeper(const std::string& name, int workers, const std::string& seconds = "1000") {
  return "  " + name + ":\n    command: [sleep, '" + seconds +
         "']\n    workers: " + std::to_string(workers) + "\n    start: {settle: 0s}\n";
}

// Name -> pid of every worker (0 for none).
std::map<std::string, pid_t> pids(Daemon& d) {
  std::map<std::string, pid_t> out;
  Json reply = d.request({{"cmd", "status"}});
  for (const auto& w : reply["workers"]) {
    out[w["name"]] = w["pid"].is_null() ? 0 : w["pid"].get<pid_t>();
  }
  return out;
}

bool all_running(Daemon& d) {
  Json reply = d.request({{"cmd", "status"}});
  for (const auto& w : reply["workers"]) {
    if (w["state"] != "RUNNING") return false;
  }
  return true;
}

TEST(ReloadTest, AddAndRemoveJobsLeavingTheOthersAlone) {
  Daemon d("jobs:\n" + sleeper("a", 1) + sleeper("b", 1));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto before = pids(d);
  d.rewrite_config("jobs:\n" + sleeper("a", 1) + sleeper("c", 2));

  RunResult reread = d.ctl({"reread"});
  EXPECT_EQ(reread.exit_code, 0) << reread.err;
  EXPECT_EQ(reread.out, "c: available\nb: disappeared\n");
  EXPECT_EQ(pids(d), before);  // reread changes nothing

  RunResult update = d.ctl({"update"});
  EXPECT_EQ(update.exit_code, 0) << update.err;
  EXPECT_EQ(update.out, "c: added process group\nb: removed process group\n");
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto after = pids(d);
  EXPECT_EQ(after.size(), 3u);
  EXPECT_EQ(after["a:0"], before["a:0"]);
  EXPECT_FALSE(after.contains("b:0"));
  EXPECT_GT(after["c:0"], 0);
  EXPECT_GT(after["c:1"], 0);
  EXPECT_FALSE(process_alive(before["b:0"]));

  RunResult again = d.ctl({"update"});
  EXPECT_EQ(again.out, "No config updates to processes\n");
}

TEST(ReloadTest, AChangedCommandRestartsOnlyThatJob) {
  Daemon d("jobs:\n" + sleeper("a", 2) + sleeper("b", 1));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto before = pids(d);
  d.rewrite_config("jobs:\n" + sleeper("a", 2) + sleeper("b", 1, "2000"));
  RunResult update = d.ctl({"update"});
  EXPECT_EQ(update.exit_code, 0) << update.err;
  EXPECT_EQ(update.out, "b: updated process group\n");
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto after = pids(d);
  EXPECT_EQ(after["a:0"], before["a:0"]);
  EXPECT_EQ(after["a:1"], before["a:1"]);
  EXPECT_NE(after["b:0"], before["b:0"]);
  EXPECT_THAT(read_file("/proc/" + std::to_string(after["b:0"]) + "/cmdline"), HasSubstr("2000"));
}

TEST(ReloadTest, WorkersTwoToFourToOneKeepTheRunningOnes) {
  Daemon d("jobs:\n" + sleeper("a", 2));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto two = pids(d);

  d.rewrite_config("jobs:\n" + sleeper("a", 4));
  RunResult grow = d.ctl({"update"});
  EXPECT_EQ(grow.exit_code, 0) << grow.err;
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto four = pids(d);
  ASSERT_EQ(four.size(), 4u);
  EXPECT_EQ(four["a:0"], two["a:0"]);
  EXPECT_EQ(four["a:1"], two["a:1"]);

  d.rewrite_config("jobs:\n" + sleeper("a", 1));
  RunResult shrink = d.ctl({"update"});
  EXPECT_EQ(shrink.exit_code, 0) << shrink.err;
  auto one = pids(d);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one["a:0"], two["a:0"]);
  for (const char* gone : {"a:1", "a:2", "a:3"}) EXPECT_FALSE(process_alive(four[gone])) << gone;
}

TEST(ReloadTest, ABrokenConfigChangesNothingAndSaysEveryError) {
  Daemon d("jobs:\n" + sleeper("a", 1));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto before = pids(d);
  d.rewrite_config(
      "jobs:\n  a:\n    command: [sleep, '1000']\n    workerz: 3\n  b:\n"
      "    workers: -1\n");
  for (const char* cmd : {"reread", "update", "reload"}) {
    RunResult r = d.ctl({cmd});
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_THAT(r.err, HasSubstr("workerz")) << cmd;
    EXPECT_THAT(r.err, HasSubstr("workers")) << cmd;
    EXPECT_THAT(r.err, HasSubstr(d.config() + ":")) << cmd;
    EXPECT_THAT(r.err, HasSubstr("nothing was changed")) << cmd;
  }
  // SIGHUP with the same broken config: logged, nothing changes.
  ::kill(d.pid(), SIGHUP);
  ASSERT_TRUE(wait_until([&] { return d.daemon_log().find("reload: ") != std::string::npos; }));
  EXPECT_EQ(pids(d), before);
  Json reply = d.request({{"cmd", "reread"}});
  EXPECT_EQ(reply["ok"], false);
  EXPECT_GE(reply["errors"].size(), 2u);
}

TEST(ReloadTest, SighupAppliesTheConfig) {
  Daemon d("jobs:\n" + sleeper("a", 1));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  d.rewrite_config("jobs:\n" + sleeper("a", 1) + sleeper("b", 1));
  ::kill(d.pid(), SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    auto now = pids(d);
    return now.contains("b:0") && now["b:0"] > 0;
  })) << d.daemon_log();
}

TEST(ReloadTest, AnShmJobGrowsAndShrinksWithoutLosingTasksOrSharedValues) {
  auto job = [](int workers) {
    return std::string("jobs:\n  sums:\n    command: [") + CORRAL_WORKER_PATH +
           ", --handler, sum]\n    channel: shm\n    workers: " + std::to_string(workers) +
           "\n    shared: {values: {processed: u64}}\n";
  };
  Daemon d(job(2));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  std::vector<std::string> tasks(2000, "10");
  auto first = d.submit("sums", tasks);
  ASSERT_EQ(first.size(), 2001u);
  auto two = pids(d);

  d.rewrite_config(job(3));
  ASSERT_EQ(d.ctl({"update"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return all_running(d); }));
  auto three = pids(d);
  EXPECT_EQ(three["sums:0"], two["sums:0"]);
  EXPECT_EQ(three["sums:1"], two["sums:1"]);
  auto second = d.submit("sums", tasks);
  ASSERT_EQ(second.size(), 2001u);
  EXPECT_EQ(second.back()["submitted"], 2000);
  EXPECT_EQ(d.request({{"cmd", "shared"}, {"job", "sums"}})["values"]["processed"], 4000);

  d.rewrite_config(job(1));
  ASSERT_EQ(d.ctl({"update"}).exit_code, 0);
  auto third = d.submit("sums", tasks);
  ASSERT_EQ(third.size(), 2001u);
  for (size_t i = 0; i + 1 < third.size(); ++i) ASSERT_EQ(third[i]["status"], "ok");
  EXPECT_EQ(d.request({{"cmd", "shared"}, {"job", "sums"}})["values"]["processed"], 6000);
  EXPECT_THAT(d.daemon_log(), Not(HasSubstr("protocol error")));
}

TEST(ReloadTest, TasksQueuedInAJobWhoseChannelChangesBecomeDeadLettersToRetry) {
  // No worker ever starts (autostart false): the tasks stay queued.
  auto job = [](const std::string& framing) {
    return std::string("jobs:\n  lines:\n    command: [") + CORRAL_WORKER_PATH +
           ", --handler, echo]\n    channel: pipe\n    autostart: false\n    pipe: {framing: " +
           framing + "}\n";
  };
  Daemon d(job("lines"));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto queued = d.submit("lines", {"x", "y", "z"}, false);
  ASSERT_EQ(queued.back()["submitted"], 3);
  d.rewrite_config(job("length"));
  ASSERT_EQ(d.ctl({"update"}).exit_code, 0);
  Json dead = d.request({{"cmd", "dead"}, {"job", "lines"}});
  ASSERT_EQ(dead["dead"].size(), 3u) << dead.dump();
  EXPECT_THAT(dead["dead"][0]["reason"].get<std::string>(), HasSubstr("new channel settings"));
  EXPECT_EQ(d.request({{"cmd", "retry"}, {"job", "lines"}})["requeued"], 3);
  ASSERT_EQ(d.ctl({"start", "lines"}).exit_code, 0);
  Json drained = d.request({{"cmd", "wait"}, {"job", "lines"}, {"drained", true}});
  EXPECT_EQ(drained["ok"], true);
  EXPECT_EQ(d.request({{"cmd", "stats"}, {"job", "lines"}})["jobs"]["lines"]["ok"], 3);
}

}  // namespace
}  // namespace corral::testing

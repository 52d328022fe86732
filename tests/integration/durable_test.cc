// Durable jobs (queue.durable) through a real corrald: tasks acknowledged
// are on disk and survive a kill -9 of corrald, a task that was running is
// charged its attempt, kept results are read back with `results`, and a
// damaged spool, a full disk and a second corrald on one state_dir are each
// refused with a clear reason.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/support/file_io.h"
#include "tests/support/load.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// A durable job "d" of corral-worker's echo handler; WORKERS 0 keeps every
// task queued.
std::string durable_job(int workers, const std::string& extra = "",
                        const std::string& channel = "shm") {
  return "jobs:\n  d:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
         ", --handler, echo]\n    workers: " + std::to_string(workers) +
         "\n    channel: " + channel + "\n    queue: {durable: true}\n" + extra;
}

std::string with_sink(const Daemon& d) {
  return "    sink: {file: " + d.dir().file("sink") + "}\n";
}

// The sink's lines, by payload (echo's result).
// The ok results of a sink, by result. A line cut short by a kill -9 in the
// middle of a write is on a line of its own (corrald ends it before it
// appends) and is skipped: its task had not been recorded as finished, so
// it ran again.
std::map<std::string, int> sink_counts(const std::string& path) {
  std::map<std::string, int> counts;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    Json result = Json::parse(line, nullptr, false);
    if (result.is_discarded()) continue;
    if (result["status"] == "ok") ++counts[result["result"].get<std::string>()];
  }
  return counts;
}

std::vector<Json> lines_of(const std::string& out) {
  std::vector<Json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(Json::parse(line));
  return lines;
}

TEST(DurableTest, ResultsAreKeptAndReadBackByCursorAndSubmit) {
  Daemon d(durable_job(2));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> first, second;
  for (int i = 0; i < 100; ++i) first.push_back("a" + std::to_string(i));
  for (int i = 0; i < 10; ++i) second.push_back("b" + std::to_string(i));
  std::vector<Json> got = d.submit("d", first);
  ASSERT_EQ(got.size(), 101u);
  EXPECT_EQ(got.back()["submitted"], 100);
  got = d.submit("d", second);
  ASSERT_EQ(got.size(), 11u);
  EXPECT_TRUE(std::filesystem::exists(d.state_dir_path() + "/spool/d.sqlite"));

  RunResult all = d.ctl({"--json", "results", "d"});
  std::vector<Json> kept = lines_of(all.out);
  ASSERT_EQ(kept.size(), 111u) << all.out << all.err;
  std::set<uint64_t> cursors;
  for (size_t i = 0; i < 110; ++i) {
    EXPECT_EQ(kept[i]["status"], "ok");
    cursors.insert(kept[i]["cursor"].get<uint64_t>());
  }
  EXPECT_EQ(cursors.size(), 110u);
  EXPECT_EQ(kept.back()["end"], true);
  // After a cursor: only what came later.
  uint64_t middle = kept[49]["cursor"];
  std::vector<Json> later =
      lines_of(d.ctl({"--json", "results", "d", "--since", std::to_string(middle)}).out);
  EXPECT_EQ(later.size(), 61u);
  // One submit's: the ids of the second (submit numbers count from 1).
  std::vector<Json> of_second = lines_of(d.ctl({"--json", "results", "d", "--submit", "2"}).out);
  ASSERT_EQ(of_second.size(), 11u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(of_second[i]["submit"], 2);
    EXPECT_EQ(of_second[i]["result"].get<std::string>()[0], 'b');
  }
}

// A submitter cut off (here: one that never waited) picks up its submit's
// results with `results --submit S --follow`, which ends once the last of
// them is on disk.
TEST(DurableTest, ResultsOfASubmitAreFollowedToTheirEnd) {
  Daemon d(durable_job(1, "    autostart: false\n"));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back("f" + std::to_string(i));
  std::vector<Json> got = d.submit("d", tasks, false);
  ASSERT_EQ(got.back()["submitted"], 20);
  RunResult followed;
  std::thread follower([&] {
    followed = d.ctl({"--json", "results", "d", "--submit", "1", "--follow"});
  });
  std::this_thread::sleep_for(scaled(300ms));
  RunResult started = d.ctl({"start", "d"});
  EXPECT_EQ(started.exit_code, 0) << started.err;
  follower.join();
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  std::vector<Json> lines = lines_of(followed.out);
  ASSERT_EQ(lines.size(), 21u) << followed.out << followed.err << d.daemon_log();
  std::set<std::string> results;
  for (size_t i = 0; i < 20; ++i) results.insert(lines[i]["result"].get<std::string>());
  EXPECT_EQ(results, std::set<std::string>(tasks.begin(), tasks.end()));
  EXPECT_EQ(lines.back()["end"], true);
}

// A sink whose last line a kill -9 cut short: corrald ends that line
// before it appends, says so, and every result after it is a whole line.
TEST(DurableTest, ASinkLineCutShortByACrashIsEndedBeforeMoreAreAppended) {
  Daemon d(durable_job(1));
  d.rewrite_config(durable_job(1, with_sink(d)));
  const std::string cut = R"({"attempts":1,"id":7,"result":"ha)";
  write_file(d.dir().file("sink"), "{\"whole\":1}\n" + cut);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<Json> got = d.submit("d", {"a", "b", "c"}, false);  // results to the sink
  ASSERT_EQ(got.back()["submitted"], 3) << d.daemon_log();
  Json drained = d.request({{"cmd", "wait"}, {"job", "d"}, {"drained", true}, {"timeout_s", 30}});
  ASSERT_TRUE(drained.value("ok", false)) << drained;
  const std::string sink = read_file(d.dir().file("sink"));
  std::istringstream lines(sink);
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  ASSERT_EQ(all.size(), 5u) << sink;
  EXPECT_EQ(all[1], cut) << sink;
  for (size_t i = 2; i < all.size(); ++i) {
    Json result = Json::parse(all[i], nullptr, false);
    EXPECT_FALSE(result.is_discarded()) << all[i];
  }
  EXPECT_EQ(sink.back(), '\n');
  EXPECT_THAT(d.daemon_log(), HasSubstr("its last line was cut short"));
}

TEST(DurableTest, AcknowledgedTasksSurviveKillNineAndRunAfterTheRestart) {
  Daemon d(durable_job(0));
  d.rewrite_config(durable_job(0, with_sink(d)));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> tasks;
  for (int i = 0; i < 300; ++i) tasks.push_back("t" + std::to_string(i));
  std::vector<Json> got = d.submit("d", tasks, false);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back()["submitted"], 300) << got.back();
  d.kill9();

  d.rewrite_config(durable_job(2, with_sink(d)));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Json drained = d.request({{"cmd", "wait"}, {"job", "d"}, {"drained", true}, {"timeout_s", 30}});
  ASSERT_TRUE(drained.value("ok", false)) << drained;
  std::map<std::string, int> sink = sink_counts(d.dir().file("sink"));
  EXPECT_EQ(sink.size(), 300u);
  for (const auto& [payload, count] : sink) EXPECT_EQ(count, 1) << payload;
  EXPECT_THAT(d.daemon_log(), HasSubstr("300 unfinished tasks queued again from spool"));
  // Ids go on from where the spool left them.
  Json stats = d.request({{"cmd", "stats"}, {"job", "d"}})["jobs"]["d"];
  EXPECT_EQ(stats["submitted"], 300);
  EXPECT_EQ(stats["ok"], 300);
}

// A submit's number names its results (`results --submit S`): once said, a
// later corrald never gives it out again, even for a submit of no tasks.
TEST(DurableTest, ASubmitNumberIsNeverGivenTwiceEvenForAnEmptySubmit) {
  Daemon d(durable_job(0));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string empty = d.dir().file("empty");
  write_file(empty, "");
  auto submit_number = [&] {
    RunResult r = d.ctl({"--json", "submit", "d", "--file", empty});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    Json reply = Json::parse(r.out);
    EXPECT_EQ(reply["submitted"], 0) << r.out;
    return reply["submit"].get<uint64_t>();
  };
  const uint64_t first = submit_number();
  const uint64_t second = submit_number();
  EXPECT_GT(second, first);
  d.kill9();
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_GT(submit_number(), second);
}

// More unfinished tasks than the queue holds: corrald keeps queue.capacity
// of them in memory and the rest in the spool, loaded as room frees.
TEST(DurableTest, ABacklogBeyondTheQueueWaitsInTheSpool) {
  auto job = [](int workers, int capacity, const std::string& extra) {
    return "jobs:\n  d:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
           ", --handler, echo]\n    workers: " + std::to_string(workers) +
           "\n    channel: shm\n    queue: {durable: true, capacity: " + std::to_string(capacity) +
           "}\n" + extra;
  };
  Daemon d(job(0, 1000, ""));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> tasks;
  for (int i = 0; i < 500; ++i) tasks.push_back("s" + std::to_string(i));
  ASSERT_EQ(d.submit("d", tasks, false).back()["submitted"], 500);
  d.kill9();
  d.rewrite_config(job(0, 50, with_sink(d)));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Json stats = d.request({{"cmd", "stats"}, {"job", "d"}})["jobs"]["d"];
  EXPECT_EQ(stats["queued"], 50) << stats;
  EXPECT_EQ(stats["spooled"], 450) << stats;
  d.rewrite_config(job(2, 50, with_sink(d)));
  Json reloaded = d.request({{"cmd", "update"}});
  ASSERT_TRUE(reloaded.value("ok", false)) << reloaded;
  Json drained = d.request({{"cmd", "wait"}, {"job", "d"}, {"drained", true}, {"timeout_s", 30}});
  ASSERT_TRUE(drained.value("ok", false)) << drained;
  stats = d.request({{"cmd", "stats"}, {"job", "d"}})["jobs"]["d"];
  EXPECT_EQ(stats["spooled"], 0) << stats;
  EXPECT_EQ(sink_counts(d.dir().file("sink")).size(), 500u);
}

TEST(DurableTest, ATaskRunningAtTheCrashIsChargedItsAttempt) {
  const std::string sleeper = "jobs:\n  d:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
                              ", --handler, sleep]\n    channel: shm\n"
                              "    queue: {durable: true, prefetch: 1}\n";
  Daemon d(sleeper);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult submitted = d.ctl({"submit", "d", "--data", "60000"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  ASSERT_TRUE(wait_until([&] {
    return d.request({{"cmd", "stats"}, {"job", "d"}})["jobs"]["d"]["in_flight"] == 1;
  }));
  // The dispatch is committed at the end of the loop's turn.
  std::this_thread::sleep_for(scaled(200ms));
  d.kill9();
  d.rewrite_config("jobs:\n  d:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
                   ", --handler, echo]\n    channel: shm\n    queue: {durable: true}\n" +
                   with_sink(d));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return !read_file(d.dir().file("sink")).empty(); }));
  Json result = Json::parse(read_file(d.dir().file("sink")));
  EXPECT_EQ(result["status"], "ok");
  EXPECT_EQ(result["attempts"], 2) << result;
}

TEST(DurableTest, ASecondCorraldOnTheSameStateDirIsRefused) {
  Daemon first(durable_job(0));
  ASSERT_TRUE(first.start()) << first.daemon_log();
  Daemon second(durable_job(0), "  state_dir: " + first.state_dir_path() + "\n");
  EXPECT_FALSE(second.start());
  EXPECT_THAT(second.daemon_log(), HasSubstr("in use by another corrald"));
}

TEST(DurableTest, ADamagedSpoolStopsOnlyItsJob) {
  Daemon d(durable_job(1) + "  plain:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
           ", --handler, echo]\n    channel: shm\n");
  std::filesystem::create_directories(d.state_dir_path() + "/spool");
  chmod(d.state_dir_path().c_str(), 0700);
  chmod((d.state_dir_path() + "/spool").c_str(), 0700);
  write_file(d.state_dir_path() + "/spool/d.sqlite", std::string(8192, 'x'));
  chmod((d.state_dir_path() + "/spool/d.sqlite").c_str(), 0600);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Json refused = d.request({{"cmd", "submit"}, {"job", "d"}});
  EXPECT_THAT(refused.value("error", ""), HasSubstr("d.sqlite")) << refused;
  EXPECT_THAT(d.daemon_log(), HasSubstr("d.sqlite"));
  std::vector<Json> fine = d.submit("plain", {"x"});
  ASSERT_EQ(fine.size(), 2u);
  EXPECT_EQ(fine[0]["status"], "ok");
  // The file is left as it was, for a person to look at.
  EXPECT_EQ(read_file(d.state_dir_path() + "/spool/d.sqlite"), std::string(8192, 'x'));
}

TEST(DurableTest, AFullDiskRefusesNewTasksAndKeepsTheAcknowledgedOnes) {
  // corrald may write files of at most 2 MiB (its spool's WAL among them;
  // a pipe job, whose channel is no file).
  Daemon d(durable_job(0, "", "pipe"));
  d.set_wrapper({"/usr/bin/prlimit", "--fsize=2097152", "--"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> small = {"keep me", "and me"};
  std::vector<Json> kept = d.submit("d", small, false);
  ASSERT_EQ(kept.back()["submitted"], 2) << kept.back();
  std::vector<std::string> big(64, std::string(60000, 'z'));
  std::vector<Json> flood = d.submit("d", big, false);
  ASSERT_FALSE(flood.empty());
  int refused = 0;
  for (const Json& line : flood) {
    if (line.value("status", "") == "refused") {
      ++refused;
      EXPECT_THAT(line.value("error", ""), HasSubstr("d.sqlite")) << line;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(flood.back()["refused"], refused);
  EXPECT_LT(flood.back()["submitted"].get<int>(), 64);
  d.kill9();
  // Room again: what was acknowledged is there.
  d.set_wrapper({});
  d.rewrite_config(durable_job(1, with_sink(d), "pipe"));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Json drained = d.request({{"cmd", "wait"}, {"job", "d"}, {"drained", true}, {"timeout_s", 30}});
  ASSERT_TRUE(drained.value("ok", false)) << drained;
  std::map<std::string, int> sink = sink_counts(d.dir().file("sink"));
  EXPECT_EQ(sink["keep me"], 1);
  EXPECT_EQ(sink["and me"], 1);
  EXPECT_EQ(sink[std::string(60000, 'z')], flood.back()["submitted"].get<int>());
}

// 30 rounds: a client floods a durable job in submits of 50 tasks while
// corrald is killed at a random moment; after each restart, every task of
// every acknowledged submit has a result in the sink. Duplicates (a task that
// ran, then ran again because its result was not yet on disk) are counted
// and reported, never a lost task.
TEST(DurableTest, NothingAcknowledgedIsLostAcrossThirtyKillNines) {
  Daemon d(durable_job(2));
  const std::string job = durable_job(2, with_sink(d));
  d.rewrite_config(job);
  std::mt19937 random(20261205);
  std::set<std::string> acknowledged;
  // Under the sanitizers a fifth of the rounds (each start costs more).
  const int rounds = load(30);
  int next = 0;
  for (int round = 0; round < rounds; ++round) {
    ASSERT_TRUE(d.start()) << d.daemon_log();
    // Killed in the middle of whatever it does: taking a submit, committing,
    // running tasks, writing results.
    std::atomic<bool> killed{false};
    const auto after = std::chrono::milliseconds(50 + random() % 400);
    std::thread killer([&] {
      std::this_thread::sleep_for(after);
      d.kill9();
      killed = true;
    });
    while (!killed) {
      std::vector<std::string> tasks;
      for (int i = 0; i < 50; ++i) tasks.push_back("r" + std::to_string(next++));
      std::vector<Json> got;
      try {
        got = d.submit("d", tasks, false);
      } catch (const std::exception&) {
        break;  // corrald is gone
      }
      if (!got.empty() && got.back().value("end", false) && got.back()["submitted"] == 50) {
        acknowledged.insert(tasks.begin(), tasks.end());
      }
    }
    killer.join();
  }
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Json drained = d.request({{"cmd", "wait"}, {"job", "d"}, {"drained", true}, {"timeout_s", 60}});
  ASSERT_TRUE(drained.value("ok", false)) << drained;
  std::map<std::string, int> sink = sink_counts(d.dir().file("sink"));
  size_t lost = 0, duplicated = 0;
  for (const std::string& task : acknowledged) {
    auto it = sink.find(task);
    if (it == sink.end()) {
      ++lost;
    } else if (it->second > 1) {
      duplicated += static_cast<size_t>(it->second - 1);
    }
  }
  EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged tasks";
  EXPECT_GT(acknowledged.size(), 0u);
  std::printf("durable: %zu tasks acknowledged over %d kill -9s, %zu lost, %zu run twice\n",
              acknowledged.size(), rounds, lost, duplicated);
}

}  // namespace
}  // namespace corral::testing

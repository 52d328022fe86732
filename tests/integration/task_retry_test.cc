// Task retries, deadlines and cancels through a real corrald and real
// workers: a Python worker (the SDK over a pipe) that stamps each task's
// start in a file, so that the tests see what reached a worker and when.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// Each task appends "MONOTONIC_SECONDS PAYLOAD" to STARTS before it runs;
// "fail" raises, "sleep S" sleeps S seconds, anything else is echoed.
const char* kStampingWorker = R"(
import os, sys, time, corral_worker
starts = sys.argv[1]
def handle(task):
    with open(starts, "a") as f:
        f.write("%.6f %s\n" % (time.monotonic(), task))
    if task == "fail":
        raise RuntimeError("failing on purpose")
    if task.startswith("sleep "):
        time.sleep(float(task[6:]))
    return task
corral_worker.serve(handle)
)";

struct Start {
  double at = 0;
  std::string payload;
};

std::vector<Start> read_starts(const std::string& path) {
  std::vector<Start> starts;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    auto space = line.find(' ');
    if (space == std::string::npos) continue;
    starts.push_back({std::stod(line.substr(0, space)), line.substr(space + 1)});
  }
  return starts;
}

class TaskRetryTest : public ::testing::Test {
 protected:
  // A job "w" of WORKERS Python workers with QUEUE (YAML lines under queue:).
  std::unique_ptr<Daemon> start_daemon(const std::string& queue, int workers = 1) {
    const std::string script = dir.file("worker.py");
    write_file(script, kStampingWorker);
    auto d = std::make_unique<Daemon>("jobs:\n  w:\n    command: [python3, " + script + ", " +
                                      starts() + "]\n" + "    workers: " + std::to_string(workers) +
                                      "\n    channel: pipe\n" +
                                      "    env: {PYTHONPATH: " + std::string(CORRAL_SOURCE_DIR) +
                                      "/python}\n" + "    queue:\n" + queue);
    if (!d->start()) {
      ADD_FAILURE() << d->daemon_log();
      return nullptr;
    }
    EXPECT_TRUE(d->wait_state("w:0", "RUNNING"));
    return d;
  }
  std::string starts() const { return dir.file("starts.txt"); }
  TempDir dir;
};

TEST_F(TaskRetryTest, AFailedTaskIsRetriedAfterBackoffsWithinTheJitter) {
  auto d = start_daemon(
      "      max_attempts: 4\n"
      "      retry: {on: [failed], backoff: {initial: 300ms, max: 10s, multiplier: 2, jitter: "
      "0.2}}\n");
  ASSERT_TRUE(d);
  std::vector<Json> lines = d->submit("w", {"fail", "fine"});
  ASSERT_EQ(lines.size(), 3u);
  std::map<std::string, Json> by_result;
  for (size_t i = 0; i + 1 < lines.size(); ++i) by_result[lines[i]["status"]] = lines[i];
  ASSERT_TRUE(by_result.contains("failed")) << lines[0] << lines[1];
  EXPECT_EQ(by_result["failed"]["attempts"], 4);
  EXPECT_THAT(by_result["failed"]["result"].get<std::string>(), HasSubstr("failing on purpose"));
  EXPECT_EQ(by_result["ok"]["attempts"], 1);

  std::vector<double> fails;
  for (const Start& s : read_starts(starts())) {
    if (s.payload == "fail") fails.push_back(s.at);
  }
  ASSERT_EQ(fails.size(), 4u);
  // Waits of 300ms, 600ms and 1.2s, each within +-20%: never earlier; later
  // only by the time it takes to hand the task over and start it.
  const double nominal[] = {0.3, 0.6, 1.2};
  for (size_t i = 0; i < 3; ++i) {
    double gap = fails[i + 1] - fails[i];
    EXPECT_GE(gap, nominal[i] * 0.8) << "wait " << i;
    EXPECT_LE(gap, nominal[i] * 1.2 + static_cast<double>(scaled(250ms).count()) / 1000)
        << "wait " << i;
  }
  Json stats = d->request({{"cmd", "stats"}, {"job", "w"}})["jobs"]["w"];
  EXPECT_EQ(stats["redelivered"], 3);
  EXPECT_EQ(stats["delayed"], 0);
  EXPECT_EQ(stats["failed"], 1);
}

TEST_F(TaskRetryTest, RetriesWaitAsDelayedAndAreCounted) {
  auto d = start_daemon(
      "      max_attempts: 2\n"
      "      retry: {on: [failed], backoff: {initial: 1h, max: 1h}}\n");
  ASSERT_TRUE(d);
  RunResult submitted = d->ctl({"submit", "w", "--data", "fail"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  ASSERT_TRUE(wait_until([&] {
    return d->request({{"cmd", "stats"}, {"job", "w"}})["jobs"]["w"]["delayed"] == 1;
  })) << d->request({{"cmd", "stats"}, {"job", "w"}}).dump();
  Json stats = d->request({{"cmd", "stats"}, {"job", "w"}})["jobs"]["w"];
  EXPECT_EQ(stats["queued"], 0);
  EXPECT_EQ(stats["in_flight"], 0);
  EXPECT_EQ(stats["submitted"], 1);
  // status --json counts it with each worker of its job.
  RunResult status = d->ctl({"--json", "status", "w"});
  Json workers = Json::parse(status.out);
  ASSERT_TRUE(workers.is_array() && !workers.empty()) << status.out;
  EXPECT_EQ(workers[0]["job_tasks"],
            (Json{{"queued", 0}, {"delayed", 1}, {"in_flight", 0}, {"spooled", 0}}))
      << status.out;
  EXPECT_EQ(workers[0]["tasks_held"], 0);
  EXPECT_EQ(workers[0]["tasks_failed"], 1);
  // A waiting retry is not drained.
  Json waited = d->request({{"cmd", "wait"}, {"job", "w"}, {"drained", true}, {"timeout_s", 0.2}});
  EXPECT_FALSE(waited.value("ok", true)) << waited;
  EXPECT_THAT(waited.value("error", ""), HasSubstr("1 waiting to retry"));
  // Cancelled while it waits: it never runs again.
  Json cancelled = d->request({{"cmd", "cancel"}, {"job", "w"}, {"queued", true}});
  EXPECT_EQ(cancelled["cancelled"], 1) << cancelled;
  stats = d->request({{"cmd", "stats"}, {"job", "w"}})["jobs"]["w"];
  EXPECT_EQ(stats["delayed"], 0);
  EXPECT_EQ(stats["cancelled"], 1);
}

TEST_F(TaskRetryTest, TasksNotStartedBeforeTheirDeadlineExpire) {
  auto d = start_daemon("      prefetch: 1\n");
  ASSERT_TRUE(d);
  // The only worker is busy for a second; the next tasks may wait 200ms.
  RunResult busy = d->ctl({"submit", "w", "--data", "sleep 1"});
  ASSERT_EQ(busy.exit_code, 0) << busy.err;
  ASSERT_TRUE(wait_until([&] { return !read_starts(starts()).empty(); }));
  std::vector<Json> lines = d->submit("w", {"a", "b"}, true, {}, Json{{"deadline_s", 0.2}});
  ASSERT_EQ(lines.size(), 3u);
  lines.pop_back();
  for (const Json& line : lines) {
    EXPECT_EQ(line["status"], "expired") << line;
    EXPECT_EQ(line["attempts"], 0);
  }
  for (const Start& s : read_starts(starts())) EXPECT_EQ(s.payload, "sleep 1");
  EXPECT_EQ(d->request({{"cmd", "stats"}, {"job", "w"}})["jobs"]["w"]["expired"], 2);
}

TEST_F(TaskRetryTest, ACancelledTaskNeverReachesAWorkerAfterTheCancelIsAcknowledged) {
  auto d = start_daemon("      prefetch: 1\n");
  ASSERT_TRUE(d);
  std::vector<std::string> tasks = {"sleep 0.5"};
  for (int i = 0; i < 200; ++i) tasks.push_back("t" + std::to_string(i));
  std::vector<Json> lines = d->submit("w", tasks, true, [&] {
    ASSERT_TRUE(wait_until([&] { return !read_starts(starts()).empty(); }));
    Json cancelled = d->request({{"cmd", "cancel"}, {"job", "w"}, {"queued", true}});
    EXPECT_TRUE(cancelled.value("ok", false)) << cancelled;
    EXPECT_GE(cancelled["cancelled"].get<int>(), 190) << cancelled;
  });
  ASSERT_EQ(lines.size(), 202u);
  std::map<std::string, int> statuses;
  for (size_t i = 0; i + 1 < lines.size(); ++i) ++statuses[lines[i]["status"]];
  EXPECT_GE(statuses["cancelled"], 190);
  EXPECT_EQ(statuses["ok"] + statuses["cancelled"], 201);
  // What started is what ended ok: no cancelled task was run.
  EXPECT_EQ(read_starts(starts()).size(), static_cast<size_t>(statuses["ok"]));
  EXPECT_EQ(lines.back()["submitted"], 201);
}

TEST_F(TaskRetryTest, CancelRunningStopsTheWorkerAndDropsTheResult) {
  auto d = start_daemon("      prefetch: 1\n");
  ASSERT_TRUE(d);
  pid_t before = d->worker_pid("w:0");
  std::vector<Json> lines = d->submit("w", {"sleep 30", "after"}, true, [&] {
    ASSERT_TRUE(wait_until([&] { return !read_starts(starts()).empty(); }));
    // Task ids start at 1 in a fresh corrald: the sleeping one is 1.
    Json plain = d->request({{"cmd", "cancel"}, {"job", "w"}, {"ids", {1}}});
    EXPECT_EQ(plain["running"], Json::array({1})) << plain;
    Json stopping = d->request({{"cmd", "cancel"}, {"job", "w"}, {"ids", {1}}, {"running", true}});
    EXPECT_EQ(stopping["stopping"], 1) << stopping;
  });
  ASSERT_EQ(lines.size(), 3u);
  std::map<std::string, Json> by_seq;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    by_seq[std::to_string(lines[i]["seq"].get<int>())] = lines[i];
  }
  EXPECT_EQ(by_seq["0"]["status"], "cancelled") << by_seq["0"];
  EXPECT_EQ(by_seq["1"]["status"], "ok") << by_seq["1"];
  // The worker was stopped and started again, at once: a cancel is not a
  // failure of the worker.
  EXPECT_TRUE(d->wait_state("w:0", "RUNNING"));
  EXPECT_NE(d->worker_pid("w:0"), before);
  EXPECT_EQ(d->worker("w:0")["restarts"], 1);
  EXPECT_THAT(d->daemon_log(), HasSubstr("its task was cancelled"));
}

TEST_F(TaskRetryTest, BadCancelRequestsAreRefused) {
  auto d = start_daemon("");
  ASSERT_TRUE(d);
  Json none = d->request({{"cmd", "cancel"}, {"job", "w"}});
  EXPECT_THAT(none.value("error", ""), HasSubstr("exactly one of"));
  Json two = d->request({{"cmd", "cancel"}, {"job", "w"}, {"ids", {1}}, {"queued", true}});
  EXPECT_THAT(two.value("error", ""), HasSubstr("exactly one of"));
  Json bad = d->request({{"cmd", "cancel"}, {"job", "w"}, {"ids", {"x"}}});
  EXPECT_THAT(bad.value("error", ""), HasSubstr("task ids"));
  Json unknown = d->request({{"cmd", "cancel"}, {"job", "w"}, {"ids", {77}}});
  EXPECT_EQ(unknown["unknown"], Json::array({77})) << unknown;
  Json deadline = d->request({{"cmd", "submit"}, {"job", "w"}, {"deadline_s", 0}});
  EXPECT_THAT(deadline.value("error", ""), HasSubstr("deadline_s"));
}

}  // namespace
}  // namespace corral::testing

// Tasks through real corrald and real workers: shm, pipe (lines, length),
// an unmodified Unix filter, the Python SDK; no task lost when workers are
// killed; poison tasks end dead; idle workers stop by sentinel.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/file_io.h"
#include "tests/support/load.h"
#include "tests/support/temp_dir.h"
#include "tests/support/text.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> numbers(int n, int modulo) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(std::to_string(i % modulo));
  return out;
}

// Checks that every task came back exactly once, ok, with the right sum.
void expect_all_sums(const std::vector<Json>& lines, int n, int modulo) {
  ASSERT_FALSE(lines.empty());
  const Json& end = lines.back();
  ASSERT_EQ(end.value("end", false), true) << end.dump();
  EXPECT_EQ(end["submitted"], n);
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const Json& r = lines[i];
    ASSERT_EQ(r["status"], "ok") << r.dump();
    auto seq = r["seq"].get<size_t>();
    ASSERT_LT(seq, seen.size());
    ++seen[seq];
    ASSERT_EQ(r["result"], sum_below(static_cast<int>(seq % static_cast<size_t>(modulo))))
        << r.dump();
  }
  EXPECT_EQ(lines.size(), static_cast<size_t>(n) + 1);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n);
}

class ChannelTest : public ::testing::TestWithParam<std::string> {};

// 100,000 tasks (a fifth under sanitizers: tests/support/load.h).
TEST_P(ChannelTest, ManySumTasksComeBackCompleteAndCorrect) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    workers: 2\n" + GetParam() + "\n    shared: {values: {processed: u64}}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sums:1", "RUNNING")) << d.daemon_log();
  const int n = corral::testing::load(100000);
  auto lines = d.submit("sums", numbers(n, 1000));
  expect_all_sums(lines, n, 1000);
  Json stats = d.request({{"cmd", "stats"}, {"job", "sums"}})["jobs"]["sums"];
  EXPECT_EQ(stats["ok"], n);
  EXPECT_EQ(stats["queued"], 0);
  EXPECT_EQ(stats["in_flight"], 0);
  if (GetParam().find("shm") != std::string::npos) {
    EXPECT_EQ(d.request({{"cmd", "shared"}, {"job", "sums"}})["values"]["processed"], n);
  }
}

INSTANTIATE_TEST_SUITE_P(Channels, ChannelTest,
                         ::testing::Values("    channel: shm",
                                           "    channel: shm\n    shm: {spin: off}",
                                           "    channel: shm\n    shm: {spin: 2ms}",
                                           "    channel: pipe\n    pipe: {framing: lines}",
                                           "    channel: pipe\n    pipe: {framing: length}"),
                         channel_test_name);

// A submit that asks for batches gets runs of ok results as a batch line
// and that many results after it, each a JSON string; unpacked, they are
// the results it gets without, and without asking it gets no batch line.
TEST(TaskFeedTest, ASubmitThatAsksForBatchesGetsItsOkResultsInThem) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    workers: 2\n    channel: shm\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sums:1", "RUNNING")) << d.daemon_log();
  const int n = corral::testing::load(20000);
  auto lines = d.submit("sums", numbers(n, 1000), true, nullptr, {{"batches", true}});
  std::vector<Json> results;
  size_t batches = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].is_object() || !lines[i].contains("batch")) {
      results.push_back(lines[i]);
      continue;
    }
    ++batches;
    const Json& batch = lines[i];
    const auto count = batch["batch"].get<uint64_t>();
    ASSERT_GE(count, 2u) << batch.dump();  // one alone is a line
    ASSERT_LT(i + count, lines.size() - 1) << "a batch runs past the end line";
    uint64_t bytes = 0;
    for (uint64_t k = 0; k < count; ++k) {
      const Json& result = lines[i + 1 + k];
      ASSERT_TRUE(result.is_string()) << result.dump();
      bytes += result.dump().size() + 1;
      results.push_back(Json{{"id", batch["id"].get<uint64_t>() + k},
                             {"seq", batch["seq"].get<uint64_t>() + k},
                             {"status", "ok"},
                             {"result", result},
                             {"attempts", batch["attempts"]}});
    }
    EXPECT_EQ(bytes, batch["bytes"].get<uint64_t>()) << batch.dump();
    i += count;
  }
  EXPECT_GT(batches, 0u);
  expect_all_sums(results, n, 1000);
  for (const Json& line : d.submit("sums", numbers(2000, 1000))) {
    ASSERT_FALSE(line.contains("batch")) << line.dump();
  }
}

// utime + stime of PID in clock ticks (/proc/PID/stat), -1 when gone.
long cpu_ticks(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// A job's spin polls only around tasks: once none came for the spin, the
// worker and corrald sleep, and an idle second costs them no CPU.
TEST(ShmSpinTest, AnIdleJobWithALongSpinCostsNoCpu) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    channel: shm\n    shm: {spin: 10ms}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sums:0", "RUNNING")) << d.daemon_log();
  auto lines = d.submit("sums", numbers(2000, 1000));
  expect_all_sums(lines, 2000, 1000);
  const pid_t worker = d.worker_pid("sums:0");
  std::this_thread::sleep_for(100ms);  // past the spin
  const long worker_before = cpu_ticks(worker), daemon_before = cpu_ticks(d.pid());
  std::this_thread::sleep_for(1s);
  const long hz = sysconf(_SC_CLK_TCK);
  // A spinning process would use about a whole second (hz ticks).
  EXPECT_LT(cpu_ticks(worker) - worker_before, hz / 10);
  EXPECT_LT(cpu_ticks(d.pid()) - daemon_before, hz / 10);
}

class KillTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KillTest, NoTaskIsLostWhileWorkersAreKilled) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    workers: 2\n" + GetParam() +
           "\n    queue: {max_attempts: 100}\n"
           "    restart: {max_restarts: 1000, backoff: {initial: 1ms, max: 10ms}}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sums:1", "RUNNING")) << d.daemon_log();
  std::atomic<bool> done{false};
  int kills = 0;
  std::thread killer([&] {
    std::mt19937 random(7);
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + random() % 30));
      auto process = d.worker_process("sums:" + std::to_string(random() % 2));
      if (process && process->signal(SIGKILL)) ++kills;
    }
  });
  // Big enough tasks that workers hold some when killed; 100,000 of them (a
  // fifth under sanitizers).
  const int n = corral::testing::load(100000);
  auto lines = d.submit("sums", numbers(n, 20000));
  done = true;
  killer.join();
  expect_all_sums(lines, n, 20000);
  Json stats = d.request({{"cmd", "stats"}, {"job", "sums"}})["jobs"]["sums"];
  EXPECT_GT(kills, 0);
  EXPECT_GT(stats["redelivered"].get<int>(), 0) << "kills: " << kills;
  EXPECT_EQ(stats["dead"], 0);
  EXPECT_EQ(stats["submitted"], stats["ok"]);
}

INSTANTIATE_TEST_SUITE_P(Channels, KillTest,
                         ::testing::Values("    channel: shm",
                                           "    channel: pipe\n    pipe: {framing: length}",
                                           "    channel: pipe\n    pipe: {framing: lines}\n"
                                           "    start: {settle: 0}"),
                         channel_test_name);

// How many result lines of a submit (all but its end line) have each status;
// every dead one must have had DEAD_ATTEMPTS attempts and name DEAD_WHY.
std::map<std::string, int> statuses_of(const std::vector<Json>& lines, int dead_attempts,
                                       const std::string& dead_why) {
  std::map<std::string, int> counts;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const std::string status = lines[i]["status"];
    ++counts[status];
    if (status == "dead") {
      EXPECT_EQ(lines[i]["attempts"], dead_attempts);
      EXPECT_THAT(lines[i]["result"].get<std::string>(), HasSubstr(dead_why));
    }
  }
  return counts;
}

TEST(TaskFeedTest, ACrashingTaskEndsDeadAfterMaxAttemptsWhileTheRestFinish) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum, --crash-on, '13'") +
           "\n    workers: 2\n    channel: shm\n    queue: {max_attempts: 3}\n"
           "    restart: {max_restarts: 100, backoff: {initial: 1ms, max: 20ms}}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("sums", numbers(200, 20));
  ASSERT_FALSE(lines.empty());
  auto statuses = statuses_of(lines, 3, "SIGABRT");
  EXPECT_EQ(statuses["dead"], 10);  // every "13"
  EXPECT_EQ(statuses["ok"], 190);
  Json letters = d.request({{"cmd", "dead"}, {"job", "sums"}});
  EXPECT_EQ(letters["dead"].size(), 10u);
  EXPECT_EQ(letters["dead"][0]["payload"], "13");
}

// A shm worker sends a chunk's results gathered in RESULTS frames: when a
// task kills it, the results it had gathered are lost with it, and the
// task that was running is told from them by the count in its slot. With
// one attempt a task, a task charged by mistake would end dead: only the
// poison ones may.
TEST(TaskFeedTest, ACrashInAChunkChargesTheTaskThatRanNotTheResultsLostWithIt) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum, --crash-on, '37'") +
           "\n    workers: 1\n    channel: shm\n    queue: {max_attempts: 1}\n"
           "    restart: {max_restarts: 100, backoff: {initial: 1ms, max: 20ms}}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("sums", numbers(400, 100));
  ASSERT_EQ(lines.size(), 401u) << d.daemon_log();
  auto statuses = statuses_of(lines, 1, "SIGABRT");
  EXPECT_EQ(statuses["dead"], 4) << d.daemon_log();  // each "37"
  EXPECT_EQ(statuses["ok"], 396);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i]["status"] == "dead") {
      EXPECT_EQ(lines[i]["seq"].get<int>() % 100, 37) << lines[i].dump();
    }
  }
}

// Ten worker-killing tasks among 510 on two workers, with the default restart
// settings: each poison task pays with its attempts and ends dead; the
// workers are not throttled into BACKOFF for it, nor made FATAL.
TEST(TaskFeedTest, PoisonTasksEndDeadWithoutThrottlingThePool) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum, --crash-on, '13'") +
           "\n    workers: 2\n    channel: shm\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> payloads;
  for (int i = 0; i < 510; ++i) payloads.push_back(i % 51 == 50 ? "13" : "7");
  auto lines = d.submit("sums", payloads);
  ASSERT_EQ(lines.size(), 511u) << d.daemon_log();
  auto statuses = statuses_of(lines, 3, "SIGABRT");
  EXPECT_EQ(statuses["ok"], 500);
  EXPECT_EQ(statuses["dead"], 10);
  const std::string log = d.daemon_log();
  EXPECT_EQ(corral::testing::count_of(log, "-> FATAL"), 0u) << log;
  // A poison task's first kill may hit a process that has not finished a
  // task yet: that one is the worker's. Its later kills are the task's.
  EXPECT_LE(corral::testing::count_of(log, "-> BACKOFF"), 10u) << log;
  EXPECT_GE(corral::testing::count_of(log, "running a task; restarted at once"), 20u) << log;
  EXPECT_TRUE(d.wait_state("sums:0", "RUNNING"));
  EXPECT_TRUE(d.wait_state("sums:1", "RUNNING"));
}

// A job whose workers cannot start: submit --wait says so on stderr once,
// instead of hanging silently, and --timeout ends the wait; the task stays.
TEST(TaskFeedTest, SubmitWaitSaysWhyNothingRunsAndHonoursItsTimeout) {
  Daemon d("jobs:\n  broken:\n    command: [/bin/sh, -c, 'exit 2']\n    channel: pipe\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult run = d.ctl({"submit", "broken", "--data", "1", "--wait", "--timeout", "3s"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(corral::testing::count_of(run.err, "waiting: "), 1u) << run.err;
  EXPECT_THAT(run.err, HasSubstr("corralctl: waiting: broken has 0 of 1 worker running: broken:0 "))
      << run.err;
  // In BACKOFF ("exit status 2 (exited too quickly)...") or caught in
  // STARTING between two tries ("(its last process: exit status 2)").
  EXPECT_THAT(run.err, HasSubstr("exit status 2")) << run.err;
  EXPECT_THAT(run.err, HasSubstr("corralctl: submit: timed out after 3s with 0 results; the tasks "
                                 "without one stay queued in corrald (corralctl stats broken)"))
      << run.err;
  Json stats = d.request({{"cmd", "stats"}, {"job", "broken"}});
  EXPECT_EQ(stats["jobs"]["broken"]["queued"], 1) << stats;
}

// A job's queue lives in corrald's memory: what is queued when corrald
// stops is dropped, and the log says how many, per job.
TEST(TaskFeedTest, TasksQueuedAtShutdownAreCountedInTheLog) {
  Daemon d("jobs:\n  sleepy:\n    command: " + worker_command("--handler, sleep") +
           "\n    channel: shm\n    queue: {prefetch: 1}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("sleepy:0", "RUNNING"));
  std::vector<std::string> payloads(50, "100");
  auto lines = d.submit("sleepy", payloads, false);
  ASSERT_EQ(lines.back()["submitted"], 50) << lines.back();
  EXPECT_EQ(d.stop(), 0);
  const std::string log = d.daemon_log();
  std::smatch dropped;
  ASSERT_TRUE(std::regex_search(
      log, dropped,
      std::regex(R"(sleepy: (\d+) queued tasks dropped \(they end dead\): corrald shut down)")))
      << log;
  EXPECT_GE(std::stoi(dropped[1]), 45) << log;
}

TEST(TaskFeedTest, FailedTasksAreReportedAndKept) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum, --fail-on, '7'") +
           "\n    channel: pipe\n    pipe: {framing: length}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("sums", {"6", "7", "8"});
  ASSERT_EQ(lines.size(), 4u);
  std::map<int, std::string> status;
  for (size_t i = 0; i < 3; ++i) status[lines[i]["seq"]] = lines[i]["status"];
  EXPECT_EQ(status[1], "failed");
  EXPECT_EQ(status[0], "ok");
  EXPECT_EQ(d.request({{"cmd", "retry"}, {"job", "sums"}})["requeued"], 1);
}

TEST(TaskFeedTest, SubmitTimingReportsEachTasksRunTime) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    channel: shm\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult timed = d.ctl({"submit", "sums", "--data", "6", "--data", "7", "--wait", "--timing"});
  ASSERT_EQ(timed.exit_code, 0) << timed.err;
  std::istringstream lines(timed.out);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    Json result = Json::parse(line);
    ASSERT_TRUE(result.contains("run_us")) << line;
    EXPECT_GT(result["run_us"].get<double>(), 0) << line;
  }
  EXPECT_EQ(n, 2);
  RunResult plain = d.ctl({"submit", "sums", "--data", "1", "--wait"});
  EXPECT_EQ(plain.out.find("run_us"), std::string::npos) << plain.out;
}

// corralctl's --ordered reads every result line for its seq; its ok results
// are ok all the same: exit 0, nothing on stderr, each line in task order.
TEST(TaskFeedTest, AnOrderedSubmitOfOkTasksExitsZeroWithItsLinesInOrder) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    workers: 2\n    channel: shm\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::vector<std::string> args = {"submit", "sums", "--wait", "--ordered"};
  for (int i = 0; i < 200; ++i) {
    args.push_back("--data");
    args.push_back(std::to_string(i));
  }
  RunResult ordered = d.ctl(args);
  EXPECT_EQ(ordered.exit_code, 0) << ordered.err;
  EXPECT_EQ(ordered.err, "");
  std::istringstream lines(ordered.out);
  int seq = 0;
  for (std::string line; std::getline(lines, line); ++seq) {
    Json result = Json::parse(line);
    EXPECT_EQ(result["seq"], seq) << line;
    EXPECT_EQ(result["status"], "ok") << line;
    EXPECT_EQ(result["result"], sum_below(seq)) << line;
  }
  EXPECT_EQ(seq, 200);
}

TEST(TaskFeedTest, ResultsAreValidJsonWhateverTheirBytes) {
  Daemon d("jobs:\n  echo:\n    command: " + worker_command("--handler, echo") +
           "\n    channel: shm\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::vector<std::string> payloads = {"plain 42",    "a \"quoted\" \\ word", "tab\there",
                                             "caf\xc3\xa9", "bad \xff byte",        ""};
  auto lines = d.submit("echo", payloads);
  ASSERT_EQ(lines.size(), payloads.size() + 1);
  std::map<size_t, std::string> results;
  for (size_t i = 0; i < payloads.size(); ++i) results[lines[i]["seq"]] = lines[i]["result"];
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i == 4) {
      EXPECT_EQ(results[i], "bad \xef\xbf\xbd byte");  // not UTF-8: U+FFFD
    } else {
      EXPECT_EQ(results[i], payloads[i]) << i;
    }
  }
}

TEST(TaskFeedTest, StopOfAnIdleJobEndsItsWorkersBySentinelWithExitZero) {
  for (std::string channel : {"shm", "pipe\n    pipe: {framing: length}", "pipe"}) {
    Daemon d("jobs:\n  idle:\n    command: " + worker_command("--handler, echo") +
             "\n    workers: 2\n    channel: " + channel + "\n    stop: {timeout: 10s}\n");
    ASSERT_TRUE(d.start()) << d.daemon_log();
    ASSERT_TRUE(d.wait_state("idle:1", "RUNNING")) << d.daemon_log();
    auto t0 = std::chrono::steady_clock::now();
    RunResult stop = d.ctl({"stop", "idle"});
    EXPECT_EQ(stop.exit_code, 0) << stop.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(5s)) << channel;
    for (const char* name : {"idle:0", "idle:1"}) {
      Json w = d.worker(name);
      EXPECT_EQ(w["state"], "STOPPED") << channel;
      EXPECT_EQ(w["exit_status"], 0) << channel << " " << w.dump();
    }
  }
}

TEST(TaskFeedTest, AnUnmodifiedUnixFilterIsAWorker) {
  Daemon d(R"(
jobs:
  calc:
    command: [bc, -l]
    channel: pipe
    pipe: {fds: stdio, framing: lines}
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("calc", {"2+2", "3*7", "scale=3; 1/4"});
  ASSERT_EQ(lines.size(), 4u);
  std::map<int, std::string> result;
  for (size_t i = 0; i < 3; ++i) result[lines[i]["seq"]] = lines[i]["result"];
  EXPECT_EQ(result[0], "4");
  EXPECT_EQ(result[1], "21");
  EXPECT_EQ(result[2], ".250");
}

TEST(TaskFeedTest, APythonSdkWorker) {
  for (std::string framing : {"lines", "length"}) {
    Daemon d("jobs:\n  py:\n    command: [python3, " + std::string(CORRAL_SOURCE_DIR) +
             "/examples/python_worker.py]\n    workers: 2\n    channel: pipe\n"
             "    pipe: {framing: " +
             framing + "}\n    env: {PYTHONPATH: " + std::string(CORRAL_SOURCE_DIR) + "/python}\n");
    ASSERT_TRUE(d.start()) << d.daemon_log();
    std::vector<std::string> tasks;
    for (int i = 0; i < 500; ++i) tasks.push_back("task number " + std::to_string(i));
    auto lines = d.submit("py", tasks);
    ASSERT_EQ(lines.size(), 501u) << framing << " " << lines.back().dump();
    for (size_t i = 0; i < 500; ++i) EXPECT_EQ(lines[i]["status"], "ok") << lines[i].dump();
  }
}

TEST(TaskFeedTest, BadSubmissionsGetClearErrors) {
  Daemon d("jobs:\n  plain:\n    command: [sleep, '1000']\n  small:\n    command: " +
           worker_command("--handler, echo") +
           "\n    channel: pipe\n    pipe: {framing: length}\n    queue: {max_task_bytes: 10}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto none = d.submit("plain", {"x"});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_THAT(none[0]["error"].get<std::string>(), HasSubstr("channel: none"));
  auto unknown = d.submit("nope", {"x"});
  EXPECT_EQ(unknown[0]["error"], "no such job: nope");
  auto big = d.submit("small", {"short", "this one is far too long", "ok"});
  ASSERT_EQ(big.size(), 4u);
  int refused = 0;
  for (const auto& line : big) {
    if (line.value("status", "") == "refused") {
      ++refused;
      EXPECT_EQ(line["seq"], 1);
      EXPECT_THAT(line["error"].get<std::string>(), HasSubstr("exceeds queue.max_task_bytes (10)"));
    }
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(big.back()["refused"], 1);
}

TEST(TaskFeedTest, AWorkerThatBreaksTheProtocolIsKilledAndItsTasksRedelivered) {
  // A "length" worker that writes garbage instead of frames.
  Daemon d(R"(
jobs:
  liar:
    command: [sh, -c, 'printf "\377\377\377\377garbage" >&4; sleep 1000']
    channel: pipe
    pipe: {framing: length}
    restart: {max_restarts: 2, backoff: {initial: 10ms}}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] {
    return d.daemon_log().find("protocol error") != std::string::npos;
  })) << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr("killing the worker"));
}

TEST(TaskFeedTest, AWorkerThatScribblesOnItsRingsIsKilled) {
  // An shm worker that overwrites the whole segment with 0xff bytes, then
  // wakes the daemon: the ring indexes it reads are impossible.
  Daemon d(R"yaml(
jobs:
  vandal:
    command: [python3, -c, "import mmap, os, time; size = os.fstat(3).st_size; m = mmap.mmap(3, size); m[:] = b'\\xff' * size; os.write(5, (1).to_bytes(8, 'little')); time.sleep(1000)"]
    channel: shm
    restart: {max_restarts: 1, backoff: {initial: 10ms}}
)yaml");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] {
    return d.daemon_log().find("corrupted its result ring") != std::string::npos;
  })) << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr("killing the worker"));
}

TEST(TaskFeedTest, ATaskPastTaskTimeoutHasItsWorkerKilledAndIsRedelivered) {
  Daemon d("jobs:\n  naps:\n    command: " + worker_command("--handler, sleep") +
           "\n    workers: 2\n    channel: shm\n"
           "    queue: {task_timeout: 200ms, max_attempts: 2, prefetch: 1}\n"
           "    restart: {backoff: {initial: 1ms}}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto t0 = std::chrono::steady_clock::now();
  auto lines = d.submit("naps", {"60000", "1", "2"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(10s));
  ASSERT_EQ(lines.size(), 4u);
  std::map<int, Json> by_seq;
  for (size_t i = 0; i < 3; ++i) by_seq[lines[i]["seq"]] = lines[i];
  EXPECT_EQ(by_seq[0]["status"], "dead");
  EXPECT_EQ(by_seq[0]["attempts"], 2);
  EXPECT_EQ(by_seq[1]["status"], "ok");
  EXPECT_EQ(by_seq[2]["status"], "ok");
  EXPECT_THAT(d.daemon_log(), HasSubstr("ran longer than queue.task_timeout (200ms)"));
}

// A queue at queue.capacity takes no more: the submitter's next tasks wait
// (submitted stays below what it sent) instead of being dropped, and each
// comes back exactly once when there is room again.
TEST(TaskFeedTest, AFullQueueMakesSubmitWaitNotDrop) {
  Daemon d("jobs:\n  naps:\n    command: " + worker_command("--handler, sleep") +
           "\n    channel: shm\n    queue: {capacity: 5, prefetch: 1}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("naps:0", "RUNNING")) << d.daemon_log();
  constexpr int kTasks = 100;  // of 20 ms each, on one worker: 2 s of work
  Json full;
  auto lines = d.submit("naps", std::vector<std::string>(kTasks, "20"), true, [&] {
    EXPECT_TRUE(wait_until([&] {
      full = d.request({{"cmd", "stats"}, {"job", "naps"}})["jobs"]["naps"];
      return full["queued"] == 5;
    })) << full.dump();
  });
  // Full while the submitter still had tasks to send: they were not taken.
  EXPECT_EQ(full["queued"], 5) << full.dump();
  EXPECT_LT(full["submitted"].get<int>(), kTasks) << full.dump();
  EXPECT_LE(full["in_flight"].get<int>(), 1) << full.dump();
  // Then every task came back, exactly once.
  ASSERT_EQ(lines.size(), static_cast<size_t>(kTasks) + 1);
  EXPECT_EQ(lines.back().value("end", false), true) << lines.back().dump();
  EXPECT_EQ(lines.back()["submitted"], kTasks);
  std::vector<int> seen(kTasks, 0);
  for (size_t i = 0; i < static_cast<size_t>(kTasks); ++i) {
    ASSERT_EQ(lines[i]["status"], "ok") << lines[i].dump();
    auto seq = lines[i]["seq"].get<size_t>();
    ASSERT_LT(seq, seen.size());
    ++seen[seq];
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), kTasks);
  Json stats = d.request({{"cmd", "stats"}, {"job", "naps"}})["jobs"]["naps"];
  EXPECT_EQ(stats["submitted"], kTasks);
  EXPECT_EQ(stats["ok"], kTasks);
}

// A client that does not read its results makes the daemon stop taking its
// tasks (its unsent replies stay bounded) instead of buffering every result;
// once the client reads, everything arrives.
TEST(TaskFeedTest, AClientThatReadsSlowlyHoldsBackItsOwnSubmissionsAndLosesNothing) {
  Daemon d("jobs:\n  sums:\n    command: " + worker_command("--handler, sum") +
           "\n    channel: shm\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // ~25 MB of result lines, far past the session's bound of 256 KiB unsent
  // and what the socket holds (a daemon took 131,328 of 200,000 tasks, 8 MB,
  // before it stopped taking them: 400,000 leaves a margin).
  constexpr int kTasks = 400000;
  uint64_t taken = 0;
  auto lines = d.submit("sums", numbers(kTasks, 100), true, [&] {
    auto stats = [&] { return d.request({{"cmd", "stats"}, {"job", "sums"}})["jobs"]["sums"]; };
    // Wait until the daemon has stopped taking tasks: nothing queued or in
    // flight and the count unchanged over 300 ms.
    ASSERT_TRUE(wait_until(
        [&] {
          Json before = stats();
          std::this_thread::sleep_for(300ms);
          Json after = stats();
          taken = after["submitted"].get<uint64_t>();
          return taken > 0 && taken == before["submitted"].get<uint64_t>() &&
                 after["queued"] == 0 && after["in_flight"] == 0;
        },
        60s));
  });
  EXPECT_LT(taken, static_cast<uint64_t>(kTasks) / 2);
  expect_all_sums(lines, kTasks, 100);
}

}  // namespace
}  // namespace corral::testing

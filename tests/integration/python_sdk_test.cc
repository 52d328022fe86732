// The Python SDK (python/corral/worker.py, as `import corral_worker`) run by python3 over a pipe
// channel as corrald runs it: both framings, READY, ids and statuses,
// heartbeats, SHUTDOWN and EOF, and the example worker
// (examples/python_worker.py). Frames are encoded here by hand.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> with_python(std::vector<std::string> args) {
  args.insert(args.begin(), "python3");
  return args;
}
std::vector<std::string> python_env(std::vector<std::string> env) {
  env.insert(env.begin(), {"CORRAL_JOB=py", "CORRAL_MAX_TASK_BYTES=4096",
                           std::string("PYTHONPATH=") + CORRAL_SOURCE_DIR + "/python",
                           "PYTHONDONTWRITEBYTECODE=1"});
  return env;
}

// python3 ARGS with the SDK on its path, over a pipe channel on fds 3 and 4.
class PythonChild : public PipeChild {
 public:
  PythonChild(const std::vector<std::string>& args, const std::string& framing,
              const std::vector<std::string>& env = {})
      : PipeChild(with_python(args), framing, python_env(env)) {}
};

const std::string kExample = std::string(CORRAL_SOURCE_DIR) + "/examples/python_worker.py";

// A worker for the tests: upper-cases, raises on "boom", sleeps on "slow",
// returns bytes on "bytes", a line break on "two lines", stops after "last",
// and on "until PATH" waits until PATH exists.
const std::string kTestWorker = R"(
import os, time, corral_worker
def handle(task):
    if task.startswith("until "):
        while not os.path.exists(task[6:]):
            time.sleep(0.005)
    if task == "boom":
        raise RuntimeError("it went boom")
    if task == "slow":
        time.sleep(0.3)
    if task == "bytes":
        return b"\x00\xffraw"
    if task == "two lines":
        return "first\nsecond"
    if task == "last":
        corral_worker.stop_after_this_task()
    return task.upper()
raise SystemExit(corral_worker.serve(handle))
)";

TEST(PythonSdk, LengthFramingReadyResultsShutdown) {
  PythonChild child({"-c", kTestWorker}, "length");
  std::optional<Frame> ready = child.frame();
  ASSERT_TRUE(ready) << child.stderr_text();
  EXPECT_EQ(ready->type, kReady);
  const uint64_t big_id = (uint64_t{1} << 50) + 1;
  child.send(task_frame(4, "abc") + task_frame(big_id, "boom") + task_frame(6, "bytes") +
             task_frame(7, ""));
  std::vector<Frame> results;
  for (int i = 0; i < 4; ++i) {
    std::optional<Frame> f = child.result();
    ASSERT_TRUE(f) << child.stderr_text();
    ASSERT_EQ(f->type, kResult);
    results.push_back(*f);
  }
  EXPECT_EQ(results[0].id, 4u);
  EXPECT_EQ(results[0].status, 0);
  EXPECT_EQ(results[0].payload, "ABC");
  EXPECT_EQ(results[1].id, big_id);
  EXPECT_EQ(results[1].status, 1);
  EXPECT_EQ(results[1].payload, "it went boom");
  EXPECT_EQ(results[2].payload, std::string("\x00\xffraw", 5));
  EXPECT_EQ(results[3].id, 7u);
  EXPECT_EQ(results[3].payload, "");
  child.send(control_frame(kShutdown));
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 0);
}

// With CORRAL_CHUNKS=1 the SDK says in READY that it takes chunks, and
// answers a TASKS frame one RESULT per task, in order, under each task's id;
// without it, READY has no body (what an older corrald reads).
TEST(PythonSdk, LengthFramingTakesChunksWhenTheDaemonOffersThem) {
  {
    PythonChild child({"-c", kTestWorker}, "length", {"CORRAL_CHUNKS=1"});
    std::optional<Frame> ready = child.frame();
    ASSERT_TRUE(ready) << child.stderr_text();
    EXPECT_EQ(ready->type, kReady);
    EXPECT_EQ(ready->payload, std::string("\x01\x00\x00\x00", 4));
    child.send(tasks_frame(10, {"a", "boom", "", "bytes"}) + task_frame(20, "one"));
    const std::vector<std::pair<uint64_t, std::string>> expected = {
        {10, "A"},
        {11, "it went boom"},
        {12, ""},
        {13, std::string("\x00\xffraw", 5)},
        {20, "ONE"}};
    for (const auto& [id, payload] : expected) {
      std::optional<Frame> f = child.result();
      ASSERT_TRUE(f) << child.stderr_text();
      EXPECT_EQ(f->id, id);
      EXPECT_EQ(f->payload, payload);
      EXPECT_EQ(f->status, id == 11 ? 1 : 0);
    }
    // A chunk that does not hold its tasks exactly breaks the channel,
    // before any of them runs.
    std::string bad = tasks_frame(30, {"x", "y"});
    bad[4 + 9] = 3;  // says 3 tasks
    child.send(bad);
    EXPECT_TRUE(child.at_eof());
    EXPECT_EQ(child.wait_exit(), 1);
    EXPECT_THAT(child.stderr_text(),
                HasSubstr("a TASKS frame of 3 tasks does not hold them exactly"));
  }
  for (const std::string offer : {"", "CORRAL_CHUNKS=0"}) {
    std::vector<std::string> env;
    if (!offer.empty()) env.push_back(offer);
    PythonChild child({"-c", kTestWorker}, "length", env);
    std::optional<Frame> ready = child.frame();
    ASSERT_TRUE(ready) << child.stderr_text();
    EXPECT_EQ(ready->type, kReady);
    EXPECT_EQ(ready->payload, "") << offer;
    child.close_input();
    EXPECT_EQ(child.wait_exit(), 0);
  }
  PythonChild wrong({"-c", kTestWorker}, "length", {"CORRAL_CHUNKS=yes"});
  EXPECT_EQ(wrong.wait_exit(), 2);
  EXPECT_THAT(wrong.stderr_text(), HasSubstr("CORRAL_CHUNKS=yes: expected 0 or 1"));
}

TEST(PythonSdk, LengthFramingSplitFramesAndEof) {
  PythonChild child({"-c", kTestWorker}, "length");
  ASSERT_TRUE(child.frame());  // READY
  std::string frames = task_frame(1, "split") + task_frame(2, "me");
  child.send(frames.substr(0, 2));
  std::this_thread::sleep_for(30ms);
  child.send(frames.substr(2, 9));
  std::this_thread::sleep_for(30ms);
  child.send(frames.substr(11));
  std::optional<Frame> a = child.result(), b = child.result();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payload, "SPLIT");
  EXPECT_EQ(b->payload, "ME");
  child.close_input();  // EOF
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, HeartbeatsWhileATaskRuns) {
  PythonChild child({"-c", kTestWorker}, "length", {"CORRAL_HEARTBEAT_MS=20"});
  std::optional<Frame> ready = child.frame();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->type, kReady);
  child.send(task_frame(9, "slow"));
  int heartbeats = 0;
  std::optional<Frame> f;
  while ((f = child.frame()) && f->type == kHeartbeat) ++heartbeats;
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, kResult);
  EXPECT_EQ(f->id, 9u);
  EXPECT_EQ(f->payload, "SLOW");
  EXPECT_GE(heartbeats, 5);
  child.send(control_frame(kShutdown));
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, AResultIsSentBeforeTheNextTaskIsRun) {
  TempDir dir;
  const std::string gate = dir.file("gate");
  PythonChild child({"-c", kTestWorker}, "length");
  ASSERT_TRUE(child.frame());  // READY
  // Task 2 cannot finish before the test opens the gate, which it does only
  // after reading task 1's result: the SDK must not hold results back.
  child.send(task_frame(1, "first") + task_frame(2, "until " + gate));
  std::optional<Frame> first = child.result();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, 1u);
  EXPECT_EQ(first->payload, "FIRST");
  write_file(gate, "");
  std::optional<Frame> second = child.result();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id, 2u);
  child.close_input();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, StopAfterThisTask) {
  PythonChild child({"-c", kTestWorker}, "length");
  ASSERT_TRUE(child.frame());  // READY
  child.send(task_frame(1, "a") + task_frame(2, "last") + task_frame(3, "never"));
  std::optional<Frame> a = child.result(), last = child.result();
  ASSERT_TRUE(a && last);
  EXPECT_EQ(last->id, 2u);
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PythonSdk, LinesFramingInOrderAndEof) {
  PythonChild child({"-c", kTestWorker}, "lines");
  child.send("abc\ntwo lines\n\nx");
  EXPECT_EQ(child.line(), "ABC");
  EXPECT_EQ(child.line(), "first second");
  EXPECT_EQ(child.line(), "");
  child.send("yz\n");
  EXPECT_EQ(child.line(), "XYZ");
  child.close_input();
  EXPECT_TRUE(child.at_eof());
  EXPECT_EQ(child.wait_exit(), 0);
}

// A line has no status: an exception ends the worker (exit 3, why on
// stderr) rather than come back as an ok line holding its text.
TEST(PythonSdk, AnExceptionUnderLinesFramingEndsTheWorker) {
  PythonChild child({"-c", kTestWorker}, "lines");
  child.send("abc\nboom\nxyz\n");
  EXPECT_EQ(child.line(), "ABC");
  EXPECT_EQ(child.wait_exit(), 3);
  EXPECT_THAT(child.stderr_text(),
              HasSubstr("task failed: it went boom; framing: lines cannot report a failed task"));
}

TEST(PythonSdk, ExampleWorkerCountsWordsOverBothFramings) {
  {
    PythonChild child({kExample}, "length");
    std::optional<Frame> ready = child.frame();
    ASSERT_TRUE(ready) << child.stderr_text();
    EXPECT_EQ(ready->type, kReady);
    child.send(task_frame(1, "the quick brown fox") + task_frame(2, "  "));
    std::optional<Frame> words = child.result(), none = child.result();
    ASSERT_TRUE(words && none);
    EXPECT_EQ(words->payload, "4");
    EXPECT_EQ(words->status, 0);
    EXPECT_EQ(none->status, 1);
    EXPECT_EQ(none->payload, "no words");
    child.send(control_frame(kShutdown));
    EXPECT_EQ(child.wait_exit(), 0);
  }
  {
    PythonChild child({kExample}, "lines");
    child.send("one two\nthree\n");
    EXPECT_EQ(child.line(), "2");
    EXPECT_EQ(child.line(), "1");
    child.close_input();
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

// Under corrald: a handler's exception is never an ok result. With the
// default framing of a worker on fds 3/4 (length) it is "failed" and the
// worker goes on; under lines framing the worker exits on it and the task
// ends dead after its attempts. corralctl's submit exits 1 either way.
TEST(PythonSdk, AnExceptionIsNeverOkUnderEitherFraming) {
  const std::string job = "    command: [python3, " + kExample +
                          "]\n    channel: pipe\n"
                          "    restart: {backoff: {initial: 10ms, max: 50ms}}\n";
  Daemon d("jobs:\n  bylength:\n" + job + "  bylines:\n" + job + "    pipe: {framing: lines}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (const std::string name : {"bylength", "bylines"}) {
    RunResult run =
        d.ctl({"submit", name, "--data", "one two", "--data", "  ", "--data", "three", "--wait"});
    EXPECT_EQ(run.exit_code, 1) << name << ": " << run.err;
    std::map<int, Json> by_seq;
    std::istringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) {
      Json result = Json::parse(line);
      by_seq[result["seq"].get<int>()] = result;
    }
    ASSERT_EQ(by_seq.size(), 3u) << name << ": " << run.out;
    EXPECT_EQ(by_seq[0]["status"], "ok") << name;
    EXPECT_EQ(by_seq[0]["result"], "2") << name;
    EXPECT_EQ(by_seq[2]["status"], "ok") << name;
    if (name == "bylength") {
      EXPECT_EQ(by_seq[1]["status"], "failed");
      EXPECT_EQ(by_seq[1]["result"], "no words");
    } else {
      EXPECT_EQ(by_seq[1]["status"], "dead") << by_seq[1];
      EXPECT_EQ(by_seq[1]["attempts"], 3);
    }
  }
  EXPECT_THAT(d.daemon_log(), HasSubstr("exit status 3"));
}

TEST(PythonSdk, BadEnvironmentExitsTwo) {
  PythonChild shm({kExample}, "length", {"CORRAL_CHANNEL=shm"});
  EXPECT_EQ(shm.wait_exit(), 2);
  // Its path has the sources' corral package alone, without the native module.
  EXPECT_THAT(shm.stderr_text(), HasSubstr("needs corral's native module"));
  PythonChild framing({kExample}, "xml");
  EXPECT_EQ(framing.wait_exit(), 2);
  EXPECT_THAT(framing.stderr_text(), HasSubstr("CORRAL_FRAMING=xml"));
}

}  // namespace
}  // namespace corral::testing

// corralctl's task commands: requests built from argv and replies shown as
// text and JSON (submit, wait, stats, shared, dead, retry), then the submit
// stream against a fake corrald on a real socket in a temp dir: tasks from
// --data and lines, result lines copied, refusals named by their line,
// back-pressure on a large input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ctl/client.h"
#include "ctl/commands.h"
#include "ctl/replies.h"
#include "protocol/control.h"
#include "tests/support/fake_control_socket.h"
#include "tests/unit/ctl_plan.h"

namespace corral::ctl {
namespace {

using protocol::kExitFailed;
using protocol::kExitOk;
using protocol::kExitUsage;

using Args = std::vector<std::string>;

// ---- submit: requests and sources ----

TEST(CtlSubmitPlanTest, DataAndFileBecomeSourcesAndTheRequestIsTheHeader) {
  Plan plan = text_plan("submit", {"primes", "--data", "10", "--data=20", "--file", "t.txt"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(*plan.request, Json({{"cmd", "submit"}, {"job", "primes"}, {"wait", false}}));
  ASSERT_TRUE(plan.submit);
  EXPECT_EQ(plan.submit->data, Args({"10", "20"}));
  EXPECT_EQ(plan.submit->file, "t.txt");
}

TEST(CtlSubmitPlanTest, DashIsStdinAndWaitIsAsked) {
  Plan plan = text_plan("submit", {"primes", "-", "--wait"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(*plan.request, Json({{"cmd", "submit"}, {"job", "primes"}, {"wait", true}}));
  EXPECT_EQ(plan.submit->file, "-");
  EXPECT_TRUE(plan.submit->data.empty());
  EXPECT_EQ(text_plan("submit", {"primes", "--file", "-"}).submit->file, "-");
}

TEST(CtlSubmitPlanTest, DataMayLookLikeAnOptionOrBeEmpty) {
  Plan plan = text_plan("submit", {"j", "--data", "--wait", "--data", ""});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(plan.submit->data, Args({"--wait", ""}));
  EXPECT_EQ((*plan.request)["wait"], false);
}

TEST(CtlSubmitPlanTest, ADataWithANewlineIsAUsageErrorNamingIt) {
  Plan plan = text_plan("submit", {"j", "--data", "ok", "--data", "a\nb"});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: submit: --data #2 \"a\\nb\" contains a newline; a task is one line\n"
            "usage: corralctl submit JOB [--data P]... [--file F | -] [--wait [--timing] "
            "[--ordered] [--timeout D]]\n");
  std::string long_one = std::string(100, 'x') + "\n";
  EXPECT_NE(text_plan("submit", {"j", "--data", long_one}).local.err.find("xxx...\""),
            std::string::npos);
}

TEST(CtlSubmitPlanTest, ADataOverTheLineLimitIsAUsageError) {
  Plan plan = text_plan("submit", {"j", "--data", std::string(protocol::kMaxLineBytes, 'x')});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_NE(plan.local.err.find("--data #1 is 1048576 bytes, over the line limit"),
            std::string::npos)
      << plan.local.err;
  EXPECT_TRUE(
      text_plan("submit", {"j", "--data", std::string(protocol::kMaxLineBytes - 1, 'x')}).request);
}

TEST(CtlSubmitPlanTest, UsageErrors) {
  struct Case {
    Args args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "submit: needs a JOB"},
           {{"j"}, "submit: no tasks: give --data P, --file F, or - for stdin"},
           {{"j", "--file", "a", "-"}, "submit: takes one --file F or - at most"},
           {{"j", "--file", "a", "--file", "b"}, "submit: takes one --file F or - at most"},
           {{"j", "--file", ""}, "submit: --file needs a file name"},
           {{"j", "--data"}, "submit: --data needs a value"},
           {{"j", "--wait=yes", "-"}, "submit: --wait takes no value"},
           {{"j", "extra", "-"}, "submit: unexpected argument 'extra'"},
           {{"no/job", "-"}, "submit: invalid job name 'no/job'"},
           {{"j", "-", "--socket=/x"}, "submit: unknown option '--socket=/x' (global options go"},
           {{"j", "-", "--timeout", "5s"}, "submit: --timeout needs --wait"},
           {{"j", "-", "--ordered"}, "submit: --ordered needs --wait"},
           {{"j", "-", "--wait", "--timeout", "soon"}, "submit: invalid --timeout 'soon'"},
       }) {
    Plan plan = text_plan("submit", c.args);
    EXPECT_FALSE(plan.request) << c.message;
    EXPECT_EQ(plan.local.exit_code, kExitUsage) << c.message;
    EXPECT_EQ(plan.local.err.rfind("corralctl: " + c.message, 0), 0u) << plan.local.err;
  }
}

TEST(CtlSubmitPlanTest, TimeoutAndOrderedGoWithWait) {
  Plan plan = text_plan("submit", {"j", "-", "--wait", "--timeout", "2m", "--ordered"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(plan.submit->timeout, std::chrono::minutes(2));
  EXPECT_TRUE(plan.submit->ordered);
  Plan plain = text_plan("submit", {"j", "-", "--wait"});
  EXPECT_FALSE(plain.submit->timeout);
  EXPECT_FALSE(plain.submit->ordered);
}

TEST(CtlSubmitPlanTest, DoubleDashLetsAJobLookLikeAnOption) {
  Plan plan = text_plan("submit", {"--data", "1", "--", "-web"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ((*plan.request)["job"], "-web");
}

// ---- submit: the summary ----

Plan submit_plan(const Args& args, Format format = Format::kText) {
  Plan plan = plan_command("submit", args, format);
  EXPECT_TRUE(plan.request) << plan.local.err;
  return plan;
}

TEST(CtlSubmitSummaryTest, WithoutWaitSaysHowManyWereSubmitted) {
  SubmitTotals totals;
  totals.submitted = 1000;
  Output output = format_submit(submit_plan({"primes", "-"}), totals, Format::kText);
  EXPECT_EQ(output, (Output{"submitted 1000 tasks to primes\n", "", kExitOk}));
  totals.submitted = 1;
  EXPECT_EQ(format_submit(submit_plan({"primes", "-"}), totals, Format::kText).out,
            "submitted 1 task to primes\n");
}

TEST(CtlSubmitSummaryTest, JsonPrintsTheEndObject) {
  SubmitTotals totals;
  totals.submitted = 7;
  totals.refused = 2;
  Plan plan = submit_plan({"primes", "-"}, Format::kJson);
  Output output = format_submit(plan, totals, Format::kJson);
  EXPECT_EQ(Json::parse(output.out), Json({{"end", true}, {"submitted", 7}, {"refused", 2}}));
  EXPECT_EQ(output.err, "corralctl: 2 tasks were refused\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlSubmitSummaryTest, WithWaitStdoutHoldsOnlyTheResultsAndFailuresExitOne) {
  SubmitTotals totals;
  totals.submitted = 10;
  Plan plan = submit_plan({"primes", "-", "--wait"});
  EXPECT_EQ(format_submit(plan, totals, Format::kText), (Output{"", "", kExitOk}));
  EXPECT_EQ(format_submit(plan, totals, Format::kJson), (Output{"", "", kExitOk}));
  totals.failed = 3;
  EXPECT_EQ(format_submit(plan, totals, Format::kText),
            (Output{"", "corralctl: 3 of 10 tasks failed or dead\n", kExitFailed}));
}

TEST(CtlSubmitSummaryTest, ATimeoutSaysWhatCameAndThatTheRestStaysQueued) {
  SubmitTotals totals;
  totals.timed_out = true;
  totals.results = 2;
  totals.failed = 1;
  Plan plan = submit_plan({"primes", "-", "--wait", "--timeout", "5s"});
  EXPECT_EQ(format_submit(plan, totals, Format::kText),
            (Output{"",
                    "corralctl: submit: timed out after 5s with 2 results; the tasks without one "
                    "stay queued in corrald (corralctl stats primes)\n"
                    "corralctl: 1 of 2 results failed or dead\n",
                    kExitFailed}));
  totals.input_unsent = true;
  totals.failed = 0;
  EXPECT_EQ(format_submit(plan, totals, Format::kText).err,
            "corralctl: submit: timed out after 5s with 2 results; the tasks without one stay "
            "queued in corrald (corralctl stats primes); the rest of the input was not sent\n");
}

// What a submit --wait says while nothing runs: the first worker's state and
// why, or nothing once one is RUNNING.
TEST(CtlSubmitSummaryTest, WhyWaitingNamesTheFirstWorkerThatDoesNotRun) {
  auto worker = [](const std::string& name, const std::string& state,
                   const std::string& description) {
    return Json{{"name", name}, {"state", state}, {"description", description}};
  };
  Json backoff{{"ok", true},
               {"workers",
                {worker("primes:0", "BACKOFF", "exit status 2 (exited too quickly); retry in 4.1s"),
                 worker("primes:1", "FATAL", "exit status 2")}}};
  EXPECT_EQ(why_waiting("primes", backoff),
            "waiting: primes has 0 of 2 workers running: primes:0 BACKOFF exit status 2 (exited "
            "too quickly); retry in 4.1s");
  Json starting{{"ok", true}, {"workers", {worker("py:0", "STARTING", "pid 7, uptime 0:00:09")}}};
  EXPECT_EQ(why_waiting("py", starting),
            "waiting: py has 0 of 1 worker running: py:0 STARTING pid 7, uptime 0:00:09; not "
            "RUNNING yet");
  Json one_runs{{"ok", true},
                {"workers", {worker("primes:0", "FATAL", "x"), worker("primes:1", "RUNNING", "")}}};
  EXPECT_EQ(why_waiting("primes", one_runs), std::nullopt);
  EXPECT_EQ(why_waiting("idle", Json{{"ok", true}, {"workers", Json::array()}}),
            "waiting: idle has no workers (workers: 0); its tasks stay queued");
  EXPECT_EQ(why_waiting("gone", protocol::error_reply("no job named gone")),
            "waiting: gone: no job named gone");
}

TEST(CtlSubmitSummaryTest, ARejectedSubmitIsCorraldsError) {
  SubmitTotals totals;
  totals.rejected = protocol::error_reply("job web has channel: none; it takes no tasks");
  Output output = format_submit(submit_plan({"web", "--data", "1"}), totals, Format::kText);
  EXPECT_EQ(output,
            (Output{"", "corralctl: job web has channel: none; it takes no tasks\n", kExitFailed}));
}

TEST(CtlSubmitSummaryTest, AnInputErrorIsReported) {
  SubmitTotals totals;
  totals.submitted = 5;
  totals.input_error = "Input/output error";
  Output output = format_submit(submit_plan({"j", "-"}), totals, Format::kText);
  EXPECT_EQ(output.out, "submitted 5 tasks to j\n");
  EXPECT_EQ(output.err,
            "corralctl: reading stdin: Input/output error; the tasks before were submitted\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

// ---- wait, stats, shared, dead, retry: requests ----

TEST(CtlTaskPlanTest, WaitBuildsItsConditionAndTimeout) {
  EXPECT_EQ(*text_plan("wait", {"web", "--running"}).request,
            Json({{"cmd", "wait"}, {"job", "web"}, {"running", true}, {"drained", false}}));
  EXPECT_EQ(*text_plan("wait", {"--drained", "web", "--running", "--timeout", "500ms"}).request,
            Json({{"cmd", "wait"},
                  {"job", "web"},
                  {"running", true},
                  {"drained", true},
                  {"timeout_s", 0.5}}));
  EXPECT_EQ((*text_plan("wait", {"web", "--drained", "--timeout=2m"}).request)["timeout_s"], 120);
  EXPECT_EQ((*text_plan("wait", {"web", "--drained", "--timeout", "5"}).request)["timeout_s"], 5);
}

TEST(CtlTaskPlanTest, WaitUsageErrors) {
  Plan plan = text_plan("wait", {"web"});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: wait: needs --running, --drained or both\n"
            "usage: corralctl wait JOB [--running] [--drained] [--timeout D]\n");
  EXPECT_EQ(text_plan("wait", {"web", "--running", "--timeout", "soon"})
                .local.err.rfind(
                    "corralctl: wait: invalid --timeout 'soon' (expected a duration like 500ms", 0),
            0u);
  EXPECT_EQ(text_plan("wait", {"--running"}).local.err.rfind("corralctl: wait: needs a JOB", 0),
            0u);
  EXPECT_EQ(text_plan("wait", {"web", "--running", "--timeout"}).local.exit_code, kExitUsage);
}

TEST(CtlTaskPlanTest, DeadRetrySharedTakeOneJob) {
  // retry takes IDs after its JOB: ctl_habits_test.cc.
  for (std::string name : {"dead", "shared"}) {
    Plan plan = text_plan(name, {"primes"});
    ASSERT_TRUE(plan.request) << name;
    EXPECT_EQ(*plan.request, Json({{"cmd", name}, {"job", "primes"}}));
    EXPECT_FALSE(plan.submit);
    EXPECT_EQ(text_plan(name, {}).local.err.rfind("corralctl: " + name + ": needs a JOB\n", 0), 0u);
    EXPECT_EQ(text_plan(name, {"a", "b"})
                  .local.err.rfind("corralctl: " + name + ": unexpected argument 'b'\n", 0),
              0u);
    EXPECT_EQ(text_plan(name, {"a:0"}).local.exit_code, kExitUsage);
  }
}

TEST(CtlTaskPlanTest, StatsTakesAnOptionalJob) {
  EXPECT_EQ(*text_plan("stats", {}).request, Json({{"cmd", "stats"}}));
  EXPECT_EQ(*text_plan("stats", {"primes"}).request, Json({{"cmd", "stats"}, {"job", "primes"}}));
  EXPECT_EQ(text_plan("stats", {"a", "b"}).local.exit_code, kExitUsage);
}

TEST(CtlTaskPlanTest, EveryTaskCommandHasHelp) {
  for (std::string name : {"submit", "stats", "shared", "dead", "retry", "wait"}) {
    Plan plan = text_plan("help", {name});
    EXPECT_EQ(plan.local.exit_code, kExitOk) << name;
    EXPECT_EQ(plan.local.out.rfind("usage: corralctl " + name, 0), 0u) << plan.local.out;
    EXPECT_NE(overview().find("\n  " + name + " "), std::string::npos) << name;
  }
}

// ---- wait, stats, shared, dead, retry: replies ----

Output reply_of(std::string_view name, const Args& args, const Json& reply,
                Format format = Format::kText) {
  Plan plan = plan_command(name, args, format);
  EXPECT_TRUE(plan.request) << plan.local.err;
  return format_reply(plan, reply, format);
}

TEST(CtlTaskReplyTest, WaitSaysWhatHolds) {
  Json ok = {{"ok", true}};
  EXPECT_EQ(reply_of("wait", {"web", "--running"}, ok),
            (Output{"web: every worker RUNNING\n", "", kExitOk}));
  EXPECT_EQ(reply_of("wait", {"web", "--drained"}, ok).out, "web: drained\n");
  EXPECT_EQ(reply_of("wait", {"web", "--drained", "--running"}, ok).out,
            "web: every worker RUNNING, drained\n");
  EXPECT_EQ(reply_of("wait", {"web", "--drained"}, ok, Format::kJson).out, "{}\n");
}

TEST(CtlTaskReplyTest, WaitTimeoutExitsOneWithTheDaemonsMessage) {
  Output output = reply_of("wait", {"web", "--running", "--timeout", "5s"},
                           protocol::error_reply("timed out after 5s: 1/2 workers RUNNING"));
  EXPECT_EQ(output,
            (Output{"", "corralctl: timed out after 5s: 1/2 workers RUNNING\n", kExitFailed}));
}

TEST(CtlTaskReplyTest, StatsTextHasALinePerJobWithAlignedCounters) {
  Json reply = {{"ok", true},
                {"daemon", {{"pid", 42}}},
                {"jobs",
                 {{"primes",
                   {{"submitted", 1000},
                    {"queued", 10},
                    {"in_flight", 4},
                    {"ok", 980},
                    {"failed", 3},
                    {"redelivered", 1},
                    {"dead", 3},
                    {"tasks_per_s", 1234.4},
                    {"latency_us", {{"p50", 850.0}, {"p99", 12345.0}, {"count", 983}}}}},
                  {"web", {{"submitted", 0}, {"queued", 0}, {"ok", 0}}}}}};
  Output output = reply_of("stats", {}, reply);
  EXPECT_EQ(output.out,
            "primes  submitted 1000  queued 10  in_flight 4  ok 980  failed 3  redelivered 1  "
            "dead 3  tasks/s 1234  p50 850us  p99 12.3ms\n"
            "web     submitted 0     queued 0   in_flight -  ok 0    failed -  redelivered -  "
            "dead -  tasks/s -     p50 -      p99 -\n");
  EXPECT_EQ(output.exit_code, kExitOk);
  Json json = Json::parse(reply_of("stats", {}, reply, Format::kJson).out);
  Json expected = reply;
  expected.erase("ok");
  EXPECT_EQ(json, expected);
}

TEST(CtlTaskReplyTest, StatsErrorsAndMalformed) {
  EXPECT_EQ(reply_of("stats", {"nope"}, protocol::error_reply("no such job: nope")),
            (Output{"", "corralctl: no such job: nope\n", kExitFailed}));
  EXPECT_EQ(reply_of("stats", {}, Json{{"ok", true}}).err,
            "corralctl: malformed reply from corrald: stats reply without jobs\n");
}

TEST(CtlTaskReplyTest, SharedShowsValuesThenArrays) {
  Json reply = {{"ok", true},
                {"values", {{"processed", 1234}, {"best", 0.5}, {"unset", nullptr}}},
                {"arrays", {{"histogram", {0, 3, 5}}, {"empty", Json::array()}}}};
  Output output = reply_of("shared", {"primes"}, reply);
  EXPECT_EQ(output.out,
            "best = 0.5\n"
            "processed = 1234\n"
            "unset = null\n"
            "empty = []\n"
            "histogram = [0, 3, 5]\n");
  EXPECT_EQ(Json::parse(reply_of("shared", {"primes"}, reply, Format::kJson).out),
            Json({{"values", reply["values"]}, {"arrays", reply["arrays"]}}));
  EXPECT_EQ(reply_of("shared", {"primes"}, Json{{"ok", true}}).out, "");
  EXPECT_EQ(reply_of("shared", {"primes"}, Json{{"ok", true}, {"values", 3}}).exit_code,
            kExitFailed);
}

TEST(CtlTaskReplyTest, DeadShowsALinePerLetter) {
  Json letters = Json::array({{{"id", 7},
                               {"payload", "boom"},
                               {"status", "dead"},
                               {"reason", "worker killed by SIGSEGV"},
                               {"attempts", 3}},
                              {{"id", 12},
                               {"payload", "a\r"},
                               {"status", "failed"},
                               {"reason", "bad\ninput"},
                               {"attempts", 1}}});
  Json reply = {{"ok", true}, {"dead", letters}, {"dropped", 0}};
  Output output = reply_of("dead", {"primes"}, reply);
  EXPECT_EQ(output.out,
            "id 7   dead    attempts 3  worker killed by SIGSEGV  payload: boom\n"
            "id 12  failed  attempts 1  bad\\ninput  payload: a\\r\n");
  EXPECT_EQ(output.err, "");
  EXPECT_EQ(output.exit_code, kExitOk);
  EXPECT_EQ(Json::parse(reply_of("dead", {"primes"}, reply, Format::kJson).out), letters);

  reply["dropped"] = 5;
  EXPECT_EQ(reply_of("dead", {"primes"}, reply).err,
            "corralctl: 5 older letters did not fit in the dead-letter list and were dropped\n");
  // An empty list says so (and stays an empty list in JSON).
  EXPECT_EQ(reply_of("dead", {"primes"}, Json{{"ok", true}, {"dead", Json::array()}}).out,
            "primes: no dead letters\n");
  EXPECT_EQ(
      reply_of("dead", {"primes"}, Json{{"ok", true}, {"dead", Json::array()}}, Format::kJson).out,
      "[]\n");
  EXPECT_EQ(reply_of("dead", {"primes"}, Json{{"ok", true}, {"dead", {1}}}).exit_code, kExitFailed);
}

TEST(CtlTaskReplyTest, RetrySaysHowManyWereRequeued) {
  Json reply = {{"ok", true}, {"requeued", 4}};
  EXPECT_EQ(reply_of("retry", {"primes"}, reply), (Output{"requeued 4 tasks\n", "", kExitOk}));
  EXPECT_EQ(Json::parse(reply_of("retry", {"primes"}, reply, Format::kJson).out),
            Json({{"requeued", 4}}));
  EXPECT_EQ(reply_of("retry", {"primes"}, Json{{"ok", true}}).exit_code, kExitFailed);
  EXPECT_EQ(reply_of("retry", {"x"}, protocol::error_reply("no such job: x")).err,
            "corralctl: no such job: x\n");
}

// ---- the submit stream, against a fake corrald ----

using corral::testing::FakeControlSocket;
using corral::testing::send_all;

// Reads lines from a blocking fd, in chunks.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool next(std::string& line) {
    while (true) {
      size_t newline = buffer_.find('\n', start_);
      if (newline != std::string::npos) {
        line.assign(buffer_, start_, newline - start_);
        start_ = newline + 1;
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      char chunk[64 * 1024];
      ssize_t n = ::recv(fd_, chunk, read_size_, 0);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void set_read_size(size_t n) { read_size_ = std::min(n, size_t{64 * 1024}); }

 private:
  int fd_;
  std::string buffer_;
  size_t start_ = 0;
  size_t read_size_ = 64 * 1024;
};

// What the fake corrald saw and how it behaves.
struct Script {
  // Payload -> its fate; others are ok with the payload as result.
  std::string refuse = "REFUSE";  // refused: {"seq":S,"status":"refused","error":"too big"}
  std::string fail = "FAIL";      // result with status failed
  std::chrono::milliseconds slow_start{0};  // sleep before reading the tasks
  size_t slow_lines = 0;                    // then read this many lines in small reads
  bool reverse = false;                     // with wait: the results after `.`, last task first
  bool silent = false;  // with wait: no result ever; after `.`, wait for a hang-up
  // Filled by the fake:
  Json request;
  std::vector<std::string> payloads;
  bool saw_end = false;
};

// A corrald for one submit: acks, reads `+` lines, answers each as it reads
// it (with wait: a result line; a refusal in any case) with blocking writes,
// and sends the end line after `.`.
void serve_submit(int fd, Script& script) {
  LineReader reader(fd);
  std::string line;
  if (!reader.next(line)) return;
  script.request = Json::parse(line);
  bool wait = script.request.value("wait", false);
  send_all(fd, "{\"ok\":true}\n");
  std::this_thread::sleep_for(script.slow_start);
  uint64_t seq = 0;
  uint64_t refused = 0;
  std::string replies;
  std::vector<std::string> held;  // script.reverse: the results, last first
  if (script.slow_lines > 0) reader.set_read_size(512);
  while (reader.next(line)) {
    if (line == ".") {
      script.saw_end = true;
      break;
    }
    if (line.empty() || line[0] != '+') {
      send_all(fd, protocol::encode_line(protocol::error_reply("bad line")));
      return;
    }
    std::string payload = line.substr(1);
    if (payload == script.refuse) {
      ++refused;
      replies += protocol::encode_line({{"seq", seq}, {"status", "refused"}, {"error", "too big"}});
    } else if (wait && !script.silent) {
      std::string status = payload == script.fail ? "failed" : "ok";
      std::string result =
          "{\"id\":" + std::to_string(seq + 100) + ",\"seq\":" + std::to_string(seq) +
          ",\"status\":\"" + status +
          "\",\"result\":" + Json(payload).dump(-1, ' ', false, Json::error_handler_t::replace) +
          ",\"attempts\":1}\n";
      if (script.reverse) {
        held.insert(held.begin(), std::move(result));
      } else {
        replies += result;
      }
    }
    ++seq;
    script.payloads.push_back(std::move(payload));
    if (script.payloads.size() == script.slow_lines) reader.set_read_size(64 * 1024);
    if (replies.size() > 16 * 1024) {
      send_all(fd, replies);  // blocks while corralctl does not read
      replies.clear();
    }
  }
  if (script.silent) {
    while (reader.next(line)) {
    }
    return;
  }
  for (const std::string& result : held) replies += result;
  send_all(fd, replies);
  send_all(fd, protocol::encode_line(
                   {{"end", true}, {"submitted", seq - refused}, {"refused", refused}}));
}

// A temp file as stdout or stderr of a submit; text() reads it back.
class Capture {
 public:
  Capture() : file_(std::tmpfile()) {}
  ~Capture() { std::fclose(file_); }
  int fd() const { return ::fileno(file_); }
  std::string text() const {
    std::string content;
    char chunk[64 * 1024];
    ssize_t n;
    off_t at = 0;
    while ((n = ::pread(fd(), chunk, sizeof chunk, at)) > 0) {
      content.append(chunk, static_cast<size_t>(n));
      at += n;
    }
    return content;
  }

 private:
  FILE* file_;
};

struct Submitted {
  ClientResult<SubmitTotals> totals = ClientError::protocol("not run");
  std::string out;
  std::string err;
};

// Runs the submit of REQUEST and INPUT against DAEMON; a stream that does not
// end within a minute (a deadlock) fails the whole test binary.
Submitted submit(FakeControlSocket& daemon, const Json& request, const SubmitInput& input,
                 const SubmitWaiting& waiting = {}) {
  Capture out, err;
  auto client = Client::connect(daemon.path());
  EXPECT_TRUE(client) << client.error().message();
  auto done = std::async(std::launch::async, [&] {
    return client->submit(request, input, waiting, out.fd(), err.fd());
  });
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "the submit stream is stuck";
    std::abort();
  }
  Submitted run;
  run.totals = done.get();
  run.out = out.text();
  run.err = err.text();
  return run;
}

// An open fd on PATH, closed at the end of the scope.
class OpenFile {
 public:
  explicit OpenFile(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    EXPECT_GE(fd_, 0) << path;
  }
  ~OpenFile() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

Json submit_request(bool wait) { return {{"cmd", "submit"}, {"job", "j"}, {"wait", wait}}; }

TEST(CtlSubmitStreamTest, DataThenLinesCarriageReturnsKeptNoTaskForTheEmptyLastLine) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("tasks.txt", "x\ny\r\n\nlast"));
  SubmitInput input{{"a", ""}, file.fd(), "tasks.txt"};
  Submitted run = submit(daemon, submit_request(false), input);
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(script.request, submit_request(false));
  EXPECT_EQ(script.payloads, Args({"a", "", "x", "y\r", "", "last"}));
  EXPECT_TRUE(script.saw_end);
  EXPECT_EQ(run.totals->submitted, 6u);
  EXPECT_EQ(run.totals->refused, 0u);
  EXPECT_FALSE(run.totals->rejected);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "");
}

TEST(CtlSubmitStreamTest, LineEndings) {
  struct Case {
    std::string content;
    Args payloads;
  };
  for (const Case& c : std::vector<Case>{{"", {}},
                                         {"\n", {""}},
                                         {"1\n2\n", {"1", "2"}},
                                         {"1\n2", {"1", "2"}},
                                         {"1\n\n", {"1", ""}},
                                         {"\r\n", {"\r"}}}) {
    FakeControlSocket daemon;
    Script script;
    daemon.serve([&](int fd) { serve_submit(fd, script); });
    OpenFile file(daemon.file("t", c.content));
    Submitted run = submit(daemon, submit_request(false), {{}, file.fd(), "t"});
    daemon.join();
    ASSERT_TRUE(run.totals) << run.totals.error().message();
    EXPECT_EQ(script.payloads, c.payloads) << Json(c.content);
    EXPECT_EQ(run.totals->submitted, c.payloads.size());
  }
}

TEST(CtlSubmitStreamTest, WaitCopiesResultLinesAndCountsFailures) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("t", "1\nFAIL\n\"quoted\"\n"));
  Submitted run = submit(daemon, submit_request(true), {{}, file.fd(), "t"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.out,
            "{\"id\":100,\"seq\":0,\"status\":\"ok\",\"result\":\"1\",\"attempts\":1}\n"
            "{\"id\":101,\"seq\":1,\"status\":\"failed\",\"result\":\"FAIL\",\"attempts\":1}\n"
            "{\"id\":102,\"seq\":2,\"status\":\"ok\",\"result\":\"\\\"quoted\\\"\","
            "\"attempts\":1}\n");
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.totals->submitted, 3u);
  EXPECT_EQ(run.totals->failed, 1u);
}

TEST(CtlSubmitStreamTest, RefusalsNameTheirLineOrData) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("t", "1\n2\nREFUSE\n4\n"));
  Submitted run = submit(daemon, submit_request(true), {{"x", "REFUSE"}, file.fd(), "stdin"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.err,
            "corralctl: --data #2: too big\n"
            "corralctl: stdin:3: too big\n");
  EXPECT_EQ(run.totals->submitted, 4u);
  EXPECT_EQ(run.totals->refused, 2u);
  EXPECT_EQ(run.totals->failed, 0u);
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 4);
}

TEST(CtlSubmitStreamTest, ALineOverTheLimitIsRefusedHereAndLaterLinesKeepTheirNumbers) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  std::string huge(protocol::kMaxLineBytes + 5, 'h');
  std::string max(protocol::kMaxLineBytes - 1, 'm');  // '+' and it: exactly one line
  OpenFile file(
      daemon.file("t.txt", "1\n" + huge + "\n" + max + "\nREFUSE\n" + huge + "\n6\n" + huge));
  Submitted run = submit(daemon, submit_request(false), {{}, file.fd(), "t.txt"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  // Lines refused here are reported as they are read, corrald's as they come back.
  std::vector<std::string> errors;
  for (size_t start = 0, end; (end = run.err.find('\n', start)) != std::string::npos;
       start = end + 1) {
    errors.push_back(run.err.substr(start, end - start));
  }
  std::sort(errors.begin(), errors.end());
  std::string too_long = " bytes is over the line limit of 1048575 bytes; not sent";
  EXPECT_EQ(errors,
            Args({"corralctl: t.txt:2: task of 1048581" + too_long, "corralctl: t.txt:4: too big",
                  "corralctl: t.txt:5: task of 1048581" + too_long,
                  "corralctl: t.txt:7: task of 1048581" + too_long}));
  EXPECT_EQ(script.payloads, Args({"1", max, "REFUSE", "6"}));
  EXPECT_EQ(run.totals->submitted, 3u);
  EXPECT_EQ(run.totals->refused, 4u);
}

TEST(CtlSubmitStreamTest, ALargeInputUnderBackPressureArrivesWholeAndInOrder) {
  FakeControlSocket daemon;
  Script script;
  script.slow_start = std::chrono::milliseconds(300);
  script.slow_lines = 20000;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  constexpr int kLines = 200000;
  constexpr int kRefused = 123457;  // 1-based line
  std::string content;
  for (int i = 1; i <= kLines; ++i) {
    content += i == kRefused ? std::string("REFUSE") : "task-" + std::to_string(i);
    content += '\n';
  }
  OpenFile file(daemon.file("big.txt", content));
  Submitted run = submit(daemon, submit_request(true), {{}, file.fd(), "big.txt"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.totals->submitted, uint64_t{kLines - 1});
  EXPECT_EQ(run.totals->refused, 1u);
  EXPECT_EQ(run.err, "corralctl: big.txt:" + std::to_string(kRefused) + ": too big\n");
  ASSERT_EQ(script.payloads.size(), size_t{kLines});
  for (int i = 1; i <= kLines; i += 997) {
    if (i != kRefused) {
      EXPECT_EQ(script.payloads[i - 1], "task-" + std::to_string(i));
    }
  }
  EXPECT_EQ(script.payloads.back(), "task-200000");
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), kLines - 1);
  EXPECT_NE(
      run.out.find("{\"id\":199999,\"seq\":199899,\"status\":\"ok\",\"result\":\"task-199900\""),
      std::string::npos);
}

TEST(CtlSubmitStreamTest, ARejectedSubmitSendsNothing) {
  FakeControlSocket daemon;
  std::promise<std::string> after_reply;
  daemon.serve([&](int fd) {
    LineReader reader(fd);
    std::string line;
    reader.next(line);
    send_all(fd, protocol::encode_line(protocol::error_reply("unknown job 'j'")));
    std::string after;
    char chunk[256];
    ssize_t n;
    while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0) after.append(chunk, n);
    after_reply.set_value(after);
  });
  Submitted run = submit(daemon, submit_request(false), {{"1", "2"}, -1, ""});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  ASSERT_TRUE(run.totals->rejected);
  EXPECT_EQ(*run.totals->rejected, protocol::error_reply("unknown job 'j'"));
  EXPECT_EQ(run.totals->submitted, 0u);
  EXPECT_EQ(after_reply.get_future().get(), "");  // the client has hung up by now
}

TEST(CtlSubmitStreamTest, AnErrorLineInTheStreamEndsItWithThatMessage) {
  FakeControlSocket daemon;
  daemon.serve([&](int fd) {
    LineReader reader(fd);
    std::string line;
    reader.next(line);
    send_all(fd, "{\"ok\":true}\n");
    reader.next(line);
    send_all(fd, protocol::encode_line(protocol::error_reply("bad line in a submit stream")));
  });
  Submitted run = submit(daemon, submit_request(false), {{"1"}, -1, ""});
  daemon.join();
  ASSERT_FALSE(run.totals);
  EXPECT_EQ(run.totals.error().kind(), ClientError::Kind::kProtocol);
  EXPECT_EQ(run.totals.error().message(), "bad line in a submit stream");
}

TEST(CtlSubmitStreamTest, ADaemonThatHangsUpMidStreamIsAProtocolError) {
  FakeControlSocket daemon;
  daemon.serve([&](int fd) {
    LineReader reader(fd);
    std::string line;
    reader.next(line);
    send_all(
        fd,
        "{\"ok\":true}\n{\"id\":1,\"seq\":0,\"status\":\"ok\",\"result\":\"r\",\"attempts\":1}\n");
  });
  OpenFile file("/dev/zero");  // never ends: only the hang-up can stop the stream
  Submitted run = submit(daemon, submit_request(true), {{}, file.fd(), "zero"});
  daemon.join();
  ASSERT_FALSE(run.totals);
  EXPECT_EQ(run.totals.error().message(),
            "corrald closed the connection before the end of the submit");
  EXPECT_EQ(run.out, "{\"id\":1,\"seq\":0,\"status\":\"ok\",\"result\":\"r\",\"attempts\":1}\n");
}

TEST(CtlSubmitStreamTest, ARefusedPeerIsUnreachable) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) {
    send_all(fd, protocol::encode_line(
                     {{"ok", false}, {"error", "uid 1000 may not connect"}, {"refused", true}}));
  });
  Submitted run = submit(daemon, submit_request(false), {{"1"}, -1, ""});
  daemon.join();
  ASSERT_FALSE(run.totals);
  EXPECT_EQ(run.totals.error().kind(), ClientError::Kind::kUnreachable);
}

}  // namespace
}  // namespace corral::ctl

namespace corral::ctl {
namespace {

// The seq of each result line of OUT, in order.
std::vector<uint64_t> seqs_of(const std::string& out) {
  std::vector<uint64_t> seqs;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) seqs.push_back(Json::parse(line)["seq"]);
  return seqs;
}

TEST(CtlSubmitStreamTest, OrderedPrintsTheResultsInTheOrderOfTheTasks) {
  for (bool ordered : {false, true}) {
    FakeControlSocket daemon;
    Script script;
    script.reverse = true;
    script.refuse = "3";
    daemon.serve([&](int fd) { serve_submit(fd, script); });
    SubmitInput input{{"0", "1", "2", "3", "4", "5"}, -1, ""};
    SubmitWaiting waiting;
    waiting.ordered = ordered;
    Submitted run = submit(daemon, submit_request(true), input, waiting);
    daemon.join();
    ASSERT_TRUE(run.totals) << run.totals.error().message();
    const std::vector<uint64_t> expected =
        ordered ? std::vector<uint64_t>{0, 1, 2, 4, 5} : std::vector<uint64_t>{5, 4, 2, 1, 0};
    EXPECT_EQ(seqs_of(run.out), expected);
    EXPECT_EQ(run.totals->results, 5u);
    EXPECT_EQ(run.err, "corralctl: --data #4: too big\n");
  }
}

// Memory stays bounded: with the first result missing, --ordered sends no
// more than kOrderedWindow tasks; --timeout then ends the wait.
TEST(CtlSubmitStreamTest, OrderedSendsAWindowAheadOfTheFirstMissingResult) {
  FakeControlSocket daemon;
  Script script;
  script.silent = true;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  SubmitInput input;
  for (uint64_t i = 0; i < kOrderedWindow + 500; ++i) input.data.push_back(std::to_string(i));
  SubmitWaiting waiting;
  waiting.ordered = true;
  waiting.timeout = std::chrono::milliseconds(300);
  Submitted run = submit(daemon, submit_request(true), input, waiting);
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_TRUE(run.totals->timed_out);
  EXPECT_TRUE(run.totals->input_unsent);
  EXPECT_EQ(script.payloads.size(), kOrderedWindow);
  EXPECT_FALSE(script.saw_end);
}

// With no result for a second, the stream asks why, says it once on stderr,
// and asks again each second without repeating itself.
TEST(CtlSubmitStreamTest, WithoutResultsItSaysWhyOnceAndTheTimeoutEndsTheWait) {
  FakeControlSocket daemon;
  Script script;
  script.silent = true;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  SubmitWaiting waiting;
  waiting.timeout = std::chrono::milliseconds(2500);
  int asked = 0;
  waiting.why_waiting = [&]() -> std::optional<std::string> {
    ++asked;
    return "waiting: j has 0 of 1 worker running";
  };
  Submitted run = submit(daemon, submit_request(true), {{"1", "2"}, -1, ""}, waiting);
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_TRUE(run.totals->timed_out);
  EXPECT_FALSE(run.totals->input_unsent);
  EXPECT_EQ(script.payloads, Args({"1", "2"}));
  EXPECT_EQ(run.err, "corralctl: waiting: j has 0 of 1 worker running\n");
  EXPECT_GE(asked, 2);
}

}  // namespace
}  // namespace corral::ctl

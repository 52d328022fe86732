// corralctl's task commands: requests built from argv and replies shown as
// text and JSON (submit, wait, stats, shared, dead, retry). The submit
// stream itself is tested in ctl_submit_stream_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "ctl/commands.h"
#include "ctl/replies.h"
#include "protocol/control.h"
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

TEST(CtlSubmitPlanTest, DashIsStdinAndWaitIsAskedWithItsResultsInBatches) {
  Plan plan = text_plan("submit", {"primes", "-", "--wait"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(*plan.request,
            Json({{"cmd", "submit"}, {"job", "primes"}, {"wait", true}, {"batches", true}}));
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
            "usage: corralctl submit JOB [--data P]... [--file F | -] [--deadline D] [--wait "
            "[--timing] [--ordered] [--timeout D]]\n");
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
  // --ordered reads each result's seq: no batches.
  EXPECT_FALSE(plan.request->contains("batches"));
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
  Json between_tries = starting;
  between_tries["workers"][0]["exit_description"] = "exit status 2";
  EXPECT_EQ(why_waiting("py", between_tries),
            "waiting: py has 0 of 1 worker running: py:0 STARTING pid 7, uptime 0:00:09; not "
            "RUNNING yet (its last process: exit status 2)");
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
            "primes  submitted 1000  queued 10  delayed -  in_flight 4  ok 980  failed 3  "
            "redelivered 1  dead 3  cancelled -  expired -  tasks/s 1234  p50 850us  p99 12.3ms\n"
            "web     submitted 0     queued 0   delayed -  in_flight -  ok 0    failed -  "
            "redelivered -  dead -  cancelled -  expired -  tasks/s -     p50 -      p99 -\n");
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

}  // namespace
}  // namespace corral::ctl

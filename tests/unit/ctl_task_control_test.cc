// corralctl's control of tasks once they are submitted: cancel, results,
// submit --deadline and what submit and results say about cancelled and
// expired tasks; requests built from argv, replies shown as text and JSON,
// exit codes. The streams themselves are tested in
// ctl_results_stream_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/replies.h"
#include "ctl/shell_line.h"
#include "ctl/top.h"
#include "protocol/control.h"
#include "tests/unit/ctl_plan.h"

namespace corral::ctl {
namespace {

using protocol::kExitFailed;
using protocol::kExitOk;
using protocol::kExitUsage;

using ControlArgs = std::vector<std::string>;

// What corralctl NAME ARGS shows of REPLY.
Output control_reply(std::string_view name, const ControlArgs& args, const Json& reply,
                     Format format = Format::kText) {
  Plan plan = plan_command(name, args, format);
  EXPECT_TRUE(plan.request) << plan.local.err;
  if (!plan.request) return plan.local;
  return format_reply(plan, reply, format);
}

// The usage error of corralctl NAME ARGS: its first line, or "" if it had none.
std::string usage_of(std::string_view name, const ControlArgs& args) {
  Plan plan = text_plan(name, args);
  EXPECT_FALSE(plan.request) << Json(args).dump();
  EXPECT_EQ(plan.local.exit_code, kExitUsage) << Json(args).dump();
  return plan.local.err.substr(0, plan.local.err.find('\n'));
}

// ---- submit --deadline ----

TEST(CtlDeadlineTest, DeadlineIsSentInSeconds) {
  Plan plan = text_plan("submit", {"primes", "-", "--deadline", "5m"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(*plan.request,
            Json({{"cmd", "submit"}, {"job", "primes"}, {"wait", false}, {"deadline_s", 300.0}}));
  Plan fraction = text_plan("submit", {"primes", "-", "--wait", "--deadline=1500ms"});
  ASSERT_TRUE(fraction.request) << fraction.local.err;
  EXPECT_EQ((*fraction.request)["deadline_s"], 1.5);
  EXPECT_FALSE(text_plan("submit", {"primes", "-"}).request->contains("deadline_s"));
  // corrald takes what corralctl sends.
  EXPECT_EQ(message_of(protocol::check_request(*plan.request)), "");
}

TEST(CtlDeadlineTest, BadDeadlinesAreUsageErrors) {
  EXPECT_EQ(usage_of("submit", {"j", "-", "--deadline", "soon"}),
            "corralctl: submit: invalid --deadline 'soon': it does not start with a number "
            "(expected a duration like 30s or 5m)");
  EXPECT_EQ(usage_of("submit", {"j", "-", "--deadline", "0s"}),
            "corralctl: submit: --deadline must be more than 0 (a task not started within it "
            "ends expired)");
  EXPECT_EQ(usage_of("submit", {"j", "-", "--deadline", "-5s"}),
            "corralctl: submit: invalid --deadline '-5s': it is negative (expected a duration "
            "like 30s or 5m)");
  EXPECT_EQ(usage_of("submit", {"j", "-", "--deadline", "2000000000s"}),
            "corralctl: submit: invalid --deadline '2000000000s': longer than 10 years, the "
            "longest duration (expected a duration like 30s or 5m)");
  EXPECT_EQ(usage_of("submit", {"j", "-", "--deadline"}),
            "corralctl: submit: --deadline needs a value");
}

// ---- submit: its number, and tasks that did not end ok ----

Plan submitting(const ControlArgs& args, Format format = Format::kText) {
  Plan plan = plan_command("submit", args, format);
  EXPECT_TRUE(plan.request) << plan.local.err;
  return plan;
}

TEST(CtlSubmitNumberTest, TheSummaryNamesTheSubmit) {
  SubmitTotals totals;
  totals.submitted = 3;
  totals.submit = 7;
  EXPECT_EQ(format_submit(submitting({"primes", "-"}), totals, Format::kText),
            (Output{"submitted 3 tasks to primes (submit 7)\n", "", kExitOk}));
  Output json = format_submit(submitting({"primes", "-"}, Format::kJson), totals, Format::kJson);
  EXPECT_EQ(Json::parse(json.out),
            Json({{"end", true}, {"submitted", 3}, {"refused", 0}, {"submit", 7}}));
}

TEST(CtlSubmitNumberTest, ANoticeOnlyForAWaitingSubmitToADurableJob) {
  Json wait = *submitting({"primes", "-", "--wait"}).request;
  Json no_wait = *submitting({"primes", "-"}).request;
  Json durable{{"ok", true}, {"submit", 3}, {"durable", true}};
  EXPECT_EQ(submit_notice(wait, durable),
            "corralctl: submit 3 to primes (if this connection is lost: corralctl results primes "
            "--submit 3 --follow)\n");
  EXPECT_EQ(submit_notice(no_wait, durable), std::nullopt);
  EXPECT_EQ(submit_notice(wait, Json{{"ok", true}, {"submit", 3}, {"durable", false}}),
            std::nullopt);
  EXPECT_EQ(submit_notice(wait, Json{{"ok", true}, {"durable", true}}), std::nullopt);
  EXPECT_EQ(submit_notice(wait, Json{{"ok", true}}), std::nullopt);
}

TEST(CtlSubmitNumberTest, CancelledAndExpiredTasksExitOneAndAreNamed) {
  Plan plan = submitting({"primes", "-", "--wait"});
  SubmitTotals totals;
  totals.submitted = 10;
  totals.results = 10;
  totals.cancelled = 1;
  EXPECT_EQ(format_submit(plan, totals, Format::kText),
            (Output{"", "corralctl: 1 of 10 tasks did not end ok: 1 cancelled\n", kExitFailed}));
  totals.failed = 2;
  totals.expired = 3;
  EXPECT_EQ(format_submit(plan, totals, Format::kText).err,
            "corralctl: 6 of 10 tasks did not end ok: 2 failed or dead, 1 cancelled, 3 expired\n");
  totals.cancelled = totals.expired = 0;
  EXPECT_EQ(format_submit(plan, totals, Format::kText).err,
            "corralctl: 2 of 10 tasks failed or dead\n");
}

TEST(CtlSubmitNumberTest, ATimedOutDurableSubmitSaysHowToGetTheRest) {
  Plan plan = submitting({"primes", "-", "--wait", "--timeout", "5s"});
  SubmitTotals totals;
  totals.timed_out = true;
  totals.results = 2;
  totals.submit = 4;
  totals.durable = true;
  EXPECT_EQ(format_submit(plan, totals, Format::kText).err,
            "corralctl: submit: timed out after 5s with 2 results; the tasks without one stay "
            "queued in corrald (corralctl results primes --submit 4 --follow waits for them)\n");
  totals.durable = false;
  EXPECT_EQ(format_submit(plan, totals, Format::kText).err,
            "corralctl: submit: timed out after 5s with 2 results; the tasks without one stay "
            "queued in corrald (corralctl stats primes)\n");
}

// ---- cancel ----

TEST(CtlCancelTest, IdsSubmitOrQueuedBecomeTheRequest) {
  EXPECT_EQ(*text_plan("cancel", {"primes", "7", "9"}).request,
            Json({{"cmd", "cancel"}, {"job", "primes"}, {"ids", {7, 9}}}));
  EXPECT_EQ(*text_plan("cancel", {"primes", "--submit", "3"}).request,
            Json({{"cmd", "cancel"}, {"job", "primes"}, {"submit", 3}}));
  EXPECT_EQ(*text_plan("cancel", {"--queued", "primes", "--running"}).request,
            Json({{"cmd", "cancel"}, {"job", "primes"}, {"queued", true}, {"running", true}}));
  EXPECT_EQ(*text_plan("cancel", {"primes", "--submit=3", "--submit", "3"}).request,
            Json({{"cmd", "cancel"}, {"job", "primes"}, {"submit", 3}}));
  for (const ControlArgs& args : std::vector<ControlArgs>{{"primes", "7", "9", "--running"},
                                                          {"primes", "--submit", "3"},
                                                          {"primes", "--queued"}}) {
    Plan plan = text_plan("cancel", args);
    ASSERT_TRUE(plan.request) << plan.local.err;
    EXPECT_FALSE(plan.results);
    EXPECT_EQ(message_of(protocol::check_request(*plan.request)), "") << *plan.request;
  }
}

TEST(CtlCancelTest, UsageErrorsSayWhatIsWrong) {
  EXPECT_EQ(usage_of("cancel", {}), "corralctl: cancel: needs a JOB");
  EXPECT_EQ(usage_of("cancel", {"primes"}),
            "corralctl: cancel: needs task IDs, --submit S or --queued: which tasks to cancel");
  EXPECT_EQ(usage_of("cancel", {"primes", "--running"}),
            "corralctl: cancel: needs task IDs, --submit S or --queued: which tasks to cancel");
  EXPECT_EQ(usage_of("cancel", {"primes", "7", "--queued"}),
            "corralctl: cancel: takes task IDs, --submit S or --queued, only one of them");
  EXPECT_EQ(usage_of("cancel", {"primes", "--submit", "2", "--queued"}),
            "corralctl: cancel: takes task IDs, --submit S or --queued, only one of them");
  EXPECT_EQ(usage_of("cancel", {"primes", "--submit", "2", "--submit", "3"}),
            "corralctl: cancel: takes one --submit S at most");
  for (std::string bad : {"x", "-1", "7x", "18446744073709551616", ""}) {
    EXPECT_EQ(usage_of("cancel", {"primes", "--", bad}),
              "corralctl: cancel: invalid ID '" + bad +
                  "' (expected a task id, as result lines show it)");
  }
  EXPECT_EQ(usage_of("cancel", {"primes", "--submit", "last"}),
            "corralctl: cancel: invalid --submit 'last' (expected the number of a submit, as "
            "submit prints it)");
  EXPECT_EQ(usage_of("cancel", {"no/job", "--queued"}),
            "corralctl: cancel: invalid job name 'no/job' (expected letters, digits, '_', '.' "
            "or '-')");
  EXPECT_EQ(usage_of("cancel", {"primes", "--queued=yes"}),
            "corralctl: cancel: --queued takes no value");
  EXPECT_EQ(usage_of("cancel", {"primes", "--all"}), "corralctl: cancel: unknown option '--all'");
  EXPECT_EQ(text_plan("cancel", {"primes", "--queued"}).local.err, "");
  EXPECT_EQ(text_plan("cancel", {"--help"}).local.exit_code, kExitOk);
}

TEST(CtlCancelTest, SaysWhatWasCancelledAndExitsZeroWhenAllWasDealtWith) {
  Json reply{{"ok", true},
             {"cancelled", 3},
             {"stopping", 0},
             {"running", Json::array()},
             {"unknown", Json::array()}};
  EXPECT_EQ(control_reply("cancel", {"primes", "--queued"}, reply),
            (Output{"primes: 3 tasks cancelled\n", "", kExitOk}));
  reply["cancelled"] = 1;
  reply["stopping"] = 2;
  EXPECT_EQ(control_reply("cancel", {"primes", "--submit", "4", "--running"}, reply),
            (Output{"primes: 1 task cancelled, 2 stopping\n", "", kExitOk}));
  reply["cancelled"] = 0;
  reply["stopping"] = 0;
  EXPECT_EQ(control_reply("cancel", {"primes", "--submit", "4"}, reply),
            (Output{"primes: 0 tasks cancelled\n", "", kExitOk}));
}

TEST(CtlCancelTest, RunningAndUnknownIdsAreListedAndExitOne) {
  Json reply{
      {"ok", true}, {"cancelled", 3}, {"stopping", 1}, {"running", {12}}, {"unknown", {40, 41}}};
  EXPECT_EQ(control_reply("cancel", {"primes", "7", "8", "9", "12", "40", "41"}, reply),
            (Output{"primes: 3 tasks cancelled, 1 stopping; running (use --running to stop "
                    "them): 12; unknown: 40, 41\n",
                    "", kExitFailed}));
  Json left{{"ok", true},
            {"cancelled", 0},
            {"stopping", 0},
            {"running", {12, 13}},
            {"unknown", Json::array()}};
  EXPECT_EQ(control_reply("cancel", {"primes", "12", "13"}, left),
            (Output{"primes: 0 tasks cancelled; running (use --running to stop them): 12, 13\n", "",
                    kExitFailed}));
  Json unknown{{"ok", true}, {"cancelled", 0}, {"stopping", 0}, {"unknown", {5}}};
  EXPECT_EQ(control_reply("cancel", {"primes", "5", "--running"}, unknown),
            (Output{"primes: 0 tasks cancelled; unknown: 5\n", "", kExitFailed}));
}

TEST(CtlCancelTest, JsonPrintsTheReplyWithTheSameExitCode) {
  Json reply{{"ok", true},
             {"cancelled", 2},
             {"stopping", 0},
             {"running", {12}},
             {"unknown", Json::array()}};
  Output json = control_reply("cancel", {"primes", "7", "8", "12"}, reply, Format::kJson);
  Json expected = reply;
  expected.erase("ok");
  EXPECT_EQ(Json::parse(json.out), expected);
  EXPECT_EQ(json.exit_code, kExitFailed);
  reply["running"] = Json::array();
  EXPECT_EQ(control_reply("cancel", {"primes", "7", "8"}, reply, Format::kJson).exit_code, kExitOk);
}

TEST(CtlCancelTest, ErrorsAndMalformedReplies) {
  EXPECT_EQ(control_reply("cancel", {"nope", "--queued"}, protocol::error_reply("no job nope")),
            (Output{"", "corralctl: no job nope\n", kExitFailed}));
  for (const Json& bad : {Json{{"ok", true}}, Json{{"ok", true}, {"cancelled", "3"}},
                          Json{{"ok", true}, {"cancelled", 1}, {"running", 12}},
                          Json{{"ok", true}, {"cancelled", 1}, {"unknown", {"x"}}}}) {
    Output output = control_reply("cancel", {"primes", "--queued"}, bad);
    EXPECT_EQ(output.exit_code, kExitFailed) << bad;
    EXPECT_EQ(output.err,
              "corralctl: malformed reply from corrald: cancel reply without a count and lists "
              "of ids\n")
        << bad;
  }
}

// ---- results ----

TEST(CtlResultsTest, OptionsBecomeTheRequestAndTheLinesAreStreamed) {
  Plan plain = text_plan("results", {"primes"});
  ASSERT_TRUE(plain.request) << plain.local.err;
  EXPECT_EQ(*plain.request, Json({{"cmd", "results"}, {"job", "primes"}, {"follow", false}}));
  EXPECT_TRUE(plain.results);
  EXPECT_FALSE(plain.stream);
  Plan all = text_plan("results", {"primes", "--follow", "--since", "118", "--submit=3"});
  ASSERT_TRUE(all.request) << all.local.err;
  EXPECT_EQ(*all.request, Json({{"cmd", "results"},
                                {"job", "primes"},
                                {"follow", true},
                                {"since", 118},
                                {"submit", 3}}));
  EXPECT_EQ(message_of(protocol::check_request(*all.request)), "");
  EXPECT_EQ((*text_plan("results", {"-f", "primes"}).request)["follow"], true);
}

TEST(CtlResultsTest, UsageErrors) {
  EXPECT_EQ(usage_of("results", {}), "corralctl: results: needs a JOB");
  EXPECT_EQ(usage_of("results", {"primes", "web"}),
            "corralctl: results: unexpected argument 'web'");
  EXPECT_EQ(usage_of("results", {"primes", "--since", "x"}),
            "corralctl: results: invalid --since 'x' (expected a cursor, as the cursor field of "
            "a result line shows it)");
  EXPECT_EQ(usage_of("results", {"primes", "--submit", "-1"}),
            "corralctl: results: invalid --submit '-1' (expected the number of a submit, as "
            "submit prints it)");
  EXPECT_EQ(usage_of("results", {"primes", "--since"}),
            "corralctl: results: --since needs a value");
  EXPECT_EQ(usage_of("results", {"primes", "--follow=yes"}),
            "corralctl: results: --follow takes no value");
}

TEST(CtlResultsTest, TheAcceptanceShowsNothingAndAnErrorFails) {
  EXPECT_EQ(control_reply("results", {"primes"}, Json{{"ok", true}}), Output{});
  EXPECT_EQ(control_reply("results", {"primes"}, Json{{"ok", true}}, Format::kJson), Output{});
  Output refused = control_reply(
      "results", {"web"}, protocol::error_reply("job web keeps no results (queue.durable: false)"));
  EXPECT_EQ(refused, (Output{"", "corralctl: job web keeps no results (queue.durable: false)\n",
                             kExitFailed}));
}

TEST(CtlResultsTest, TheEndExitsOneForResultsNotOkAndJsonPrintsTheEndLine) {
  Plan plan = text_plan("results", {"primes"});
  Json end{{"end", true}, {"cursor", 120}};
  EXPECT_EQ(format_results(plan, {4, 0, 0, 0, end}, Format::kText), Output{});
  EXPECT_EQ(format_results(plan, {4, 1, 1, 1, end}, Format::kText),
            (Output{"",
                    "corralctl: 3 of 4 tasks did not end ok: 1 failed or dead, 1 cancelled, "
                    "1 expired\n",
                    kExitFailed}));
  Plan json = plan_command("results", {"primes"}, Format::kJson);
  EXPECT_EQ(format_results(json, {4, 0, 0, 0, end}, Format::kJson),
            (Output{"{\"cursor\":120,\"end\":true}\n", "", kExitOk}));
  EXPECT_EQ(format_results(json, {1, 0, 1, 0, end}, Format::kJson),
            (Output{"{\"cursor\":120,\"end\":true}\n",
                    "corralctl: 1 of 1 task did not end ok: 1 cancelled\n", kExitFailed}));
  // retry --wait prints only its result lines, as before.
  Plan retry = plan_command("retry", {"primes", "--wait"}, Format::kJson);
  EXPECT_EQ(format_results(retry, {1, 0, 0, 1, end}, Format::kJson),
            (Output{"", "corralctl: 1 of 1 task did not end ok: 1 expired\n", kExitFailed}));
}

// ---- help, stats and top ----

TEST(CtlTaskControlHelpTest, TheNewCommandsAndOptionsAreInTheHelp) {
  for (const char* name : {"cancel", "results"}) {
    const Command* command = find_command(name);
    ASSERT_NE(command, nullptr) << name;
    EXPECT_NE(overview().find("\n  " + std::string(name) + " "), std::string::npos) << name;
  }
  EXPECT_EQ(command_line(*find_command("cancel")),
            "corralctl cancel JOB (ID... | --submit S | --queued) [--running]");
  EXPECT_EQ(command_line(*find_command("results")),
            "corralctl results JOB [--follow] [--since C] [--submit S]");
  EXPECT_NE(find_command("submit")->synopsis.find("[--deadline D]"), std::string_view::npos);
}

// The shell completes from the synopses: the options inside (...) too, and
// the value of --submit or --since is not taken for an operand.
TEST(CtlTaskControlHelpTest, TheShellCompletesTheNewOptions) {
  auto workers = [] { return std::vector<std::string>{"web:0", "batch:0"}; };
  using ::testing::ElementsAre;
  using ::testing::IsEmpty;
  EXPECT_THAT(complete("cancel web -", workers).choices,
              ElementsAre("--help", "--queued", "--running", "--submit"));
  EXPECT_THAT(complete("cancel ", workers).choices, ElementsAre("batch", "web"));
  EXPECT_THAT(complete("cancel web --submit ", workers).choices, IsEmpty());
  EXPECT_THAT(complete("cancel web 7 ", workers).choices, IsEmpty());
  EXPECT_THAT(complete("results --since 3 ", workers).choices, ElementsAre("batch", "web"));
  EXPECT_THAT(complete("results web -", workers).choices,
              ElementsAre("--follow", "--help", "--since", "--submit"));
  EXPECT_EQ(complete("submit web --dea", workers).insert, "dline ");
}

TEST(CtlTaskControlStatsTest, StatsShowsDelayedCancelledAndExpired) {
  Json reply{{"ok", true},
             {"jobs",
              {{"primes",
                {{"submitted", 20},
                 {"queued", 3},
                 {"delayed", 2},
                 {"in_flight", 1},
                 {"ok", 9},
                 {"failed", 1},
                 {"redelivered", 0},
                 {"dead", 1},
                 {"cancelled", 2},
                 {"expired", 1}}}}}};
  EXPECT_EQ(control_reply("stats", {}, reply).out,
            "primes  submitted 20  queued 3  delayed 2  in_flight 1  ok 9  failed 1  "
            "redelivered 0  dead 1  cancelled 2  expired 1  tasks/s -  p50 -  p99 -\n");
}

TEST(CtlTaskControlStatsTest, TopShowsThemWhereItHasRoomAndDropsThemFirst) {
  Json stats{
      {"jobs",
       {{"primes",
         {{"queued", 3}, {"delayed", 2}, {"cancelled", 5}, {"expired", 4}, {"workers", 1}}}}}};
  Json status{{"workers", Json::array()}};
  std::string wide = render_top(status, stats, TopHistory{}, 250, 40, "");
  EXPECT_NE(wide.find("DELAYED  CANCELLED  EXPIRED\n"), std::string::npos) << wide;
  EXPECT_NE(wide.find("        2          5        4\n"), std::string::npos) << wide;
  std::string narrow = render_top(status, stats, TopHistory{}, 90, 40, "");
  EXPECT_EQ(narrow.find("DELAYED"), std::string::npos) << narrow;
  EXPECT_NE(narrow.find("RESTARTS"), std::string::npos) << narrow;
}

}  // namespace
}  // namespace corral::ctl

// corralctl's commands for supervisorctl's habits: avail, maintail, fg, dead
// --clear and retry by ID or with --wait: requests built from argv, replies
// shown as text and JSON, exit codes.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "ctl/commands.h"
#include "protocol/control.h"
#include "tests/unit/ctl_plan.h"

namespace corral::ctl {
namespace {

using protocol::kExitFailed;
using protocol::kExitOk;
using protocol::kExitUsage;

// What corralctl NAME ARGS shows of REPLY.
Output habit_reply(std::string_view name, const std::vector<std::string>& args, const Json& reply,
                   Format format = Format::kText) {
  Plan plan = plan_command(name, args, format);
  EXPECT_TRUE(plan.request) << plan.local.err;
  if (!plan.request) return plan.local;
  return format_reply(plan, reply, format);
}

// ---- avail ----

TEST(CtlAvailTest, AsksForAvailAndTakesNoArguments) {
  Plan plan = text_plan("avail", {});
  ASSERT_TRUE(plan.request);
  EXPECT_EQ(*plan.request, Json({{"cmd", "avail"}}));
  Plan extra = text_plan("avail", {"web"});
  EXPECT_FALSE(extra.request);
  EXPECT_EQ(extra.local.exit_code, kExitUsage);
  EXPECT_EQ(extra.local.err,
            "corralctl: avail: unexpected argument 'web'\nusage: corralctl avail\n");
}

Json avail_job(std::string name, std::string state, bool autostart, int workers,
               bool changed = false) {
  return Json{{"name", name},
              {"state", state},
              {"autostart", autostart},
              {"workers", workers},
              {"changed", changed}};
}

TEST(CtlAvailTest, OneLinePerJobAsSupervisorctlShowsIt) {
  Json jobs =
      Json::array({avail_job("batch", "avail", false, 2), avail_job("db", "removed", true, 1),
                   avail_job("web", "in use", true, 3, true)});
  Output output = habit_reply("avail", {}, Json{{"ok", true}, {"jobs", jobs}});
  EXPECT_EQ(output.exit_code, kExitOk);
  EXPECT_EQ(output.out,
            "batch  avail    manual  2 workers\n"
            "db     removed  auto    1 worker\n"
            "web    in use   auto    3 workers  (changed in the file: update applies it)\n");
  EXPECT_EQ(output.err, "");
  Output json = habit_reply("avail", {}, Json{{"ok", true}, {"jobs", jobs}}, Format::kJson);
  EXPECT_EQ(Json::parse(json.out), jobs);
}

TEST(CtlAvailTest, NoJobsAConfigWithErrorsAndMalformedReplies) {
  EXPECT_EQ(habit_reply("avail", {}, Json{{"ok", true}, {"jobs", Json::array()}}).out,
            "No jobs in the config file or in corrald\n");
  Json errors = {{"ok", false},
                 {"error", "the config has 1 error; nothing was changed: a.yaml:3:5: bad"},
                 {"errors", {"a.yaml:3:5: bad"}}};
  Output failed = habit_reply("avail", {}, errors);
  EXPECT_EQ(failed.exit_code, kExitFailed);
  EXPECT_EQ(failed.err,
            "corralctl: a.yaml:3:5: bad\ncorralctl: the config has errors; nothing was changed\n");
  EXPECT_EQ(habit_reply("avail", {}, Json{{"ok", true}}).exit_code, kExitFailed);
  EXPECT_EQ(habit_reply("avail", {}, Json{{"ok", true}, {"jobs", {1}}}).exit_code, kExitFailed);
}

// ---- maintail ----

TEST(CtlMaintailTest, AsksForTheLastLinesAndStreams) {
  Plan plan = text_plan("maintail", {});
  ASSERT_TRUE(plan.request);
  EXPECT_EQ(*plan.request, Json({{"cmd", "maintail"}, {"lines", 10}, {"follow", false}}));
  EXPECT_TRUE(plan.stream);
  Plan follow = text_plan("maintail", {"-f", "-n", "200"});
  ASSERT_TRUE(follow.request);
  EXPECT_EQ(*follow.request, Json({{"cmd", "maintail"}, {"lines", 200}, {"follow", true}}));
  EXPECT_EQ(*text_plan("maintail", {"--follow", "--lines=0"}).request,
            Json({{"cmd", "maintail"}, {"lines", 0}, {"follow", true}}));
}

TEST(CtlMaintailTest, UsageErrors) {
  Plan words = text_plan("maintail", {"web"});
  EXPECT_FALSE(words.request);
  EXPECT_EQ(words.local.exit_code, kExitUsage);
  EXPECT_EQ(
      words.local.err,
      "corralctl: maintail: unexpected argument 'web'\nusage: corralctl maintail [-f] [-n N]\n");
  for (std::string bad : {"x", "-1", "", "1e3"}) {
    Plan plan = text_plan("maintail", {"-n", bad});
    EXPECT_FALSE(plan.request) << bad;
    EXPECT_EQ(plan.local.exit_code, kExitUsage);
    EXPECT_EQ(plan.local.err.rfind(
                  "corralctl: maintail: -n needs a number of lines, got '" + bad + "'\n", 0),
              0u)
        << plan.local.err;
  }
  EXPECT_EQ(text_plan("maintail", {"--stderr"}).local.exit_code, kExitUsage);
}

TEST(CtlMaintailTest, TheAcceptanceShowsNothingAndAnErrorFails) {
  EXPECT_EQ(habit_reply("maintail", {}, Json{{"ok", true}}), Output{});
  Output refused = habit_reply("maintail", {}, protocol::error_reply("no log lines"));
  EXPECT_EQ(refused.exit_code, kExitFailed);
  EXPECT_EQ(refused.err, "corralctl: no log lines\n");
}

// ---- fg ----

TEST(CtlFgTest, AsksForOneWorkerAndFollowsIt) {
  Plan plan = text_plan("fg", {"web:0"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(*plan.request, Json({{"cmd", "fg"}, {"target", "web:0"}, {"lines", 10}}));
  EXPECT_TRUE(plan.fg);
  EXPECT_FALSE(plan.stream);
  EXPECT_FALSE(plan.results);
  EXPECT_EQ(*text_plan("fg", {"-n", "50", "web:1"}).request,
            Json({{"cmd", "fg"}, {"target", "web:1"}, {"lines", 50}}));
  EXPECT_EQ(*text_plan("fg", {"db", "--lines=0"}).request,
            Json({{"cmd", "fg"}, {"target", "db"}, {"lines", 0}}));
  // JOB:* is the job, which corrald takes for a job of one worker.
  EXPECT_EQ(*text_plan("fg", {"db:*"}).request,
            Json({{"cmd", "fg"}, {"target", "db"}, {"lines", 10}}));
  Plan json = plan_command("fg", {"web:0", "--json"}, Format::kText);
  ASSERT_TRUE(json.request);
  EXPECT_EQ(json.format, Format::kJson);
  EXPECT_TRUE(json.fg);
}

TEST(CtlFgTest, UsageErrors) {
  const std::string usage = "usage: corralctl fg [-n N] JOB:INDEX\n";
  auto refused = [&](const std::vector<std::string>& args, const std::string& err) {
    Plan plan = text_plan("fg", args);
    EXPECT_FALSE(plan.request) << ::testing::PrintToString(args);
    EXPECT_FALSE(plan.fg);
    EXPECT_EQ(plan.local.exit_code, kExitUsage) << ::testing::PrintToString(args);
    EXPECT_EQ(plan.local.err, err + usage) << ::testing::PrintToString(args);
  };
  refused({}, "corralctl: fg: needs exactly one worker, JOB:INDEX\n");
  refused({"web:0", "web:1"}, "corralctl: fg: needs exactly one worker, JOB:INDEX\n");
  refused({"all"}, "corralctl: fg: 'all' is not one worker; name it as JOB:INDEX\n");
  refused({"web:x"},
          "corralctl: fg: invalid target 'web:x': after 'web:' comes a worker INDEX (0, 1, ...) "
          "or * (expected JOB, JOB:INDEX, JOB:* or all)\n");
  for (std::string bad : {"x", "-1", "", "1e3", "1234567890123456789"}) {
    refused({"-n", bad, "web:0"}, "corralctl: fg: -n needs a number of lines, got '" + bad + "'\n");
  }
  // tail's options are not fg's: it always shows both streams and follows.
  for (std::string option : {"-f", "--stderr", "--follow"}) {
    Plan plan = text_plan("fg", {option, "web:0"});
    EXPECT_FALSE(plan.request) << option;
    EXPECT_EQ(plan.local.exit_code, kExitUsage) << option;
  }
}

TEST(CtlFgTest, TheAcceptanceSaysWhoIsInFrontOnStderr) {
  Json reply = {{"ok", true},
                {"name", "web:0"},
                {"pid", 4321},
                {"stdout", "/var/log/corral/web-0.out.log"},
                {"stderr", "/var/log/corral/web-0.err.log"}};
  Output text = habit_reply("fg", {"web:0"}, reply);
  EXPECT_EQ(text, (Output{"",
                          "corralctl: web:0 (pid 4321) in the foreground; Ctrl-C leaves it "
                          "running; typing is not sent to it\n",
                          kExitOk}));
  // --json: corrald's line on stdout, one line, as the data lines after it.
  Output json = habit_reply("fg", {"web:0"}, reply, Format::kJson);
  EXPECT_EQ(json.err, "");
  EXPECT_EQ(json.exit_code, kExitOk);
  ASSERT_TRUE(json.out.ends_with("\n"));
  EXPECT_EQ(json.out.find('\n'), json.out.size() - 1);
  EXPECT_EQ(Json::parse(json.out), reply);

  Output stopped =
      habit_reply("fg", {"web:0"}, protocol::error_reply("fg: web:0 is not running (STOPPED)"));
  EXPECT_EQ(stopped, (Output{"", "corralctl: fg: web:0 is not running (STOPPED)\n", kExitFailed}));
  EXPECT_EQ(habit_reply("fg", {"web:0"}, Json{{"ok", true}}).exit_code, kExitFailed);
  EXPECT_EQ(habit_reply("fg", {"web:0"}, Json{{"ok", true}, {"name", "web:0"}}).exit_code,
            kExitFailed);
}

TEST(CtlFgTest, TheEndSaysHowTheProcessEndedAndExits1) {
  Json end = {{"end", true},
              {"name", "web:0"},
              {"state", "STOPPED"},
              {"pid", nullptr},
              {"exit_description", "killed by SIGTERM"}};
  EXPECT_EQ(format_fg_end(end, Format::kText),
            (Output{"", "corralctl: web:0 exited: killed by SIGTERM; now STOPPED\n", kExitFailed}));
  Output json = format_fg_end(end, Format::kJson);
  EXPECT_EQ(Json::parse(json.out), end);
  EXPECT_EQ(json.out.find('\n'), json.out.size() - 1);
  EXPECT_EQ(json.err, "corralctl: web:0 exited: killed by SIGTERM; now STOPPED\n");
  EXPECT_EQ(json.exit_code, kExitFailed);

  // Restarted already: its new pid.
  Json restarted = {{"end", true},
                    {"name", "web:0"},
                    {"state", "STARTING"},
                    {"pid", 99},
                    {"exit_description", "exit status 1"}};
  EXPECT_EQ(format_fg_end(restarted, Format::kText).err,
            "corralctl: web:0 exited: exit status 1; now STARTING (pid 99)\n");
  // Removed by a reload: no state.
  Json removed = {{"end", true},
                  {"name", "web:0"},
                  {"state", nullptr},
                  {"pid", nullptr},
                  {"exit_description", nullptr}};
  EXPECT_EQ(
      format_fg_end(removed, Format::kText),
      (Output{"", "corralctl: web:0 is gone: its job was removed or changed\n", kExitFailed}));
  Json no_exit = {{"end", true}, {"name", "web:0"}, {"state", "FATAL"}};
  EXPECT_EQ(format_fg_end(no_exit, Format::kText).err, "corralctl: web:0 is FATAL\n");
}

TEST(CtlFgTest, HelpSaysTypingIsNotForwarded) {
  Output help = text_plan("fg", {"--help"}).local;
  EXPECT_EQ(help.exit_code, kExitOk);
  EXPECT_EQ(help.out.rfind("usage: corralctl fg [-n N] JOB:INDEX\n", 0), 0u) << help.out;
  EXPECT_NE(help.out.find("what you type is not sent to the worker"), std::string::npos);
  EXPECT_NE(help.out.find("/dev/null"), std::string::npos);
  EXPECT_NE(help.out.find("Ctrl-C leaves (exit 0)"), std::string::npos);
}

// ---- dead --clear, retry ID... --wait ----

TEST(CtlDeadLettersTest, DeadClearAsksToClearAndSaysHowMany) {
  Plan plan = text_plan("dead", {"primes", "--clear"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  EXPECT_EQ(*plan.request, Json({{"cmd", "dead"}, {"job", "primes"}, {"clear", true}}));
  EXPECT_EQ(*text_plan("dead", {"primes"}).request, Json({{"cmd", "dead"}, {"job", "primes"}}));
  Output text = habit_reply("dead", {"primes", "--clear"}, Json{{"ok", true}, {"cleared", 3}});
  EXPECT_EQ(text, (Output{"primes: cleared 3 dead letters\n", "", kExitOk}));
  EXPECT_EQ(habit_reply("dead", {"--clear", "primes"}, Json{{"ok", true}, {"cleared", 1}}).out,
            "primes: cleared 1 dead letter\n");
  Output json =
      habit_reply("dead", {"primes", "--clear"}, Json{{"ok", true}, {"cleared", 3}}, Format::kJson);
  EXPECT_EQ(Json::parse(json.out), Json({{"cleared", 3}}));
  EXPECT_EQ(habit_reply("dead", {"primes", "--clear"}, Json{{"ok", true}}).exit_code, kExitFailed);
  EXPECT_EQ(text_plan("dead", {"primes", "--clear=yes"}).local.exit_code, kExitUsage);
}

TEST(CtlDeadLettersTest, RetryTakesIdsAndWait) {
  EXPECT_EQ(*text_plan("retry", {"primes"}).request, Json({{"cmd", "retry"}, {"job", "primes"}}));
  Plan some = text_plan("retry", {"primes", "7", "12"});
  ASSERT_TRUE(some.request) << some.local.err;
  EXPECT_EQ(*some.request, Json({{"cmd", "retry"}, {"job", "primes"}, {"ids", {7, 12}}}));
  EXPECT_FALSE(some.results);
  Plan wait = text_plan("retry", {"primes", "--wait", "7"});
  ASSERT_TRUE(wait.request) << wait.local.err;
  EXPECT_EQ(*wait.request,
            Json({{"cmd", "retry"}, {"job", "primes"}, {"ids", {7}}, {"wait", true}}));
  EXPECT_TRUE(wait.results);
  EXPECT_FALSE(wait.stream);
}

TEST(CtlDeadLettersTest, RetryUsageErrors) {
  EXPECT_EQ(text_plan("retry", {}).local.err,
            "corralctl: retry: needs a JOB\nusage: corralctl retry JOB [ID...] [--wait]\n");
  for (std::string bad : {"x", "-1", "7x", "18446744073709551616", ""}) {
    Plan plan = text_plan("retry", {"primes", "--", bad});
    EXPECT_FALSE(plan.request) << bad;
    EXPECT_EQ(plan.local.exit_code, kExitUsage);
    EXPECT_EQ(plan.local.err.rfind("corralctl: retry: invalid ID '" + bad +
                                       "' (expected the id of a task that 'dead primes' lists)\n",
                                   0),
              0u)
        << plan.local.err;
  }
  EXPECT_EQ(text_plan("retry", {"a:0"}).local.exit_code, kExitUsage);
}

TEST(CtlDeadLettersTest, RetryShowsHowManyOrNothingBeforeItsResults) {
  Json reply = {{"ok", true}, {"requeued", 2}};
  EXPECT_EQ(habit_reply("retry", {"primes", "7", "12"}, reply).out, "requeued 2 tasks\n");
  // --wait: the result lines follow, and only they are printed.
  EXPECT_EQ(habit_reply("retry", {"primes", "--wait"}, reply), Output{});
  EXPECT_EQ(habit_reply("retry", {"primes", "--wait"}, reply, Format::kJson), Output{});
  Output unknown = habit_reply(
      "retry", {"primes", "99"},
      protocol::error_reply("job primes: no dead letter has id 99 in its dead-letter list"));
  EXPECT_EQ(unknown.exit_code, kExitFailed);
  EXPECT_EQ(unknown.err,
            "corralctl: job primes: no dead letter has id 99 in its dead-letter list\n");
}

TEST(CtlDeadLettersTest, RetryWaitExitsAsSubmitWaitDoes) {
  Plan plan = text_plan("retry", {"primes", "--wait"});
  EXPECT_EQ(format_results(plan, {3, 0}, Format::kText), Output{});
  EXPECT_EQ(format_results(plan, {0, 0}, Format::kText), Output{});
  EXPECT_EQ(format_results(plan, {3, 2}, Format::kText),
            (Output{"", "corralctl: 2 of 3 tasks failed or dead\n", kExitFailed}));
  EXPECT_EQ(format_results(plan, {1, 1}, Format::kJson),
            (Output{"", "corralctl: 1 of 1 task failed or dead\n", kExitFailed}));
}

}  // namespace
}  // namespace corral::ctl

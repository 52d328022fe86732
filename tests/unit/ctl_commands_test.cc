// corralctl's command table: requests built from argv, replies shown as text
// and JSON, exit codes. Its client is in ctl_client_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
using ::testing::HasSubstr;

using Args = std::vector<std::string>;

Json worker(std::string name, std::string state, std::string description, int restarts = 0,
            int tasks_ok = 0, int tasks_failed = 0) {
  auto colon = name.find(':');
  return Json{{"name", name},
              {"job", name.substr(0, colon)},
              {"index", std::stoi(name.substr(colon + 1))},
              {"state", state},
              {"pid", nullptr},
              {"uptime_s", 0},
              {"restarts", restarts},
              {"exit_status", nullptr},
              {"exit_description", nullptr},
              {"spawn_error", nullptr},
              {"description", description},
              {"tasks_ok", tasks_ok},
              {"tasks_failed", tasks_failed},
              {"cpu_s", 0.0},
              {"rss_bytes", 0}};
}

// ---- Requests from argv ----

TEST(CtlPlanTest, StatusWithoutTargetsAsksForAll) {
  Plan plan = text_plan("status", {});
  ASSERT_TRUE(plan.request);
  EXPECT_EQ(*plan.request, Json({{"cmd", "status"}, {"fields", status_text_fields()}}));
}

TEST(CtlPlanTest, StatusAsTextAsksForWhatItShowsAndAsJsonForEverything) {
  Plan text = text_plan("status", {"web"});
  ASSERT_TRUE(text.request);
  EXPECT_EQ((*text.request)["fields"], Json(status_text_fields()));
  Plan json = plan_command("status", {"web"}, Format::kJson);
  ASSERT_TRUE(json.request);
  EXPECT_EQ(*json.request, Json({{"cmd", "status"}, {"targets", {"web"}}}));
  EXPECT_TRUE(protocol::check_request(*text.request)) << "corrald takes every field asked for";
}

TEST(CtlPlanTest, TargetsAreValidatedAndNormalized) {
  Plan plan = plan_command("status", {"web", "db:007", "all"}, Format::kJson);
  ASSERT_TRUE(plan.request);
  EXPECT_EQ(*plan.request,
            Json({{"cmd", "status"}, {"targets", Json::array({"web", "db:7", "all"})}}));
}

TEST(CtlPlanTest, StartStopRestartSendTheirTargets) {
  for (std::string name : {"start", "stop", "restart"}) {
    Plan plan = text_plan(name, {"web:0", "batch"});
    ASSERT_TRUE(plan.request) << name;
    EXPECT_EQ(*plan.request, Json({{"cmd", name}, {"targets", Json::array({"web:0", "batch"})}}));
  }
}

TEST(CtlPlanTest, BadTargetIsAUsageErrorNamingIt) {
  Plan plan = text_plan("start", {"web:0", "web:x"});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.out, "");
  EXPECT_EQ(plan.local.err,
            "corralctl: start: invalid target 'web:x': after 'web:' comes a worker INDEX (0, 1, "
            "...) or * (expected JOB, JOB:INDEX, JOB:* or all)\n"
            "usage: corralctl start TARGET...\n");
}

TEST(CtlPlanTest, OtherBadTargets) {
  for (std::string bad : {"", "web:", ":0", "we b", "web:-1", "web:0:1", "a/b"}) {
    Plan plan = text_plan("stop", {bad});
    EXPECT_FALSE(plan.request) << bad;
    EXPECT_EQ(plan.local.exit_code, kExitUsage) << bad;
    EXPECT_NE(plan.local.err.find("'" + bad + "'"), std::string::npos) << plan.local.err;
  }
}

// supervisorctl's GROUP:*: wherever a TARGET is taken, JOB:* is sent as JOB.
TEST(CtlPlanTest, JobColonStarIsSentAsTheJob) {
  for (std::string name : {"status", "start", "stop", "restart", "pid", "clear"}) {
    Plan plan = text_plan(name, {"web:*", "db:1"});
    ASSERT_TRUE(plan.request) << name << ": " << plan.local.err;
    EXPECT_EQ((*plan.request)["targets"], Json::array({"web", "db:1"})) << name;
  }
  Plan signal = text_plan("signal", {"HUP", "web:*"});
  ASSERT_TRUE(signal.request) << signal.local.err;
  EXPECT_EQ(*signal.request,
            Json({{"cmd", "signal"}, {"signal", "HUP"}, {"targets", Json::array({"web"})}}));
  Plan rolling = text_plan("restart", {"--rolling", "web:*"});
  ASSERT_TRUE(rolling.request) << rolling.local.err;
  EXPECT_EQ(*rolling.request,
            Json({{"cmd", "restart"}, {"targets", Json::array({"web"})}, {"rolling", true}}));
  Plan tail = text_plan("tail", {"web:*"});
  ASSERT_TRUE(tail.request) << tail.local.err;
  EXPECT_EQ((*tail.request)["target"], "web");
}

TEST(CtlPlanTest, BadStarTargetsAreUsageErrorsThatSayWhy) {
  Plan plan = text_plan("status", {"web:*x"});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: status: invalid target 'web:*x': after 'web:' comes a worker INDEX (0, "
            "1, ...) or * (expected JOB, JOB:INDEX, JOB:* or all)\n"
            "usage: corralctl status [TARGET...]\n");
  Plan star_job = text_plan("stop", {"*:1"});
  EXPECT_FALSE(star_job.request);
  EXPECT_EQ(star_job.local.exit_code, kExitUsage);
  EXPECT_EQ(star_job.local.err,
            "corralctl: stop: invalid target '*:1': '*' is not a job name (expected JOB, "
            "JOB:INDEX, JOB:* or all)\n"
            "usage: corralctl stop TARGET...\n");
}

TEST(CtlPlanTest, StartNeedsATarget) {
  Plan plan = text_plan("start", {});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: start: needs at least one TARGET\nusage: corralctl start TARGET...\n");
}

TEST(CtlPlanTest, JsonMayFollowTheCommand) {
  Plan plan = text_plan("status", {"web", "--json"});
  ASSERT_TRUE(plan.request);
  EXPECT_EQ(plan.format, Format::kJson);
  EXPECT_EQ((*plan.request)["targets"], Json::array({"web"}));
  EXPECT_EQ(text_plan("status", {"web"}).format, Format::kText);
  // Not when it is an option's value, nor after --.
  Plan data = text_plan("submit", {"j", "--data", "--json"});
  ASSERT_TRUE(data.submit);
  EXPECT_EQ(data.submit->data, std::vector<std::string>{"--json"});
  EXPECT_EQ(data.format, Format::kText);
  Plan after = text_plan("status", {"--", "--json"});
  EXPECT_EQ(after.format, Format::kText);
  ASSERT_TRUE(after.request);
  EXPECT_EQ((*after.request)["targets"], Json::array({"--json"}));  // a job's name there
}

TEST(CtlPlanTest, SubmitTimingAsksForRunTimesAndNeedsWait) {
  Plan timed = text_plan("submit", {"j", "--data", "1", "--wait", "--timing"});
  ASSERT_TRUE(timed.request);
  EXPECT_EQ((*timed.request)["timing"], true);
  Plan plain = text_plan("submit", {"j", "--data", "1", "--wait"});
  ASSERT_TRUE(plain.request);
  EXPECT_FALSE(plain.request->contains("timing"));
  Plan alone = text_plan("submit", {"j", "--data", "1", "--timing"});
  EXPECT_FALSE(alone.request);
  EXPECT_EQ(alone.local.exit_code, kExitUsage);
  EXPECT_NE(alone.local.err.find("--timing needs --wait"), std::string::npos) << alone.local.err;
}

TEST(CtlPlanTest, UnknownOptionOfACommand) {
  Plan plan = text_plan("status", {"-s", "/x.sock"});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: status: unknown option '-s' (global options go before the command)\n"
            "usage: corralctl status [TARGET...]\n");
  EXPECT_EQ(text_plan("status", {"-x"}).local.err,
            "corralctl: status: unknown option '-x'\nusage: corralctl status [TARGET...]\n");
}

TEST(CtlPlanTest, DoubleDashLetsAJobLookLikeAnOption) {
  Plan plan = text_plan("stop", {"--", "-web"});
  ASSERT_TRUE(plan.request);
  EXPECT_EQ((*plan.request)["targets"], Json::array({"-web"}));
}

TEST(CtlPlanTest, PidWithAndWithoutTargets) {
  EXPECT_EQ(*text_plan("pid", {}).request, Json({{"cmd", "pid"}}));
  EXPECT_EQ(*text_plan("pid", {"web:1"}).request,
            Json({{"cmd", "pid"}, {"targets", Json::array({"web:1"})}}));
}

TEST(CtlPlanTest, ShutdownAndVersionTakeNoArguments) {
  EXPECT_EQ(*text_plan("shutdown", {}).request, Json({{"cmd", "shutdown"}}));
  EXPECT_EQ(*text_plan("version", {}).request, Json({{"cmd", "version"}}));
  Plan plan = text_plan("shutdown", {"now"});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: shutdown: unexpected argument 'now'\nusage: corralctl shutdown\n");
}

TEST(CtlPlanTest, UnknownCommand) {
  Plan plan = text_plan("stats-of-doom", {});
  EXPECT_EQ(plan.command, nullptr);
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitUsage);
  EXPECT_EQ(plan.local.err,
            "corralctl: unknown command 'stats-of-doom'\n"
            "run 'corralctl help' for the list of commands\n");
}

TEST(CtlPlanTest, HelpListsEveryCommandWithoutTheDaemon) {
  Plan plan = text_plan("help", {});
  EXPECT_FALSE(plan.request);
  EXPECT_EQ(plan.local.exit_code, kExitOk);
  EXPECT_EQ(plan.local.out, overview());
  for (const auto& command : commands()) {
    EXPECT_NE(plan.local.out.find("\n  " + std::string(command.name)), std::string::npos)
        << command.name;
    EXPECT_FALSE(command.summary.empty()) << command.name;
  }
}

TEST(CtlPlanTest, HelpOfACommand) {
  Plan plan = text_plan("help", {"status"});
  EXPECT_EQ(plan.local.exit_code, kExitOk);
  EXPECT_EQ(plan.local.out.rfind("usage: corralctl status [TARGET...]\n\n", 0), 0u);
  EXPECT_NE(plan.local.out.find("Exits 1 if any worker shown is FATAL or BACKOFF"),
            std::string::npos);
  EXPECT_EQ(text_plan("status", {"--help"}).local, plan.local);
  EXPECT_EQ(text_plan("help", {"nope"}).local.exit_code, kExitUsage);
}

TEST(CtlPlanTest, HelpAsJson) {
  Plan plan = plan_command("help", {}, Format::kJson);
  Json list = Json::parse(plan.local.out);
  ASSERT_TRUE(list.is_array());
  EXPECT_EQ(list.size(), commands().size());
  EXPECT_EQ(list[0]["name"], "status");
  EXPECT_EQ(list[0]["usage"], "corralctl status [TARGET...]");
}

// ---- status ----

Output status_reply(const Json& workers, Format format = Format::kText) {
  Plan plan = plan_command("status", {}, format);
  return format_reply(plan, Json{{"ok", true}, {"workers", workers}}, format);
}

TEST(CtlStatusTest, TextTableIsAligned) {
  Json running = worker("web:0", "RUNNING", "pid 1234, uptime 0:01:02", 2, 120);
  running["pid"] = 1234;
  Json workers = Json::array({
      running,
      worker("web:1", "BACKOFF", "exit status 1; retry in 0.4s", 3, 7, 1),
      worker("batch-long:10", "STOPPED", "Not started"),
      worker("x:0", "FATAL", "exec nope: No such file or directory", 5, 0, 4),
  });
  Output output = status_reply(workers);
  EXPECT_EQ(output.out,
            "web:0          RUNNING   pid 1234, uptime 0:01:02; restarts 2; tasks 120 ok\n"
            "web:1          BACKOFF   exit status 1; retry in 0.4s; restarts 3; tasks 7 ok, 1 "
            "failed\n"
            "batch-long:10  STOPPED   Not started\n"
            "x:0            FATAL     exec nope: No such file or directory; restarts 5; tasks 0 "
            "ok, 4 failed\n");
  EXPECT_EQ(output.err, "");
  EXPECT_EQ(output.exit_code, kExitFailed);  // FATAL and BACKOFF
}

TEST(CtlStatusTest, AllRunningExitsZeroAndEmptyDescriptionLeavesNoTrailingSpace) {
  Output output = status_reply(Json::array(
      {worker("a:0", "RUNNING", "pid 1, uptime 0:00:05"), worker("a:1", "STOPPED", "")}));
  EXPECT_EQ(output.out,
            "a:0  RUNNING   pid 1, uptime 0:00:05\n"
            "a:1  STOPPED\n");
  EXPECT_EQ(output.exit_code, kExitOk);
}

TEST(CtlStatusTest, ExitCodeFollowsTheStatesShown) {
  for (std::string state : {"STOPPED", "STARTING", "RUNNING", "STOPPING", "EXITED"}) {
    EXPECT_EQ(status_reply(Json::array({worker("a:0", state, "")})).exit_code, kExitOk) << state;
  }
  for (std::string state : {"BACKOFF", "FATAL"}) {
    EXPECT_EQ(status_reply(Json::array({worker("a:0", state, "")})).exit_code, kExitFailed)
        << state;
  }
  EXPECT_EQ(status_reply(Json::array()).exit_code, kExitOk);
  EXPECT_EQ(status_reply(Json::array()).out, "");
}

TEST(CtlStatusTest, ABrokerJobsBrokerIsOneLineAfterItsWorkers) {
  Json broker{{"state", "ready"},
              {"error", nullptr},
              {"url", "unix:///r.sock"},
              {"stream", "corral:sums"},
              {"consumer", "node-a"},
              {"lag", 12},
              {"pending", 5},
              {"held", 3}};
  Json a = worker("sums:0", "RUNNING", "pid 1, uptime 0:00:05");
  Json b = worker("sums:1", "RUNNING", "pid 2, uptime 0:00:05");
  a["job"] = b["job"] = "sums";
  a["broker"] = b["broker"] = broker;
  Output output = status_reply(Json::array({a, b}));
  EXPECT_EQ(output.out,
            "sums:0         RUNNING   pid 1, uptime 0:00:05\n"
            "sums:1         RUNNING   pid 2, uptime 0:00:05\n"
            "sums (broker)  READY     ready: unix:///r.sock stream corral:sums as node-a, lag "
            "12, pending 5 (3 here)\n");
  EXPECT_EQ(output.exit_code, kExitOk);

  // Down: the reason, and the exit code of a failed state.
  broker["state"] = "down";
  broker["error"] = "redis unix:///r.sock: connect: No such file or directory";
  broker["lag"] = nullptr;
  a["broker"] = broker;
  output = status_reply(Json::array({a}));
  EXPECT_EQ(output.out,
            "sums:0         RUNNING   pid 1, uptime 0:00:05\n"
            "sums (broker)  DOWN      down: unix:///r.sock stream corral:sums as node-a, lag ?, "
            "pending 5 (3 here); redis unix:///r.sock: connect: No such file or directory\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlStatusTest, WithoutDescriptionTheLineIsRebuiltFromFields) {
  Json w = worker("a:0", "RUNNING", "");
  w.erase("description");
  w["pid"] = 42;
  w["uptime_s"] = 3723.5;
  Json dead = worker("a:1", "FATAL", "");
  dead["spawn_error"] = "exec nope: No such file or directory";
  EXPECT_EQ(status_reply(Json::array({w, dead})).out,
            "a:0  RUNNING   pid 42, uptime 1:02:03\n"
            "a:1  FATAL     exec nope: No such file or directory\n");
}

// A text status asks corrald for status_text_fields() alone: the text of
// every kind of worker line must be the same as from the whole objects (as
// a corrald that takes "fields" sends them: with a description).
TEST(CtlStatusTest, TheFieldsATextStatusAsksForAreAllItShows) {
  Json broker = {{"state", "ready"},
                 {"error", nullptr},
                 {"url", "unix:///r.sock"},
                 {"stream", "corral:sums"},
                 {"consumer", "node-a"},
                 {"lag", 0},
                 {"pending", 4},
                 {"held", 4},
                 {"read", 500},
                 {"claimed", 0},
                 {"acked", 496},
                 {"dead", 1},
                 {"added", 0},
                 {"reconnects", 0}};
  Json running = worker("web:0", "RUNNING", "pid 12, uptime 0:01:02", 2, 40, 1);
  running["pid"] = 12;
  running["uptime_s"] = 62.5;
  Json stopped = worker("web:1", "STOPPED", "stopped 0:00:09 ago", 0, 3, 0);
  Json failed = worker("bad:0", "FATAL", "spawn error: exec nope: No such file or directory");
  failed["spawn_error"] = "exec nope: No such file or directory";
  Json exited = worker("once:0", "EXITED", "exit status 1, 0:00:02 ago");
  exited["exit_description"] = "exit status 1";
  Json brokered = worker("sums:0", "RUNNING", "pid 14, uptime 0:00:05");
  brokered["broker"] = broker;
  Json whole = {{"ok", true}, {"workers", {running, stopped, failed, exited, brokered}}};

  Json asked = {{"ok", true}, {"workers", Json::array()}};
  for (const Json& w : whole["workers"]) {
    Json only = Json::object();
    for (const std::string& field : status_text_fields()) {
      if (w.contains(field)) only[field] = w[field];
    }
    asked["workers"].push_back(only);
  }
  Output from_whole = format_status({}, whole, Format::kText);
  Output from_asked = format_status({}, asked, Format::kText);
  EXPECT_EQ(from_asked.out, from_whole.out);
  EXPECT_EQ(from_asked.exit_code, from_whole.exit_code);
  EXPECT_THAT(from_whole.out, HasSubstr("restarts 2; tasks 40 ok, 1 failed"));
  EXPECT_THAT(from_whole.out, HasSubstr("stopped 0:00:09 ago; tasks 3 ok"));
  EXPECT_THAT(from_whole.out, HasSubstr("exec nope"));
  EXPECT_THAT(from_whole.out, HasSubstr("exit status 1"));
  EXPECT_THAT(from_whole.out, HasSubstr("sums (broker)"));
}

TEST(CtlStatusTest, JsonPrintsTheWorkerObjects) {
  Json workers = Json::array({worker("web:0", "RUNNING", "pid 1, uptime 0:00:01")});
  Output output = status_reply(workers, Format::kJson);
  EXPECT_EQ(Json::parse(output.out), workers);
  EXPECT_EQ(output.exit_code, kExitOk);
  EXPECT_EQ(status_reply(Json::array({worker("a:0", "FATAL", "")}), Format::kJson).exit_code,
            kExitFailed);
}

TEST(CtlStatusTest, ErrorReply) {
  Plan plan = text_plan("status", {"nope"});
  Output output = format_reply(plan, protocol::error_reply("unknown job 'nope'"), Format::kText);
  EXPECT_EQ(output.out, "");
  EXPECT_EQ(output.err, "corralctl: unknown job 'nope'\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlStatusTest, MalformedReplies) {
  Plan plan = text_plan("status", {});
  for (Json reply : {Json{{"workers", Json::array()}}, Json{{"ok", "yes"}}, Json{{"ok", true}},
                     Json{{"ok", true}, {"workers", Json::array({1, 2})}}, Json::array()}) {
    Output output = format_reply(plan, reply, Format::kText);
    EXPECT_EQ(output.exit_code, kExitFailed) << reply;
    EXPECT_EQ(output.err.rfind("corralctl: malformed reply from corrald: ", 0), 0u) << output.err;
  }
}

TEST(CtlStatusTest, FieldsOfTheWrongTypeDoNotThrow) {
  Json odd = {{"name", 5}, {"state", nullptr}, {"restarts", "many"}, {"description", 3}};
  Output output = status_reply(Json::array({odd}));
  EXPECT_EQ(output.exit_code, kExitOk);
  EXPECT_EQ(output.out, "\n");
}

// ---- start, stop, restart ----

Json action_worker(std::string name, bool ok, std::string state, std::string message) {
  return Json{{"name", name}, {"ok", ok}, {"state", state}, {"message", message}};
}

TEST(CtlActionTest, StartPrintsOneLinePerWorker) {
  Plan plan = text_plan("start", {"web"});
  Json reply = {
      {"ok", false},
      {"workers", Json::array({action_worker("web:0", true, "RUNNING", "started"),
                               action_worker("web:1", true, "RUNNING", "already started"),
                               action_worker("web:2", false, "FATAL", "ERROR (spawn error)")})}};
  Output output = format_reply(plan, reply, Format::kText);
  EXPECT_EQ(output.out,
            "web:0: started\n"
            "web:1: already started\n"
            "web:2: ERROR (spawn error)\n");
  EXPECT_EQ(output.err, "");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlActionTest, AllOkExitsZero) {
  Plan plan = text_plan("stop", {"all"});
  Json reply = {{"ok", true},
                {"workers", Json::array({action_worker("a:0", true, "STOPPED", "stopped"),
                                         action_worker("a:1", true, "STOPPED", "not running")})}};
  Output output = format_reply(plan, reply, Format::kText);
  EXPECT_EQ(output.out, "a:0: stopped\na:1: not running\n");
  EXPECT_EQ(output.exit_code, kExitOk);
}

TEST(CtlActionTest, AWorkerNotOkFailsEvenIfTheReplySaysOk) {
  Plan plan = text_plan("restart", {"a:0"});
  Json reply = {
      {"ok", true},
      {"workers",
       Json::array({action_worker("a:0", false, "FATAL", "ERROR (abnormal termination)")})}};
  EXPECT_EQ(format_reply(plan, reply, Format::kText).exit_code, kExitFailed);
}

TEST(CtlActionTest, MissingMessageFallsBack) {
  Plan plan = text_plan("restart", {"a"});
  Json reply = {
      {"ok", false},
      {"workers", Json::array({Json{{"name", "a:0"}, {"ok", true}},
                               Json{{"name", "a:1"}, {"ok", false}, {"state", "FATAL"}}})}};
  EXPECT_EQ(format_reply(plan, reply, Format::kText).out, "a:0: restarted\na:1: ERROR (FATAL)\n");
}

TEST(CtlActionTest, ErrorReplyWithoutWorkers) {
  Plan plan = text_plan("start", {"nope"});
  Output output = format_reply(plan, protocol::error_reply("unknown job 'nope'"), Format::kText);
  EXPECT_EQ(output.out, "");
  EXPECT_EQ(output.err, "corralctl: unknown job 'nope'\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlActionTest, JsonPrintsTheWorkersList) {
  Plan plan = plan_command("start", {"web:0"}, Format::kJson);
  Json workers = Json::array({action_worker("web:0", true, "RUNNING", "started")});
  Output output = format_reply(plan, Json{{"ok", true}, {"workers", workers}}, Format::kJson);
  EXPECT_EQ(Json::parse(output.out), workers);
  EXPECT_EQ(output.exit_code, kExitOk);
}

// ---- pid, shutdown, version ----

TEST(CtlPidTest, DaemonPid) {
  Plan plan = text_plan("pid", {});
  Json reply = {{"ok", true}, {"pid", 321}};
  EXPECT_EQ(format_reply(plan, reply, Format::kText).out, "321\n");
  EXPECT_EQ(format_reply(plan, reply, Format::kJson).out, "321\n");
  EXPECT_EQ(format_reply(plan, Json{{"ok", true}}, Format::kText).exit_code, kExitFailed);
}

TEST(CtlPidTest, OneWorkerGivesItsBarePid) {
  Plan plan = text_plan("pid", {"web:0"});
  Json reply = {{"ok", true}, {"workers", Json::array({{{"name", "web:0"}, {"pid", 77}}})}};
  Output output = format_reply(plan, reply, Format::kText);
  EXPECT_EQ(output.out, "77\n");
  EXPECT_EQ(output.exit_code, kExitOk);

  Json stopped = {{"ok", true}, {"workers", Json::array({{{"name", "web:0"}, {"pid", nullptr}}})}};
  output = format_reply(plan, stopped, Format::kText);
  EXPECT_EQ(output.out, "");
  EXPECT_EQ(output.err, "corralctl: web:0 has no process\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlPidTest, SeveralWorkersAreNamed) {
  Plan plan = text_plan("pid", {"web"});
  Json workers =
      Json::array({{{"name", "web:0"}, {"pid", 77}}, {{"name", "web:10"}, {"pid", nullptr}}});
  Json reply = {{"ok", true}, {"workers", workers}};
  Output output = format_reply(plan, reply, Format::kText);
  EXPECT_EQ(output.out, "web:0   77\nweb:10  -\n");
  EXPECT_EQ(output.exit_code, kExitOk);
  EXPECT_EQ(Json::parse(format_reply(plan, reply, Format::kJson).out), workers);
}

TEST(CtlShutdownTest, Text) {
  Plan plan = text_plan("shutdown", {});
  Output output = format_reply(plan, Json{{"ok", true}}, Format::kText);
  EXPECT_EQ(output.out, "shutting down\n");
  EXPECT_EQ(output.exit_code, kExitOk);
  EXPECT_EQ(format_reply(plan, protocol::error_reply("no"), Format::kText).exit_code, kExitFailed);
}

TEST(CtlVersionTest, BothVersions) {
  Plan plan = text_plan("version", {});
  Json reply = {{"ok", true}, {"version", "9.9.9"}};
  EXPECT_EQ(format_reply(plan, reply, Format::kText).out,
            std::string("corralctl ") + protocol::kVersion + "\ncorrald 9.9.9\n");
  EXPECT_EQ(Json::parse(format_reply(plan, reply, Format::kJson).out),
            Json({{"corralctl", protocol::kVersion}, {"corrald", "9.9.9"}}));
}

}  // namespace
}  // namespace corral::ctl

// Commands and the clients they answer: a Reply answers once, holds its
// client's conversation weakly, and whatever waits to answer a client that
// has gone (start, stop, restart, restart --rolling, wait) goes with it.
#include "daemon/commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "daemon/supervisor.h"
#include "tests/support/fake_conversation.h"
#include "tests/support/fake_host.h"

namespace corral::daemon {
namespace {

using protocol::Json;
using std::chrono::seconds;
using testing::FakeConversation;
using testing::FakeHost;
using ::testing::HasSubstr;

// A conversation that cannot take lines in place (the tests' fake, as any
// but the socket session) gets what the writer appended through send_raw(),
// each call's lines once, nothing of the call before.
TEST(ConversationTest, SendRawWithHandsSendRawWhatTheWriterAppended) {
  FakeConversation conv;
  conv.send_raw_with([](std::string& out) { out += "{\"id\":1}\n"; });
  conv.send_raw_with([](std::string& out) {
    out += "{\"id\":2}\n";
    out += "{\"id\":3}\n";
  });
  EXPECT_EQ(conv.raw, (std::vector<std::string>{"{\"id\":1}\n", "{\"id\":2}\n{\"id\":3}\n"}));
}

config::JobSpec sleep_job(const std::string& name, uint32_t workers, bool autostart) {
  config::JobSpec spec;
  spec.name = name;
  spec.command = {"/bin/sleep", "1000"};
  spec.workers = workers;
  spec.autostart = autostart;
  spec.start.settle = seconds(1);
  spec.restart.backoff.jitter = 0;
  return spec;
}

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() : supervisor(host, SupervisorOptions{}, {}), commands(supervisor, host, [] {}) {}

  // Sends REQUEST from a new client; the client.
  std::shared_ptr<FakeConversation> ask(const Json& request) {
    auto client = std::make_shared<FakeConversation>();
    commands.handle(request, std::static_pointer_cast<Conversation>(client));
    return client;
  }

  FakeHost host;
  Supervisor supervisor;
  Commands commands;
};

TEST_F(CommandsTest, AReplyAnswersOnceAndIsNeededUntilThen) {
  int sent = 0;
  Reply reply = [&](const Json&) { ++sent; };
  Reply copy = reply;
  EXPECT_TRUE(copy.needed());
  reply(Json{{"ok", true}});
  copy(Json{{"ok", true}});
  EXPECT_EQ(sent, 1);
  EXPECT_FALSE(copy.needed());

  auto client = std::make_shared<FakeConversation>();
  Reply to_client = Reply::to(client);
  EXPECT_TRUE(to_client.needed());
  client->close();
  EXPECT_FALSE(to_client.needed());  // the client has gone
  to_client(Json{{"ok", true}});
  EXPECT_TRUE(client->sent.empty());
}

TEST_F(CommandsTest, SelectNamesUnknownTargets) {
  supervisor.add_job(sleep_job("web", 2, false));
  supervisor.add_job(sleep_job("db", 1, false));
  auto all = select_workers(supervisor, {protocol::Target{}});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<WorkerId>{{"db", 0}, {"web", 0}, {"web", 1}}));
  auto missing = select_workers(supervisor, {protocol::Target{"nope", std::nullopt}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "no such job: nope");
  auto index = select_workers(supervisor, {protocol::Target{"web", 2}});
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().message(), "no such worker: web:2 (job web has 2 workers)");
  auto dup = select_workers(supervisor,
                            {protocol::Target{"web", 1}, protocol::Target{"web", std::nullopt}});
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(*dup, (std::vector<WorkerId>{{"web", 0}, {"web", 1}}));
}

TEST_F(CommandsTest, AWaitThatNeverComesTrueGoesWithItsClient) {
  supervisor.add_job(sleep_job("idle", 1, false));  // stays STOPPED: never RUNNING
  auto client = ask({{"cmd", "wait"}, {"job", "idle"}, {"running", true}});
  EXPECT_TRUE(client->sent.empty());
  EXPECT_EQ(supervisor.waiter_count(), 1u);
  std::weak_ptr<FakeConversation> weak = client;
  client->close();
  commands.client_gone();
  EXPECT_EQ(supervisor.waiter_count(), 0u);
  client.reset();
  EXPECT_TRUE(weak.expired());  // nothing kept the conversation (and its socket)
}

TEST_F(CommandsTest, WhatAStartOrStopWaitsForIsDroppedWhenItsClientGoes) {
  supervisor.add_job(sleep_job("web", 2, false));
  auto starter = ask({{"cmd", "start"}, {"targets", {"web"}}});
  auto waiter = ask({{"cmd", "wait"}, {"job", "web"}, {"running", true}, {"timeout_s", 60}});
  EXPECT_EQ(supervisor.waiter_count(), 2u);
  std::weak_ptr<FakeConversation> weak = starter;
  starter->close();
  starter.reset();
  EXPECT_TRUE(weak.expired());
  commands.client_gone();
  EXPECT_EQ(supervisor.waiter_count(), 1u);  // the other client still waits
  host.advance(seconds(1));
  ASSERT_EQ(waiter->sent.size(), 1u);
  EXPECT_EQ(waiter->sent[0]["ok"], true);
  EXPECT_EQ(supervisor.waiter_count(), 0u);
}

TEST_F(CommandsTest, AnsweredWaitsLeaveNoWaiterBehind) {
  supervisor.add_job(sleep_job("idle", 1, false));
  auto client = std::make_shared<FakeConversation>();
  for (int i = 0; i < 5; ++i) {
    // One connection, wait after wait, each timing out.
    commands.handle(Json{{"cmd", "wait"}, {"job", "idle"}, {"running", true}, {"timeout_s", 1}},
                    std::static_pointer_cast<Conversation>(client));
    host.advance(seconds(1));
  }
  ASSERT_EQ(client->sent.size(), 5u);
  EXPECT_EQ(client->sent[4]["error"], "timed out after 1s: 0/1 workers RUNNING");
  EXPECT_EQ(supervisor.waiter_count(), 0u);
}

TEST_F(CommandsTest, ARollingRestartEndsWhenItsClientGoes) {
  supervisor.add_job(sleep_job("pool", 3, true));
  supervisor.start_autostart();
  host.advance(seconds(1));
  ASSERT_EQ(host.spawns.size(), 3u);
  auto client = ask({{"cmd", "restart"}, {"targets", {"pool"}}, {"rolling", true}});
  // pool:0 is being restarted (its process signalled); the client goes.
  client->close();
  commands.client_gone();
  EXPECT_EQ(supervisor.waiter_count(), 0u);
  for (pid_t pid : host.alive_pids()) {
    if (!host.processes.at(pid).signals.empty()) host.exit(pid, ExitStatus::killed(SIGTERM));
  }
  host.advance(seconds(5));
  EXPECT_EQ(host.spawns.size(), 4u);  // pool:0 again, and no one after it
  EXPECT_EQ(*supervisor.state(WorkerId{"pool", 2}), State::kRunning);
}

// supervisorctl's avail: every job of the file and of the running config.
TEST_F(CommandsTest, StatusWithFieldsCarriesThoseAloneAndSamplesOnlyForSampledOnes) {
  supervisor.add_job(sleep_job("web", 1, true));
  supervisor.start_autostart();
  const pid_t pid = host.last_pid();
  host.samples[pid] = ProcSample{1.5, 40 << 20, 2, 0, 0};
  auto status = [&](const Json& request) {
    Json reply;
    commands.handle(request, [&](const Json& r) { reply = r; });
    return reply;
  };
  // Long after the last sample: a status that shows a sampled field takes one.
  host.advance(seconds(10));
  const int before = host.sample_calls;
  Json names = status({{"cmd", "status"}, {"fields", {"name", "state", "description"}}});
  ASSERT_EQ(names["ok"], true) << names;
  EXPECT_EQ(names["workers"][0], Json({{"name", "web:0"},
                                       {"state", "RUNNING"},
                                       {"description", names["workers"][0]["description"]}}));
  EXPECT_EQ(host.sample_calls, before) << "no sampled field was asked for";

  Json rss = status({{"cmd", "status"}, {"fields", {"name", "rss_bytes"}}});
  EXPECT_GT(host.sample_calls, before);
  EXPECT_EQ(rss["workers"][0], Json({{"name", "web:0"}, {"rss_bytes", uint64_t{40} << 20}}));

  // Every field of the protocol can be asked for; an unknown one is an error
  // that names it.
  Json all;
  for (std::string_view field : protocol::worker_fields()) all.push_back(field);
  Json every = status({{"cmd", "status"}, {"fields", all}});
  EXPECT_EQ(every["workers"][0], status({{"cmd", "status"}})["workers"][0]);
  Json bad = status({{"cmd", "status"}, {"fields", {"name", "cpux"}}});
  EXPECT_EQ(bad["ok"], false);
  EXPECT_THAT(bad["error"].get<std::string>(),
              HasSubstr(R"("fields" names no worker field "cpux" (they are name, job, )"));
  EXPECT_EQ(status({{"cmd", "status"}, {"fields", "name"}})["error"],
            R"("fields" must be a list of worker fields in a status request)");
}

TEST_F(CommandsTest, AvailListsTheJobsOfTheFileAndOfTheRunningConfig) {
  supervisor.add_job(sleep_job("web", 2, true));
  supervisor.add_job(sleep_job("old", 1, true));
  supervisor.add_job(sleep_job("same", 1, false));
  config::Config file;
  file.jobs = {sleep_job("web", 3, true), sleep_job("same", 1, false), sleep_job("new", 4, false)};
  Commands with_file(
      supervisor, host, [] {}, [&] { return config::ParseResult(file); });
  std::vector<Json> replies;
  with_file.handle(Json{{"cmd", "avail"}}, [&](const Json& reply) { replies.push_back(reply); });
  ASSERT_EQ(replies.size(), 1u);
  auto job = [](const char* name, const char* state, bool autostart, int workers, bool changed) {
    return Json{{"name", name},
                {"state", state},
                {"autostart", autostart},
                {"workers", workers},
                {"changed", changed}};
  };
  // A loaded job shows its running settings; a changed one says so.
  EXPECT_EQ(
      replies[0],
      Json({{"ok", true},
            {"jobs",
             {job("new", "avail", false, 4, false), job("old", "removed", true, 1, false),
              job("same", "in use", false, 1, false), job("web", "in use", true, 2, true)}}}));
  EXPECT_TRUE(supervisor.has_job("old"));  // nothing was changed
  EXPECT_FALSE(supervisor.has_job("new"));
}

TEST_F(CommandsTest, AvailOfAConfigWithErrorsGivesEveryError) {
  Commands broken(
      supervisor, host, [] {},
      [] {
        return config::ParseResult(std::vector<config::Diagnostic>{{"c.yaml", 2, 3, "bad key"}});
      });
  std::vector<Json> replies;
  broken.handle(Json{{"cmd", "avail"}}, [&](const Json& reply) { replies.push_back(reply); });
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["ok"], false);
  EXPECT_EQ(replies[0]["errors"].size(), 1u);
  std::vector<Json> none;
  commands.handle(Json{{"cmd", "avail"}}, [&](const Json& reply) { none.push_back(reply); });
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0], protocol::error_reply("this daemon has no config file to read"));
}

}  // namespace
}  // namespace corral::daemon

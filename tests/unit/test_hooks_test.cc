// The test hooks: only the decorator answers test-block-loop, everything
// else reaches the commands behind it unchanged, and the production
// commands themselves do not know the test command.
#include "daemon/test_hooks.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "daemon/supervisor.h"
#include "tests/support/fake_conversation.h"
#include "tests/support/fake_host.h"

namespace corral::daemon {
namespace {

using protocol::Json;
using testing::FakeConversation;

// Records what reaches it.
class RecordingHandler : public CommandHandler {
 public:
  void handle(const Json& request, ConversationPtr) override { requests.push_back(request); }
  void client_gone() override { ++gone; }
  std::vector<Json> requests;
  int gone = 0;
};

std::shared_ptr<FakeConversation> ask(CommandHandler& handler, const Json& request) {
  auto client = std::make_shared<FakeConversation>();
  client->ended = false;
  handler.handle(request, std::static_pointer_cast<Conversation>(client));
  return client;
}

TEST(TestHooksTest, AnswersTheBlockingHookItself) {
  RecordingHandler commands;
  TestHooks hooks(commands);
  auto client = ask(hooks, Json{{"cmd", "test-block-loop"}, {"ms", 0}});
  ASSERT_EQ(client->sent.size(), 1u);
  EXPECT_EQ(client->sent[0], (Json{{"ok", true}}));
  EXPECT_TRUE(client->ended);
  EXPECT_TRUE(commands.requests.empty());
}

TEST(TestHooksTest, PassesEveryOtherRequestOn) {
  RecordingHandler commands;
  TestHooks hooks(commands);
  const Json status{{"cmd", "status"}};
  const Json not_an_object = Json::array({"test-block-loop"});
  EXPECT_TRUE(ask(hooks, status)->sent.empty());
  EXPECT_TRUE(ask(hooks, not_an_object)->sent.empty());
  EXPECT_EQ(commands.requests, (std::vector<Json>{status, not_an_object}));
  hooks.client_gone();
  EXPECT_EQ(commands.gone, 1);
}

TEST(TestHooksTest, OnlyTheVariableSetToOneTurnsThemOn) {
  EXPECT_TRUE(TestHooks::wanted("1"));
  EXPECT_FALSE(TestHooks::wanted(nullptr));
  EXPECT_FALSE(TestHooks::wanted(""));
  EXPECT_FALSE(TestHooks::wanted("0"));
}

TEST(TestHooksTest, TheProductionCommandsDoNotKnowTheTestCommand) {
  testing::FakeHost host;
  Supervisor supervisor(host, SupervisorOptions{}, {});
  Commands commands(supervisor, host, [] {});
  auto client = ask(commands, Json{{"cmd", "test-block-loop"}, {"ms", 0}});
  ASSERT_EQ(client->sent.size(), 1u);
  EXPECT_EQ(client->sent[0]["error"], "unknown command: test-block-loop");
}

}  // namespace
}  // namespace corral::daemon

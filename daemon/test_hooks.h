// Commands that only tests may send, in front of the production commands:
// corrald wires this decorator in only when it starts with
// CORRAL_TEST_HOOKS=1 in its environment, so the command table a user
// reaches (commands.h) has no test command in it.
//
// {"cmd": "test-block-loop", "ms": N} holds the event loop for N ms, so that
// a test can see the watchdog pings stop (tests/integration/notify_test.cc).
// Every other request goes on to the commands behind.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include "daemon/commands.h"

namespace corral::daemon {

class TestHooks : public CommandHandler {
 public:
  // The variable that turns the hooks on ("1").
  static constexpr const char* kEnvironment = "CORRAL_TEST_HOOKS";
  // Whether VALUE, that variable's value (null when unset), turns them on.
  static bool wanted(const char* value) { return value != nullptr && *value == '1'; }

  explicit TestHooks(CommandHandler& commands) : commands_(commands) {}

  void handle(const protocol::Json& request, ConversationPtr conversation) override;
  void client_gone() override { commands_.client_gone(); }

 private:
  CommandHandler& commands_;
};

}  // namespace corral::daemon

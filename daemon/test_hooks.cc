#include "daemon/test_hooks.h"

#include <chrono>
#include <thread>
#include <utility>

namespace corral::daemon {

void TestHooks::handle(const protocol::Json& request, ConversationPtr conversation) {
  if (!request.is_object() || request.value("cmd", "") != "test-block-loop") {
    return commands_.handle(request, std::move(conversation));
  }
  // Blocks the whole loop on purpose: nothing else runs meanwhile.
  std::this_thread::sleep_for(std::chrono::milliseconds(request.value("ms", 0)));
  Reply::to(conversation)(protocol::Json{{"ok", true}});
}

}  // namespace corral::daemon

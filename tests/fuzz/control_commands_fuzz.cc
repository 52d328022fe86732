// Fuzzes corrald's control commands (daemon/commands.h) with request lines
// as a client would send them, one per input line, to a Supervisor on the
// fake host of the tests (no processes; the clock moves one second
// between lines and workers die of the signals they are sent). Whatever
// the lines, nothing may throw, and every request that is answered gets a
// JSON object with "ok" or a stream line.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/commands.h"
#include "daemon/supervisor.h"
#include "protocol/control.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/fake_conversation.h"
#include "tests/support/fake_host.h"

namespace {

using corral::fuzz::check;

using corral::daemon::Commands;
using corral::protocol::Json;

corral::config::JobSpec job(const std::string& name, uint32_t workers, bool autostart) {
  corral::config::JobSpec spec;
  spec.name = name;
  spec.command = {"/bin/sleep", "1000"};
  spec.workers = workers;
  spec.autostart = autostart;
  spec.start.settle = std::chrono::milliseconds(500);
  spec.restart.backoff.jitter = 0;
  return spec;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the supervisor's log lines, millions of them
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral::daemon;
  testing::FakeHost host;
  SupervisorOptions options;
  options.log_dir = "/nonexistent/corral-fuzz";
  Supervisor supervisor(host, options, {});
  supervisor.add_job(job("web", 2, true));
  supervisor.add_job(job("batch", 1, false));
  supervisor.start_autostart();
  // What reread/update/reload read: web grows, batch goes, cron comes.
  auto load = [] {
    corral::config::Config config;
    config.jobs = {job("cron", 1, true), job("web", 3, true)};
    return corral::config::ParseResult(std::move(config));
  };
  bool shut_down = false;
  Commands commands(
      supervisor, host, [&] { shut_down = true; }, load);

  auto conversation = std::make_shared<testing::FakeConversation>();
  // Every answer is a JSON object with "ok" or a stream line.
  auto check_sent = [&conversation] {
    for (const Json& message : conversation->sent) {
      check(message.is_object());
      check(message.contains("ok") || message.contains("data") || message.contains("end") ||
            message.contains("status"));
    }
    for (const std::string& line : conversation->raw) check(!line.empty() && line.back() == '\n');
    conversation->sent.clear();
    conversation->raw.clear();
  };
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty() && !shut_down) {
    size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    if (conversation->take(line)) {
      check_sent();
      continue;
    }
    if (!conversation->ended) continue;  // the session reads nothing while a command runs
    auto request = corral::protocol::parse_request_line(line);
    if (!request) continue;
    conversation->ended = false;
    commands.handle(*request, std::static_pointer_cast<Conversation>(conversation));
    // A second passes; the workers that were signalled die of it.
    host.advance(std::chrono::seconds(1));
    for (pid_t pid : host.alive_pids()) {
      const auto& signals = host.processes.at(pid).signals;
      if (!signals.empty()) host.exit(pid, ExitStatus::killed(signals.back()));
    }
    host.advance(std::chrono::seconds(1));
    check_sent();
  }
  // The client goes; a tail that follows sees it at its next poll.
  conversation->close();
  host.advance(std::chrono::seconds(1));
  check_sent();
  return 0;
}

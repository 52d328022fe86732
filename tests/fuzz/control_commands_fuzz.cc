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
#include "tests/support/fake_host.h"

namespace {

using corral::fuzz::check;

using corral::daemon::Commands;
using corral::daemon::Conversation;
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

// The client's side as the socket session (daemon/control.cc) plays it:
// replies recorded, input lines handed to a streaming command while it
// takes them.
class FakeConversation : public Conversation {
 public:
  void send(const Json& message, bool final) override {
    check(message.is_object());
    check(message.contains("ok") || message.contains("data") || message.contains("end") ||
          message.contains("status"));
    if (final) ended = true;
  }
  void send_raw(std::string line) override { check(!line.empty() && line.back() == '\n'); }
  void take_lines(std::function<Verdict(std::string_view)> on_line,
                  std::function<void()> on_batch) override {
    on_line_ = std::move(on_line);
    on_batch_ = std::move(on_batch);
  }
  void resume() override {}
  void on_close(std::function<void()> on_close) override { on_close_ = std::move(on_close); }
  bool closed() const override { return closed_; }
  size_t unsent() const override { return 0; }

  // Whether LINE went to a streaming command rather than being a request.
  bool take(std::string_view line) {
    if (!on_line_) return false;
    Verdict verdict = on_line_(line);
    if (verdict == Verdict::kEnd) on_line_ = nullptr;
    if (on_batch_) on_batch_();
    return true;
  }
  void close() {
    closed_ = true;
    on_line_ = nullptr;
    if (auto on_close = std::move(on_close_)) on_close();
  }

  bool ended = true;

 private:
  std::function<Verdict(std::string_view)> on_line_;
  std::function<void()> on_batch_;
  std::function<void()> on_close_;
  bool closed_ = false;
};

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
    corral::config::ParseResult result;
    result.config.jobs = {job("cron", 1, true), job("web", 3, true)};
    return result;
  };
  bool shut_down = false;
  Commands commands(
      supervisor, host, [&] { shut_down = true; }, load);

  auto conversation = std::make_shared<FakeConversation>();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty() && !shut_down) {
    size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    if (conversation->take(line)) continue;
    if (!conversation->ended) continue;  // the session reads nothing while a command runs
    std::string error;
    auto request = corral::protocol::parse_request_line(line, error);
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
  }
  // The client goes; a tail that follows sees it at its next poll.
  conversation->close();
  host.advance(std::chrono::seconds(1));
  return 0;
}

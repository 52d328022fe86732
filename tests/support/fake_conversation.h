// The client's side of a control conversation as the socket session
// (daemon/control.cc) plays it, for tests of daemon/commands.h: messages and
// raw lines recorded, input lines handed to a streaming command while it
// takes them, and a client that leaves (close) as the session reports it.
//
// Not thread-safe; used on the test's thread only.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/commands.h"

namespace corral::daemon::testing {

class FakeConversation : public Conversation {
 public:
  void send(const protocol::Json& message, bool final) override {
    sent.push_back(message);
    if (final) ended = true;
  }
  void send_raw(std::string_view line) override { raw.emplace_back(line); }
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
  // The client goes away: what a command left to run at close runs.
  void close() {
    closed_ = true;
    on_line_ = nullptr;
    if (auto on_close = std::move(on_close_)) on_close();
  }

  std::vector<protocol::Json> sent;  // in order
  std::vector<std::string> raw;      // lines sent already encoded
  bool ended = true;                 // no exchange under way: the next request is read

 private:
  std::function<Verdict(std::string_view)> on_line_;
  std::function<void()> on_batch_;
  std::function<void()> on_close_;
  bool closed_ = false;
};

}  // namespace corral::daemon::testing

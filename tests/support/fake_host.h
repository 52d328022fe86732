// A Host for tests: a clock that moves only when told, timers that fire when
// the clock passes them, spawns that are recorded, and exits that the test
// injects. The Supervisor runs on it exactly as on the real host.
//
// Not thread-safe; used on the test's thread only.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/host.h"

namespace corral::daemon::testing {

class FakeHost : public Host {
 public:
  struct Process {
    SpawnRequest request;
    std::function<void(ExitStatus)> on_exit;
    std::vector<int> signals;  // received, in order
    bool alive = true;
    bool paused = false;
  };

  TimePoint now() override { return now_; }

  std::unique_ptr<Timer> make_timer() override {
    auto timer = std::make_unique<FakeTimer>(*this);
    return timer;
  }

  Result<pid_t> spawn(const SpawnRequest& request,
                      std::function<void(ExitStatus)> on_exit) override {
    spawns.push_back(request);
    if (!next_spawn_error.empty()) return Error(next_spawn_error);
    pid_t pid = next_pid_++;
    processes[pid] = Process{request, std::move(on_exit), {}, true};
    return pid;
  }

  void signal_group(pid_t pid, int signal) override { processes.at(pid).signals.push_back(signal); }
  std::optional<ProcSample> sample_process(pid_t pid, bool) override {
    ++sample_calls;
    auto it = samples.find(pid);
    if (it == samples.end()) return std::nullopt;
    return it->second;
  }
  std::map<pid_t, ProcSample> samples;  // what sample_process answers
  int sample_calls = 0;                 // how often it was asked
  Status signal_process(pid_t pid, int signal) override {
    processes.at(pid).signals.push_back(signal);
    return {};
  }
  Result<std::string> pause(pid_t pid, bool paused) override {
    processes.at(pid).paused = paused;
    return std::string("fake");
  }

  // Ends process PID with STATUS, as the real host does after reaping.
  void exit(pid_t pid, ExitStatus status) {
    Process& p = processes.at(pid);
    ASSERT_ALIVE(p);
    p.alive = false;
    auto callback = std::move(p.on_exit);
    callback(status);
  }

  // Moves the clock forward by D, firing every timer that falls due, in order.
  void advance(Duration d) {
    TimePoint end = now_ + d;
    for (;;) {
      FakeTimer* next = nullptr;
      for (FakeTimer* t : timers_) {
        if (t->armed && t->deadline <= end && (next == nullptr || t->deadline < next->deadline)) {
          next = t;
        }
      }
      if (next == nullptr) break;
      now_ = std::max(now_, next->deadline);
      next->armed = false;
      // Released once it has run, as asio does with a handler: a callback
      // that holds its own timer's owner must not keep it alive.
      auto callback = std::move(next->callback);
      callback();
    }
    now_ = end;
  }

  pid_t last_pid() const { return next_pid_ - 1; }
  size_t armed_timers() const {
    return static_cast<size_t>(
        std::count_if(timers_.begin(), timers_.end(), [](FakeTimer* t) { return t->armed; }));
  }
  std::vector<pid_t> alive_pids() const {
    std::vector<pid_t> pids;
    for (const auto& [pid, p] : processes) {
      if (p.alive) pids.push_back(pid);
    }
    return pids;
  }

  std::vector<SpawnRequest> spawns;
  std::map<pid_t, Process> processes;
  std::string next_spawn_error;

 private:
  static void ASSERT_ALIVE(const Process& p) {
    if (!p.alive) throw std::logic_error("exit of a process that already exited");
  }

  struct FakeTimer : Timer {
    explicit FakeTimer(FakeHost& host) : host(host) { host.timers_.push_back(this); }
    ~FakeTimer() override { std::erase(host.timers_, this); }
    void arm(TimePoint at, std::function<void()> cb) override {
      deadline = at;
      callback = std::move(cb);
      armed = true;
    }
    void cancel() override { armed = false; }
    FakeHost& host;
    TimePoint deadline{};
    std::function<void()> callback;
    bool armed = false;
  };

  TimePoint now_ = TimePoint(std::chrono::hours(1000));
  pid_t next_pid_ = 1000;
  std::vector<FakeTimer*> timers_;
};

}  // namespace corral::daemon::testing

// The life of one worker slot as a pure state machine: supervisord's states
// (STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL), driven by events
// that carry the time, answering with the one Action the caller must carry
// out and at most one deadline to wake it again (s6-supervise's shape). It
// never touches a process, a timer or the clock itself, so every state x event
// pair is tested without processes (tests/unit/worker_state_test.cc).
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/spec.h"
#include "daemon/backoff.h"
#include "daemon/clock.h"
#include "daemon/exit_status.h"

namespace corral::daemon {

enum class State : uint8_t { kStopped, kStarting, kRunning, kBackoff, kStopping, kExited, kFatal };
inline constexpr State kAllStates[] = {State::kStopped, State::kStarting, State::kRunning,
                                       State::kBackoff, State::kStopping, State::kExited,
                                       State::kFatal};
const char* to_string(State state);
// A process exists in these states (supervisord's "running states" plus STOPPING).
bool has_process(State state);

// What the caller must do after an event.
enum class Action : uint8_t {
  kNone,
  kSpawn,         // start a process; report spawned() or spawn_failed()
  kSendSentinel,  // ask the worker over its channel to finish and exit 0
  kSignal,        // send stop.signal to the worker's process group
  kKill,          // send SIGKILL to the worker's process group
};
const char* to_string(Action action);

// One step of the stop sequence: do this, then wait this long for the exit.
struct StopStep {
  Action action;
  std::optional<Duration> wait;  // nullopt: wait for the exit however long it takes
};

// Everything from a JobSpec that the machine decides with.
struct WorkerPolicy {
  config::RestartSpec restart;
  Duration settle = std::chrono::seconds(1);
  std::optional<uint64_t> start_retries;  // start.retries
  bool ready_by_channel = false;          // RUNNING at READY instead of after settle
  std::vector<StopStep> stop_steps;

  static WorkerPolicy from(const config::JobSpec& job);
};

class WorkerMachine {
 public:
  WorkerMachine(WorkerPolicy policy, uint64_t seed);

  State state() const { return state_; }
  // When the caller must call deadline_reached(); nullopt: no deadline.
  std::optional<TimePoint> deadline() const { return deadline_; }
  // Consecutive failures counted by the backoff (reset by reset_after).
  uint32_t failures() const { return failures_; }
  // Restarts after failures or cooldowns (a person's restart excluded).
  uint64_t restarts() const { return restarts_; }
  // Why the machine is in its state, in a few words ("exited too quickly").
  const std::string& reason() const { return reason_; }
  TimePoint state_since() const { return state_since_; }
  // Whether a stop in progress will be followed by a start (restart).
  bool start_after_stop() const { return start_after_stop_; }

  // A person (or autostart) wants it running. Clears FATAL and the backoff.
  Action start(TimePoint now);
  // A person wants it stopped; no restart follows.
  Action stop(TimePoint now);
  // stop() then start(), without backoff.
  Action restart(TimePoint now);

  // Results of a kSpawn.
  Action spawned(TimePoint now);
  Action spawn_failed(TimePoint now);
  // The worker said READY over its channel.
  Action ready(TimePoint now);
  // The process ended (after it was reaped). An unexpected exit of a RUNNING
  // worker charged to its task (ExitBlame::kTask) restarts it at once: no
  // backoff step, no count toward the restart intensity; the task pays.
  Action exited(TimePoint now, ExitStatus status, ExitBlame blame = ExitBlame::kWorker);
  // deadline() has passed.
  Action deadline_reached(TimePoint now);

  void replace_policy(WorkerPolicy policy) { policy_ = std::move(policy); }

 private:
  bool should_restart(ExitStatus status) const;
  Action fail(TimePoint now, const std::string& why, bool failed_start);
  Action give_up(TimePoint now, std::string why);
  Action begin_start(TimePoint now);
  Action begin_stop(TimePoint now);
  Action stop_step(TimePoint now, size_t step);
  void enter(State state, TimePoint now, std::string reason = {});

  WorkerPolicy policy_;
  Backoff backoff_;
  RestartIntensity intensity_;
  State state_ = State::kStopped;
  TimePoint state_since_{};
  std::optional<TimePoint> deadline_;
  std::optional<TimePoint> running_since_;
  uint32_t failures_ = 0;
  uint64_t failed_starts_ = 0;  // in a row; cleared by RUNNING
  uint64_t restarts_ = 0;
  size_t stop_step_ = 0;
  bool start_after_stop_ = false;
  std::string reason_;
};

}  // namespace corral::daemon

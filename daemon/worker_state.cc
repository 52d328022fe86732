#include "daemon/worker_state.h"

#include <algorithm>
#include <cassert>

#include "config/units.h"

namespace corral::daemon {

const char* to_string(State state) {
  switch (state) {
    case State::kStopped:
      return "STOPPED";
    case State::kStarting:
      return "STARTING";
    case State::kRunning:
      return "RUNNING";
    case State::kBackoff:
      return "BACKOFF";
    case State::kStopping:
      return "STOPPING";
    case State::kExited:
      return "EXITED";
    case State::kFatal:
      return "FATAL";
  }
  return "UNKNOWN";
}

bool has_process(State state) {
  return state == State::kStarting || state == State::kRunning || state == State::kStopping;
}

const char* to_string(Action action) {
  switch (action) {
    case Action::kNone:
      return "none";
    case Action::kSpawn:
      return "spawn";
    case Action::kSendSentinel:
      return "sentinel";
    case Action::kSignal:
      return "signal";
    case Action::kKill:
      return "kill";
  }
  return "unknown";
}

WorkerPolicy WorkerPolicy::from(const config::JobSpec& job) {
  WorkerPolicy policy;
  policy.restart = job.restart;
  policy.settle = job.start.settle;
  policy.start_retries = job.start.retries;
  // Workers that speak the protocol say READY; a line filter cannot.
  policy.ready_by_channel =
      job.channel == config::Channel::kShm ||
      (job.channel == config::Channel::kPipe && job.pipe.framing == config::Framing::kLength);
  if (job.channel == config::Channel::kNone) {
    // supervisord's stopsignal, then SIGKILL after stopwaitsecs.
    policy.stop_steps = {{Action::kSignal, job.stop.timeout}, {Action::kKill, std::nullopt}};
  } else {
    // nginx's order: ask over the channel, then signal, then kill.
    policy.stop_steps = {{Action::kSendSentinel, job.stop.timeout},
                         {Action::kSignal, job.stop.kill_after},
                         {Action::kKill, std::nullopt}};
  }
  return policy;
}

WorkerMachine::WorkerMachine(WorkerPolicy policy, uint64_t seed)
    : policy_(std::move(policy)),
      backoff_(policy_.restart.backoff, seed),
      intensity_(policy_.restart.max_restarts, policy_.restart.window) {}

void WorkerMachine::enter(State state, TimePoint now, std::string reason) {
  state_ = state;
  state_since_ = now;
  deadline_.reset();
  reason_ = std::move(reason);
  if (state != State::kRunning && state != State::kStopping) running_since_.reset();
  if (state == State::kRunning) failed_starts_ = 0;
}

bool WorkerMachine::should_restart(ExitStatus status) const {
  switch (policy_.restart.policy) {
    case config::RestartPolicy::kAlways:
      return true;
    case config::RestartPolicy::kNever:
      return false;
    case config::RestartPolicy::kOnFailure: {
      if (status.was_killed()) return true;
      const auto& clean = policy_.restart.exit_codes;
      return std::find(clean.begin(), clean.end(), status.code()) == clean.end();
    }
  }
  return true;
}

Action WorkerMachine::begin_start(TimePoint now) {
  enter(State::kStarting, now);
  return Action::kSpawn;
}

Action WorkerMachine::begin_stop(TimePoint now) {
  enter(State::kStopping, now, "stop requested");
  return stop_step(now, 0);
}

Action WorkerMachine::stop_step(TimePoint now, size_t step) {
  assert(step < policy_.stop_steps.size());
  stop_step_ = step;
  const StopStep& s = policy_.stop_steps[step];
  if (s.wait) deadline_ = now + *s.wait;
  return s.action;
}

// A failure of the current process (an unexpected exit or a spawn error;
// FAILED_START: before it was RUNNING): BACKOFF after the n-th failure's
// delay, or FATAL when starts failed start.retries times in a row or
// restarts came too often.
Action WorkerMachine::fail(TimePoint now, const std::string& why, bool failed_start) {
  if (failed_start) ++failed_starts_;
  const auto& retries = policy_.start_retries;
  if (failed_start && retries && failed_starts_ > *retries) {
    return give_up(now, why + "; " + std::to_string(failed_starts_) +
                            " failed starts in a row (start.retries " + std::to_string(*retries) +
                            ")");
  }
  if (!intensity_.allow(now)) {
    return give_up(now, why + "; too many restarts (more than " +
                            std::to_string(*policy_.restart.max_restarts) + " in " +
                            config::format_duration(policy_.restart.window) + ")");
  }
  ++failures_;
  enter(State::kBackoff, now, why);
  deadline_ = now + backoff_.delay(failures_);
  return Action::kNone;
}

// -> FATAL, to be tried again after restart.cooldown when it is set.
Action WorkerMachine::give_up(TimePoint now, std::string why) {
  enter(State::kFatal, now, std::move(why));
  if (policy_.restart.cooldown) deadline_ = now + *policy_.restart.cooldown;
  return Action::kNone;
}

Action WorkerMachine::start(TimePoint now) {
  switch (state_) {
    case State::kStopped:
    case State::kExited:
    case State::kFatal:
    case State::kBackoff:
      // STOPPED/EXITED/FATAL/BACKOFF -> STARTING: a person's start forgives past failures.
      failures_ = 0;
      failed_starts_ = 0;
      intensity_.clear();
      return begin_start(now);
    case State::kStopping:
      start_after_stop_ = true;
      return Action::kNone;
    case State::kStarting:
    case State::kRunning:
      return Action::kNone;
  }
  return Action::kNone;
}

Action WorkerMachine::stop(TimePoint now) {
  start_after_stop_ = false;
  switch (state_) {
    case State::kStarting:
    case State::kRunning:
      // STARTING/RUNNING -> STOPPING
      return begin_stop(now);
    case State::kBackoff:
    case State::kExited:
    case State::kFatal:
      // BACKOFF/EXITED/FATAL -> STOPPED: no process; no restart will come.
      enter(State::kStopped, now, "stopped");
      return Action::kNone;
    case State::kStopping:
    case State::kStopped:
      return Action::kNone;
  }
  return Action::kNone;
}

Action WorkerMachine::restart(TimePoint now) {
  switch (state_) {
    case State::kStarting:
    case State::kRunning: {
      Action action = begin_stop(now);
      start_after_stop_ = true;
      return action;
    }
    case State::kStopping:
      start_after_stop_ = true;
      return Action::kNone;
    default:
      return start(now);
  }
}

Action WorkerMachine::spawned(TimePoint now) {
  if (state_ != State::kStarting) return Action::kNone;
  if (policy_.ready_by_channel) return Action::kNone;
  if (policy_.settle == Duration::zero()) {
    // STARTING -> RUNNING at once
    enter(State::kRunning, now);
    running_since_ = now;
    return Action::kNone;
  }
  deadline_ = now + policy_.settle;
  return Action::kNone;
}

Action WorkerMachine::spawn_failed(TimePoint now) {
  if (state_ != State::kStarting) return Action::kNone;
  if (policy_.restart.policy == config::RestartPolicy::kNever) {
    // STARTING -> FATAL: it cannot start and nothing is to retry it.
    enter(State::kFatal, now, "spawn error");
    return Action::kNone;
  }
  // STARTING -> BACKOFF (or FATAL)
  return fail(now, "spawn error", true);
}

Action WorkerMachine::ready(TimePoint now) {
  if (state_ != State::kStarting) return Action::kNone;
  // STARTING -> RUNNING
  enter(State::kRunning, now);
  running_since_ = now;
  return Action::kNone;
}

Action WorkerMachine::exited(TimePoint now, ExitStatus status, ExitBlame blame) {
  switch (state_) {
    case State::kStarting:
    case State::kRunning: {
      bool settled = state_ == State::kRunning;
      if (settled && running_since_ && now - *running_since_ >= policy_.restart.reset_after) {
        failures_ = 0;  // it ran long enough: the next failure is a first one again
      }
      if (!should_restart(status)) {
        // STARTING/RUNNING -> EXITED: an expected exit, or restart.policy never.
        enter(State::kExited, now, status.str());
        return Action::kNone;
      }
      if (settled && blame == ExitBlame::kTask) {
        // RUNNING -> STARTING: it died running a task while doing its job;
        // the task is charged (an attempt, then the dead letters).
        ++restarts_;
        enter(State::kStarting, now, status.str() + " running a task; restarted at once");
        return Action::kSpawn;
      }
      // STARTING/RUNNING -> BACKOFF (or FATAL)
      return fail(now, settled ? status.str() : status.str() + " (exited too quickly)", !settled);
    }
    case State::kStopping:
      if (start_after_stop_) {
        // STOPPING -> STARTING: a person's restart.
        start_after_stop_ = false;
        return begin_start(now);
      }
      // STOPPING -> STOPPED
      enter(State::kStopped, now, status.str());
      return Action::kNone;
    default:
      // No process in the other states: nothing can exit.
      return Action::kNone;
  }
}

Action WorkerMachine::deadline_reached(TimePoint now) {
  if (!deadline_ || now < *deadline_) return Action::kNone;
  deadline_.reset();
  switch (state_) {
    case State::kStarting:
      // STARTING -> RUNNING: alive for start.settle.
      enter(State::kRunning, now);
      running_since_ = now;
      return Action::kNone;
    case State::kBackoff:
      // BACKOFF -> STARTING
      ++restarts_;
      return begin_start(now);
    case State::kFatal:
      // FATAL -> STARTING: restart.cooldown has passed.
      failures_ = 0;
      failed_starts_ = 0;
      intensity_.clear();
      ++restarts_;
      return begin_start(now);
    case State::kStopping:
      // STOPPING: the worker did not exit in time; escalate.
      if (stop_step_ + 1 < policy_.stop_steps.size()) return stop_step(now, stop_step_ + 1);
      return Action::kNone;
    default:
      return Action::kNone;
  }
}

}  // namespace corral::daemon

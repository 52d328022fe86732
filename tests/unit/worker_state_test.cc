// Every state x event of the worker state machine, row by row, then the
// paths that need more than one step: escalation, intensity, cooldown,
// reset_after, restart.
#include "daemon/worker_state.h"

#include <gtest/gtest.h>

#include <functional>

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const TimePoint kT0 = TimePoint(std::chrono::hours(1));

config::JobSpec test_job() {
  config::JobSpec job;
  job.name = "w";
  job.command = {"/bin/true"};
  job.start.settle = seconds(1);
  job.restart.max_restarts = 1;
  job.restart.window = seconds(60);
  job.restart.cooldown.reset();  // FATAL stays FATAL: the table's last row
  job.restart.backoff.jitter = 0;
  return job;
}

// Puts a fresh machine into STATE through real events; returns the time.
TimePoint reach(WorkerMachine& m, State state) {
  TimePoint t = kT0;
  auto running = [&] {
    m.start(t);
    m.spawned(t);
    t += seconds(1);
    m.deadline_reached(t);
  };
  switch (state) {
    case State::kStopped:
      break;
    case State::kStarting:
      m.start(t);
      m.spawned(t);
      break;
    case State::kRunning:
      running();
      break;
    case State::kBackoff:
      running();
      m.exited(t, ExitStatus::exited(1));
      break;
    case State::kStopping:
      running();
      m.stop(t);
      break;
    case State::kExited:
      running();
      m.exited(t, ExitStatus::exited(0));
      break;
    case State::kFatal:
      running();
      m.exited(t, ExitStatus::exited(1));  // restart 1 of 1
      t = *m.deadline();
      m.deadline_reached(t);
      m.spawned(t);
      m.exited(t, ExitStatus::exited(1));  // one too many
      break;
  }
  EXPECT_EQ(m.state(), state);
  return t;
}

struct Event {
  const char* name;
  std::function<Action(WorkerMachine&, TimePoint)> fire;
};

const std::vector<Event> kEvents = {
    {"start", [](WorkerMachine& m, TimePoint t) { return m.start(t); }},
    {"stop", [](WorkerMachine& m, TimePoint t) { return m.stop(t); }},
    {"restart", [](WorkerMachine& m, TimePoint t) { return m.restart(t); }},
    {"spawned", [](WorkerMachine& m, TimePoint t) { return m.spawned(t); }},
    {"spawn_failed", [](WorkerMachine& m, TimePoint t) { return m.spawn_failed(t); }},
    {"ready", [](WorkerMachine& m, TimePoint t) { return m.ready(t); }},
    {"exit 1", [](WorkerMachine& m, TimePoint t) { return m.exited(t, ExitStatus::exited(1)); }},
    {"exit 0", [](WorkerMachine& m, TimePoint t) { return m.exited(t, ExitStatus::exited(0)); }},
    {"deadline",
     [](WorkerMachine& m, TimePoint t) { return m.deadline_reached(m.deadline().value_or(t)); }},
};

struct Row {
  State from;
  // One entry per kEvents: the state after, and the action.
  std::vector<std::pair<State, Action>> to;
};

using S = State;
using A = Action;

const std::vector<Row> kTable = {
    // clang-format off
    //                start                    stop                   restart                  spawned                 spawn_failed            ready                   exit 1                  exit 0                  deadline
    {S::kStopped,  {{S::kStarting, A::kSpawn}, {S::kStopped, A::kNone}, {S::kStarting, A::kSpawn}, {S::kStopped, A::kNone}, {S::kStopped, A::kNone}, {S::kStopped, A::kNone}, {S::kStopped, A::kNone}, {S::kStopped, A::kNone}, {S::kStopped, A::kNone}}},
    {S::kStarting, {{S::kStarting, A::kNone}, {S::kStopping, A::kSignal}, {S::kStopping, A::kSignal}, {S::kStarting, A::kNone}, {S::kBackoff, A::kNone}, {S::kRunning, A::kNone}, {S::kBackoff, A::kNone}, {S::kExited, A::kNone}, {S::kRunning, A::kNone}}},
    {S::kRunning,  {{S::kRunning, A::kNone}, {S::kStopping, A::kSignal}, {S::kStopping, A::kSignal}, {S::kRunning, A::kNone}, {S::kRunning, A::kNone}, {S::kRunning, A::kNone}, {S::kBackoff, A::kNone}, {S::kExited, A::kNone}, {S::kRunning, A::kNone}}},
    {S::kBackoff,  {{S::kStarting, A::kSpawn}, {S::kStopped, A::kNone}, {S::kStarting, A::kSpawn}, {S::kBackoff, A::kNone}, {S::kBackoff, A::kNone}, {S::kBackoff, A::kNone}, {S::kBackoff, A::kNone}, {S::kBackoff, A::kNone}, {S::kStarting, A::kSpawn}}},
    {S::kStopping, {{S::kStopping, A::kNone}, {S::kStopping, A::kNone}, {S::kStopping, A::kNone}, {S::kStopping, A::kNone}, {S::kStopping, A::kNone}, {S::kStopping, A::kNone}, {S::kStopped, A::kNone}, {S::kStopped, A::kNone}, {S::kStopping, A::kKill}}},
    {S::kExited,   {{S::kStarting, A::kSpawn}, {S::kStopped, A::kNone}, {S::kStarting, A::kSpawn}, {S::kExited, A::kNone}, {S::kExited, A::kNone}, {S::kExited, A::kNone}, {S::kExited, A::kNone}, {S::kExited, A::kNone}, {S::kExited, A::kNone}}},
    {S::kFatal,    {{S::kStarting, A::kSpawn}, {S::kStopped, A::kNone}, {S::kStarting, A::kSpawn}, {S::kFatal, A::kNone}, {S::kFatal, A::kNone}, {S::kFatal, A::kNone}, {S::kFatal, A::kNone}, {S::kFatal, A::kNone}, {S::kFatal, A::kNone}}},
    // clang-format on
};

TEST(WorkerStateTest, TableCoversEveryState) { EXPECT_EQ(kTable.size(), std::size(kAllStates)); }

TEST(WorkerStateTest, EveryStateTimesEveryEvent) {
  for (const Row& row : kTable) {
    ASSERT_EQ(row.to.size(), kEvents.size());
    for (size_t e = 0; e < kEvents.size(); ++e) {
      WorkerMachine m(WorkerPolicy::from(test_job()), 1);
      TimePoint t = reach(m, row.from);
      Action action = kEvents[e].fire(m, t + milliseconds(1));
      EXPECT_EQ(to_string(m.state()), std::string(to_string(row.to[e].first)))
          << to_string(row.from) << " x " << kEvents[e].name;
      EXPECT_EQ(to_string(action), std::string(to_string(row.to[e].second)))
          << to_string(row.from) << " x " << kEvents[e].name;
    }
  }
}

TEST(WorkerStateTest, SettleZeroIsRunningAtOnce) {
  config::JobSpec job = test_job();
  job.start.settle = milliseconds(0);
  WorkerMachine m(WorkerPolicy::from(job), 1);
  EXPECT_EQ(m.start(kT0), Action::kSpawn);
  m.spawned(kT0);
  EXPECT_EQ(m.state(), State::kRunning);
  EXPECT_FALSE(m.deadline());
}

TEST(WorkerStateTest, ChannelWorkerIsRunningAtReadyNotAfterSettle) {
  config::JobSpec job = test_job();
  job.channel = config::Channel::kShm;
  WorkerMachine m(WorkerPolicy::from(job), 1);
  m.start(kT0);
  m.spawned(kT0);
  EXPECT_FALSE(m.deadline());
  EXPECT_EQ(m.state(), State::kStarting);
  m.ready(kT0 + seconds(5));
  EXPECT_EQ(m.state(), State::kRunning);
}

TEST(WorkerStateTest, StopEscalatesSignalThenKillForPlainWorkers) {
  config::JobSpec job = test_job();
  job.stop.timeout = seconds(10);
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = reach(m, State::kRunning);
  EXPECT_EQ(m.stop(t), Action::kSignal);
  EXPECT_EQ(*m.deadline(), t + seconds(10));
  EXPECT_EQ(m.deadline_reached(t + seconds(9)), Action::kNone);  // early: nothing
  EXPECT_EQ(m.deadline_reached(t + seconds(10)), Action::kKill);
  EXPECT_FALSE(m.deadline());
  EXPECT_EQ(m.state(), State::kStopping);
  m.exited(t + seconds(11), ExitStatus::killed(SIGKILL));
  EXPECT_EQ(m.state(), State::kStopped);
}

TEST(WorkerStateTest, StopOfChannelWorkerSendsSentinelFirst) {
  config::JobSpec job = test_job();
  job.channel = config::Channel::kPipe;
  job.stop.timeout = seconds(10);
  job.stop.kill_after = seconds(5);
  WorkerMachine m(WorkerPolicy::from(job), 1);
  m.start(kT0);
  m.spawned(kT0);
  m.ready(kT0);
  EXPECT_EQ(m.stop(kT0), Action::kSendSentinel);
  EXPECT_EQ(m.deadline_reached(kT0 + seconds(10)), Action::kSignal);
  EXPECT_EQ(*m.deadline(), kT0 + seconds(15));
  EXPECT_EQ(m.deadline_reached(kT0 + seconds(15)), Action::kKill);
}

TEST(WorkerStateTest, BackoffDelaysGrowThenIntensityGivesUp) {
  config::JobSpec job = test_job();
  job.restart.max_restarts = 4;
  job.restart.backoff = {milliseconds(100), seconds(30), 2.0, 0.0};
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = kT0;
  m.start(t);
  std::vector<Duration> delays;
  for (int i = 0; i < 4; ++i) {
    m.spawned(t);
    m.exited(t, ExitStatus::exited(1));
    ASSERT_EQ(m.state(), State::kBackoff);
    delays.push_back(std::chrono::duration_cast<Duration>(*m.deadline() - t));
    t = *m.deadline();
    EXPECT_EQ(m.deadline_reached(t), Action::kSpawn);
  }
  EXPECT_EQ(delays, (std::vector<Duration>{milliseconds(100), milliseconds(200), milliseconds(400),
                                           milliseconds(800)}));
  m.spawned(t);
  m.exited(t, ExitStatus::exited(1));
  EXPECT_EQ(m.state(), State::kFatal);
  EXPECT_FALSE(m.deadline());
  EXPECT_EQ(m.restarts(), 4u);
  // start clears FATAL and the count.
  EXPECT_EQ(m.start(t), Action::kSpawn);
  m.spawned(t);
  m.exited(t, ExitStatus::exited(1));
  EXPECT_EQ(m.state(), State::kBackoff);
  EXPECT_EQ(*m.deadline() - t, milliseconds(100));
}

// A worker that dies running a task while it does its job is restarted at
// once, however often: the task pays, not the pool (max_restarts is 1 here).
TEST(WorkerStateTest, AnExitChargedToATaskRestartsAtOnceWithoutBackoffOrIntensity) {
  config::JobSpec job = test_job();
  job.restart.backoff = {milliseconds(100), seconds(30), 2.0, 0.0};
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = reach(m, State::kRunning);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(m.exited(t, ExitStatus::killed(SIGABRT), ExitBlame::kTask), Action::kSpawn);
    EXPECT_EQ(m.state(), State::kStarting);
    EXPECT_EQ(m.reason(), "killed by SIGABRT running a task; restarted at once");
    m.spawned(t);
    t += seconds(1);
    m.deadline_reached(t);
    ASSERT_EQ(m.state(), State::kRunning);
  }
  EXPECT_EQ(m.restarts(), 10u);
  EXPECT_EQ(m.failures(), 0u);
  // A failure of its own still takes the first backoff step.
  m.exited(t, ExitStatus::exited(1));
  EXPECT_EQ(m.state(), State::kBackoff);
  EXPECT_EQ(*m.deadline() - t, milliseconds(100));
}

// Before it settled, a death is the worker's, whatever it was doing; and an
// expected exit stays expected.
TEST(WorkerStateTest, AnExitBeforeRunningOrExpectedIsNotChargedToATask) {
  WorkerMachine m(WorkerPolicy::from(test_job()), 1);
  TimePoint t = reach(m, State::kStarting);
  m.exited(t, ExitStatus::exited(1), ExitBlame::kTask);
  EXPECT_EQ(m.state(), State::kBackoff);
  EXPECT_EQ(m.failures(), 1u);
  WorkerMachine clean(WorkerPolicy::from(test_job()), 1);
  t = reach(clean, State::kRunning);
  clean.exited(t, ExitStatus::exited(0), ExitBlame::kTask);
  EXPECT_EQ(clean.state(), State::kExited);
}

TEST(WorkerStateTest, RestartsOutsideTheWindowDoNotCount) {
  config::JobSpec job = test_job();
  job.restart.max_restarts = 2;
  job.restart.window = seconds(10);
  job.restart.reset_after = seconds(1000);
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = kT0;
  m.start(t);
  for (int i = 0; i < 6; ++i) {
    m.spawned(t);
    t += seconds(6);  // two restarts never fall in one 10 s window... almost
    m.exited(t, ExitStatus::exited(1));
    ASSERT_EQ(m.state(), State::kBackoff) << i;
    t = *m.deadline();
    m.deadline_reached(t);
  }
}

TEST(WorkerStateTest, ResetAfterMakesTheNextFailureAFirstOne) {
  config::JobSpec job = test_job();
  job.restart.max_restarts = 100;
  job.restart.reset_after = seconds(60);
  job.start.settle = milliseconds(0);
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = kT0;
  m.start(t);
  for (int i = 0; i < 3; ++i) {
    m.spawned(t);
    m.exited(t, ExitStatus::exited(1));
    t = *m.deadline();
    m.deadline_reached(t);
  }
  EXPECT_EQ(m.failures(), 3u);
  m.spawned(t);
  t += seconds(61);
  m.exited(t, ExitStatus::exited(1));
  EXPECT_EQ(m.failures(), 1u);
  EXPECT_EQ(*m.deadline() - t, milliseconds(100));
}

TEST(WorkerStateTest, CooldownRetriesFatalWorkers) {
  config::JobSpec job = test_job();
  job.restart.max_restarts = 0;
  job.restart.cooldown = seconds(30);
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = reach(m, State::kRunning);
  m.exited(t, ExitStatus::exited(1));
  ASSERT_EQ(m.state(), State::kFatal);
  EXPECT_EQ(*m.deadline(), t + seconds(30));
  EXPECT_EQ(m.deadline_reached(t + seconds(30)), Action::kSpawn);
  EXPECT_EQ(m.state(), State::kStarting);
}

// The default cooldown: a FATAL worker is tried again a minute later, with
// a fresh restart budget, as systemd starts a unit again after its
// start-limit interval.
TEST(WorkerStateTest, ByDefaultAFatalWorkerIsTriedAgainAfterAMinute) {
  config::JobSpec job;
  job.command = {"/bin/true"};
  job.restart.max_restarts = 0;
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = reach(m, State::kRunning);
  m.exited(t, ExitStatus::exited(1));
  ASSERT_EQ(m.state(), State::kFatal);
  ASSERT_TRUE(m.deadline());
  EXPECT_EQ(*m.deadline(), t + seconds(60));
  EXPECT_EQ(m.deadline_reached(t + seconds(60)), Action::kSpawn);
}

// start.retries is supervisord's startretries: failed starts in a row (an
// exit before settle, a spawn error) make the worker FATAL after one more
// than it allows; how long it ran before does not matter.
TEST(WorkerStateTest, StartRetriesCountFailedStartsInARow) {
  config::JobSpec job = test_job();
  job.start.retries = 3;
  job.restart.max_restarts.reset();
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = kT0;
  m.start(t);
  for (int i = 0; i < 3; ++i) {
    if (i == 1) {
      m.spawn_failed(t);
    } else {
      m.spawned(t);
      m.exited(t, ExitStatus::exited(2));
    }
    ASSERT_EQ(m.state(), State::kBackoff) << i;
    t = *m.deadline();
    m.deadline_reached(t);
  }
  m.spawned(t);
  m.exited(t, ExitStatus::exited(2));
  EXPECT_EQ(m.state(), State::kFatal);
  EXPECT_EQ(m.reason(),
            "exit status 2 (exited too quickly); 4 failed starts in a row (start.retries 3)");
}

// A worker that started well is restarted however often it crashes later,
// with start.retries and max_restarts off (supervisord's semantics); a good
// start clears the failed starts before it.
TEST(WorkerStateTest, ACrashNowAndThenIsNeverFatalWithSupervisordSemantics) {
  config::JobSpec job = test_job();
  job.start.retries = 3;
  job.restart.max_restarts.reset();
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = kT0;
  m.start(t);
  for (int i = 0; i < 100; ++i) {
    if (i % 10 == 0) {  // three failed starts, then a good one
      for (int f = 0; f < 3; ++f) {
        m.spawned(t);
        m.exited(t, ExitStatus::exited(2));
        ASSERT_EQ(m.state(), State::kBackoff) << i;
        t = *m.deadline();
        m.deadline_reached(t);
      }
    }
    m.spawned(t);
    t += seconds(2);
    m.deadline_reached(t);
    ASSERT_EQ(m.state(), State::kRunning) << i;
    t += seconds(3);
    m.exited(t, ExitStatus::killed(SIGSEGV));
    ASSERT_EQ(m.state(), State::kBackoff) << i;
    t = *m.deadline();
    m.deadline_reached(t);
  }
  EXPECT_EQ(m.state(), State::kStarting);
  // The same worker under the default intensity (10 in 60 s) gives up.
  config::JobSpec strict = test_job();
  strict.restart.max_restarts = 10;
  strict.restart.backoff.max = seconds(1);
  WorkerMachine n(WorkerPolicy::from(strict), 1);
  t = kT0;
  n.start(t);
  for (int i = 0; i < 20 && n.state() != State::kFatal; ++i) {
    n.spawned(t);
    t += seconds(2);
    n.deadline_reached(t);
    t += seconds(1);
    n.exited(t, ExitStatus::killed(SIGSEGV));
    if (n.deadline()) {
      t = *n.deadline();
      n.deadline_reached(t);
    }
  }
  EXPECT_EQ(n.state(), State::kFatal);
}

TEST(WorkerStateTest, PolicyDecidesWhatAnExitMeans) {
  struct Case {
    config::RestartPolicy policy;
    ExitStatus status;
    State expected;
  };
  using P = config::RestartPolicy;
  for (const Case& c : std::vector<Case>{
           {P::kOnFailure, ExitStatus::exited(0), State::kExited},
           {P::kOnFailure, ExitStatus::exited(3), State::kBackoff},
           {P::kOnFailure, ExitStatus::killed(SIGKILL), State::kBackoff},
           {P::kAlways, ExitStatus::exited(0), State::kBackoff},
           {P::kNever, ExitStatus::exited(1), State::kExited},
           {P::kNever, ExitStatus::killed(SIGSEGV), State::kExited},
       }) {
    config::JobSpec job = test_job();
    job.restart.policy = c.policy;
    WorkerMachine m(WorkerPolicy::from(job), 1);
    TimePoint t = reach(m, State::kRunning);
    m.exited(t, c.status);
    EXPECT_EQ(m.state(), c.expected) << c.status.str();
  }
}

TEST(WorkerStateTest, CustomCleanExitCodes) {
  config::JobSpec job = test_job();
  job.restart.exit_codes = {0, 3};
  WorkerMachine m(WorkerPolicy::from(job), 1);
  TimePoint t = reach(m, State::kRunning);
  m.exited(t, ExitStatus::exited(3));
  EXPECT_EQ(m.state(), State::kExited);
}

TEST(WorkerStateTest, SpawnFailureWithPolicyNeverIsFatal) {
  config::JobSpec job = test_job();
  job.restart.policy = config::RestartPolicy::kNever;
  WorkerMachine m(WorkerPolicy::from(job), 1);
  m.start(kT0);
  m.spawn_failed(kT0);
  EXPECT_EQ(m.state(), State::kFatal);
}

TEST(WorkerStateTest, RestartStopsThenStartsWithoutBackoff) {
  WorkerMachine m(WorkerPolicy::from(test_job()), 1);
  TimePoint t = reach(m, State::kRunning);
  EXPECT_EQ(m.restart(t), Action::kSignal);
  EXPECT_TRUE(m.start_after_stop());
  EXPECT_EQ(m.exited(t, ExitStatus::killed(SIGTERM)), Action::kSpawn);
  EXPECT_EQ(m.state(), State::kStarting);
  EXPECT_EQ(m.restarts(), 0u);  // a person's restart is not counted
}

TEST(WorkerStateTest, StopCancelsAPendingRestart) {
  WorkerMachine m(WorkerPolicy::from(test_job()), 1);
  TimePoint t = reach(m, State::kRunning);
  m.restart(t);
  m.stop(t);
  EXPECT_FALSE(m.start_after_stop());
  EXPECT_EQ(m.exited(t, ExitStatus::killed(SIGTERM)), Action::kNone);
  EXPECT_EQ(m.state(), State::kStopped);
}

TEST(WorkerStateTest, ReasonSaysWhy) {
  WorkerMachine m(WorkerPolicy::from(test_job()), 1);
  m.start(kT0);
  m.spawned(kT0);
  m.exited(kT0, ExitStatus::exited(2));
  EXPECT_EQ(m.reason(), "exit status 2 (exited too quickly)");
}

}  // namespace
}  // namespace corral::daemon

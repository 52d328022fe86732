// The Supervisor on a fake host: spawns are recorded, exits injected, time
// moved by hand. No processes.
#include "daemon/supervisor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/commands.h"
#include "tests/support/fake_host.h"

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::Contains;
using testing::FakeHost;

config::JobSpec job(const std::string& name, uint32_t workers) {
  config::JobSpec spec;
  spec.name = name;
  spec.command = {"/bin/sleep", "1000"};
  spec.workers = workers;
  spec.start.settle = milliseconds(0);
  spec.restart.backoff.jitter = 0;
  spec.env = {{"GREETING", "hello"}};
  return spec;
}

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() : supervisor(host, options(), {}) {}
  static SupervisorOptions options() {
    SupervisorOptions o;
    o.log_dir = "/logs";
    o.daemon_env = {"PATH=/usr/bin:/bin", "GREETING=base",  "HOME=/root",
                    "SECRET=s3cret",      "PROXY=http://p", "NOTIFY_SOCKET=/run/notify"};
    o.pass_env = {"PROXY"};
    o.find_account = [](const std::string& name) -> std::optional<Account> {
      if (name == "app") return Account{1000, "app", "/home/app", "/bin/bash"};
      if (name == "0") return Account{0, "root", "/root", "/bin/bash"};
      return std::nullopt;
    };
    return o;
  }
  State state(const std::string& j, uint32_t i) { return *supervisor.state(WorkerId{j, i}); }
  FakeHost host;
  Supervisor supervisor;
};

TEST_F(SupervisorTest, AutostartSpawnsEveryWorkerWithItsEnvironment) {
  supervisor.add_job(job("web", 2));
  config::JobSpec manual = job("batch", 1);
  manual.autostart = false;
  supervisor.add_job(manual);
  supervisor.start_autostart();
  ASSERT_EQ(host.spawns.size(), 2u);
  EXPECT_EQ(state("web", 0), State::kRunning);
  EXPECT_EQ(state("batch", 0), State::kStopped);
  const SpawnRequest& r = host.spawns[1];
  EXPECT_EQ(r.name, "web:1");
  EXPECT_EQ(r.argv, (std::vector<std::string>{"/bin/sleep", "1000"}));
  EXPECT_THAT(r.env, Contains("CORRAL_JOB=web"));
  EXPECT_THAT(r.env, Contains("CORRAL_WORKER=1"));
  EXPECT_THAT(r.env, Contains("CORRAL_CHANNEL=none"));
  EXPECT_THAT(r.env, Contains("GREETING=hello"));  // the job's env wins
  EXPECT_THAT(r.env, Contains("PATH=/usr/bin:/bin"));
  EXPECT_EQ(r.stdout_log.path, "/logs/web-1.out.log");
  EXPECT_EQ(r.stderr_log.path, "/logs/web-1.err.log");
  EXPECT_THAT(r.env, Contains("SECRET=s3cret"));
  EXPECT_THAT(r.env, ::testing::Not(Contains("NOTIFY_SOCKET=/run/notify")));
}

TEST_F(SupervisorTest, AWorkerOfAnotherUserGetsNoneOfTheDaemonsEnvironmentButPassEnv) {
  config::JobSpec other = job("other", 1);
  other.user = "app";
  config::JobSpec own = job("own", 1);
  own.user = "0";  // the daemon's uid, by number
  config::JobSpec unknown = job("unknown", 1);
  unknown.user = "nosuchuser";
  for (const auto& spec : {other, own, unknown}) supervisor.add_job(spec);
  supervisor.start_autostart();
  ASSERT_EQ(host.spawns.size(), 3u);
  std::map<std::string, std::vector<std::string>> env;
  for (const auto& r : host.spawns) env[r.name] = r.env;
  EXPECT_EQ(env["other:0"],
            (std::vector<std::string>{"CORRAL_CHANNEL=none", "CORRAL_JOB=other", "CORRAL_WORKER=0",
                                      "GREETING=hello", "HOME=/home/app", "LOGNAME=app",
                                      "PATH=/usr/local/bin:/usr/bin:/bin", "PROXY=http://p",
                                      "SHELL=/bin/bash", "USER=app"}));
  EXPECT_THAT(env["own:0"], ::testing::IsSupersetOf({"SECRET=s3cret", "HOME=/root",
                                                     "PATH=/usr/bin:/bin", "GREETING=hello"}));
  EXPECT_EQ(env["unknown:0"],
            (std::vector<std::string>{"CORRAL_CHANNEL=none", "CORRAL_JOB=unknown",
                                      "CORRAL_WORKER=0", "GREETING=hello",
                                      "PATH=/usr/local/bin:/usr/bin:/bin", "PROXY=http://p"}));
}

// The pids of the workers of NAME, in index order (0: none).
std::vector<pid_t> pids_of(Supervisor& supervisor, const std::string& name) {
  std::vector<pid_t> pids;
  for (const auto& id : supervisor.workers_of(name)) pids.push_back(supervisor.status(id).pid);
  return pids;
}

TEST_F(SupervisorTest, UpdateTouchesOnlyWhatChanged) {
  supervisor.add_job(job("same", 1));
  supervisor.add_job(job("grow", 1));
  supervisor.add_job(job("gone", 1));
  supervisor.add_job(job("edit", 1));
  supervisor.start_autostart();
  auto same = pids_of(supervisor, "same");
  auto grow = pids_of(supervisor, "grow");
  pid_t gone = pids_of(supervisor, "gone")[0];
  pid_t edit = pids_of(supervisor, "edit")[0];

  config::JobSpec edited = job("edit", 1);
  edited.command = {"/bin/sleep", "2000"};
  std::vector<config::JobSpec> next = {job("same", 1), job("grow", 3), edited, job("new", 1)};
  JobChanges changes = supervisor.diff(next);
  EXPECT_EQ(changes.added, std::vector<std::string>{"new"});
  EXPECT_EQ(changes.changed, (std::vector<std::string>{"edit", "grow"}));
  EXPECT_EQ(changes.removed, std::vector<std::string>{"gone"});

  bool done = false;
  ASSERT_TRUE(supervisor.update(next, [&] { done = true; }));
  EXPECT_FALSE(supervisor.update(next, {}));  // one at a time
  // grow gained two workers at once; the old one kept its process.
  EXPECT_EQ(pids_of(supervisor, "grow").size(), 3u);
  EXPECT_EQ(pids_of(supervisor, "grow")[0], grow[0]);
  EXPECT_EQ(state("new", 0), State::kRunning);
  // gone and edit are stopping: done waits for their exits.
  EXPECT_EQ(host.processes.at(gone).signals, std::vector<int>{SIGTERM});
  EXPECT_EQ(host.processes.at(edit).signals, std::vector<int>{SIGTERM});
  host.advance(milliseconds(0));
  EXPECT_FALSE(done);
  host.exit(gone, ExitStatus::killed(SIGTERM));
  host.exit(edit, ExitStatus::killed(SIGTERM));
  host.advance(milliseconds(0));
  EXPECT_TRUE(done);
  EXPECT_FALSE(supervisor.exists(WorkerId{"gone", 0}));
  EXPECT_EQ(state("edit", 0), State::kRunning);
  EXPECT_EQ(host.spawns.back().argv, (std::vector<std::string>{"/bin/sleep", "2000"}));
  EXPECT_EQ(pids_of(supervisor, "same"), same);
}

TEST_F(SupervisorTest, FewerWorkersStopTheLastOnesAndKeepTheRest) {
  supervisor.add_job(job("pool", 3));
  supervisor.start_autostart();
  auto before = pids_of(supervisor, "pool");
  bool done = false;
  ASSERT_TRUE(supervisor.update({job("pool", 1)}, [&] { done = true; }));
  supervisor.start(WorkerId{"pool", 2});  // a leaving worker is not started again
  host.exit(before[1], ExitStatus::killed(SIGTERM));
  host.advance(milliseconds(0));
  EXPECT_FALSE(done);
  EXPECT_EQ(pids_of(supervisor, "pool").size(), 3u);  // pool:2 still has its process
  host.exit(before[2], ExitStatus::killed(SIGTERM));
  host.advance(milliseconds(0));
  EXPECT_TRUE(done);
  EXPECT_EQ(pids_of(supervisor, "pool"), std::vector<pid_t>{before[0]});
}

TEST_F(SupervisorTest, SamplesEveryIntervalGiveCpuPercentAndEnforceLimitsMemory) {
  config::JobSpec spec = job("web", 1);
  spec.limits.memory = 100 << 20;
  supervisor.add_job(spec);
  supervisor.start_autostart();
  pid_t pid = host.last_pid();
  host.samples[pid] = ProcSample{1.0, 50 << 20, 3, 0, 0};
  host.advance(seconds(1));  // the sampler's first tick (limits.memory wants it)
  host.samples[pid] = ProcSample{1.75, 60 << 20, 3, 0, 0};
  host.advance(seconds(1));
  WorkerStatus s = supervisor.status(WorkerId{"web", 0});
  EXPECT_DOUBLE_EQ(s.cpu_s, 1.75);
  EXPECT_DOUBLE_EQ(s.cpu_percent, 75.0);  // 0.75 s of CPU in 1 s
  EXPECT_EQ(s.rss_bytes, 60u << 20);
  EXPECT_EQ(s.threads, 3u);
  EXPECT_TRUE(host.processes.at(pid).signals.empty());

  host.samples[pid] = ProcSample{3.0, 101 << 20, 3, 0, 0};
  host.advance(seconds(1));
  EXPECT_EQ(host.processes.at(pid).signals, std::vector<int>{SIGTERM});  // restarted
  EXPECT_EQ(supervisor.status(WorkerId{"web", 0}).enforced.at("memory"), 1u);
  host.exit(pid, ExitStatus::killed(SIGTERM));
  EXPECT_EQ(state("web", 0), State::kRunning);
  EXPECT_NE(host.last_pid(), pid);
  EXPECT_EQ(supervisor.status(WorkerId{"web", 0}).rss_bytes, 0u);  // no sample of it yet
}

TEST_F(SupervisorTest, WithNothingToEnforceNothingPollsAndRefreshSamplesOnDemand) {
  supervisor.add_job(job("web", 2));
  supervisor.start_autostart();
  host.advance(seconds(10));
  ASSERT_EQ(state("web", 0), State::kRunning);
  EXPECT_EQ(host.armed_timers(), 0u);  // no sampler, no other timer: idle means idle

  pid_t pid = host.last_pid();
  host.samples[pid] = ProcSample{1.0, 50 << 20, 2, 0, 0};
  supervisor.refresh();  // the first look
  EXPECT_EQ(supervisor.status(WorkerId{"web", 1}).rss_bytes, 50u << 20);
  host.samples[pid] = ProcSample{4.0, 70 << 20, 2, 0, 0};
  host.advance(milliseconds(400));
  supervisor.refresh();  // younger than half of metrics.interval: the same sample
  EXPECT_EQ(supervisor.status(WorkerId{"web", 1}).rss_bytes, 50u << 20);
  host.advance(seconds(5) + milliseconds(600));
  supervisor.refresh();
  WorkerStatus s = supervisor.status(WorkerId{"web", 1});
  EXPECT_EQ(s.rss_bytes, 70u << 20);
  EXPECT_DOUBLE_EQ(s.cpu_percent, 50.0);  // 3 s of CPU since the sample before, 6 s ago
  EXPECT_EQ(host.armed_timers(), 0u);
}

TEST_F(SupervisorTest, KilledWorkerComesBackAfterTheInitialBackoff) {
  supervisor.add_job(job("web", 1));
  supervisor.start_autostart();
  pid_t first = host.last_pid();
  host.exit(first, ExitStatus::killed(SIGKILL));
  EXPECT_EQ(state("web", 0), State::kBackoff);
  host.advance(milliseconds(99));
  EXPECT_EQ(host.spawns.size(), 1u);
  host.advance(milliseconds(1));
  EXPECT_EQ(host.spawns.size(), 2u);
  EXPECT_EQ(state("web", 0), State::kRunning);
  EXPECT_NE(host.last_pid(), first);
  WorkerStatus s = supervisor.status(WorkerId{"web", 0});
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(s.last_exit, ExitStatus::killed(SIGKILL));
  EXPECT_EQ(s.exits, (std::map<std::string, uint64_t>{{"SIGKILL", 1}}));
}

TEST_F(SupervisorTest, AlwaysFailingWorkerGoesFatalAndStartRevivesIt) {
  config::JobSpec spec = job("bad", 1);
  spec.restart.max_restarts = 3;
  supervisor.add_job(spec);
  supervisor.start_autostart();
  for (int i = 0; i < 4; ++i) {
    host.exit(host.last_pid(), ExitStatus::exited(1));
    host.advance(seconds(5));
  }
  EXPECT_EQ(state("bad", 0), State::kFatal);
  EXPECT_EQ(host.spawns.size(), 4u);
  supervisor.start(WorkerId{"bad", 0});
  EXPECT_EQ(state("bad", 0), State::kRunning);
  EXPECT_EQ(host.spawns.size(), 5u);
}

TEST_F(SupervisorTest, SpawnErrorIsRecordedAndRetried) {
  supervisor.add_job(job("web", 1));
  host.next_spawn_error = "exec nope: not found in PATH";
  supervisor.start_autostart();
  WorkerStatus s = supervisor.status(WorkerId{"web", 0});
  EXPECT_EQ(s.state, State::kBackoff);
  EXPECT_EQ(s.spawn_error, "exec nope: not found in PATH");
  host.next_spawn_error.clear();
  host.advance(seconds(1));
  EXPECT_EQ(state("web", 0), State::kRunning);
  EXPECT_EQ(supervisor.status(WorkerId{"web", 0}).spawn_error, "");
}

TEST_F(SupervisorTest, StopSignalsTheGroupThenKills) {
  config::JobSpec spec = job("web", 1);
  spec.stop.signal = SIGINT;
  spec.stop.timeout = seconds(3);
  supervisor.add_job(spec);
  supervisor.start_autostart();
  pid_t pid = host.last_pid();
  supervisor.stop(WorkerId{"web", 0});
  EXPECT_EQ(host.processes.at(pid).signals, std::vector<int>{SIGINT});
  host.advance(seconds(3));
  EXPECT_EQ(host.processes.at(pid).signals, (std::vector<int>{SIGINT, SIGKILL}));
  host.exit(pid, ExitStatus::killed(SIGKILL));
  EXPECT_EQ(state("web", 0), State::kStopped);
  host.advance(seconds(60));
  EXPECT_EQ(host.spawns.size(), 1u);  // a stopped worker stays stopped
}

TEST_F(SupervisorTest, ShutdownStopsEveryWorkerAndSaysWhenIdle) {
  supervisor.add_job(job("a", 2));
  supervisor.add_job(job("b", 1));
  supervisor.start_autostart();
  bool done = false;
  supervisor.shutdown([&] { done = true; });
  EXPECT_FALSE(done);
  for (pid_t pid : host.alive_pids()) host.exit(pid, ExitStatus::killed(SIGTERM));
  EXPECT_TRUE(done);
  EXPECT_TRUE(supervisor.idle());
}

TEST_F(SupervisorTest, ShutdownWinsOverARestartInProgress) {
  supervisor.add_job(job("a", 1));
  supervisor.start_autostart();
  supervisor.restart(WorkerId{"a", 0});
  bool done = false;
  supervisor.shutdown([&] { done = true; });
  host.exit(host.last_pid(), ExitStatus::killed(SIGTERM));
  EXPECT_TRUE(done);
  EXPECT_EQ(host.spawns.size(), 1u);
}

TEST_F(SupervisorTest, LowerPriorityStartsFirstAndStopsLast) {
  config::JobSpec db = job("db", 1);
  db.priority = 10;
  config::JobSpec web = job("web", 2);
  web.priority = 500;
  config::JobSpec app = job("app", 1);  // 999, like web's later peers
  supervisor.add_job(app);
  supervisor.add_job(web);
  supervisor.add_job(db);
  supervisor.start_autostart();
  ASSERT_EQ(host.spawns.size(), 4u);
  EXPECT_EQ(host.spawns[0].name, "db:0");
  EXPECT_EQ(host.spawns[1].name, "web:0");
  EXPECT_EQ(host.spawns[2].name, "web:1");
  EXPECT_EQ(host.spawns[3].name, "app:0");
  auto pid_of = [&](const std::string& name) {
    for (const auto& [pid, p] : host.processes) {
      if (p.request.name == name && p.alive) return pid;
    }
    return pid_t{0};
  };
  auto asked = [&](const std::string& name) {
    return !host.processes[pid_of(name)].signals.empty();
  };

  bool done = false;
  supervisor.shutdown([&] { done = true; });
  EXPECT_TRUE(asked("app:0"));
  EXPECT_FALSE(asked("web:0"));
  EXPECT_FALSE(asked("db:0"));
  host.exit(pid_of("app:0"), ExitStatus::killed(SIGTERM));
  EXPECT_TRUE(asked("web:0"));
  EXPECT_TRUE(asked("web:1"));
  EXPECT_FALSE(asked("db:0"));
  host.exit(pid_of("web:1"), ExitStatus::killed(SIGTERM));
  EXPECT_FALSE(asked("db:0"));  // web:0 still runs
  host.exit(pid_of("web:0"), ExitStatus::killed(SIGTERM));
  EXPECT_TRUE(asked("db:0"));
  EXPECT_FALSE(done);
  host.exit(pid_of("db:0"), ExitStatus::killed(SIGTERM));
  EXPECT_TRUE(done);
}

TEST_F(SupervisorTest, AWorkerInBackoffIsNotRestartedWhileAHigherPriorityStops) {
  config::JobSpec db = job("db", 1);
  db.priority = 1;
  supervisor.add_job(db);
  supervisor.add_job(job("app", 1));
  supervisor.start_autostart();
  const pid_t db_pid = host.last_pid() - 1;
  const pid_t app_pid = host.last_pid();
  supervisor.shutdown([] {});
  host.exit(db_pid, ExitStatus::exited(1));  // crashes while app stops
  EXPECT_NE(*supervisor.state(WorkerId{"db", 0}), State::kBackoff);
  host.advance(std::chrono::minutes(1));
  EXPECT_EQ(host.spawns.size(), 2u);
  host.exit(app_pid, ExitStatus::killed(SIGTERM));
  EXPECT_TRUE(supervisor.idle());
}

TEST_F(SupervisorTest, ARequestCarriesTheUmaskAndTheJobsLogFiles) {
  config::JobSpec spec = job("web", 2);
  spec.command = {"/bin/sleep", "--name={job}-{index:02}", "{}"};
  spec.env = {{"PORT", "80{index+1:02}"}};
  spec.umask = 027;
  spec.log.out = {config::LogTarget::Kind::kFile, "/srv/log/{job}-{index:02}.log"};
  spec.log.err = {config::LogTarget::Kind::kStdout, ""};
  spec.log.max_size = config::kNeverRotate;
  spec.log.keep = 0;
  supervisor.add_job(spec);
  config::JobSpec quiet = job("quiet", 1);
  quiet.log.out = {config::LogTarget::Kind::kOff, ""};
  quiet.log.err = {config::LogTarget::Kind::kInherit, ""};
  supervisor.add_job(quiet);
  supervisor.start_autostart();
  ASSERT_EQ(host.spawns.size(), 3u);
  const SpawnRequest& q = host.spawns[0];
  EXPECT_FALSE(q.umask.has_value());
  EXPECT_TRUE(q.stdout_log.path.empty());
  EXPECT_FALSE(q.stdout_log.inherit);
  EXPECT_TRUE(q.stderr_log.inherit);
  EXPECT_EQ(q.log_rotate.max_size, 10 * config::kMiB);  // daemon.log_rotate's
  const SpawnRequest& w = host.spawns[2];
  EXPECT_EQ(w.argv, (std::vector<std::string>{"/bin/sleep", "--name=web-01", "{}"}));
  EXPECT_NE(std::find(w.env.begin(), w.env.end(), "PORT=8002"), w.env.end());
  EXPECT_EQ(w.umask, 027u);
  EXPECT_EQ(w.stdout_log.path, "/srv/log/web-01.log");
  EXPECT_EQ(w.stdout_log.name, "web-01.log");
  EXPECT_TRUE(w.stderr_to_stdout);
  EXPECT_EQ(w.log_rotate.max_size, config::kNeverRotate);
  EXPECT_EQ(w.log_rotate.keep, 0);
  EXPECT_EQ(supervisor.output_file(WorkerId{"web", 1}, true)->path, "/srv/log/web-01.log");
  EXPECT_EQ(supervisor.output_file(WorkerId{"quiet", 0}, false).error().message(),
            "not kept (log.stdout: off)");
  EXPECT_EQ(supervisor.output_file(WorkerId{"quiet", 0}, true).error().message(),
            "not captured: it goes to corrald's own stderr (inherit), e.g. the journal");
}

TEST(SupervisorLogDirTest, ALogDirectoryThatCannotBeOpenedIsASpawnErrorOfThatJob) {
  FakeHost host;
  SupervisorOptions options;
  options.log_dir = "/logs";
  std::vector<std::string> opened;
  options.open_log_dir = [&](const std::string& dir,
                             const std::string& key) -> Result<std::shared_ptr<const SafeDir>> {
    opened.push_back(dir + " " + key);
    return Error(key + " " + dir + " is not private");
  };
  Supervisor supervisor(host, options, {});
  config::JobSpec spec;
  spec.name = "web";
  spec.command = {"/bin/web"};
  spec.log.out = {config::LogTarget::Kind::kFile, "/srv/{job}/out.log"};
  supervisor.add_job(spec);
  config::JobSpec plain = spec;
  plain.name = "plain";
  plain.log = {};
  supervisor.add_job(plain);
  supervisor.start_autostart();
  EXPECT_EQ(opened, std::vector<std::string>{"/srv/web job web: log.stdout's directory"});
  EXPECT_EQ(host.spawns.size(), 1u);  // plain only
  EXPECT_EQ(*supervisor.state(WorkerId{"web", 0}), State::kBackoff);
  EXPECT_EQ(*supervisor.state(WorkerId{"plain", 0}), State::kStarting);
}

TEST_F(SupervisorTest, WorkersOfAJobInIndexOrder) {
  supervisor.add_job(job("web", 3));
  EXPECT_TRUE(supervisor.has_job("web"));
  EXPECT_FALSE(supervisor.has_job("nope"));
  EXPECT_EQ(supervisor.workers_of("web"),
            (std::vector<WorkerId>{{"web", 0}, {"web", 1}, {"web", 2}}));
  EXPECT_TRUE(supervisor.workers_of("nope").empty());
}

TEST_F(SupervisorTest, StartCommandAnswersOnceRunning) {
  config::JobSpec spec = job("web", 1);
  spec.start.settle = seconds(1);
  spec.autostart = false;
  supervisor.add_job(spec);
  Commands commands(supervisor, host, [] {});
  std::optional<protocol::Json> reply;
  commands.handle({{"cmd", "start"}, {"targets", {"web"}}},
                  [&](const protocol::Json& r) { reply = r; });
  EXPECT_FALSE(reply);
  host.advance(seconds(1));
  ASSERT_TRUE(reply);
  EXPECT_EQ((*reply)["ok"], true);
  EXPECT_EQ((*reply)["workers"][0]["message"], "started");
}

TEST_F(SupervisorTest, StartCommandReportsFatal) {
  config::JobSpec spec = job("bad", 1);
  spec.autostart = false;
  spec.restart.max_restarts = 1;
  supervisor.add_job(spec);
  Commands commands(supervisor, host, [] {});
  std::optional<protocol::Json> reply;
  host.next_spawn_error = "exec nope: not found in PATH";
  commands.handle({{"cmd", "start"}, {"targets", {"bad:0"}}},
                  [&](const protocol::Json& r) { reply = r; });
  host.advance(seconds(5));
  ASSERT_TRUE(reply);
  EXPECT_EQ((*reply)["ok"], false);
  EXPECT_EQ((*reply)["workers"][0]["message"], "ERROR (spawn error)");
}

TEST_F(SupervisorTest, StatusJsonHasTheSpecFields) {
  supervisor.add_job(job("web", 1));
  supervisor.start_autostart();
  Commands commands(supervisor, host, [] {});
  protocol::Json reply;
  commands.handle({{"cmd", "status"}}, [&](const protocol::Json& r) { reply = r; });
  const auto& w = reply["workers"][0];
  for (const char* field : {"name", "job", "index", "state", "pid", "uptime_s", "restarts",
                            "exit_status", "tasks_ok", "tasks_failed", "cpu_s", "rss_bytes"}) {
    EXPECT_TRUE(w.contains(field)) << field;
  }
  EXPECT_EQ(w["name"], "web:0");
  EXPECT_EQ(w["state"], "RUNNING");
  EXPECT_EQ(w["pid"], host.last_pid());
  EXPECT_TRUE(w["job_tasks"].is_null()) << "a job without a task feed has no task counts";
}

TEST_F(SupervisorTest, BadRequestsGetErrors) {
  supervisor.add_job(job("web", 1));
  Commands commands(supervisor, host, [] {});
  auto ask = [&](const protocol::Json& request) {
    protocol::Json reply;
    commands.handle(request, [&](const protocol::Json& r) { reply = r; });
    return reply;
  };
  EXPECT_EQ(ask({{"cmd", "fly"}})["error"], "unknown command: fly");
  EXPECT_EQ(ask(protocol::Json::array())["ok"], false);
  EXPECT_EQ(ask({{"cmd", "start"}})["error"], "no target given: name JOB, JOB:INDEX, JOB:* or all");
  EXPECT_EQ(ask({{"cmd", "stop"}, {"targets", {"web:x"}}})["ok"], false);
  EXPECT_EQ(ask({{"cmd", "stop"}, {"targets", "web"}})["ok"], false);
}

// A field of the wrong type used to throw out of the command (nlohmann's
// get<>), which in corrald leaves the event loop and ends the daemon.
TEST_F(SupervisorTest, FieldsOfTheWrongTypeGetErrorsNotExceptions) {
  supervisor.add_job(job("web", 2));
  supervisor.start_autostart();
  Commands commands(supervisor, host, [] {});
  auto ask = [&](const protocol::Json& request) {
    protocol::Json reply;
    EXPECT_NO_THROW(commands.handle(request, [&](const protocol::Json& r) { reply = r; }))
        << request;
    return reply;
  };
  EXPECT_EQ(ask({{"cmd", "restart"}, {"targets", {"web"}}, {"rolling", "yes"}})["error"],
            "\"rolling\" must be true or false in a restart request");
  EXPECT_EQ(ask({{"cmd", "wait"}, {"job", "web"}, {"running", 1}})["error"],
            "\"running\" must be true or false in a wait request");
  EXPECT_EQ(ask({{"cmd", "wait"}, {"job", "web"}, {"running", true}, {"timeout_s", 1e300}})["ok"],
            false);
  EXPECT_EQ(host.spawns.size(), 2u);  // nothing was restarted
}

TEST_F(SupervisorTest, APausedWorkerIsThawedBeforeItIsStoppedAndSaysItIsPaused) {
  supervisor.add_job(job("web", 1));
  supervisor.start_autostart();
  pid_t pid = host.last_pid();
  const WorkerId id{"web", 0};
  Result<std::string> how = supervisor.pause(id, true);
  ASSERT_TRUE(how) << how.error().message();
  EXPECT_TRUE(host.processes.at(pid).paused);
  WorkerStatus status = supervisor.status(id);
  EXPECT_TRUE(status.paused);
  EXPECT_EQ(status.state, State::kRunning);
  EXPECT_EQ(status.description.rfind("paused; ", 0), 0u) << status.description;
  EXPECT_EQ(*supervisor.pause(id, true), "already paused");
  supervisor.stop(id);
  // Thawed, then signalled: a frozen process would not see the signal.
  EXPECT_FALSE(host.processes.at(pid).paused);
  EXPECT_EQ(host.processes.at(pid).signals, std::vector<int>{SIGTERM});
  host.exit(pid, ExitStatus::killed(SIGTERM));
  EXPECT_FALSE(supervisor.status(id).paused);
  Result<std::string> stopped = supervisor.pause(id, true);
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().message(), "not running");
  EXPECT_FALSE(supervisor.pause(WorkerId{"nope", 0}, true));
}

TEST(SupervisorLimitsTest, EachLimitSaysWhereItIsInForceAndReachesTheSpawn) {
  config::JobSpec spec = job("web", 1);
  spec.limits.memory = 512u << 20;
  spec.limits.memory_high = 400u << 20;
  spec.limits.cpu = 150;
  spec.limits.pids = 64;
  for (bool controllers : {false, true}) {
    FakeHost host;
    SupervisorOptions options;
    options.log_dir = "/logs";
    if (controllers) {
      options.cgroup_dir = "/sys/fs/cgroup/corral";
      options.cgroup_controllers = {"memory", "pids"};
    }
    Supervisor supervisor(host, options, {});
    supervisor.add_job(spec);
    supervisor.start_autostart();
    ASSERT_EQ(host.spawns.size(), 1u);
    const CgroupLimits& limits = host.spawns[0].cgroup_limits;
    EXPECT_EQ(limits.memory_max, spec.limits.memory);
    EXPECT_EQ(limits.memory_high, spec.limits.memory_high);
    EXPECT_EQ(limits.cpu_percent, 150u);
    EXPECT_EQ(limits.pids_max, 64u);
    WorkerStatus status = supervisor.status(WorkerId{"web", 0});
    if (controllers) {
      EXPECT_EQ(status.cgroup, "/sys/fs/cgroup/corral/job:web/0");
      EXPECT_EQ(status.limits, (std::map<std::string, std::string>{{"memory", "memory.max"},
                                                                   {"memory_high", "memory.high"},
                                                                   {"cpu", "not in force"},
                                                                   {"pids", "pids.max"}}));
    } else {
      EXPECT_EQ(status.cgroup, "");
      EXPECT_EQ(status.limits, (std::map<std::string, std::string>{{"memory", "sampled"},
                                                                   {"memory_high", "not in force"},
                                                                   {"cpu", "not in force"},
                                                                   {"pids", "not in force"}}));
    }
  }
}

TEST(ExitStatusTest, AKnownCauseIsWhatItSays) {
  ExitStatus oom =
      ExitStatus::killed(SIGKILL).because("killed by the kernel: memory.max 1MiB reached");
  EXPECT_EQ(oom.str(), "killed by the kernel: memory.max 1MiB reached");
  EXPECT_EQ(oom.shell_status(), 128 + SIGKILL);
  EXPECT_EQ(ExitStatus::killed(SIGKILL).str(), "killed by SIGKILL");
}

}  // namespace
}  // namespace corral::daemon

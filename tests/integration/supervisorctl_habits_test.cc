// What a supervisorctl user types by habit, against a real corrald: JOB:*
// targets (supervisorctl's GROUP:*) in every command that takes a TARGET, in
// the shell and in JSON requests; `avail`; `maintail`; `fg`; and the
// dead-letter list cleared, retried by ID and watched with `retry --wait`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Three workers that say "got HUP" on SIGHUP, and a job of one.
const std::string kWebAndDb = R"(
jobs:
  web:
    command: [sh, -c, 'trap "echo got HUP" HUP; while :; do sleep 0.05; done']
    workers: 3
    start: {settle: 0s}
    stop: {timeout: 2s}
  db:
    command: [sh, -c, 'echo db up; while :; do sleep 0.05; done']
    start: {settle: 0s}
    stop: {timeout: 2s}
)";

// The lines of TEXT.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The first word of each line of TEXT, without a ':' after it: the worker
// names of a status, a pid or a restart.
std::vector<std::string> names_of(const std::string& text) {
  std::vector<std::string> names;
  for (const auto& line : lines_of(text)) {
    std::string name = line.substr(0, line.find(' '));
    if (name.ends_with(':')) name.pop_back();
    names.push_back(name);
  }
  return names;
}

TEST(JobStarTargetTest, EveryTargetCommandTakesJobStarAsTheJob) {
  Daemon d(kWebAndDb);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (const char* name : {"web:0", "web:1", "web:2", "db:0"}) {
    ASSERT_TRUE(d.wait_state(name, "RUNNING")) << name;
  }

  RunResult status = d.ctl({"status", "web:*"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(lines_of(status.out),
              ElementsAre(HasSubstr("web:0"), HasSubstr("web:1"), HasSubstr("web:2")));

  RunResult pid = d.ctl({"pid", "web:*"});
  EXPECT_EQ(pid.exit_code, 0) << pid.err;
  EXPECT_THAT(names_of(pid.out), ElementsAre("web:0", "web:1", "web:2"));

  RunResult signal = d.ctl({"signal", "HUP", "web:*"});
  EXPECT_EQ(signal.exit_code, 0) << signal.err;
  EXPECT_EQ(signal.out, "web:0: signalled\nweb:1: signalled\nweb:2: signalled\n");
  for (const char* log : {"web-0.out.log", "web-1.out.log", "web-2.out.log"}) {
    EXPECT_TRUE(wait_until([&] {
      return read_file(d.log_dir() + "/" + log).find("got HUP") != std::string::npos;
    })) << log;
  }

  RunResult clear = d.ctl({"clear", "web:*"});
  EXPECT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_EQ(clear.out, "web:0: cleared\nweb:1: cleared\nweb:2: cleared\n");

  RunResult stop = d.ctl({"stop", "web:*"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "web:0: stopped\nweb:1: stopped\nweb:2: stopped\n");
  EXPECT_EQ(d.state("db:0"), "RUNNING");

  RunResult start = d.ctl({"start", "web:*"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, "web:0: started\nweb:1: started\nweb:2: started\n");

  pid_t before = d.worker_pid("web:1");
  RunResult restart = d.ctl({"restart", "web:*"});
  EXPECT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(restart.out, "web:0: started\nweb:1: started\nweb:2: started\n");
  EXPECT_NE(d.worker_pid("web:1"), before);

  RunResult rolling = d.ctl({"restart", "--rolling", "web:*"});
  EXPECT_EQ(rolling.exit_code, 0) << rolling.err;
  EXPECT_THAT(names_of(rolling.out), ElementsAre("web:0", "web:1", "web:2"));

  // A job of one worker: tail names that worker, as with JOB.
  ASSERT_TRUE(wait_until(
      [&] { return read_file(d.log_dir() + "/db-0.out.log").find("db up") != std::string::npos; }));
  RunResult tail = d.ctl({"tail", "db:*"});
  EXPECT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_THAT(tail.out, HasSubstr("db up"));
}

TEST(JobStarTargetTest, TheShellAndJsonRequestsTakeItToo) {
  Daemon d(kWebAndDb);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("web:2", "RUNNING"));

  // The shell does not expand '*': the line means what it says.
  RunResult shell = run({"/bin/sh", "-c",
                         "printf 'status web:*\\npid db:*\\n' | " + std::string(CORRALCTL_PATH) +
                             " -s " + d.socket()});
  EXPECT_EQ(shell.exit_code, 0) << shell.err;
  EXPECT_THAT(names_of(shell.out), ElementsAre("web:0", "web:1", "web:2", "db:0"));

  // A request corralctl did not normalize: corrald reads JOB:* itself.
  Json reply = d.request({{"cmd", "status"}, {"targets", {"web:*", "db:0"}}});
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump();
  std::vector<std::string> names;
  for (const auto& worker : reply["workers"]) names.push_back(worker["name"]);
  EXPECT_THAT(names, ElementsAre("db:0", "web:0", "web:1", "web:2"));

  Json tail_request = d.request({{"cmd", "pid"}, {"targets", {"db:*"}}});
  ASSERT_TRUE(tail_request.value("ok", false)) << tail_request.dump();
  EXPECT_EQ(tail_request["workers"].size(), 1u);
}

TEST(JobStarTargetTest, BadFormsAreClearErrors) {
  Daemon d(kWebAndDb);
  ASSERT_TRUE(d.start()) << d.daemon_log();

  RunResult star_x = d.ctl({"status", "web:*x"});
  EXPECT_EQ(star_x.exit_code, 2);
  EXPECT_THAT(star_x.err, HasSubstr("invalid target 'web:*x': after 'web:' comes a worker INDEX"));
  RunResult star_job = d.ctl({"stop", "*:1"});
  EXPECT_EQ(star_job.exit_code, 2);
  EXPECT_THAT(star_job.err, HasSubstr("invalid target '*:1': '*' is not a job name"));
  RunResult unknown = d.ctl({"stop", "nope:*"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no such job: nope"));

  Json reply = d.request({{"cmd", "stop"}, {"targets", {"web:*x"}}});
  EXPECT_FALSE(reply.value("ok", true));
  EXPECT_EQ(reply.value("error", ""),
            "invalid target 'web:*x': after 'web:' comes a worker INDEX (0, 1, ...) or * "
            "(expected JOB, JOB:INDEX, JOB:* or all)");
  EXPECT_EQ(d.state("web:0"), "RUNNING");
}

// ---- avail ----

TEST(AvailTest, ListsTheJobsOfTheFileAndOfCorrald) {
  Daemon d(R"(
jobs:
  web:
    command: [sleep, "1000"]
    workers: 2
    start: {settle: 0s}
  batch:
    command: [sleep, "1000"]
    workers: 3
    autostart: false
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult same = d.ctl({"avail"});
  EXPECT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(same.out,
            "batch  in use  manual  3 workers\n"
            "web    in use  auto    2 workers\n");

  // The file changes: batch goes, nightly comes, web grows. avail reads the
  // file as reread does and changes nothing.
  d.rewrite_config(R"(
jobs:
  web:
    command: [sleep, "1000"]
    workers: 4
    start: {settle: 0s}
  nightly:
    command: [sleep, "1000"]
    autostart: false
)");
  RunResult changed = d.ctl({"avail"});
  EXPECT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_EQ(changed.out,
            "batch    removed  manual  3 workers\n"
            "nightly  avail    manual  1 worker\n"
            "web      in use   auto    2 workers  (changed in the file: update applies it)\n");
  RunResult json = d.ctl({"--json", "avail"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json jobs = Json::parse(json.out);
  ASSERT_EQ(jobs.size(), 3u) << json.out;
  EXPECT_EQ(jobs[1], Json({{"name", "nightly"},
                           {"state", "avail"},
                           {"autostart", false},
                           {"workers", 1},
                           {"changed", false}}));
  EXPECT_EQ(d.request({{"cmd", "status"}, {"targets", {"batch"}}})["workers"].size(), 3u);

  ASSERT_EQ(d.ctl({"update"}).exit_code, 0);
  RunResult applied = d.ctl({"avail"});
  EXPECT_EQ(applied.out,
            "nightly  in use  manual  1 worker\n"
            "web      in use  auto    4 workers\n");

  // A file with errors: every error, exit 1, as reread.
  write_file(d.config(), read_file(d.config()) + "  broken: {command: [sleep], workers: lots}\n");
  RunResult broken = d.ctl({"avail"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_THAT(broken.err, HasSubstr("workers"));
}

// ---- maintail ----

// A line as corrald's ring keeps it: "2026-12-05 18:07:15.123 info ...".
const char* const kLogLine =
    R"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} [a-z]+ .*)";

TEST(MaintailTest, ShowsCorraldsOwnLastLinesWhereverItsLogGoes) {
  Daemon d(R"(
jobs:
  web:
    command: [sleep, "1000"]
    start: {settle: 0s}
)");
  // Under journald corrald's stderr carries priorities and no times; the
  // lines kept for maintail are the same either way.
  d.set_env({"JOURNAL_STREAM=8:12345"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return d.daemon_log().find("running:") != std::string::npos; }));
  EXPECT_THAT(d.daemon_log(), HasSubstr("<6>corrald"));

  RunResult last = d.ctl({"maintail"});
  EXPECT_EQ(last.exit_code, 0) << last.err;
  std::vector<std::string> lines = lines_of(last.out);
  EXPECT_GE(lines.size(), 2u) << last.out;
  EXPECT_LE(lines.size(), 10u) << last.out;
  EXPECT_THAT(last.out, HasSubstr("info corrald " + std::string(protocol::kVersion) + " running"));
  EXPECT_THAT(last.out, Not(HasSubstr("<6>")));
  for (const auto& line : lines) EXPECT_THAT(line, ::testing::MatchesRegex(kLogLine));

  RunResult one = d.ctl({"maintail", "-n", "1"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(lines_of(one.out).size(), 1u) << one.out;

  RunResult json = d.ctl({"--json", "maintail", "-n", "2"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  for (const auto& line : lines_of(json.out)) {
    Json chunk = Json::parse(line);
    EXPECT_TRUE(chunk.contains("data")) << line;
  }
}

TEST(MaintailTest, FollowPrintsNewLinesAsTheyCome) {
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  PipeChild follower({CORRALCTL_PATH, "-s", d.socket(), "maintail", "-f", "-n", "0"}, "lines", {},
                     true);
  // Nothing old; then what corrald logs from now on. SIGHUP (a reload) is
  // sent again until the follower, which may not be connected yet, shows it.
  bool seen = false;
  for (int i = 0; i < 20 && !seen; ++i) {
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    for (auto line = follower.line(1s); line && !seen; line = follower.line(200ms)) {
      EXPECT_THAT(*line, Not(HasSubstr(" running: ")));  // the start, before -f
      seen = line->find("received SIGHUP: reloading") != std::string::npos;
    }
  }
  EXPECT_TRUE(seen);
  ::kill(follower.pid(), SIGTERM);
  EXPECT_NE(follower.wait_exit(), -1);
}

// ---- fg ----

// talk writes "out N" on stdout and "err N" on stderr, N counting up, and
// says goodbye on both when it is stopped; web has two workers.
const std::string kTalk = R"(
jobs:
  talk:
    command: [sh, -c, 'trap "echo bye-out; echo bye-err >&2; exit 0" TERM; i=0; while :; do i=$((i+1)); echo "out $i"; echo "err $i" >&2; sleep 0.05; done']
    start: {settle: 0s}
    stop: {timeout: 5s}
  web:
    command: [sleep, "1000"]
    workers: 2
    start: {settle: 0s}
)";

// The numbers N of the lines "PREFIX N" of LINES, in order; a line of
// another shape fails the test.
std::vector<int> counted(const std::vector<std::string>& lines, const std::string& prefix) {
  std::vector<int> numbers;
  for (const auto& line : lines) {
    EXPECT_EQ(line.rfind(prefix + " ", 0), 0u) << "not a '" << prefix << " N' line: " << line;
    if (line.rfind(prefix + " ", 0) == 0) numbers.push_back(std::stoi(line.substr(prefix.size())));
  }
  return numbers;
}

// Whether NUMBERS count up by one, with no line lost or repeated.
bool consecutive(const std::vector<int>& numbers) {
  for (size_t i = 1; i < numbers.size(); ++i) {
    if (numbers[i] != numbers[i - 1] + 1) return false;
  }
  return !numbers.empty();
}

// `corralctl fg JOB:INDEX` with its stdout read line by line and its stderr
// gathered as it comes.
class Fg {
 public:
  Fg(Daemon& d, const std::vector<std::string>& args) : child_(argv(d, args), "lines", {}, true) {}
  PipeChild& child() { return child_; }
  // Gathers stderr; its complete lines so far.
  std::vector<std::string> err_lines() {
    err_ += child_.stderr_text();
    return lines_of(err_.substr(0, err_.rfind('\n') + 1));
  }
  const std::string& err() {
    err_ += child_.stderr_text();
    return err_;
  }

 private:
  static std::vector<std::string> argv(Daemon& d, const std::vector<std::string>& args) {
    std::vector<std::string> all = {CORRALCTL_PATH, "-s", d.socket(), "fg"};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  PipeChild child_;
  std::string err_;
};

TEST(FgTest, FollowsBothStreamsOnTheirOwnSideUntilTheWorkerStops) {
  Daemon d(kTalk);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("talk:0", "RUNNING"));
  // Some lines before fg starts: its first ones are the files' last lines.
  ASSERT_TRUE(wait_until([&] {
    return read_file(d.log_dir() + "/talk-0.out.log").find("out 15\n") != std::string::npos;
  }));
  pid_t pid = d.worker_pid("talk:0");

  Fg fg(d, {"-n", "5", "talk:0"});
  std::vector<std::string> out;
  while (out.size() < 30) {
    auto line = fg.child().line(10s);
    ASSERT_TRUE(line) << "fg printed no more stdout; stderr: " << fg.err();
    out.push_back(*line);
  }
  std::vector<int> outs = counted(out, "out");
  EXPECT_TRUE(consecutive(outs)) << ::testing::PrintToString(out);
  ASSERT_FALSE(outs.empty());
  EXPECT_GE(outs.front(), 11) << "more than the last 5 lines: " << out.front();
  EXPECT_LE(outs.front(), outs.back() - 29);

  // stderr: the line saying what is in front, then the worker's stderr.
  ASSERT_TRUE(wait_until([&] { return fg.err_lines().size() >= 20; })) << fg.err();
  std::vector<std::string> err = fg.err_lines();
  EXPECT_EQ(err.front(), "corralctl: talk:0 (pid " + std::to_string(pid) +
                             ") in the foreground; Ctrl-C leaves it running; typing is not sent "
                             "to it");
  std::vector<int> errs = counted({err.begin() + 1, err.end()}, "err");
  EXPECT_TRUE(consecutive(errs)) << fg.err();

  // The worker is stopped: what it wrote last, then how it ended, exit 1.
  RunResult stop = d.ctl({"stop", "talk:0"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  std::vector<std::string> rest;
  for (auto line = fg.child().line(10s); line; line = fg.child().line(10s)) rest.push_back(*line);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back(), "bye-out");
  rest.pop_back();
  std::vector<int> last = counted(rest, "out");
  last.insert(last.begin(), outs.back());
  EXPECT_TRUE(consecutive(last)) << ::testing::PrintToString(rest);
  EXPECT_EQ(fg.child().wait_exit(), 1);
  err = fg.err_lines();
  ASSERT_GE(err.size(), 2u);
  EXPECT_EQ(err.back(), "corralctl: talk:0 exited: exit status 0; now STOPPED");
  EXPECT_EQ(err[err.size() - 2], "bye-err");
  EXPECT_THAT(fg.err(), Not(HasSubstr("out ")));
}

TEST(FgTest, CtrlCLeavesTheWorkerRunningAndJsonTagsEachLine) {
  Daemon d(kTalk);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("talk:0", "RUNNING"));
  pid_t pid = d.worker_pid("talk:0");

  Fg fg(d, {"talk"});  // a job of one worker names it
  ASSERT_TRUE(fg.child().line(10s)) << fg.err();
  ASSERT_EQ(::kill(fg.child().pid(), SIGINT), 0);
  EXPECT_EQ(fg.child().wait_exit(), 0) << fg.err();
  EXPECT_EQ(d.state("talk:0"), "RUNNING");
  EXPECT_EQ(d.worker_pid("talk:0"), pid);

  Fg json(d, {"--json", "-n", "3", "talk:0"});
  auto accepted = json.child().line(10s);
  ASSERT_TRUE(accepted) << json.err();
  Json ack = Json::parse(*accepted);
  EXPECT_EQ(ack["name"], "talk:0");
  EXPECT_EQ(ack["pid"], pid);
  EXPECT_EQ(ack["stdout"], d.log_dir() + "/talk-0.out.log");
  EXPECT_EQ(ack["stderr"], d.log_dir() + "/talk-0.err.log");
  std::set<std::string> streams;
  while (streams.size() < 2) {
    auto line = json.child().line(10s);
    ASSERT_TRUE(line) << json.err();
    Json chunk = Json::parse(*line);
    std::string stream = chunk.value("stream", "");
    ASSERT_TRUE(stream == "stdout" || stream == "stderr") << *line;
    std::string data = chunk.value("data", "");
    EXPECT_TRUE(data.ends_with("\n")) << *line;
    EXPECT_EQ(data.rfind(stream == "stdout" ? "out " : "err ", 0), 0u) << *line;
    streams.insert(stream);
  }
  ASSERT_EQ(d.ctl({"stop", "talk:0"}).exit_code, 0);
  std::optional<Json> end;
  for (auto line = json.child().line(10s); line; line = json.child().line(10s)) {
    end = Json::parse(*line);
  }
  ASSERT_TRUE(end);
  EXPECT_EQ(*end, Json({{"end", true},
                        {"name", "talk:0"},
                        {"state", "STOPPED"},
                        {"pid", nullptr},
                        {"exit_description", "exit status 0"}}));
  EXPECT_EQ(json.child().wait_exit(), 1);
}

TEST(FgTest, RefusesAWorkerNotRunningAndTargetsThatAreNotOneWorker) {
  Daemon d(kTalk);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("web:1", "RUNNING"));
  ASSERT_EQ(d.ctl({"stop", "talk:0"}).exit_code, 0);

  RunResult stopped = d.ctl({"fg", "talk:0"});
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_EQ(stopped.err, "corralctl: fg: talk:0 is not running (STOPPED)\n");
  EXPECT_EQ(stopped.out, "");

  RunResult unknown = d.ctl({"fg", "nope:0"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "corralctl: no such job: nope\n");
  RunResult index = d.ctl({"fg", "web:7"});
  EXPECT_EQ(index.exit_code, 1);
  EXPECT_THAT(index.err, HasSubstr("no such worker: web:7"));
  RunResult pool = d.ctl({"fg", "web"});
  EXPECT_EQ(pool.exit_code, 1);
  EXPECT_EQ(pool.err, "corralctl: fg: web has 2 workers; name one as JOB:INDEX\n");
  for (const char* bad : {"all", "web:x", "*:0"}) {
    RunResult usage = d.ctl({"fg", bad});
    EXPECT_EQ(usage.exit_code, 2) << bad;
    EXPECT_THAT(usage.err, HasSubstr("usage: corralctl fg [-n N] JOB:INDEX")) << bad;
  }
  EXPECT_EQ(d.ctl({"fg"}).exit_code, 2);
  EXPECT_EQ(d.ctl({"fg", "web:0", "web:1"}).exit_code, 2);

  // corrald checks the request itself, whoever sends it.
  Json all = d.request({{"cmd", "fg"}, {"target", "all"}});
  EXPECT_FALSE(all.value("ok", true));
  EXPECT_THAT(all.value("error", ""), HasSubstr("fg needs \"target\": one worker"));
  Json lines = d.request({{"cmd", "fg"}, {"target", "web:0"}, {"lines", -1}});
  EXPECT_FALSE(lines.value("ok", true));
  EXPECT_EQ(d.state("web:0"), "RUNNING");
}

// ---- dead --clear, retry ID..., retry --wait ----

// An echo job whose workers fail the task "bad" (with FAIL_ON_BAD) or not.
std::string echo_job(bool fail_on_bad) {
  return "jobs:\n  echo:\n    command: " +
         worker_command(fail_on_bad ? "--handler, echo, --fail-on, bad" : "--handler, echo") +
         "\n    channel: pipe\n    pipe: {fds: extra, framing: length}\n";
}

// The ids in JOB's dead-letter list, oldest first.
std::vector<uint64_t> dead_ids(Daemon& d, const std::string& job) {
  std::vector<uint64_t> ids;
  Json reply = d.request({{"cmd", "dead"}, {"job", job}});
  for (const auto& letter : reply["dead"]) ids.push_back(letter["id"]);
  return ids;
}

TEST(DeadLetterHabitsTest, RetryByIdWithWaitAndClear) {
  Daemon d(echo_job(true));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("echo:0", "RUNNING"));
  std::vector<Json> submitted = d.submit("echo", {"bad", "bad", "bad", "good"});
  ASSERT_EQ(submitted.size(), 5u);
  std::vector<uint64_t> ids = dead_ids(d, "echo");
  ASSERT_EQ(ids.size(), 3u);

  // An id not in the list: an error naming it, and nothing requeued.
  RunResult unknown = d.ctl({"retry", "echo", std::to_string(ids[0]), "99999"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no dead letter has id 99999"));
  EXPECT_THAT(unknown.err, HasSubstr("nothing was requeued"));
  EXPECT_EQ(dead_ids(d, "echo"), ids);

  // Retried and watched: still failing, so exit 1 as submit --wait.
  RunResult again = d.ctl({"retry", "echo", std::to_string(ids[0]), "--wait"});
  EXPECT_EQ(again.exit_code, 1) << again.err;
  EXPECT_EQ(again.err, "corralctl: 1 of 1 task failed or dead\n");
  std::vector<std::string> lines = lines_of(again.out);
  ASSERT_EQ(lines.size(), 1u) << again.out;
  Json result = Json::parse(lines[0]);
  EXPECT_EQ(result["seq"], 0);
  EXPECT_EQ(result["status"], "failed");
  EXPECT_EQ(result["attempts"], 1);
  std::vector<uint64_t> now = dead_ids(d, "echo");
  ASSERT_EQ(now.size(), 3u);
  EXPECT_EQ(now[0], ids[1]);
  EXPECT_EQ(now[1], ids[2]);
  EXPECT_EQ(now[2], result["id"].get<uint64_t>());  // the new task, failed again

  // The workers no longer fail "bad" (an update keeps the dead letters): the
  // named letters come back ok, numbered in the list's order.
  d.rewrite_config(echo_job(false));
  ASSERT_EQ(d.ctl({"update"}).exit_code, 0);
  ASSERT_TRUE(d.wait_state("echo:0", "RUNNING"));
  RunResult fixed =
      d.ctl({"retry", "echo", std::to_string(now[2]), std::to_string(now[0]), "--wait"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.err;
  EXPECT_EQ(fixed.err, "");
  std::vector<std::string> ok_lines = lines_of(fixed.out);
  ASSERT_EQ(ok_lines.size(), 2u) << fixed.out;
  std::set<uint64_t> seqs;
  for (const auto& line : ok_lines) {
    Json ok = Json::parse(line);
    EXPECT_EQ(ok["status"], "ok") << line;
    EXPECT_EQ(ok["result"], "bad") << line;
    seqs.insert(ok["seq"].get<uint64_t>());
    // The fields of a submit --wait line, in its order.
    EXPECT_EQ(line.rfind("{\"id\":", 0), 0u) << line;
  }
  EXPECT_EQ(seqs, (std::set<uint64_t>{0, 1}));
  EXPECT_EQ(dead_ids(d, "echo"), std::vector<uint64_t>{now[1]});

  RunResult clear = d.ctl({"dead", "echo", "--clear"});
  EXPECT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_EQ(clear.out, "echo: cleared 1 dead letter\n");
  EXPECT_THAT(d.daemon_log(), HasSubstr("job echo: dead-letter list cleared (1 letters)"));
  EXPECT_EQ(d.ctl({"dead", "echo"}).out, "echo: no dead letters\n");
  RunResult nothing = d.ctl({"retry", "echo", "--wait"});
  EXPECT_EQ(nothing.exit_code, 0) << nothing.err;
  EXPECT_EQ(nothing.out, "");
  RunResult json = d.ctl({"--json", "dead", "echo", "--clear"});
  EXPECT_EQ(Json::parse(json.out), Json({{"cleared", 0}}));
}

}  // namespace
}  // namespace corral::testing

// corrald when a resource runs out: file descriptors (RLIMIT_NOFILE),
// processes (RLIMIT_NPROC), room for a job's segment (RLIMIT_FSIZE,
// RLIMIT_AS). Each case: the failure is reported for the worker or job it
// hits, with the reason; the other jobs and the control socket go on; and
// when the limit is lifted the job recovers by itself. Limits are set with
// util-linux's prlimit (and setpriv for another uid); a case is skipped with
// the reason when the machine cannot run it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/text.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// The workers of JOB as `status --json` shows them.
std::vector<Json> workers_of(Daemon& d, const std::string& job) {
  Json reply = d.request({{"cmd", "status"}, {"targets", {job}}});
  if (!reply.value("ok", false)) return {};
  return reply["workers"].get<std::vector<Json>>();
}

std::string text_of(const Json& value) { return value.is_string() ? value.get<std::string>() : ""; }

TEST(ExhaustionTest, OutOfFdsSpawnsFailWithTheReasonAndTheSocketKeepsAnswering) {
  std::string prlimit = find_tool("prlimit");
  if (prlimit.empty()) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  // 64 fds hold a few channel workers (each takes a pidfd, output pipes,
  // eventfds and /proc files in the daemon), not twelve. Jobs start in the
  // order of their names: "calm" has its fds before "many" takes the rest.
  Daemon d(
      "jobs:\n  calm:\n    command: [sleep, '1000']\n    start: {settle: 0}\n"
      "  many:\n    command: " +
      worker_command("--handler, echo") +
      "\n    workers: 12\n    channel: shm\n"
      "    restart: {max_restarts: 100000, backoff: {initial: 50ms, max: 200ms}}\n");
  d.set_wrapper({prlimit, "--nofile=64:64", "--"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("calm:0", "RUNNING"));
  const pid_t plain = d.worker_pid("calm:0");

  // Some workers run, the others fail to spawn and back off, with the reason.
  ASSERT_TRUE(wait_until([&] {
    int running = 0, failing = 0;
    for (const Json& w : workers_of(d, "many")) {
      if (w["state"] == "RUNNING") ++running;
      if (w["state"] == "BACKOFF" &&
          text_of(w["spawn_error"]).find("Too many open files") != std::string::npos) {
        ++failing;
      }
    }
    return running > 0 && failing > 0;
  })) << d.ctl({"status"}).out
      << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr("spawn error"));
  // The workers hold the daemon's fds; the control socket still answers.
  RunResult status = d.ctl({"status", "many"});
  EXPECT_THAT(status.out, HasSubstr("Too many open files")) << status.out << status.err;

  // Idle clients take the reserve, until a client is told why it is not
  // served: at once, and without the daemon spinning on the connection it
  // cannot take.
  std::vector<int> idle;
  std::string refusal;
  for (int i = 0; i < 200 && refusal.empty(); ++i) {
    int fd = connect_socket(d.socket());
    ASSERT_GE(fd, 0);
    std::string reply = exchange_line(fd, "{\"cmd\": \"version\"}", 10s);
    ASSERT_FALSE(reply.empty()) << "no answer from a daemon out of fds\n" << d.daemon_log();
    if (reply.find("\"ok\":true") != std::string::npos) {
      idle.push_back(fd);
    } else {
      refusal = reply;
      close(fd);
    }
  }
  EXPECT_THAT(refusal, HasSubstr("corrald is out of file descriptors"));
  RunResult refused = d.ctl({"status"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_THAT(refused.err, HasSubstr("out of file descriptors"));
  std::this_thread::sleep_for(500ms);
  // A shortage is logged when it begins, not at each failed accept(): a
  // loop spinning on the queued connection would log thousands of lines.
  EXPECT_LE(count_of(d.daemon_log(), "control: accept:"), 20u);
  for (int fd : idle) close(fd);
  EXPECT_TRUE(wait_until([&] { return d.ctl({"version"}).exit_code == 0; }));
  EXPECT_EQ(d.worker_pid("calm:0"), plain);

  // Fewer workers, free fds: the ones that backed off start.
  std::vector<std::string> stop = {"stop"};
  std::set<std::string> backing_off;
  for (const Json& w : workers_of(d, "many")) {
    if (w["state"] == "RUNNING") stop.push_back(w["name"]);
    if (w["state"] == "BACKOFF") backing_off.insert(w["name"]);
  }
  RunResult stopped = d.ctl(stop);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.out << stopped.err;
  EXPECT_TRUE(wait_until([&] {
    for (const Json& w : workers_of(d, "many")) {
      if (backing_off.contains(w["name"]) && w["state"] == "RUNNING") return true;
    }
    return false;
  })) << d.ctl({"status"}).out;
  EXPECT_EQ(d.worker_pid("calm:0"), plain);
}

// A uid no account and no process uses, for a daemon of its own.
std::optional<uid_t> unused_uid() {
  for (uid_t uid = 47000 + static_cast<uid_t>(getpid() % 1000); uid < 49000; uid += 1000) {
    if (getpwuid(uid) != nullptr) continue;
    bool in_use = false;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::string status = read_file(entry.path().string() + "/status");
      if (status.find("\nUid:\t" + std::to_string(uid) + "\t") != std::string::npos) {
        in_use = true;
        break;
      }
    }
    if (!in_use) return uid;
  }
  return std::nullopt;
}

// The tasks (threads) of PID: each counts against RLIMIT_NPROC.
int tasks_of(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

TEST(ExhaustionTest, OutOfProcessesSpawnsBackOffAndRecoverWhenTheLimitIsRaised) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root: corrald runs as a uid of its own under RLIMIT_NPROC";
  std::string prlimit = find_tool("prlimit"), setpriv = find_tool("setpriv");
  if (prlimit.empty() || setpriv.empty()) GTEST_SKIP() << "prlimit or setpriv (util-linux) missing";
  std::optional<uid_t> uid = unused_uid();
  if (!uid) GTEST_SKIP() << "no unused uid found";
  const std::string id = std::to_string(*uid);
  Daemon d(
      "jobs:\n  plain:\n    command: [sleep, '1000']\n    workers: 4\n"
      "    start: {settle: 0}\n"
      "    restart: {max_restarts: 100000, backoff: {initial: 50ms, max: 200ms}}\n");
  ASSERT_EQ(chown(d.dir().path().c_str(), *uid, *uid), 0);
  // RLIMIT_NPROC counts every process (every thread) of the uid: corrald, its
  // spawn server (corral-spawn) and the workers.
  // The hard limit stays as it is, so that the soft one can be raised
  // without CAP_SYS_RESOURCE.
  const std::vector<std::string> as_uid = {setpriv, "--reuid=" + id, "--regid=" + id,
                                           "--clear-groups", "--"};
  rlimit nproc{};
  getrlimit(RLIMIT_NPROC, &nproc);
  const std::string hard =
      nproc.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(nproc.rlim_max);
  std::vector<std::string> wrapper = {prlimit, "--nproc=4:" + hard, "--"};
  wrapper.insert(wrapper.end(), as_uid.begin(), as_uid.end());
  d.set_wrapper(wrapper);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto count = [&](const std::string& state, const std::string& error) {
    int n = 0;
    for (const Json& w : workers_of(d, "plain")) {
      if (w["state"] == state && text_of(w["spawn_error"]).find(error) != std::string::npos) ++n;
    }
    return n;
  };
  // Two workers fit: corrald and corral-spawn take the other two tasks, or
  // three with a sanitizer's runtime thread in corrald (TSan's).
  auto daemon_tasks = [&] {
    int n = tasks_of(d.pid());
    for (pid_t server : children_named(d.pid(), "corral-spawn")) n += tasks_of(server);
    return n;
  };
  ASSERT_TRUE(wait_until([&] {
    const int fit = 4 - daemon_tasks();
    return fit >= 1 && count("RUNNING", "") == fit &&
           count("BACKOFF", "Resource temporarily unavailable") == 4 - fit;
  })) << d.ctl({"status"}).out
      << "tasks of corrald and corral-spawn: " << daemon_tasks() << "\n"
      << d.daemon_log();
  EXPECT_EQ(d.ctl({"version"}).exit_code, 0);

  // Raised by a process of the same uid, which may do so without privileges.
  std::vector<std::string> raise = as_uid;
  raise.insert(raise.end(), {prlimit, "--pid", std::to_string(d.pid()), "--nproc=" + hard});
  RunResult raised = run(raise);
  ASSERT_EQ(raised.exit_code, 0) << raised.err;
  EXPECT_TRUE(wait_until([&] { return count("RUNNING", "") == 4; })) << d.ctl({"status"}).out;
}

TEST(ExhaustionTest, AJobWhoseSegmentCannotBeMadeGetsTheReasonWhileOthersRun) {
#if CORRAL_SANITIZED
  GTEST_SKIP() << "a sanitizer's shadow memory does not fit under the RLIMIT_AS this test sets";
#endif
  std::string prlimit = find_tool("prlimit");
  if (prlimit.empty()) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  // corral's segments are memfds, not files in /dev/shm: a small tmpfs does
  // not bound them. What does is what bounds any file and any mapping of the
  // daemon: RLIMIT_FSIZE (ftruncate fails with EFBIG) and RLIMIT_AS (mmap
  // fails with ENOMEM). `big` needs 2 GiB (64 slots, two 16 MiB rings
  // each); `small` needs 32 MiB.
  struct Case {
    std::string limit, raise, error;
  };
  // Soft limits: the hard ones stay unlimited, so that they can be raised
  // without CAP_SYS_RESOURCE.
  for (const Case& c :
       {Case{"--fsize=1073741824:unlimited", "--fsize=unlimited", "ftruncate: File too large"},
        Case{"--as=1073741824:unlimited", "--as=unlimited", "mmap: Cannot allocate memory"}}) {
    SCOPED_TRACE(c.limit);
    Daemon d("jobs:\n  big:\n    command: " + worker_command("--handler, echo") +
             "\n    channel: shm\n    queue: {max_task_bytes: 4MiB}\n"
             "    restart: {max_restarts: 100000, backoff: {initial: 50ms, max: 200ms}}\n"
             "  small:\n    command: " +
             worker_command("--handler, sum") +
             "\n    channel: shm\n"
             "  plain:\n    command: [sleep, '1000']\n    start: {settle: 0}\n");
    d.set_wrapper({prlimit, c.limit, "--"});
    ASSERT_TRUE(d.start()) << d.daemon_log();
    ASSERT_TRUE(wait_until([&] {
      return text_of(d.worker("big:0")["spawn_error"]).find(c.error) != std::string::npos;
    })) << d.worker("big:0").dump()
        << d.daemon_log();
    EXPECT_THAT(text_of(d.worker("big:0")["spawn_error"]), HasSubstr("segment of job \"big\""));
    EXPECT_THAT(d.daemon_log(), HasSubstr(c.error));
    EXPECT_TRUE(d.wait_state("small:0", "RUNNING")) << d.daemon_log();
    EXPECT_TRUE(d.wait_state("plain:0", "RUNNING"));
    RunResult sums = d.ctl({"submit", "small", "--data", "10", "--wait"});
    EXPECT_THAT(sums.out, HasSubstr("\"result\":\"45\""));
    RunResult refused = d.ctl({"submit", "big", "--data", "x", "--wait"});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_THAT(refused.err, HasSubstr(c.error));

    // Lifted: the next restart of `big` makes its segment.
    RunResult raised = run({prlimit, "--pid", std::to_string(d.pid()), c.raise});
    ASSERT_EQ(raised.exit_code, 0) << raised.err;
    EXPECT_TRUE(d.wait_state("big:0", "RUNNING")) << d.worker("big:0").dump();
    RunResult echo = d.ctl({"submit", "big", "--data", "hello", "--wait"});
    EXPECT_THAT(echo.out, HasSubstr("\"result\":\"hello\""));
  }
}

}  // namespace
}  // namespace corral::testing

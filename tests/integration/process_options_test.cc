// The job keys that shape a worker's process as supervisord's program
// options do, with a real corrald: umask, the job's own log files
// (log.stdout/log.stderr: a path, stdout, off, inherit) and the stop order
// of `priority`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

mode_t current_umask() {
  mode_t mask = ::umask(022);
  ::umask(mask);
  return mask;
}

TEST(ProcessOptionsTest, AWorkerRunsWithItsJobsUmaskOrCorraldsOwn) {
  Daemon d(R"(
jobs:
  masked:
    command: [sh, -c, 'umask; exec sleep 1000']
    umask: "027"
    start: {settle: 0}
  plain:
    command: [sh, -c, 'umask; exec sleep 1000']
    start: {settle: 0}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return !read_file(d.log_dir() + "/plain-0.out.log").empty(); }));
  ASSERT_TRUE(wait_until([&] { return !read_file(d.log_dir() + "/masked-0.out.log").empty(); }));
  EXPECT_EQ(read_file(d.log_dir() + "/masked-0.out.log"), "0027\n");
  char own[8];
  snprintf(own, sizeof own, "%04o\n", current_umask());
  EXPECT_EQ(read_file(d.log_dir() + "/plain-0.out.log"), own);
}

TEST(ProcessOptionsTest, AJobsOwnLogFilesWithStderrIntoStdout) {
  TempDir work;
  const std::string app = work.file("app");
  Daemon d(
      "jobs:\n  web:\n    command: [sh, -c, 'echo \"out $CORRAL_WORKER\"; echo \"err "
      "$CORRAL_WORKER\" >&2; echo \"out again\"; exec sleep 1000']\n"
      "    workers: 2\n    start: {settle: 0}\n    log:\n      stdout: " +
      app + "/{job}-{index:02}.log\n      stderr: stdout\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string log1 = app + "/web-01.log";
  ASSERT_TRUE(wait_until([&] { return read_file(log1).find("out again") != std::string::npos; }))
      << d.daemon_log();
  EXPECT_EQ(read_file(log1), "out 1\nerr 1\nout again\n");  // one stream, in the order written
  ASSERT_TRUE(wait_until(
      [&] { return read_file(app + "/web-00.log").find("out again") != std::string::npos; }));
  struct stat st {};
  ASSERT_EQ(stat(app.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);  // made as daemon.log_dir is
  EXPECT_FALSE(path_exists(d.log_dir() + "/web-1.out.log"));
  EXPECT_FALSE(path_exists(d.log_dir() + "/web-1.err.log"));

  RunResult tail = d.ctl({"tail", "web:1"});
  EXPECT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_EQ(tail.out, "out 1\nerr 1\nout again\n");
  RunResult err = d.ctl({"tail", "--stderr", "web:1"});
  EXPECT_EQ(err.out, "out 1\nerr 1\nout again\n");
  RunResult clear = d.ctl({"clear", "web:1"});
  EXPECT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_EQ(read_file(log1), "");
  EXPECT_EQ(read_file(app + "/web-00.log"), "out 0\nerr 0\nout again\n");
}

TEST(ProcessOptionsTest, OutputOffIsDroppedAndInheritGoesToCorraldsOwn) {
  Daemon d(R"(
jobs:
  quiet:
    command: [sh, -c, 'echo "dropped line"; echo "inherited line" >&2; exec sleep 1000']
    start: {settle: 0}
    log: {stdout: off, stderr: inherit}
)");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] {
    return d.daemon_log().find("inherited line") != std::string::npos;
  })) << d.daemon_log();
  EXPECT_FALSE(path_exists(d.log_dir() + "/quiet-0.out.log"));
  EXPECT_FALSE(path_exists(d.log_dir() + "/quiet-0.err.log"));
  EXPECT_THAT(d.daemon_log(), ::testing::Not(HasSubstr("dropped line")));
  RunResult tail = d.ctl({"tail", "quiet:0"});
  EXPECT_NE(tail.exit_code, 0);
  EXPECT_THAT(tail.err, HasSubstr("quiet:0's stdout: not kept (log.stdout: off)"));
  RunResult err = d.ctl({"tail", "--stderr", "quiet:0"});
  EXPECT_THAT(err.err, HasSubstr("not captured: it goes to corrald's own stderr"));
  RunResult fg = d.ctl({"fg", "quiet:0"});
  EXPECT_EQ(fg.exit_code, 1);
  EXPECT_THAT(fg.err, HasSubstr("fg: quiet:0 has no output corrald keeps (stdout: not kept "
                                "(log.stdout: off); stderr: not captured"));
}

TEST(ProcessOptionsTest, ALogDirectoryThatIsNotPrivateCostsOnlyItsJob) {
  TempDir work;
  const std::string open_dir = work.file("open");
  ASSERT_EQ(mkdir(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  Daemon d(
      "jobs:\n  exposed:\n    command: [sleep, '1000']\n    start: {settle: 0}\n"
      "    restart: {max_restarts: 1, backoff: {initial: 10ms}}\n"
      "    log: {stdout: " +
      open_dir +
      "/out.log}\n"
      "  fine:\n    command: [sleep, '1000']\n    start: {settle: 0}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("fine:0", "RUNNING"));
  ASSERT_TRUE(d.wait_state("exposed:0", "FATAL")) << d.daemon_log();
  EXPECT_THAT(d.worker("exposed:0").dump(),
              HasSubstr("job exposed: log.stdout's directory " + open_dir + " is not private"));
  EXPECT_FALSE(path_exists(open_dir + "/out.log"));
}

TEST(ProcessOptionsTest, HigherPriorityStopsFirstAndTheNextWaitsForIt) {
  TempDir work;
  const std::string events = work.file("events");
  auto job = [&](const std::string& name, int priority) {
    return "  " + name + ":\n    command: [sh, -c, 'trap \"echo " + name + " term >> " + events +
           "; sleep 0.3; echo " + name + " gone >> " + events + "; exit 0\" TERM; : > " + events +
           "." + name +
           "; while :; do sleep 0.05; done']\n    priority: " + std::to_string(priority) +
           "\n    start: {settle: 0}\n";
  };
  Daemon d("jobs:\n" + job("db", 10) + job("cache", 500) + job("app", 999));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // RUNNING comes at the exec (settle 0); each shell says when its trap is set.
  for (const char* name : {"db", "cache", "app"}) {
    ASSERT_TRUE(wait_until([&] { return path_exists(events + "." + name); })) << name;
  }
  EXPECT_EQ(d.stop(), 0) << d.daemon_log();
  EXPECT_EQ(read_file(events), "app term\napp gone\ncache term\ncache gone\ndb term\ndb gone\n");
}

}  // namespace
}  // namespace corral::testing

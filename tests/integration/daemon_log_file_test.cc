// corrald --log-file: the daemon's own log in a file besides stderr, followed
// across a rotation on SIGUSR1, and refused with a clear error (exit 1, before
// anything starts) when the name is a link.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(DaemonLogFileTest, TheLogGoesToTheFileAndFollowsARotationOnSigusr1) {
  Daemon d("jobs:\n  ticker:\n    command: [sleep, \"600\"]\n");
  // Below a directory that does not exist yet: corrald makes it.
  const std::string log = d.dir().file("var/log/corrald.log");
  // corrald's own arguments after the harness's `-c CONFIG`.
  d.set_wrapper({"/bin/sh", "-c", "exec \"$@\" --log-file " + log, "sh"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("ticker:0", "RUNNING"));
  // The same lines as stderr, each with its date and time.
  ASSERT_TRUE(wait_until([&] { return read_file(log).find(" running: ") != std::string::npos; }));
  EXPECT_THAT(read_file(log),
              ContainsRegex("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ info corrald [0-9.]+ running: "));
  EXPECT_THAT(d.daemon_log(), HasSubstr(" running: "));
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(::kill(d.pid(), SIGUSR1), 0);
  ASSERT_TRUE(wait_until([&] { return path_exists(log); })) << d.daemon_log();
  EXPECT_EQ(d.stop(), 0);
  const std::string rotated = read_file(log + ".1");
  const std::string fresh = read_file(log);
  EXPECT_THAT(rotated, HasSubstr("received SIGUSR1: reopening log files"));
  EXPECT_THAT(rotated, Not(HasSubstr("corrald stopped")));
  EXPECT_THAT(fresh, HasSubstr("received SIGTERM"));
  EXPECT_THAT(fresh, HasSubstr("corrald stopped"));
  EXPECT_THAT(fresh, Not(HasSubstr(" running: ")));
}

TEST(DaemonLogFileTest, ALinkAtTheNameIsRefusedBeforeAnythingStarts) {
  TempDir dir;
  write_file(dir.file("corral.yaml"), "daemon:\n  socket: " + dir.file("corral.sock") +
                                          "\n  log_dir: " + dir.file("logs") +
                                          "\n  metrics: {listen: off}\n"
                                          "jobs:\n  ticker:\n    command: [sleep, \"600\"]\n");
  write_file(dir.file("precious"), "keep\n");
  ASSERT_EQ(::symlink(dir.file("precious").c_str(), dir.file("corrald.log").c_str()), 0);
  RunResult run_result =
      run({CORRALD_PATH, "-c", dir.file("corral.yaml"), "--log-file", dir.file("corrald.log")});
  EXPECT_EQ(run_result.exit_code, 1);
  EXPECT_THAT(run_result.err,
              HasSubstr("--log-file " + dir.file("corrald.log") + " is a symbolic link: refused"));
  EXPECT_EQ(read_file(dir.file("precious")), "keep\n");
  EXPECT_FALSE(path_exists(dir.file("corral.sock")));
  EXPECT_FALSE(path_exists(dir.file("logs")));
}

}  // namespace
}  // namespace corral::testing

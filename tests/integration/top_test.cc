// corralctl top in a real terminal (tmux): the screen shows the jobs and
// workers, and q leaves the terminal as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A tmux server of its own in a temp dir, killed at the end.
class Tmux {
 public:
  explicit Tmux(const TempDir& dir) : socket_(dir.file("tmux.sock")) {}
  ~Tmux() { run({"/usr/bin/tmux", "-S", socket_, "kill-server"}); }
  RunResult operator()(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-S", socket_, "-f", "/dev/null"});
    return run(args);
  }
  std::string screen() { return (*this)({"capture-pane", "-p", "-t", "top"}).out; }

 private:
  std::string socket_;
};

TEST(TopTest, ShowsTheJobsAndQLeavesACleanTerminal) {
  Daemon d("jobs:\n  sums:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
               ", --handler, sum]\n    channel: shm\n    workers: 2\n"
               "  idle:\n    command: [sleep, '1000']\n",
           "  metrics: {listen: off, interval: 100ms}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Tmux tmux(d.dir());
  // After top: its exit code and whether the terminal is back in cooked,
  // echoing mode.
  std::string script = std::string(CORRALCTL_PATH) + " -s " + d.socket() +
                       " top --interval 200ms; echo \"top exited $?\"; "
                       "stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo;"
                       " echo 'terminal checked'; sleep 60";
  ASSERT_EQ(
      tmux({"new-session", "-d", "-s", "top", "-x", "150", "-y", "40", "/bin/sh", "-c", script})
          .exit_code,
      0);
  // Until both workers of sums run on a refreshed screen (a loaded machine
  // may show the second one not started yet; RUN counts workers with a
  // process, STARTING ones too).
  ASSERT_TRUE(wait_until([&] { return tmux.screen().find("sums  2/2") != std::string::npos; }))
      << tmux.screen();
  std::string screen = tmux.screen();
  EXPECT_THAT(screen, HasSubstr("JOB"));
  EXPECT_THAT(screen, HasSubstr("idle"));
  EXPECT_THAT(screen, HasSubstr("sums:1"));
  EXPECT_THAT(screen, HasSubstr("q: quit"));

  ASSERT_EQ(tmux({"send-keys", "-t", "top", "q"}).exit_code, 0);
  // The last line the script prints after top, so stty's lines are there too.
  ASSERT_TRUE(wait_until([&] {
    return tmux.screen().find("terminal checked") != std::string::npos;
  })) << tmux.screen();
  screen = tmux.screen();
  EXPECT_THAT(screen, HasSubstr("top exited 0"));
  EXPECT_THAT(screen, HasSubstr("\nicanon\n"));
  EXPECT_THAT(screen, HasSubstr("\necho\n"));
  EXPECT_THAT(screen, Not(HasSubstr("WORKER")));  // the alternate screen is gone
}

TEST(TopTest, CtrlCAlsoRestoresTheTerminal) {
  Daemon d("jobs:\n  idle:\n    command: [sleep, '1000']\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Tmux tmux(d.dir());
  // The shell catches SIGINT (as an interactive one does) and goes on after top.
  std::string script = "trap true INT; " + std::string(CORRALCTL_PATH) + " -s " + d.socket() +
                       " top; echo \"top exited $?\"; "
                       "stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon;"
                       " echo 'terminal checked'; sleep 60";
  ASSERT_EQ(
      tmux({"new-session", "-d", "-s", "top", "-x", "120", "-y", "30", "/bin/sh", "-c", script})
          .exit_code,
      0);
  ASSERT_TRUE(wait_until([&] { return tmux.screen().find("idle:0") != std::string::npos; }))
      << tmux.screen();
  ASSERT_EQ(tmux({"send-keys", "-t", "top", "C-c"}).exit_code, 0);
  // The last line the script prints after top, so stty's lines are there too.
  ASSERT_TRUE(wait_until([&] {
    return tmux.screen().find("terminal checked") != std::string::npos;
  })) << tmux.screen();
  EXPECT_THAT(tmux.screen(), HasSubstr("\nicanon\n"));
}

TEST(TopTest, WithoutATerminalItPrintsOneScreen) {
  Daemon d("jobs:\n  idle:\n    command: [sleep, '1000']\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult r = d.ctl({"top"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("idle:0"));
  EXPECT_THAT(r.out, Not(HasSubstr("\x1b[")));
}

}  // namespace
}  // namespace corral::testing

// A worker shares nothing of root's session, terminal or environment: it
// starts in a session of its own without a controlling terminal, so it cannot
// type into the terminal corrald was started from (TIOCSTI), and a worker of
// another user starts from that user's login environment, not corrald's.
#include <errno.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "base/unique_fd.h"
#include "tests/integration/harness.h"

extern char** environ;

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Fields of /proc/PID/stat (proc(5)): the process group, the session and the
// controlling terminal (0: none).
struct ProcessIds {
  pid_t pgrp = -1;
  pid_t session = -1;
  int tty_nr = -1;
};
std::optional<ProcessIds> ids_of(pid_t pid) {
  const std::vector<std::string> fields = stat_fields(pid);  // from field 3, the state
  if (fields.size() < 5) return std::nullopt;
  return ProcessIds{static_cast<pid_t>(std::stol(fields[2])),
                    static_cast<pid_t>(std::stol(fields[3])), std::stoi(fields[4])};
}

// TEXT as a YAML block scalar indented by INDENT spaces.
std::string indented(const std::string& text, int indent) {
  std::string out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    out += std::string(static_cast<size_t>(indent), ' ') + line + "\n";
  }
  return out;
}

// A python3 that any user may run (not one under root's home); empty: none.
std::string python_for_any_user() {
  for (const char* path : {"/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// What the worker does: type a command into its controlling terminal, then
// say what happened, fork a child into its process group and say who it
// is, then say each SIGUSR1 it gets (blocked and waited for after the fork,
// so that the child keeps the default action, death, and the probe never
// writes from a signal handler).
constexpr const char* kTerminalProbe = R"(import errno, fcntl, os, signal, sys, termios
def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
try:
    tty = os.open("/dev/tty", os.O_RDWR)
    say("open /dev/tty: ok")
    try:
        for c in b"id # typed by a worker\n":
            fcntl.ioctl(tty, termios.TIOCSTI, bytes([c]))
        say("TIOCSTI: ok")
    except OSError as e:
        say("TIOCSTI: " + errno.errorcode[e.errno])
except OSError as e:
    say("open /dev/tty: " + errno.errorcode[e.errno])
child = os.fork()
if child == 0:
    os.execvp("sleep", ["sleep", "1000"])
# SIGUSR1 is waited for, not handled: a handler could run inside say(),
# whose write is not reentrant.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
say("child=%d" % child)
while True:
    signal.sigwait({signal.SIGUSR1})
    say("got SIGUSR1")
)";

TEST(WorkerIsolationTest, AWorkerCannotReachTheTerminalOfCorraldsSession) {
  const std::string python = python_for_any_user();
  if (python.empty()) GTEST_SKIP() << "needs python3 in /usr/local/bin, /usr/bin or /bin";
  const bool root = geteuid() == 0;

  // The terminal corrald runs on, as if started from a shell on it. Raw, so
  // that whatever reaches its input queue counts, line or not.
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_GE(master.get(), 0) << strerror(errno);
  ASSERT_EQ(grantpt(master.get()), 0) << strerror(errno);
  ASSERT_EQ(unlockpt(master.get()), 0) << strerror(errno);
  char name[128];
  ASSERT_EQ(ptsname_r(master.get(), name, sizeof name), 0);
  UniqueFd terminal(open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_GE(terminal.get(), 0) << name << ": " << strerror(errno);
  termios mode{};
  ASSERT_EQ(tcgetattr(terminal.get(), &mode), 0);
  cfmakeraw(&mode);
  ASSERT_EQ(tcsetattr(terminal.get(), TCSANOW, &mode), 0);

  std::string jobs = "jobs:\n  probe:\n    command:\n      - " + python +
                     "\n      - -c\n      - |\n" + indented(kTerminalProbe, 8) +
                     "    start: {settle: 0}\n    stop: {timeout: 5s}\n";
  if (root) jobs += "    user: nobody\n";
  Daemon d(jobs);
  d.set_terminal(name);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // The setup holds: corrald leads a session whose terminal is this one.
  auto daemon_ids = ids_of(d.pid());
  ASSERT_TRUE(daemon_ids);
  ASSERT_EQ(daemon_ids->session, d.pid());
  ASSERT_NE(daemon_ids->tty_nr, 0);

  ASSERT_TRUE(d.wait_state("probe:0", "RUNNING"));
  const std::string log = d.log_dir() + "/probe-0.out.log";
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("child=") != std::string::npos; }))
      << read_file(log) << read_file(d.log_dir() + "/probe-0.err.log");
  const std::string said = read_file(log);
  EXPECT_THAT(said, HasSubstr("open /dev/tty: ENXIO"));
  EXPECT_THAT(said, Not(HasSubstr("TIOCSTI: ok")));

  // Nothing reached the terminal's input queue.
  int queued = -1;
  ASSERT_EQ(ioctl(terminal.get(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 0);
  char typed[64];
  ssize_t n = read(terminal.get(), typed, sizeof typed);
  EXPECT_TRUE(n < 0 && errno == EAGAIN)
      << "the terminal got: " << std::string(typed, static_cast<size_t>(std::max<ssize_t>(n, 0)));

  // The worker leads a session and a process group of its own, without a
  // terminal; its child is in its group.
  const pid_t worker = d.worker_pid("probe:0");
  ASSERT_EQ(said.find("child="), said.rfind("child="))
      << "the probe ran more than once:\n"
      << said << read_file(d.log_dir() + "/probe-0.err.log") << d.daemon_log();
  auto worker_ids = ids_of(worker);
  ASSERT_TRUE(worker_ids);
  EXPECT_EQ(worker_ids->session, worker);
  EXPECT_EQ(worker_ids->pgrp, worker);
  EXPECT_EQ(worker_ids->tty_nr, 0);
  const pid_t child = std::stoi(said.substr(said.find("child=") + 6));
  auto child_ids = ids_of(child);
  ASSERT_TRUE(child_ids);
  EXPECT_EQ(child_ids->pgrp, worker);

  // `corralctl signal` reaches the worker (the worker alone, as documented:
  // its child, a sleep, would die of SIGUSR1).
  RunResult signalled = d.ctl({"signal", "USR1", "probe:0"});
  EXPECT_EQ(signalled.exit_code, 0) << signalled.out << signalled.err;
  // The whole story on a failure: the probe's output, its errors and
  // corrald's log.
  auto story = [&] {
    return "probe's stdout:\n" + read_file(log) + "probe's stderr:\n" +
           read_file(d.log_dir() + "/probe-0.err.log") + "corrald's log:\n" + d.daemon_log();
  };
  EXPECT_TRUE(wait_until([&] { return read_file(log).find("got SIGUSR1") != std::string::npos; }))
      << story();
  EXPECT_TRUE(process_alive(child)) << story();

  // `corralctl stop` ends the whole group, the child with the worker.
  RunResult stopped = d.ctl({"stop", "probe"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.out << stopped.err;
  EXPECT_EQ(d.state("probe:0"), "STOPPED");
  EXPECT_FALSE(process_alive(worker));
  EXPECT_TRUE(wait_until([&] { return !process_alive(child); })) << "child " << child;
  EXPECT_EQ(d.stop(), 0);
}

// NAME=value lines as `env` prints them, by name.
std::map<std::string, std::string> parse_env(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::set<std::string> names_of(const std::map<std::string, std::string>& env) {
  std::set<std::string> out;
  for (const auto& [name, value] : env) out.insert(name);
  return out;
}

TEST(WorkerIsolationTest, AWorkerOfAnotherUserGetsThatUsersEnvironmentNotCorralds) {
  if (geteuid() != 0) GTEST_SKIP() << "a worker of another user needs corrald to run as root";
  passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr) << "no user nobody";
  const std::string nobody_home = nobody->pw_dir, nobody_shell = nobody->pw_shell;
  passwd* self = getpwuid(geteuid());
  ASSERT_NE(self, nullptr);
  const std::string self_name = self->pw_name;

  auto job = [](const std::string& name, const std::string& user) {
    return "  " + name +
           ":\n    command: [env]\n    env: {JOB_VAR: from the job}\n"
           "    restart: {policy: never}\n    start: {settle: 0}\n" +
           (user.empty() ? "" : "    user: " + user + "\n");
  };
  Daemon d("jobs:\n" + job("other", "nobody") + job("plain", "") + job("self", self_name),
           "  pass_env: [CORRALTEST_PASSED]\n");
  // Entries given here come first, so they are the ones getenv() finds.
  d.set_env({"CORRALTEST_SECRET=hunter2", "CORRALTEST_PASSED=yes", "HOME=/root",
             "PATH=/root/bin:/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::map<std::string, std::map<std::string, std::string>> env;
  for (const char* name : {"other", "plain", "self"}) {
    const std::string log = d.log_dir() + "/" + std::string(name) + "-0.out.log";
    ASSERT_TRUE(wait_until([&] { return d.state(std::string(name) + ":0") == "EXITED"; }))
        << name << ": " << d.state(std::string(name) + ":0");
    env[name] = parse_env(read_file(log));
  }

  // nobody's login, the locale, what pass_env names, the job's env, corral's.
  std::set<std::string> expected = {"CORRAL_CHANNEL",
                                    "CORRAL_INSTANCE",
                                    "CORRAL_JOB",
                                    "CORRAL_WORKER",
                                    "CORRALTEST_PASSED",
                                    "HOME",
                                    "JOB_VAR",
                                    "LANG",
                                    "LOGNAME",
                                    "PATH",
                                    "SHELL",
                                    "TZ",
                                    "USER"};
  for (char** e = environ; *e != nullptr; ++e) {
    std::string name(*e, strcspn(*e, "="));
    if (name.starts_with("LC_") || name == "LANGUAGE") expected.insert(name);
  }
  const auto& other = env["other"];
  EXPECT_EQ(names_of(other), expected);
  EXPECT_EQ(other.count("CORRALTEST_SECRET"), 0u);
  EXPECT_EQ(other.count("CORRALTEST_DAEMON_DIR"), 0u);
  EXPECT_EQ(other.at("HOME"), nobody_home);
  EXPECT_EQ(other.at("USER"), "nobody");
  EXPECT_EQ(other.at("LOGNAME"), "nobody");
  EXPECT_EQ(other.at("SHELL"), nobody_shell);
  EXPECT_EQ(other.at("PATH"), "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(other.at("LANG"), "C.UTF-8");
  EXPECT_EQ(other.at("TZ"), "UTC");
  EXPECT_EQ(other.at("CORRALTEST_PASSED"), "yes");
  EXPECT_EQ(other.at("JOB_VAR"), "from the job");
  EXPECT_EQ(other.at("CORRAL_JOB"), "other");
  EXPECT_EQ(other.at("CORRAL_WORKER"), "0");
  EXPECT_EQ(other.at("CORRAL_CHANNEL"), "none");

  // Workers of corrald's own user see its environment, as before.
  for (const char* name : {"plain", "self"}) {
    const auto& own = env[name];
    EXPECT_EQ(own.count("CORRALTEST_SECRET") ? own.at("CORRALTEST_SECRET") : "", "hunter2") << name;
    EXPECT_EQ(own.count("HOME") ? own.at("HOME") : "", "/root") << name;
    EXPECT_EQ(own.count("PATH") ? own.at("PATH") : "", "/root/bin:/usr/bin:/bin") << name;
    EXPECT_EQ(own.count("JOB_VAR") ? own.at("JOB_VAR") : "", "from the job") << name;
    EXPECT_EQ(own.count("CORRAL_JOB") ? own.at("CORRAL_JOB") : "", name) << name;
    EXPECT_EQ(own.count("CORRALTEST_DAEMON_DIR"), 1u) << name;
  }
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace corral::testing

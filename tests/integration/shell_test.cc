// corralctl's shell against a real corrald: on a pseudo-terminal (prompt,
// tab completion, history file, Ctrl-C, Ctrl-D, quoting), with commands on a
// pipe (no terminal), and the bash completion script ctl/corralctl.bash.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"

extern char** environ;

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr const char* kWebJob = R"(
jobs:
  web:
    command: [sleep, "1000"]
    workers: 2
    start: {settle: 0}
)";

// RAW without terminal control codes (escape sequences, carriage returns,
// bells, backspaces): the text a session shows, as one stream. An escape
// sequence cut off at the end is dropped until the rest arrives.
std::string strip_terminal_codes(std::string_view raw) {
  std::string text;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\x1b') {
      if (i + 1 >= raw.size()) break;
      if (raw[i + 1] == '[') {  // CSI: parameters, then one final byte
        size_t end = i + 2;
        while (end < raw.size() && (raw[end] < 0x40 || raw[end] > 0x7e)) ++end;
        i = end;
      } else if (raw[i + 1] == ']') {  // OSC: up to BEL
        size_t end = raw.find('\a', i);
        i = end == std::string_view::npos ? raw.size() : end;
      } else {
        ++i;  // a two-byte sequence (keypad modes)
      }
    } else if (c != '\r' && c != '\a' && c != '\b') {
      text += c;
    }
  }
  return text;
}

// The environment of this test with NAMES replaced (an empty value removes one).
std::vector<std::string> environment_with(const std::map<std::string, std::string>& names) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string name(text.substr(0, text.find('=')));
    if (names.count(name) == 0 && name != "CORRAL_SOCKET" && name != "EDITRC") {
      env.emplace_back(text);
    }
  }
  for (const auto& [name, value] : names) {
    if (!value.empty()) env.push_back(name + "=" + value);
  }
  return env;
}

// corralctl ARGS on a pseudo-terminal of 40x120, as a user at a terminal
// runs it. Everything it starts is killed when the Terminal goes away.
class Terminal {
 public:
  Terminal(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
    std::vector<std::string> argv_text = {CORRALCTL_PATH};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<std::string> env_text = environment_with(env);
    std::vector<char*> argv;
    std::vector<char*> envp;
    for (auto& arg : argv_text) argv.push_back(arg.data());
    for (auto& entry : env_text) envp.push_back(entry.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    winsize size{40, 120, 0, 0};
    pid_ = forkpty(&master_, nullptr, nullptr, &size);
    if (pid_ == 0) {
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;
  ~Terminal() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);  // corralctl leads its session's process group, with its commands
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }

  bool started() const { return pid_ > 0 && master_ >= 0; }
  pid_t pid() const { return pid_; }
  void type(std::string_view keys) {
    while (!keys.empty()) {
      ssize_t n = ::write(master_, keys.data(), keys.size());
      if (n <= 0) return;
      keys.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Waits until the text after the last expected one shows TEXT; false if
  // it did not within TIMEOUT.
  bool expect(std::string_view text, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    for (;;) {
      std::string shown = strip_terminal_codes(raw_);
      if (size_t at = shown.find(text, seen_); at != std::string::npos) {
        seen_ = at + text.size();
        return true;
      }
      if (!read_until(deadline)) return false;
    }
  }
  // Waits for the prompt and until the shell reads keys one by one. Keys
  // typed before that are the terminal's: it would echo them itself and
  // take Ctrl-D as the end of a line rather than pass it on.
  bool expect_prompt(std::chrono::milliseconds timeout = 10s) {
    return expect("corral> ", timeout) && wait_until([&] { return reading_keys(); }, timeout);
  }
  bool reading_keys() const {
    termios modes{};
    return tcgetattr(master_, &modes) == 0 && (modes.c_lflag & ICANON) == 0;
  }
  // Everything shown so far, for failure messages and negative checks.
  std::string shown() const { return strip_terminal_codes(raw_); }
  // corralctl's exit code (128 + signal if killed), or -1 if it is still
  // running after TIMEOUT.
  int wait_exit(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    for (;;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      // Keep reading: a child blocked on a full terminal would never end.
      read_until(std::min(deadline, std::chrono::steady_clock::now() + 20ms));
    }
  }
  // Whether corralctl has a child it has not reaped (running or a zombie).
  bool has_children() const { return !children_of(pid_).empty() || zombies_of(pid_) > 0; }

 private:
  // Reads what is there, waiting until DEADLINE for something; false if nothing came.
  bool read_until(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{master_, POLLIN, 0};
    if (left.count() <= 0 || poll(&readable, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    ssize_t n = ::read(master_, buffer, sizeof buffer);
    if (n <= 0) {
      // EIO once corralctl has closed the terminal: let the caller's deadline run out.
      std::this_thread::sleep_for(5ms);
      return std::chrono::steady_clock::now() < deadline;
    }
    raw_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int master_ = -1;
  pid_t pid_ = -1;
  std::string raw_;
  size_t seen_ = 0;  // in the stripped text: where the next expect starts
};

constexpr const char* kCtrlC = "\x03";
constexpr const char* kCtrlD = "\x04";
constexpr const char* kUp = "\x1b[A";

class ShellTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.start()) << daemon_.daemon_log();
    ASSERT_TRUE(daemon_.wait_state("web:0", "RUNNING"));
    ASSERT_TRUE(daemon_.wait_state("web:1", "RUNNING"));
  }
  // corralctl -s SOCKET on a terminal, its history in this test's directory.
  std::unique_ptr<Terminal> shell(std::map<std::string, std::string> env = {}) {
    env.try_emplace("HOME", home_.path());
    env.try_emplace("CORRAL_HISTORY", home_.file("history"));
    env.try_emplace("TERM", "xterm");
    auto terminal =
        std::make_unique<Terminal>(std::vector<std::string>{"-s", daemon_.socket()}, env);
    EXPECT_TRUE(terminal->started());
    return terminal;
  }

  Daemon daemon_{kWebJob};
  TempDir home_;
};

TEST_F(ShellTest, PromptRunsStatusAndQuitLeavesWithZero) {
  auto t = shell();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("status\r");
  ASSERT_TRUE(t->expect("web:0  RUNNING   pid ")) << t->shown();
  ASSERT_TRUE(t->expect("web:1  RUNNING   pid ")) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("quit\r");
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

TEST_F(ShellTest, TabListsTheCommandsThatMatchAndCompletesAUniqueOne) {
  auto t = shell();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // sta: start, stats and status share nothing more, so they are listed
  // below the line, which is drawn again as it was.
  t->type("sta\t");
  ASSERT_TRUE(t->expect("start")) << t->shown();
  ASSERT_TRUE(t->expect("stats")) << t->shown();
  ASSERT_TRUE(t->expect("status")) << t->shown();
  ASSERT_TRUE(t->expect("corral> sta")) << t->shown();
  EXPECT_THAT(t->shown(), Not(HasSubstr("stop")));
  t->type("tus\r");
  ASSERT_TRUE(t->expect("web:1  RUNNING")) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // versi: one match, completed with a blank after it.
  t->type("versi\t");
  ASSERT_TRUE(t->expect("version ")) << t->shown();
  t->type("\r");
  ASSERT_TRUE(t->expect("corrald " + std::string(protocol::kVersion))) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type(kCtrlD);
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

TEST_F(ShellTest, TabCompletesJobsFromTheDaemonAndCommandOptions) {
  auto t = shell();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // w: web, web:*, web:0 and web:1 all start with "web".
  t->type("stop w\t");
  ASSERT_TRUE(t->expect("stop web")) << t->shown();
  t->type("\t");  // the second tab lists them
  ASSERT_TRUE(t->expect("web    web:*  web:0  web:1")) << t->shown();
  ASSERT_TRUE(t->expect("corral> stop web")) << t->shown();
  t->type("\r");
  ASSERT_TRUE(t->expect("web:0: stopped")) << t->shown();
  ASSERT_TRUE(t->expect("web:1: stopped")) << t->shown();
  EXPECT_EQ(daemon_.state("web:0"), "STOPPED");
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // An option of the command's own, from its synopsis.
  t->type("wait web --dr\t");
  ASSERT_TRUE(t->expect("wait web --drained ")) << t->shown();
  t->type("\x15");  // Ctrl-U: drop the line
  t->type("exit\r");
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

TEST_F(ShellTest, HistoryIsSavedInTheHomeDirectoryAndRecalledWithUp) {
  // No CORRAL_HISTORY: ~/.corralctl_history.
  std::string file = home_.file(".corralctl_history");
  {
    auto t = shell({{"CORRAL_HISTORY", ""}});
    ASSERT_TRUE(t->expect_prompt()) << t->shown();
    t->type("status web:0\r");
    ASSERT_TRUE(t->expect("web:0  RUNNING")) << t->shown();
    ASSERT_TRUE(t->expect_prompt()) << t->shown();
    t->type("quit\r");
    ASSERT_EQ(t->wait_exit(), 0) << t->shown();
  }
  std::string saved = read_file(file);
  EXPECT_THAT(saved, HasSubstr("status"));
  EXPECT_THAT(saved, HasSubstr("web:0"));
  EXPECT_THAT(saved, Not(HasSubstr("quit")));  // leaving is not remembered

  auto t = shell({{"CORRAL_HISTORY", ""}});
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type(kUp);
  ASSERT_TRUE(t->expect("status web:0")) << t->shown();
  t->type("\r");
  ASSERT_TRUE(t->expect("web:0  RUNNING")) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  EXPECT_THAT(t->shown(), Not(HasSubstr("web:1")));  // status web:0, as recalled
  t->type(kCtrlD);
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

TEST_F(ShellTest, AHistoryFileThatCannotBeWrittenIsNotAnError) {
  auto t = shell({{"CORRAL_HISTORY", home_.file("no/such/dir/history")}});
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("pid\r");
  ASSERT_TRUE(t->expect(std::to_string(daemon_.pid()))) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("quit\r");
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
  EXPECT_THAT(t->shown(), Not(HasSubstr("corralctl:")));
  EXPECT_FALSE(std::filesystem::exists(home_.file("no")));
}

TEST_F(ShellTest, CtrlCEndsABlockingCommandAndTheShellGoesOn) {
  RunResult stop = daemon_.ctl({"stop", "web:1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  auto t = shell();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // web:1 is STOPPED, so web never has every worker RUNNING: this waits forever.
  t->type("wait web --running\r");
  ASSERT_TRUE(wait_until([&] { return t->has_children(); })) << t->shown();
  t->type(kCtrlC);
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  EXPECT_TRUE(wait_until([&] { return !t->has_children(); })) << t->shown();
  EXPECT_TRUE(process_alive(t->pid()));
  t->type("pid\r");
  ASSERT_TRUE(t->expect(std::to_string(daemon_.pid()))) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("quit\r");
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

TEST_F(ShellTest, CtrlCAtThePromptAbandonsTheLine) {
  auto t = shell();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("stop web");
  ASSERT_TRUE(t->expect("stop web")) << t->shown();
  t->type(kCtrlC);
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // Were the line kept, this would read "stop webstatus web".
  t->type("status web\r");
  ASSERT_TRUE(t->expect("web:0  RUNNING")) << t->shown();
  ASSERT_TRUE(t->expect("web:1  RUNNING")) << t->shown();
  EXPECT_EQ(daemon_.state("web:0"), "RUNNING");
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type(kCtrlD);
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

TEST_F(ShellTest, AnUnterminatedQuoteIsAnErrorAndTheShellGoesOn) {
  auto t = shell();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  t->type("status 'web:0\r");
  ASSERT_TRUE(t->expect("corralctl: unterminated single quote")) << t->shown();
  ASSERT_TRUE(t->expect_prompt()) << t->shown();
  // Quotes and backslashes as in sh: "web:1" and web\:0 are web:1 and web:0.
  t->type("status \"web:1\" web\\:0\r");
  ASSERT_TRUE(t->expect("web:0  RUNNING")) << t->shown();
  ASSERT_TRUE(t->expect("web:1  RUNNING")) << t->shown();
  t->type("quit\r");
  EXPECT_EQ(t->wait_exit(), 0) << t->shown();
}

// ---- Without a terminal ----

// `printf SCRIPT | corralctl ARGS`, with HOME in HOME_DIR.
RunResult pipe_into_corralctl(const std::string& script, const std::string& args,
                              const std::string& home_dir) {
  return run({"/bin/sh", "-c",
              "printf '" + script + "' | HOME=" + home_dir + " " + CORRALCTL_PATH + " " + args});
}

TEST(ShellScriptTest, RunsEachLineAndExitsWithTheCodeOfTheLastFailure) {
  Daemon d(kWebJob);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("web:1", "RUNNING"));
  TempDir home;
  std::string args = "-s " + d.socket();

  RunResult r = pipe_into_corralctl("status\\nbogus\\n", args, home.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.out, HasSubstr("web:0  RUNNING"));
  EXPECT_THAT(r.out, HasSubstr("web:1  RUNNING"));
  EXPECT_THAT(r.err, HasSubstr("unknown command 'bogus'"));
  EXPECT_THAT(r.out, Not(HasSubstr("corral> ")));
  EXPECT_FALSE(std::filesystem::exists(home.file(".corralctl_history")));

  // The last command that failed decides, not the last command.
  r = pipe_into_corralctl("bogus\\nstatus nosuchjob\\npid\\n", args, home.path());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr(std::to_string(d.pid())));

  r = pipe_into_corralctl("pid\\n# a comment\\n\\nstatus web:0\\n", args, home.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");

  // quit ends the script.
  r = pipe_into_corralctl("pid\\nquit\\nbogus\\n", args, home.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("bogus")));
}

TEST(ShellScriptTest, LinesAreSplitLikeShellWordsAndRunWithTheGlobalOptions) {
  Daemon d(kWebJob);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("web:1", "RUNNING"));
  TempDir home;

  // help "sta"tus is help status; 'web:0 never ends; the lines after still run.
  RunResult r = pipe_into_corralctl("help \"sta\"tus\\nstatus \\047web:0\\npid\\n",
                                    "-s " + d.socket(), home.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("usage: corralctl status [TARGET...]"));
  EXPECT_THAT(r.err, HasSubstr("corralctl: unterminated single quote"));
  EXPECT_THAT(r.out, HasSubstr(std::to_string(d.pid())));

  // The shell's --json applies to every line, and a line may add one.
  r = pipe_into_corralctl("status web:0\\n", "-s " + d.socket() + " --json", home.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"web:0\""));
  r = pipe_into_corralctl("pid\\n--json status web:1\\n", "-s " + d.socket(), home.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"web:1\""));
}

// ---- bash completion ----

// What _corralctl of ctl/corralctl.bash offers for LINE (the cursor at its
// end), one word per element, with the built corralctl first in PATH.
std::vector<std::string> bash_completions(const std::string& line) {
  std::string bin_dir = std::filesystem::path(CORRALCTL_PATH).parent_path();
  std::string script = "PATH=" + bin_dir +
                       ":$PATH; source " CORRAL_SOURCE_DIR "/ctl/corralctl.bash; COMP_LINE='" +
                       line +
                       "'; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<<\"$COMP_LINE\"; "
                       "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _corralctl; "
                       "printf '%s\\n' \"${COMPREPLY[@]}\"";
  RunResult r = run({"/bin/bash", "-c", script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::vector<std::string> words;
  std::istringstream lines(r.out);
  for (std::string word; std::getline(lines, word);) {
    if (!word.empty()) words.push_back(word);
  }
  return words;
}

TEST(BashCompletionTest, CompletesCommandsAndOptionsWithoutADaemon) {
  EXPECT_THAT(bash_completions("corralctl sta"), UnorderedElementsAre("start", "stats", "status"));
  EXPECT_THAT(bash_completions("corralctl --j"), UnorderedElementsAre("--json"));
  EXPECT_THAT(bash_completions("corralctl -s /nowhere.sock --json resta"),
              UnorderedElementsAre("restart"));
  EXPECT_THAT(bash_completions("corralctl wait web --"),
              UnorderedElementsAre("--running", "--drained", "--timeout", "--help"));
  EXPECT_THAT(bash_completions("corralctl help sh"), UnorderedElementsAre("shared", "shutdown"));
  // No daemon: no targets, and nothing printed.
  EXPECT_THAT(bash_completions("corralctl -s /nowhere.sock stop "), UnorderedElementsAre());
}

TEST(BashCompletionTest, CompletesFilesAfterFileAndConfig) {
  TempDir dir;
  write_file(dir.file("tasks.txt"), "1\n");
  write_file(dir.file("corral.yaml"), "");
  EXPECT_THAT(bash_completions("corralctl submit web --file " + dir.file("ta")),
              UnorderedElementsAre(dir.file("tasks.txt")));
  EXPECT_THAT(bash_completions("corralctl -c " + dir.file("co")),
              UnorderedElementsAre(dir.file("corral.yaml")));
  // The value of --data is not a file, nor a target.
  EXPECT_THAT(bash_completions("corralctl submit web --data " + dir.file("ta")),
              UnorderedElementsAre());
}

TEST(BashCompletionTest, CompletesTargetsFromTheDaemonOnTheLinesSocket) {
  Daemon d(kWebJob);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  std::string ctl = "corralctl -s " + d.socket() + " ";
  EXPECT_THAT(bash_completions(ctl + "stop w"),
              UnorderedElementsAre("web", "web:*", "web:0", "web:1"));
  EXPECT_THAT(bash_completions(ctl + "restart "),
              UnorderedElementsAre("all", "web", "web:*", "web:0", "web:1"));
  // A JOB operand takes job names only, and only one.
  EXPECT_THAT(bash_completions(ctl + "stats "), UnorderedElementsAre("web"));
  EXPECT_THAT(bash_completions(ctl + "stats web "), UnorderedElementsAre());
  // fg takes one worker, JOB:INDEX, after its -n N.
  EXPECT_THAT(bash_completions(ctl + "fg "), UnorderedElementsAre("web:0", "web:1"));
  EXPECT_THAT(bash_completions(ctl + "fg -n 5 w"), UnorderedElementsAre("web:0", "web:1"));
  EXPECT_THAT(bash_completions(ctl + "fg web:0 "), UnorderedElementsAre());
  EXPECT_THAT(bash_completions(ctl + "fg -"), UnorderedElementsAre("-n", "--help"));
  // The config names the same socket.
  EXPECT_THAT(bash_completions("corralctl -c " + d.config() + " start we"),
              UnorderedElementsAre("web", "web:*", "web:0", "web:1"));
}

}  // namespace
}  // namespace corral::testing

#include "ctl/shell.h"

#include <fcntl.h>
#include <histedit.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cwchar>
#include <utility>

#include "base/io.h"
#include "base/unique_fd.h"
#include "ctl/shell_line.h"
#include "protocol/control.h"
#include "protocol/exit_codes.h"

namespace corral::ctl {

namespace {

constexpr const char* kPrompt = "corral> ";
constexpr int kHistoryEntries = 1000;
// A tab press waits at most this long for corrald's list of workers, so that
// a daemon that does not answer (stopped, overloaded) cannot freeze the prompt.
constexpr std::chrono::milliseconds kWorkerNamesTimeout{2000};

// `quit` or `exit`, alone on its line.
bool leaves_shell(const Words& line) {
  return line.error.empty() && line.words.size() == 1 &&
         (line.words.front() == "quit" || line.words.front() == "exit");
}

}  // namespace

// ---- Signals ----

namespace {

// Set by the signals that the prompt reacts to; read_key acts on them.
volatile sig_atomic_t interrupted = 0;  // SIGINT: abandon the line
volatile sig_atomic_t continued = 0;    // SIGCONT: back from a stop, draw the line again
volatile sig_atomic_t resized = 0;      // SIGWINCH: the terminal has a new size

constexpr std::array kNotedSignals = {SIGINT, SIGCONT, SIGWINCH};

void note_signal(int signal) {
  if (signal == SIGINT) {
    interrupted = 1;
  } else if (signal == SIGCONT) {
    continued = 1;
  } else {
    resized = 1;
  }
}

// The shell's dispositions while it runs, restored at the end: SIGINT,
// SIGCONT and SIGWINCH are noted for read_key (SIGINT neither ignored nor
// fatal), SIGQUIT is ignored, as interactive shells do.
class ShellSignals {
 public:
  ShellSignals() {
    struct sigaction note {};
    note.sa_handler = note_signal;
    sigemptyset(&note.sa_mask);
    for (size_t i = 0; i < kNotedSignals.size(); ++i) {
      sigaction(kNotedSignals[i], &note, &saved_[i]);
    }
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGQUIT, &ignore, &saved_quit_);
  }
  ShellSignals(const ShellSignals&) = delete;
  ShellSignals& operator=(const ShellSignals&) = delete;
  ~ShellSignals() {
    for (size_t i = 0; i < kNotedSignals.size(); ++i) {
      sigaction(kNotedSignals[i], &saved_[i], nullptr);
    }
    sigaction(SIGQUIT, &saved_quit_, nullptr);
  }

 private:
  std::array<struct sigaction, kNotedSignals.size()> saved_{};
  struct sigaction saved_quit_ {};
};

// Signals whose dispositions the shell or libedit change (libedit installs
// handlers for these while it reads a line); a child starts with them at
// their defaults, as a command run from a shell does.
constexpr std::array kShellSignals = {SIGINT, SIGQUIT, SIGTSTP, SIGHUP, SIGTERM, SIGCONT, SIGWINCH};

void reset_signals_in_child(const sigset_t& mask) {
  for (int signal : kShellSignals) ::signal(signal, SIG_DFL);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
}

}  // namespace

// ---- Child processes ----

namespace {

int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

void report_killed(const std::vector<std::string>& words, int signal) {
  if (signal == SIGINT) {
    // The terminal echoed ^C; the prompt goes on the next line.
    std::fputs("\n", stdout);
    std::fflush(stdout);
  } else {
    std::fprintf(stderr, "corralctl: %s: %s\n", words.front().c_str(), strsignal(signal));
  }
}

// Runs WORDS in a child process. Ctrl-C sends SIGINT to the terminal's
// foreground process group, the shell and the child: the child ends wherever
// it blocks (a wait, a submit, a stream) and the shell, which ignores SIGINT
// until the child has ended, goes on. SIGINT stays blocked from before the
// fork until each side has its disposition, so no Ctrl-C is lost or kills
// the shell in between.
void run_in_child(const ShellHooks& hooks, const std::vector<std::string>& words) {
  termios terminal{};
  bool have_terminal = tcgetattr(STDIN_FILENO, &terminal) == 0;
  sigset_t sigint;
  sigset_t mask;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  sigprocmask(SIG_BLOCK, &sigint, &mask);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    reset_signals_in_child(mask);
    int code = hooks.run(words);
    std::fflush(nullptr);
    _exit(code);
  }
  // Ignoring a blocked, pending SIGINT discards it: a Ctrl-C since the fork
  // was for the child.
  struct sigaction ignore {};
  struct sigaction saved {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGINT, &ignore, &saved);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  if (pid < 0) {
    std::fprintf(stderr, "corralctl: cannot run %s: fork: %s\n", words.front().c_str(),
                 std::strerror(errno));
  } else {
    int status = wait_child(pid);
    if (WIFSIGNALED(status)) report_killed(words, WTERMSIG(status));
  }
  sigaction(SIGINT, &saved, nullptr);
  // A command killed halfway may have left the terminal in a mode of its own.
  if (have_terminal) tcsetattr(STDIN_FILENO, TCSADRAIN, &terminal);
}

// What FD gives until its end; nothing if TIMEOUT passes first or Ctrl-C
// is pressed (which then also abandons the line).
std::string read_until_end(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string text;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd readable{fd, POLLIN, 0};
    int ready = poll(&readable, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR && interrupted == 0) continue;  // a resize, a stop
    if (ready <= 0) return {};
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? text : std::string();
    text.append(buffer, static_cast<size_t>(n));
  }
}

// hooks.worker_names() in a child process, given up after TIMEOUT.
std::vector<std::string> worker_names_within(const ShellHooks& hooks,
                                             std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {};
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  sigset_t mask;
  sigprocmask(SIG_SETMASK, nullptr, &mask);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    read_end.reset();
    reset_signals_in_child(mask);
    std::string text;
    for (const auto& name : hooks.worker_names()) text += name + "\n";
    _exit(write_all(write_end.get(), text) ? 0 : 1);
  }
  write_end.reset();
  std::string text = pid > 0 ? read_until_end(read_end.get(), timeout) : std::string();
  read_end.reset();
  if (pid > 0) {
    ::kill(pid, SIGKILL);  // it is a zombie if it has ended: its pid is still ours
    wait_child(pid);
  }
  std::vector<std::string> names;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos;
       start = end + 1) {
    names.push_back(text.substr(start, end - start));
  }
  return names;
}

}  // namespace

// ---- The line editor ----

namespace {

// $CORRAL_HISTORY (empty: no history file), else ~/.corralctl_history.
std::string history_path() {
  if (const char* file = std::getenv("CORRAL_HISTORY")) return file;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    const passwd* user = getpwuid(getuid());
    home = user != nullptr ? user->pw_dir : nullptr;
  }
  return home != nullptr ? std::string(home) + "/.corralctl_history" : std::string();
}

// MATCHES in columns across the terminal's width, below the line being edited.
void print_choices(const std::vector<std::string>& matches) {
  winsize size{};
  size_t width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 ? size.ws_col : 80;
  size_t column = 0;
  for (const auto& match : matches) column = std::max(column, match.size() + 2);
  size_t columns = std::max<size_t>(1, width / column);
  std::string text = "\n";
  for (size_t i = 0; i < matches.size(); ++i) {
    text += matches[i];
    bool ends_row = (i + 1) % columns == 0 || i + 1 == matches.size();
    text += ends_row ? std::string("\n") : std::string(column - matches[i].size(), ' ');
  }
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

// Waits until stdin has a byte to read; false if Ctrl-C came first. On the
// way it redraws the line after a stop and resizes after SIGWINCH, which
// libedit's own reader would do. The noted signals stay blocked but inside
// ppoll, which opens the mask and waits in one step: a Ctrl-C at any moment
// is either seen before the wait or ends it, never lost in between.
bool wait_for_key(EditLine* el) {
  sigset_t noted;
  sigset_t mask;
  sigemptyset(&noted);
  for (int signal : kNotedSignals) sigaddset(&noted, signal);
  sigprocmask(SIG_BLOCK, &noted, &mask);
  sigset_t waiting = mask;
  for (int signal : kNotedSignals) sigdelset(&waiting, signal);
  bool key = true;
  for (;;) {
    if (interrupted != 0) {
      interrupted = 0;
      key = false;
      break;
    }
    if (resized != 0 || continued != 0) {
      resized = 0;
      el_resize(el);
    }
    if (continued != 0) {
      continued = 0;
      el_set(el, EL_REFRESH);
    }
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (ppoll(&in, 1, nullptr, &waiting) > 0 || errno != EINTR) break;  // errors: read says
  }
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  return key;
}

// libedit's reader of one character (EL_GETCFN): its built-in one, which
// cannot see a Ctrl-C that comes just before it reads, plus wait_for_key.
// Multibyte characters are decoded as the built-in one does: invalid bytes
// are dropped.
int read_key(EditLine* el, wchar_t* key) {
  char bytes[MB_LEN_MAX];
  size_t have = 0;
  for (;;) {
    if (!wait_for_key(el)) {
      *key = L'\0';
      errno = EINTR;
      return -1;
    }
    ssize_t n = ::read(STDIN_FILENO, &bytes[have], 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *key = L'\0';
      return n == 0 ? 0 : -1;
    }
    ++have;
    mbstate_t state{};
    size_t decoded = std::mbrtowc(key, bytes, have, &state);
    if (decoded == static_cast<size_t>(-1)) {
      have = 0;
    } else if (decoded != static_cast<size_t>(-2)) {
      return 1;
    } else if (have == sizeof bytes) {
      have = 0;
    }
  }
}

// libedit's editor and history for the prompt, ended together.
class LineEditor {
 public:
  enum class Read { kLine, kInterrupted, kEnd };
  using Completer = std::function<Completion(std::string_view before_cursor)>;

  LineEditor(std::string history_file, Completer completer)
      : history_file_(std::move(history_file)), completer_(std::move(completer)) {
    history_ = history_init();
    el_ = el_init("corralctl", stdin, stdout, stderr);
    if (history_ == nullptr || el_ == nullptr) return;
    HistEvent event;
    history(history_, &event, H_SETSIZE, kHistoryEntries);
    history(history_, &event, H_SETUNIQUE, 1);
    if (!history_file_.empty()) history(history_, &event, H_LOAD, history_file_.c_str());
    el_set(el_, EL_EDITOR, "emacs");
    el_set(el_, EL_SIGNAL, 1);  // the terminal is restored on a signal, redrawn after SIGCONT
    el_set(el_, EL_GETCFN, &read_key);
    el_set(el_, EL_PROMPT, &LineEditor::prompt);
    el_set(el_, EL_HIST, history, history_);
    el_set(el_, EL_CLIENTDATA, this);
    // The wide call: libedit keeps these pointers as they are, where el_set
    // would copy both strings and never free the copies.
    el_wset(el_, EL_ADDFN, L"corral-complete", L"complete a command, option or target",
            &LineEditor::on_tab);
    el_set(el_, EL_BIND, "^I", "corral-complete", nullptr);
    el_source(el_, nullptr);  // the user's ~/.editrc (or $EDITRC) may rebind keys
  }
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;
  ~LineEditor() {
    if (el_ != nullptr) el_end(el_);
    if (history_ != nullptr) history_end(history_);
  }

  // False if libedit could not set itself up.
  bool ready() const { return el_ != nullptr && history_ != nullptr; }

  // The next line, without its newline.
  Read read(std::string& line) {
    int count = 0;
    // A stop or resize while a command ran is not one of this line: el_gets
    // draws the prompt and takes the size anew.
    continued = 0;
    resized = 0;
    errno = 0;
    const char* text = el_gets(el_, &count);
    if (text == nullptr || count <= 0) {
      return count < 0 && errno == EINTR ? Read::kInterrupted : Read::kEnd;
    }
    line.assign(text, static_cast<size_t>(count));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return Read::kLine;
  }

  // Adds LINE to the history and saves the history file; a file that cannot
  // be written only means no history next time.
  void remember(const std::string& line) {
    HistEvent event;
    history(history_, &event, H_ENTER, line.c_str());
    if (!history_file_.empty()) history(history_, &event, H_SAVE, history_file_.c_str());
  }

 private:
  static char* prompt(EditLine*) { return const_cast<char*>(kPrompt); }

  static unsigned char on_tab(EditLine* el, int) {
    void* editor = nullptr;
    el_get(el, EL_CLIENTDATA, &editor);
    return static_cast<LineEditor*>(editor)->tab();
  }

  // One match or a common part: inserted. Several: listed under the line,
  // which is drawn again. None: a beep.
  unsigned char tab() {
    const LineInfo* info = el_line(el_);
    Completion completion = completer_(
        std::string_view(info->buffer, static_cast<size_t>(info->cursor - info->buffer)));
    if (!completion.insert.empty()) {
      return el_insertstr(el_, completion.insert.c_str()) == 0 ? CC_REFRESH : CC_ERROR;
    }
    if (completion.choices.empty()) return CC_ERROR;
    print_choices(completion.choices);
    return CC_REDISPLAY;
  }

  EditLine* el_ = nullptr;
  History* history_ = nullptr;
  std::string history_file_;
  Completer completer_;
};

}  // namespace

// ---- The shells ----

int run_interactive_shell(const ShellHooks& hooks) {
  std::setlocale(LC_CTYPE, "");  // libedit decodes the terminal's characters with it
  ShellSignals signals;
  auto workers = [&hooks] { return worker_names_within(hooks, kWorkerNamesTimeout); };
  LineEditor editor(history_path(), [&workers](std::string_view before_cursor) {
    return complete(before_cursor, workers);
  });
  if (!editor.ready()) return run_command_script(hooks, STDIN_FILENO);
  for (;;) {
    std::string line;
    LineEditor::Read read = editor.read(line);
    if (read == LineEditor::Read::kEnd) {
      std::fputs("\n", stdout);
      std::fflush(stdout);
      return protocol::kExitOk;
    }
    if (read == LineEditor::Read::kInterrupted) {
      // Ctrl-C at the prompt abandons the line.
      std::fputs("^C\n", stdout);
      std::fflush(stdout);
      continue;
    }
    Words words = split_words(line);
    if (words.words.empty() && words.error.empty()) continue;
    // Leaving is not remembered: Up in the next session recalls a command.
    if (leaves_shell(words)) return protocol::kExitOk;
    editor.remember(line);
    if (!words.error.empty()) {
      std::fprintf(stderr, "corralctl: %s\n", words.error.c_str());
      continue;
    }
    run_in_child(hooks, words.words);
  }
}

namespace {

// The next line of FD, without its newline; false at the end. Byte by byte:
// a command may read the rest of FD itself (`submit JOB -`), so nothing past
// this line may be taken.
bool read_script_line(int fd, std::string& line) {
  line.clear();
  for (;;) {
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !line.empty();
    if (c == '\n') return true;
    line += c;
  }
}

}  // namespace

int run_command_script(const ShellHooks& hooks, int fd) {
  int failure = protocol::kExitOk;
  std::string line;
  while (read_script_line(fd, line)) {
    Words words = split_words(line);
    if (!words.error.empty()) {
      std::fprintf(stderr, "corralctl: %s\n", words.error.c_str());
      failure = protocol::kExitUsage;
      continue;
    }
    if (words.words.empty()) continue;
    if (leaves_shell(words)) break;
    if (int code = hooks.run(words.words); code != protocol::kExitOk) failure = code;
  }
  return failure;
}

}  // namespace corral::ctl

// corralctl: the control client of corrald (docs/corralctl.md,
// docs/control-protocol.md).
//   corralctl [-s SOCKET | -c CONFIG] [--json] [COMMAND [ARGS]]
// Global options come before COMMAND; what follows it belongs to the command.
// Without a COMMAND, corralctl is a shell (ctl/shell.h) whose lines run as
// `corralctl [the same global options] LINE` would: both paths go through
// ctl::split_global_args and run.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/commands.h"
#include "ctl/import.h"
#include "ctl/replies.h"
#include "ctl/shell.h"
#include "ctl/top.h"
#include "protocol/control.h"
#include "protocol/exit_codes.h"
#include "protocol/json_text.h"

namespace {

namespace ctl = corral::ctl;
namespace protocol = corral::protocol;
using corral::errno_error;
using corral::Error;
using corral::Status;
using corral::UniqueFd;

int emit(const ctl::Output& output) {
  std::fwrite(output.out.data(), 1, output.out.size(), stdout);
  std::fflush(stdout);
  std::fwrite(output.err.data(), 1, output.err.size(), stderr);
  return output.exit_code;
}

// An input file of submit, closed on every return.
class InputFile {
 public:
  // FILE, or stdin for "-"; the error says "cannot open F: why".
  Status open(const std::string& file) {
    if (file == "-") {
      fd_ = STDIN_FILENO;
      return {};
    }
    owned_.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned_) return errno_error("cannot open " + file);
    fd_ = owned_.get();
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
      return Error("cannot read " + file + ": Is a directory");
    }
    return {};
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  UniqueFd owned_;  // unless stdin
};

// Streams the tasks of PLAN (ctl::Client::submit) from FILE, already open;
// results and refusals are printed while it runs, the summary after.
int submit(ctl::Client& client, const ctl::Plan& plan, const InputFile& file, ctl::Format format) {
  ctl::SubmitInput input;
  input.data = plan.submit->data;
  if (plan.submit->file) {
    input.fd = file.fd();
    input.name = *plan.submit->file == "-" ? "stdin" : *plan.submit->file;
  }
  ctl::SubmitWaiting waiting;
  if (plan.request->value("wait", false)) {
    waiting.timeout = plan.submit->timeout;
    waiting.ordered = plan.submit->ordered;
    // Asked on a second connection, which the stream's does not wait on.
    waiting.why_waiting = [&client,
                           job = plan.request->value("job", "")]() -> std::optional<std::string> {
      auto asker = ctl::Client::connect(client.socket_path());
      if (!asker) return std::nullopt;
      auto reply = asker->call({{"cmd", "status"}, {"targets", {job}}});
      if (!reply) return std::nullopt;
      return ctl::why_waiting(job, *reply);
    };
    waiting.accepted = [&plan](const protocol::Json& ack) {
      return ctl::submit_notice(*plan.request, ack);
    };
  }
  std::fflush(stdout);
  auto totals = client.submit(*plan.request, input, waiting, STDOUT_FILENO, STDERR_FILENO);
  if (!totals) return emit(ctl::format_client_error(plan, totals.error(), format));
  return emit(ctl::format_submit(plan, *totals, format));
}

// A streaming command (tail): the acceptance, then each {"data": TEXT} line
// printed as it comes (--json: the lines themselves).
int stream(ctl::Client& client, const ctl::Plan& plan, ctl::Format format) {
  auto reply = client.call(*plan.request);
  if (!reply) return emit(ctl::format_client_error(plan, reply.error(), format));
  ctl::Output accepted = ctl::format_reply(plan, *reply, format);
  if (accepted.exit_code != protocol::kExitOk) return emit(accepted);
  auto status = client.read_until_end([format](const protocol::Json& message) {
    std::string text;
    if (format == ctl::Format::kJson) {
      text = protocol::json_text(message) + "\n";
    } else if (auto data = message.find("data"); data != message.end() && data->is_string()) {
      text = data->get<std::string>();
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!status) return emit(ctl::format_client_error(plan, status.error(), format));
  return protocol::kExitOk;
}

// fg's Ctrl-C: leaving is what the user asked for (exit 0, as supervisorctl's
// fg), so SIGINT does not kill corralctl; its handler shuts the connection
// down, which ends the blocking read at once. Both are async-signal-safe.
volatile sig_atomic_t fg_interrupted = 0;
volatile sig_atomic_t fg_socket = -1;

extern "C" void on_fg_interrupt(int) {
  fg_interrupted = 1;
  if (fg_socket >= 0) ::shutdown(fg_socket, SHUT_RDWR);
}

// fg: the acceptance, then corrald's data lines, each written to stdout or
// stderr as its "stream" says (--json: the lines themselves, on stdout),
// until the end line that says how the worker's process ended, or Ctrl-C.
// While it lives, Ctrl-C shuts down SOCKET (a shell's next command gets
// SIGINT's disposition back).
class FgInterrupt {
 public:
  explicit FgInterrupt(int socket) {
    fg_interrupted = 0;
    fg_socket = socket;
    struct sigaction action {};
    action.sa_handler = on_fg_interrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &previous_);
  }
  ~FgInterrupt() {
    ::sigaction(SIGINT, &previous_, nullptr);
    fg_socket = -1;
  }
  FgInterrupt(const FgInterrupt&) = delete;
  FgInterrupt& operator=(const FgInterrupt&) = delete;

 private:
  struct sigaction previous_ {};
};

int foreground(ctl::Client& client, const ctl::Plan& plan, ctl::Format format) {
  FgInterrupt interrupt(client.native_handle());
  auto reply = client.call(*plan.request);
  if (!reply) {
    if (fg_interrupted) return protocol::kExitOk;
    return emit(ctl::format_client_error(plan, reply.error(), format));
  }
  ctl::Output accepted = ctl::format_reply(plan, *reply, format);
  emit(accepted);
  if (accepted.exit_code != protocol::kExitOk) return accepted.exit_code;
  while (!fg_interrupted) {
    auto message = client.read_message();
    if (!message) {
      if (fg_interrupted) break;
      return emit(ctl::format_client_error(plan, message.error(), format));
    }
    if (auto end = message->find("end");
        end != message->end() && end->is_boolean() && end->get<bool>()) {
      return emit(ctl::format_fg_end(*message, format));
    }
    if (format == ctl::Format::kJson) {
      std::string line = protocol::json_text(*message) + "\n";
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
      continue;
    }
    auto data = message->find("data");
    if (data == message->end() || !data->is_string()) continue;
    const std::string& text = data->get_ref<const std::string&>();
    FILE* to = message->value("stream", "") == "stderr" ? stderr : stdout;
    std::fwrite(text.data(), 1, text.size(), to);
    std::fflush(to);
  }
  return protocol::kExitOk;
}

// results and retry --wait: the acceptance, then corrald's result lines
// copied to stdout as they come, as submit --wait prints them, until
// {"end": true}. A follow that never ends is ended by Ctrl-C, as tail -f is:
// SIGINT keeps its default.
int results(ctl::Client& client, const ctl::Plan& plan, ctl::Format format) {
  auto reply = client.call(*plan.request);
  if (!reply) return emit(ctl::format_client_error(plan, reply.error(), format));
  ctl::Output accepted = ctl::format_reply(plan, *reply, format);
  if (accepted.exit_code != protocol::kExitOk) return emit(accepted);
  std::fflush(stdout);
  auto totals = client.read_results(STDOUT_FILENO);
  if (!totals) return emit(ctl::format_client_error(plan, totals.error(), format));
  return emit(ctl::format_results(plan, *totals, format));
}

// The socket the options name (or CORRAL_SOCKET, or the default).
ctl::SocketChoice socket_of(const ctl::GlobalArgs& options) {
  return ctl::resolve_socket(options.socket, std::getenv("CORRAL_SOCKET"), options.config);
}

// Runs COMMAND ARGS... (the words of LINE) with its options: the one-shot
// path and each line of the shell.
int run(const ctl::GlobalArgs& line) {
  const std::vector<std::string>& words = line.words;
  if (words.empty()) {
    // Only the shell gets here, for a line of global options alone.
    return emit({"",
                 "corralctl: no COMMAND after the options\n"
                 "run 'help' for the list of commands\n",
                 protocol::kExitUsage});
  }
  if (words.front().size() > 1 && words.front()[0] == '-') {
    return emit({"",
                 "corralctl: unknown option '" + words.front() +
                     "'\nrun 'corralctl help' for the list of commands\n",
                 protocol::kExitUsage});
  }
  std::vector<std::string> args(words.begin() + 1, words.end());
  ctl::Plan plan = ctl::plan_command(words.front(), args, line.format);
  if (plan.import) return emit(ctl::run_import(*plan.import, plan.format));
  if (!plan.request) return emit(plan.local);
  // Submit's file is opened before corrald is asked: a missing file submits nothing.
  InputFile file;
  if (plan.submit && plan.submit->file) {
    if (Status opened = file.open(*plan.submit->file); !opened) {
      return emit(
          {"", "corralctl: submit: " + opened.error().message() + "\n", protocol::kExitUsage});
    }
  }

  ctl::SocketChoice socket = socket_of(line);
  if (!socket.errors.empty()) {
    std::string err;
    for (const auto& error : socket.errors) err += "corralctl: " + error + "\n";
    return emit({"", err, protocol::kExitUsage});
  }

  if (plan.top) return ctl::run_top(socket.path, *plan.top);
  auto client = ctl::Client::connect(socket.path);
  if (!client) return emit(ctl::format_client_error(plan, client.error(), plan.format));
  if (plan.submit) return submit(*client, plan, file, plan.format);
  if (plan.stream) return stream(*client, plan, plan.format);
  if (plan.fg) return foreground(*client, plan, plan.format);
  if (plan.results) return results(*client, plan, plan.format);
  auto reply = client->call(*plan.request);
  if (!reply) return emit(ctl::format_client_error(plan, reply.error(), plan.format));
  return emit(ctl::format_reply(plan, *reply, plan.format));
}

// The daemon's workers for the shell's completion; any failure is no names.
std::vector<std::string> worker_names(const ctl::GlobalArgs& options) {
  ctl::SocketChoice socket = socket_of(options);
  if (!socket.errors.empty()) return {};
  auto client = ctl::Client::connect(socket.path);
  if (!client) return {};
  auto reply = client->call(protocol::Json{{"cmd", "status"}, {"fields", {"name"}}});
  if (!reply) return {};
  auto workers = reply->find("workers");
  if (workers == reply->end() || !workers->is_array()) return {};
  std::vector<std::string> names;
  for (const auto& worker : *workers) {
    auto name = worker.is_object() ? worker.find("name") : worker.end();
    if (name != worker.end() && name->is_string()) names.push_back(name->get<std::string>());
  }
  return names;
}

// The shell: each line runs as `corralctl GLOBAL_ARGS LINE` would.
int shell(const std::vector<std::string>& global_args, const ctl::GlobalArgs& options) {
  ctl::ShellHooks hooks;
  hooks.run = [&global_args](const std::vector<std::string>& words) {
    try {
      std::vector<std::string> args = global_args;
      args.insert(args.end(), words.begin(), words.end());
      ctl::GlobalArgs line = ctl::split_global_args(args);
      if (line.answer) return emit(*line.answer);
      return run(line);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corralctl: %s\n", e.what());
      return protocol::kExitFailed;
    }
  };
  hooks.worker_names = [&options]() -> std::vector<std::string> {
    try {
      return worker_names(options);
    } catch (const std::exception&) {
      return {};  // completion offers nothing rather than failing the shell
    }
  };
  if (::isatty(STDIN_FILENO)) return ctl::run_interactive_shell(hooks);
  return ctl::run_command_script(hooks, STDIN_FILENO);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    ctl::GlobalArgs line = ctl::split_global_args(args);
    if (line.answer) return emit(*line.answer);
    if (line.words.empty()) return shell(args, line);
    return run(line);
  } catch (const std::exception& e) {
    // Nothing throws by design; out of memory is what is left.
    std::fprintf(stderr, "corralctl: %s\n", e.what());
    return protocol::kExitFailed;
  }
}

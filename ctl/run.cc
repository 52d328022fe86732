#include "ctl/run.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "ctl/client.h"
#include "ctl/replies.h"
#include "ctl/top.h"
#include "protocol/control.h"
#include "protocol/exit_codes.h"
#include "protocol/json_text.h"

namespace corral::ctl {

namespace {

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

// Streams the tasks of PLAN (Client::submit) from FILE, already open;
// results and refusals are printed while it runs, the summary after.
int submit(Client& client, const Plan& plan, const InputFile& file, Format format) {
  SubmitInput input;
  input.data = plan.submit->data;
  if (plan.submit->file) {
    input.fd = file.fd();
    input.name = *plan.submit->file == "-" ? "stdin" : *plan.submit->file;
  }
  SubmitWaiting waiting;
  if (plan.request->value("wait", false)) {
    waiting.timeout = plan.submit->timeout;
    waiting.ordered = plan.submit->ordered;
    // Asked on a second connection, which the stream's does not wait on.
    waiting.why_waiting = [&client,
                           job = plan.request->value("job", "")]() -> std::optional<std::string> {
      auto asker = Client::connect(client.socket_path());
      if (!asker) return std::nullopt;
      auto reply = asker->call({{"cmd", "status"}, {"targets", {job}}});
      if (!reply) return std::nullopt;
      return why_waiting(job, *reply);
    };
    waiting.accepted = [&plan](const protocol::Json& ack) {
      return submit_notice(*plan.request, ack);
    };
  }
  std::fflush(stdout);
  auto totals = client.submit(*plan.request, input, waiting, STDOUT_FILENO, STDERR_FILENO);
  if (!totals) return emit(format_client_error(plan, totals.error(), format));
  return emit(format_submit(plan, *totals, format));
}

// A streaming command (tail): the acceptance, then each {"data": TEXT} line
// printed as it comes (--json: the lines themselves).
int stream(Client& client, const Plan& plan, Format format) {
  auto reply = client.call(*plan.request);
  if (!reply) return emit(format_client_error(plan, reply.error(), format));
  Output accepted = format_reply(plan, *reply, format);
  if (accepted.exit_code != protocol::kExitOk) return emit(accepted);
  auto status = client.read_until_end([format](const protocol::Json& message) {
    std::string text;
    if (format == Format::kJson) {
      text = protocol::json_text(message) + "\n";
    } else if (auto data = message.find("data"); data != message.end() && data->is_string()) {
      text = data->get<std::string>();
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!status) return emit(format_client_error(plan, status.error(), format));
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

int foreground(Client& client, const Plan& plan, Format format) {
  FgInterrupt interrupt(client.native_handle());
  auto reply = client.call(*plan.request);
  if (!reply) {
    if (fg_interrupted) return protocol::kExitOk;
    return emit(format_client_error(plan, reply.error(), format));
  }
  Output accepted = format_reply(plan, *reply, format);
  emit(accepted);
  if (accepted.exit_code != protocol::kExitOk) return accepted.exit_code;
  while (!fg_interrupted) {
    auto message = client.read_message();
    if (!message) {
      if (fg_interrupted) break;
      return emit(format_client_error(plan, message.error(), format));
    }
    if (auto end = message->find("end");
        end != message->end() && end->is_boolean() && end->get<bool>()) {
      return emit(format_fg_end(*message, format));
    }
    if (format == Format::kJson) {
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
int results(Client& client, const Plan& plan, Format format) {
  auto reply = client.call(*plan.request);
  if (!reply) return emit(format_client_error(plan, reply.error(), format));
  Output accepted = format_reply(plan, *reply, format);
  if (accepted.exit_code != protocol::kExitOk) return emit(accepted);
  std::fflush(stdout);
  auto totals = client.read_results(STDOUT_FILENO);
  if (!totals) return emit(format_client_error(plan, totals.error(), format));
  return emit(format_results(plan, *totals, format));
}

}  // namespace

int emit(const Output& output) {
  std::fwrite(output.out.data(), 1, output.out.size(), stdout);
  std::fflush(stdout);
  std::fwrite(output.err.data(), 1, output.err.size(), stderr);
  return output.exit_code;
}

Plan plan_line(const GlobalArgs& line) {
  Plan plan;
  plan.format = line.format;
  const std::vector<std::string>& words = line.words;
  if (words.empty()) {
    // Only the shell gets here, for a line of global options alone.
    plan.local = {"",
                  "corralctl: no COMMAND after the options\n"
                  "run 'help' for the list of commands\n",
                  protocol::kExitUsage};
    return plan;
  }
  if (words.front().size() > 1 && words.front()[0] == '-') {
    plan.local = {"",
                  "corralctl: unknown option '" + words.front() +
                      "'\nrun 'corralctl help' for the list of commands\n",
                  protocol::kExitUsage};
    return plan;
  }
  std::vector<std::string> args(words.begin() + 1, words.end());
  return plan_command(words.front(), args, line.format);
}

int run_plan(const Plan& plan, const std::function<SocketChoice()>& socket_of) {
  if (!plan.request) return emit(plan.local);
  // Submit's file is opened before corrald is asked: a missing file submits nothing.
  InputFile file;
  if (plan.submit && plan.submit->file) {
    if (Status opened = file.open(*plan.submit->file); !opened) {
      return emit(
          {"", "corralctl: submit: " + opened.error().message() + "\n", protocol::kExitUsage});
    }
  }

  SocketChoice socket = socket_of();
  if (!socket.errors.empty()) {
    std::string err;
    for (const auto& error : socket.errors) err += "corralctl: " + error + "\n";
    return emit({"", err, protocol::kExitUsage});
  }

  if (plan.top) return run_top(socket.path, *plan.top);
  auto client = Client::connect(socket.path);
  if (!client) return emit(format_client_error(plan, client.error(), plan.format));
  if (plan.submit) return submit(*client, plan, file, plan.format);
  if (plan.stream) return stream(*client, plan, plan.format);
  if (plan.fg) return foreground(*client, plan, plan.format);
  if (plan.results) return results(*client, plan, plan.format);
  auto reply = client->call(*plan.request);
  if (!reply) return emit(format_client_error(plan, reply.error(), plan.format));
  return emit(format_reply(plan, *reply, plan.format));
}

bool needs_full(const GlobalArgs& line, const Plan& plan, const char* socket_env) {
  if (line.words.empty() || plan.import) return true;
  return plan.request && line.config && !named_socket(line.socket, socket_env);
}

}  // namespace corral::ctl

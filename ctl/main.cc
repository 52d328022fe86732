// corralctl: the control client of corrald (docs/control-protocol.md).
//   corralctl [-s SOCKET | -c CONFIG] [--json] COMMAND [ARGS]
// Global options come before COMMAND; what follows it belongs to the command.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "ctl/client.h"
#include "ctl/commands.h"
#include "protocol/control.h"

namespace {

namespace ctl = corral::ctl;
namespace protocol = corral::protocol;

int emit(const ctl::Output& output) {
  std::fwrite(output.out.data(), 1, output.out.size(), stdout);
  std::fflush(stdout);
  std::fwrite(output.err.data(), 1, output.err.size(), stderr);
  return output.exit_code;
}

// An input file of submit, closed on every return.
class InputFile {
 public:
  InputFile() = default;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    if (owned_) ::close(fd_);
  }
  // FILE, or stdin for "-"; an error message ("cannot open F: why") if it fails.
  std::string open(const std::string& file) {
    if (file == "-") {
      fd_ = STDIN_FILENO;
      return "";
    }
    fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return "cannot open " + file + ": " + std::strerror(errno);
    owned_ = true;
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode))
      return "cannot read " + file + ": Is a directory";
    return "";
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool owned_ = false;
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
  std::fflush(stdout);
  auto totals = client.submit(*plan.request, input, STDOUT_FILENO, STDERR_FILENO);
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
      text = message.dump(-1, ' ', false, protocol::Json::error_handler_t::replace) + "\n";
    } else if (auto data = message.find("data"); data != message.end() && data->is_string()) {
      text = data->get<std::string>();
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!status) return emit(ctl::format_client_error(plan, status.error(), format));
  return protocol::kExitOk;
}

int run(const std::string& socket_flag, const std::string& config_flag, ctl::Format format,
        const std::vector<std::string>& words) {
  if (words.empty()) {
    // An interactive shell will live here; until then, say what there is.
    return emit({"", ctl::overview(), protocol::kExitUsage});
  }
  if (words.front().size() > 1 && words.front()[0] == '-') {
    return emit({"",
                 "corralctl: unknown option '" + words.front() +
                     "'\nrun 'corralctl help' for the list of commands\n",
                 protocol::kExitUsage});
  }
  std::vector<std::string> args(words.begin() + 1, words.end());
  ctl::Plan plan = ctl::plan_command(words.front(), args, format);
  if (!plan.request) return emit(plan.local);
  // Submit's file is opened before corrald is asked: a missing file submits nothing.
  InputFile file;
  if (plan.submit && plan.submit->file) {
    if (std::string error = file.open(*plan.submit->file); !error.empty()) {
      return emit({"", "corralctl: submit: " + error + "\n", protocol::kExitUsage});
    }
  }

  auto optional = [](const std::string& value) {
    return value.empty() ? std::nullopt : std::optional<std::string>(value);
  };
  ctl::SocketChoice socket = ctl::resolve_socket(
      optional(socket_flag), std::getenv("CORRAL_SOCKET"), optional(config_flag));
  if (!socket.errors.empty()) {
    std::string err;
    for (const auto& error : socket.errors) err += "corralctl: " + error + "\n";
    return emit({"", err, protocol::kExitUsage});
  }

  auto client = ctl::Client::connect(socket.path);
  if (!client) return emit(ctl::format_client_error(plan, client.error(), format));
  if (plan.submit) return submit(*client, plan, file, format);
  if (plan.stream) return stream(*client, plan, format);
  auto reply = client->call(*plan.request);
  if (!reply) return emit(ctl::format_client_error(plan, reply.error(), format));
  return emit(ctl::format_reply(plan, *reply, format));
}

int parse_and_run(int argc, char** argv) {
  CLI::App app{"corralctl: control corrald, the corral worker supervisor", "corralctl"};
  std::string socket_flag;
  std::string config_flag;
  bool json = false;
  auto* socket = app.add_option("-s,--socket", socket_flag, "the control socket of corrald");
  auto* config = app.add_option("-c,--config", config_flag, "take the socket from this config");
  socket->excludes(config);
  config->excludes(socket);
  app.add_flag("--json", json, "print JSON instead of text");
  // One help text for `-h` and `help`: the command list says more than CLI11 would.
  bool help = false;
  app.set_help_flag();
  app.add_flag("-h,--help", help, "show the commands and options");
  // Stop at COMMAND: the rest is the command's, options included.
  app.prefix_command();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::cerr << "corralctl: " << e.what() << "\nrun 'corralctl help' for the options\n";
    return protocol::kExitUsage;
  }
  if (help) {
    std::cout << ctl::overview();
    return protocol::kExitOk;
  }
  if (socket->count() > 0 && socket_flag.empty()) {
    std::cerr << "corralctl: -s needs a socket path\n";
    return protocol::kExitUsage;
  }
  if (config->count() > 0 && config_flag.empty()) {
    std::cerr << "corralctl: -c needs a config file\n";
    return protocol::kExitUsage;
  }
  return run(socket_flag, config_flag, json ? ctl::Format::kJson : ctl::Format::kText,
             app.remaining());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return parse_and_run(argc, argv);
  } catch (const std::exception& e) {
    // Nothing throws by design; out of memory is what is left.
    std::cerr << "corralctl: " << e.what() << "\n";
    return protocol::kExitFailed;
  }
}

// corralctl-full: corralctl with the parts that need YAML or a terminal,
// which corralctl hands its command line to (ctl::needs_full): the shell,
// a config's socket (-c) and import. Installed in libexec; run as corralctl.
//   corralctl [-s SOCKET | -c CONFIG] [--json] [COMMAND [ARGS]]
// Global options come before COMMAND; what follows it belongs to the command.
// Without a COMMAND, corralctl is a shell (ctl/shell.h) whose lines run as
// `corralctl [the same global options] LINE` would: both paths go through
// ctl::split_global_args and run.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/config_socket.h"
#include "ctl/import.h"
#include "ctl/run.h"
#include "ctl/shell.h"
#include "protocol/control.h"
#include "protocol/exit_codes.h"

namespace {

namespace ctl = corral::ctl;
namespace protocol = corral::protocol;

using ctl::emit;

// The socket the options name (or CORRAL_SOCKET, or the config's, or the default).
ctl::SocketChoice socket_of(const ctl::GlobalArgs& options) {
  return ctl::resolve_socket(options.socket, std::getenv("CORRAL_SOCKET"), options.config);
}

// Runs COMMAND ARGS... (the words of LINE) with its options: the one-shot
// path and each line of the shell.
int run(const ctl::GlobalArgs& line) {
  ctl::Plan plan = ctl::plan_line(line);
  if (plan.import) return emit(ctl::run_import(*plan.import, plan.format));
  return ctl::run_plan(plan, [&line] { return socket_of(line); });
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

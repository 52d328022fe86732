// corralctl: the control client of corrald (docs/control-protocol.md).
//   corralctl [-s SOCKET | -c CONFIG] [--json] COMMAND [ARGS]
// Global options come before COMMAND; what follows it belongs to the command.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
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

// corralctl: the control client of corrald (docs/corralctl.md,
// docs/control-protocol.md).
//   corralctl [-s SOCKET | -c CONFIG] [--json] [COMMAND [ARGS]]
// Global options come before COMMAND; what follows it belongs to the command.
//
// This program runs a command against corrald's socket and nothing else,
// so that a command started from a script's loop costs little more than
// starting a process (docs/performance.md, "corralctl status"): it links no
// YAML parser, no line editor, no name service. A line that needs them (the
// shell, -c's config, import; ctl::needs_full) goes whole to corralctl-full,
// exec'd in its place from beside this program or from libexec.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/companion_program.h"
#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/run.h"
#include "protocol/exit_codes.h"

namespace {

namespace ctl = corral::ctl;
namespace protocol = corral::protocol;

// Replaces this process with corralctl-full, given the same ARGV; returns
// only when no copy of it could be started, having said so.
int hand_to_full(char** argv) {
#ifdef CORRAL_CTL_FULL_INSTALLED
  const char* installed = CORRAL_CTL_FULL_INSTALLED;
#else
  const char* installed = nullptr;
#endif
  std::string tried;
  for (const std::string& path : corral::companion_program_paths("corralctl-full", installed)) {
    ::execv(path.c_str(), argv);
    tried += "\n  " + path + ": " + std::strerror(errno);
  }
  std::fprintf(stderr,
               "corralctl: the shell, -c CONFIG and import run in corralctl-full, which could "
               "not be started:%s\n",
               tried.c_str());
  return protocol::kExitFailed;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    ctl::GlobalArgs line = ctl::split_global_args(args);
    if (line.answer) return ctl::emit(*line.answer);
    ctl::Plan plan = line.words.empty() ? ctl::Plan{} : ctl::plan_line(line);
    const char* socket_env = std::getenv("CORRAL_SOCKET");
    if (ctl::needs_full(line, plan, socket_env)) return hand_to_full(argv);
    return ctl::run_plan(plan, [&] { return ctl::socket_without_config(line.socket, socket_env); });
  } catch (const std::exception& e) {
    // Nothing throws by design; out of memory is what is left.
    std::fprintf(stderr, "corralctl: %s\n", e.what());
    return protocol::kExitFailed;
  }
}

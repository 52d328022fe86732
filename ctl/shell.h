// corralctl's shell (docs/corralctl.md): `corralctl` without a COMMAND reads
// command lines and runs each one as `corralctl [the same global options]
// WORDS...` would, with the same output and exit codes. On a terminal it is
// an editing shell (libedit): the `corral> ` prompt, a history file, tab
// completion of commands, options and the daemon's targets, and Ctrl-C ends
// the running command, not the shell. Otherwise it reads commands from stdin,
// one per line, without a prompt or history. Not thread-safe: it owns the
// process's SIGINT disposition while it runs.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace corral::ctl {

// What the shell needs of corralctl.
struct ShellHooks {
  // Runs `corralctl [global options] WORDS...`: prints what it prints and
  // returns its exit code. Must not throw.
  std::function<int(const std::vector<std::string>& words)> run;
  // The daemon's workers as JOB:INDEX names; empty when corrald cannot be
  // asked. Must not throw.
  std::function<std::vector<std::string>()> worker_names;
};

// The shell on a terminal: reads lines on stdin with libedit until quit,
// exit or Ctrl-D, and runs each in a child process. Returns 0.
int run_interactive_shell(const ShellHooks& hooks);

// Commands from FD, one per line, without prompt or history; quit or exit
// end them early. Returns the exit code of the last command that failed, or
// 0 when none did.
int run_command_script(const ShellHooks& hooks, int fd);

}  // namespace corral::ctl

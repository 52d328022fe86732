// Running one corralctl command line: its plan (ctl/commands.h), then the
// request to corrald and its reply printed, or the streams of submit, tail,
// fg and results. Both programs run their lines through here: corralctl,
// the one-shot client, and corralctl-full, which also has what needs YAML
// or a terminal (the shell, -c, import; ctl/full_main.cc). corralctl hands
// a line to corralctl-full when needs_full says so.
#pragma once

#include <functional>

#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/commands.h"

namespace corral::ctl {

// Prints OUTPUT (out on stdout, err on stderr) and returns its exit code.
int emit(const Output& output);

// LINE's command planned; no command, or an option corralctl does not
// know where the command should be, is a usage error (exit 2) in `local`.
Plan plan_line(const GlobalArgs& line);

// Runs PLAN and returns the exit code: its local answer printed, or its
// request sent to the corrald at SOCKET_OF() (asked once a submit's file is
// open, so that a missing file never reaches corrald; its errors are usage
// errors) and the reply or the stream printed as it comes. Not for import,
// which talks to no corrald (ctl/import.h).
int run_plan(const Plan& plan, const std::function<SocketChoice()>& socket_of);

// Whether corralctl leaves LINE (planned as PLAN) to corralctl-full: the
// shell (no command), import, and a request whose socket the config names
// (-c, with neither -s nor CORRAL_SOCKET, SOCKET_ENV here, to come first).
bool needs_full(const GlobalArgs& line, const Plan& plan, const char* socket_env);

}  // namespace corral::ctl

// What /proc says of processes, for tests that check which processes corral
// started, kept, reaped or left behind, and what each holds open. Every call
// reads /proc afresh; a process that is gone reads as empty. Thread-safe (no
// state).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace corral::testing {

// The fields of /proc/PID/stat from the third (the state) on, so that
// fields[0] is proc(5)'s field 3; empty when PID is gone.
std::vector<std::string> stat_fields(pid_t pid);
bool process_alive(pid_t pid);  // exists and is not a zombie
pid_t parent_of(pid_t pid);     // 0 when PID is gone
// The command name (/proc/PID/comm without its newline), "" when gone.
std::string comm_of(pid_t pid);

// The live (not zombie) children of PARENT.
std::vector<pid_t> children_of(pid_t parent);
// The live children of PARENT whose command name is COMM.
std::vector<pid_t> children_named(pid_t parent, const std::string& comm);
// How many children of PARENT have exited and not been reaped.
int zombies_of(pid_t parent);

// The environment of PID, one "NAME=value" a string.
std::vector<std::string> environment_of(pid_t pid);
// The value of NAME in the environment of PID, "" when it has none.
std::string environment_value(pid_t pid, const std::string& name);
// Live processes whose environment holds ENTRY ("NAME=value"), e.g. every
// worker a test's daemon ever started.
std::vector<pid_t> processes_with_env(const std::string& entry);

// What each open fd of PID refers to ("pipe:[123]", "/dev/null",
// "/memfd:corral-job (deleted)"), sorted.
std::vector<std::string> open_fds(pid_t pid);

}  // namespace corral::testing

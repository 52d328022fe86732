// Without cgroups, what a corrald killed by -9 (or an OOM kill, or a
// crash) leaves: its workers die with it (PR_SET_PDEATHSIG), but not what
// they started in their process groups and sessions. So corrald keeps the
// record of its live workers in daemon.state_dir/workers (pid, start time,
// name: each leads its own session and process group), and the next corrald
// on that state_dir ends what is left of those groups before it starts
// anything (supervision.md, "No orphans").
//
// Never a reused pid: a process is ended only if it is the recorded worker
// itself (same pid and start time) or a member of its process group or
// session that started after it, and only while the recorded pid is not held
// by another process (a pid still in use as a group or session id is never
// given to a new process, so a pid held by another process means that group
// is gone). Records of an earlier boot are ignored. Signals go through
// pidfds, after the process was checked again.
//
// The parsing and the choice are pure (tests give them text and a process
// table); end_leftovers() acts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/proc_stats.h"

namespace corral::daemon {

struct RecordedWorker {
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // /proc/PID/stat's starttime
  std::string name;          // JOB:INDEX
  bool operator==(const RecordedWorker&) const = default;
};

// The file's text for the workers of this boot (BOOT_ID, the kernel's
// /proc/sys/kernel/random/boot_id), and back; an unreadable line or another
// boot's record gives nothing.
std::string format_record(std::string_view boot_id, const std::vector<RecordedWorker>& workers);
std::vector<RecordedWorker> parse_record(std::string_view text, std::string_view boot_id);

// This boot's id ("" when the kernel does not say).
std::string boot_id();

// A process as the choice sees it.
struct ProcessEntry {
  pid_t pid = 0;
  ProcIdentity id;
};

// Which of PROCESSES (the machine's, but this corrald) are left of WORKERS.
std::vector<pid_t> leftovers_of(const std::vector<RecordedWorker>& workers,
                                const std::vector<ProcessEntry>& processes);

// Every process now (/proc), this one and its children excepted.
std::vector<ProcessEntry> process_table();

// Ends the leftovers of WORKERS (SIGKILL through a pidfd, each checked
// again once its pidfd is held); "1234 (sleep), left by web:0" for each.
std::vector<std::string> end_leftovers(const std::vector<RecordedWorker>& workers);

}  // namespace corral::daemon

// Without cgroups, what a corrald killed by -9 (or an OOM kill, or a
// crash) leaves: its workers die with it (PR_SET_PDEATHSIG), but not what
// they started. So corrald keeps the record of its live workers in
// daemon.state_dir/workers (pid, start time, name: each leads its own
// session and process group) and of itself (an instance id its workers get
// as CORRAL_INSTANCE), and the next corrald on that state_dir ends what is
// left of those groups and sessions, and every later process that carries
// that instance id, before it starts anything (supervision.md, "No
// orphans").
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

// What the file holds: the corrald (its instance id, which its workers get
// as CORRAL_INSTANCE and pass on to what they start, and its start time)
// and its live workers.
struct Record {
  std::string instance;
  uint64_t start_ticks = 0;
  std::vector<RecordedWorker> workers;
  bool operator==(const Record&) const = default;
};

// The file's text for this boot (BOOT_ID, the kernel's
// /proc/sys/kernel/random/boot_id), and back; an unreadable line or another
// boot's record gives an empty Record.
std::string format_record(std::string_view boot_id, const Record& record);
Record parse_record(std::string_view text, std::string_view boot_id);

// A new instance id: 16 hex digits from the kernel's random source.
std::string new_instance_id();

// This boot's id ("" when the kernel does not say).
std::string boot_id();

// A process as the choice sees it.
struct ProcessEntry {
  pid_t pid = 0;
  ProcIdentity id;
  std::string instance;  // its CORRAL_INSTANCE, "" without
};

// Which of PROCESSES (the machine's, but this corrald) are left of RECORD:
// as above, and every process that carries the recorded corrald's
// CORRAL_INSTANCE and started after it (a worker's descendant that left
// its group and session, a daemon's double fork, keeps its environment).
std::vector<pid_t> leftovers_of(const Record& record, const std::vector<ProcessEntry>& processes);

// Every process now (/proc), this one and its children excepted.
std::vector<ProcessEntry> process_table();

// Ends the leftovers of RECORD (SIGKILL through a pidfd, each checked again
// once its pidfd is held); "1234 (sleep), left by web:0" for each.
std::vector<std::string> end_leftovers(const Record& record);

}  // namespace corral::daemon

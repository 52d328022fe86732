// Workers in cgroups (docs/supervision.md, "No orphans"): a cgroup v2
// subtree of corrald's own, each worker spawned into JOB/INDEX of it
// (clone3's CLONE_INTO_CGROUP, spawner.h), so that every process a worker
// starts, double-forked or in a session of its own, stays where corrald
// can find it, freeze it and end it (cgroup.kill).
//
// The subtree, DIR (flocked by corrald for its life: one corrald per DIR):
//   DIR/daemon          corrald itself, when it ran in DIR (its own cgroup,
//                       as under systemd): cgroup v2 lets only leaves hold
//                       processes once controllers are handed down
//   DIR/job:NAME/INDEX  worker INDEX of job NAME (':' is in no job name and
//                       in no interface file's, so no job clashes with
//                       either)
//
// choose_cgroup() decides DIR from daemon.cgroup; CgroupTree::take() makes
// it corrald's. Nothing here trusts what a worker could write: files are
// opened relative to DIR without following links, and what they say is
// parsed with bounds.
//
// Not thread-safe: the event loop's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::daemon {

// The mount point of the cgroup2 hierarchy in MOUNTINFO (/proc/self/mountinfo).
std::optional<std::string> cgroup2_mount(std::string_view mountinfo);
// This process's cgroup v2 path ("/system.slice/corrald.service") in
// PROC_CGROUP (/proc/self/cgroup: the "0::" line).
std::optional<std::string> own_cgroup(std::string_view proc_cgroup);
// cgroup.events' "populated" (nullopt when the text has no such line).
std::optional<bool> events_flag(std::string_view events, std::string_view key);

// daemon.cgroup resolved: a directory, or off and why.
struct CgroupChoice {
  std::string dir;      // empty: off
  std::string why_off;  // when off and not asked to be: the reason, said once
};

// SETTING ("auto", "off" or a path) against this machine: auto takes
// corrald's own cgroup if it is not the root and corrald may write it.
CgroupChoice choose_cgroup(const std::string& setting);

// What an earlier corrald left in the subtree, ended at take().
struct Leftover {
  std::string cgroup;                  // "job:web/0"
  std::vector<std::string> processes;  // "1234 (python3)"
};

// Per-worker limits the kernel enforces, where the controller is there.
struct CgroupLimits {
  std::optional<uint64_t> memory_max;   // bytes
  std::optional<uint64_t> memory_high;  // bytes
  std::optional<uint32_t> cpu_percent;  // 150: one and a half CPUs
  std::optional<uint64_t> pids_max;
};

class CgroupTree {
 public:
  // Makes DIR corrald's: DIR made if missing and locked (refused while
  // another corrald holds it), corrald moved into DIR/daemon if it runs in
  // DIR, every process left in DIR/job:* ended and its cgroup removed
  // (LEFTOVERS says what), and the controllers DIR offers (memory, cpu,
  // pids) handed down.
  static Result<CgroupTree> take(const std::string& dir, std::vector<Leftover>* leftovers);
  CgroupTree(CgroupTree&&) = default;
  CgroupTree& operator=(CgroupTree&&) = default;

  const std::string& dir() const { return dir_; }
  // The controllers handed down to the workers' cgroups.
  const std::vector<std::string>& controllers() const { return controllers_; }
  bool has_controller(std::string_view name) const;

  // "job:NAME/INDEX", relative to dir().
  static std::string relative(std::string_view job, uint32_t index);

  // The worker's cgroup made (if missing) with LIMITS written, opened as the
  // directory spawn() clones into. A limit whose controller is missing is
  // left to the sampled limits (the caller knows from has_controller()).
  Result<UniqueFd> prepare(std::string_view job, uint32_t index, const CgroupLimits& limits);
  // Ends every process of it at once (cgroup.kill).
  Status kill(std::string_view job, uint32_t index);
  // Whether processes are left in it (a missing cgroup has none).
  bool populated(std::string_view job, uint32_t index);
  // Freezes or thaws it (cgroup.freeze); whether it says it is frozen.
  Status freeze(std::string_view job, uint32_t index, bool frozen);
  std::optional<bool> frozen(std::string_view job, uint32_t index);
  // memory.events' oom_kill count (for the reason an OOM kill is given).
  std::optional<uint64_t> oom_kills(std::string_view job, uint32_t index);
  // The CPU time of every process it had (cpu.stat usage_usec, always
  // there), and memory.current (with the memory controller).
  struct Usage {
    std::optional<double> cpu_s;
    std::optional<uint64_t> memory_bytes;
  };
  Usage usage(std::string_view job, uint32_t index);
  // Removes it (and the job's cgroup once it holds no other), if empty.
  void remove(std::string_view job, uint32_t index);
  // Removes every worker cgroup that is empty (corrald's clean exit).
  void remove_all();

 private:
  CgroupTree(std::string dir, UniqueFd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  Status write_file(const std::string& relative, std::string_view text);
  // Every DIR/job:NAME/INDEX there is, as (NAME, INDEX).
  std::vector<std::pair<std::string, uint32_t>> worker_cgroups() const;
  std::optional<std::string> read_file(const std::string& relative);

  std::string dir_;
  UniqueFd fd_;  // dir_, opened once
  std::vector<std::string> controllers_;
};

}  // namespace corral::daemon

// Starting a worker process, the one place corral creates processes.
//
// The child is made with clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD), the way
// posix_spawn does it: no page tables are copied, so it costs the same with a
// large daemon, and the pidfd arrives atomically with the pid. Unlike
// posix_spawn it lets the child set PR_SET_PDEATHSIG, so no worker outlives
// the daemon, even after `kill -9`. Before exec the child resets every signal
// disposition and its mask, starts a session of its own (setsid: it leads its
// own process group and has no controlling terminal, so nothing of the
// daemon's terminal reaches it), maps the requested fds onto their targets
// and closes every other fd, then applies the limits, the user and the
// working directory. A failure of any step before exec is reported back as
// the spawn's error, with the step that failed. The environment is the
// request's as it is: worker_env.h decides it.
//
// Boost.Process v2 is not used here: in Boost 1.81 it reaps children itself
// (boostorg/process#496, #503) and cannot set a parent-death signal; corral
// reaps through the pidfd in its event loop (system_host.cc).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/host.h"
#include "daemon/worker_env.h"

namespace corral::daemon {

// What a spawn gave. More than a value or an error, so not a Result: a
// child that failed before exec under CLONE_PARENT comes back with its
// error AND its pidfd, since only its parent can reap it.
struct Launched {
  pid_t pid = 0;
  // With pid == 0 and PARENT kCallersParent: a child that failed before
  // exec, which only its parent can reap.
  UniqueFd pidfd;
  std::string error;  // set when pid == 0
};

// Whose child the worker is: the caller's, or (spawn_server.h) the caller's
// parent's, through CLONE_PARENT.
enum class ParentOf { kCaller, kCallersParent };

// Whether a child with a cgroup_fd is made in its cgroup by clone3()
// (CLONE_INTO_CGROUP, Linux 5.7, x86-64), the default, or joins it by
// writing its cgroup.procs before it execs (older kernels, and tests of that
// path). Either way nothing of the worker runs outside its cgroup.
void use_clone3(bool use);

// The ids a worker of `user: NAME` runs with.
struct UserIds {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;  // NAME's supplementary groups, its primary one among them
};

// NAME (or the uid it spells, as find_account reads it) resolved to its ids
// and groups; the error names the user: "user NAME: no such user", or the
// lookup's own failure.
Result<UserIds> lookup_user(const std::string& name);

// Starts REQUEST's program with FDS mapped; every other fd is closed. The
// child's RLIMIT_NOFILE is `nofile_default` unless the request sets one.
// launch() resolves the request's user (spawn_user) and calls launch_as();
// corral-spawn, which looks up no users, gets them resolved by corrald.
Launched launch(const SpawnRequest& request, const std::vector<FdMapping>& fds,
                const rlimit& nofile_default, ParentOf parent = ParentOf::kCaller);

// The ids REQUEST's `user:` runs with (nullopt: corrald's own), or why it
// cannot: the user's lookup failed, or switching to it needs root.
Result<std::optional<UserIds>> spawn_user(const SpawnRequest& request);

// launch() with the user already resolved; calls no user lookup.
Launched launch_as(const SpawnRequest& request, const std::optional<UserIds>& user,
                   const std::vector<FdMapping>& fds, const rlimit& nofile_default,
                   ParentOf parent = ParentOf::kCaller);

// The passwd entry of NAME, or of the uid NAME spells when no user has that
// name (as `user:` is read); nullopt when there is none or the lookup failed.
std::optional<Account> find_account(const std::string& name);

// The mask after KEY ("SigIgn:", "SigCgt:") in STATUS, /proc/PID/status's
// text: bit N-1 set for signal N. False when KEY's line is not there whole
// (a text cut short). Pure, allocation-free and async-signal-safe: the
// child of a spawn reads its own status with it.
bool signal_mask_in_status(const char* status, size_t size, const char* key, uint64_t& mask);

// The path exec would run for NAME with this PATH: NAME itself when it has
// a '/', else the first executable PATH entry; empty when none.
std::string find_executable(const std::string& name, const std::string& path);

}  // namespace corral::daemon

// The environment a worker starts with, decided from plain values (corrald's
// environment, the passwd entry of the job's `user:`, the job's `env:`,
// `daemon.pass_env`, corral's own variables) so that it is tested without
// processes; looking the user up is the caller's part (spawner.h).
//
// corrald runs as root with root's environment (HOME=/root, root's PATH,
// whatever secrets its service manager or operator put there). A worker of
// another user must not inherit any of it: it starts from what login(1) or
// sudo's env_reset would give that user.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::daemon {

// What the environment needs of a passwd entry.
struct Account {
  uid_t uid = 0;
  std::string name;   // pw_name
  std::string home;   // pw_dir
  std::string shell;  // pw_shell
};

// The job's `user:` as the system knows it.
struct JobUser {
  std::optional<Account> entry;  // nullopt: no such user, or the lookup failed
};

// PATH for a worker of another user: login.defs' ENV_PATH default for users.
inline constexpr std::string_view kUserPath = "/usr/local/bin:/usr/bin:/bin";

// The worker's whole environment, "NAME=value", sorted by name.
//
// No `user:`, or a user with the daemon's uid: DAEMON_ENV without corrald's
// own variables (config::daemon_only_variable), and HOME, USER and LOGNAME
// from USER's entry where DAEMON_ENV lacks them. A user with another uid, or one that could not be
// looked up: HOME, USER, LOGNAME and SHELL from its entry, PATH=kUserPath,
// DAEMON_ENV's LANG, LANGUAGE, LC_* and TZ, then the variables PASS_ENV
// names that DAEMON_ENV has. Then JOB_ENV over either, then CORRAL_ENV over
// everything.
std::vector<std::string> worker_env(const std::vector<std::string>& daemon_env, uid_t daemon_uid,
                                    const std::optional<JobUser>& user,
                                    const std::map<std::string, std::string>& job_env,
                                    const std::vector<std::string>& pass_env,
                                    const std::map<std::string, std::string>& corral_env);

}  // namespace corral::daemon

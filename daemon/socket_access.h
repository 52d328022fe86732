// Who may reach the control socket, and whether the directories it lives in
// are safe for a daemon that runs as root. Decisions only: the user database
// and the directories' owners and modes come in as arguments, so that unit
// tests run them on made-up users and directories; daemon/control.cc
// carries them out (and corrald --check prints the warnings).
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/spec.h"

namespace corral::daemon {

// An account as the user database knows it.
struct UserEntry {
  uid_t uid = 0;
  std::vector<gid_t> groups;  // its primary group and every supplementary one
};

// The user database: getpwnam, getpwuid, getgrnam and getgrouplist, or a
// test's made-up users.
class Accounts {
 public:
  virtual ~Accounts() = default;
  virtual std::optional<UserEntry> user(const std::string& name) const = 0;
  virtual std::optional<UserEntry> user(uid_t uid) const = 0;
  virtual std::optional<gid_t> group(const std::string& name) const = 0;
};
const Accounts& system_accounts();

// daemon.allow_users and allow_groups, resolved.
struct SocketAccess {
  std::set<uid_t> uids;
  std::set<gid_t> gids;
  // The group the socket file is given (allow_groups names exactly one group
  // and allow_users is empty), so that the default socket_mode 0660 lets
  // its members connect.
  std::optional<gid_t> socket_group;
  // Names that are no user or group, and allowed users or groups whom
  // socket_mode keeps out; one line each, for the log at start and for
  // corrald --check.
  std::vector<std::string> warnings;
};

// Each entry of allow_users is a user name, else a uid (digits); of
// allow_groups a group name, else a gid. The socket file is owned by EUID
// and has the group socket_group, else FILE_GID (the daemon's egid).
SocketAccess plan_socket_access(const config::DaemonSpec& daemon, const Accounts& accounts,
                                uid_t euid, gid_t file_gid);
// The same for this process with the system's user database: what
// corrald's control socket does at start, and what corrald --check says.
SocketAccess plan_socket_access(const config::DaemonSpec& daemon);

// A directory's owner and mode (stat).
struct DirectoryStat {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;
};

// Why the directory PATH lets someone other than root and EUID (the daemon's
// uid) replace the control socket or its lock, or "" when it does not. Its
// owner must be root or EUID; group-writable only with group root; writable
// by others only with the sticky bit (like /tmp), under which nobody can
// remove or rename the daemon's files, and whatever another user put there
// first is refused rather than followed (the lock is opened O_NOFOLLOW and
// must be a regular file of EUID; a stale socket file is only unlinked).
std::string unsafe_directory(const std::string& path, const DirectoryStat& dir, uid_t euid);

}  // namespace corral::daemon

// Who may reach the control socket (whose directory must be private, like
// every directory corrald opens files in: private_dir.h). Decisions only:
// the user database comes in as an argument, so that unit tests run them on
// made-up users; daemon/control.cc carries them out (and corrald --check
// prints the warnings).
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

}  // namespace corral::daemon

// The user side of a spawn: `user:` resolved to ids and groups (NSS lookups),
// in corrald. launch() is spawn_user() then launch_as(); the spawn server
// (corral-spawn) gets the ids in its request and looks nothing up.
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "daemon/spawner.h"

namespace corral::daemon {
namespace {

// The passwd entry of NAME, copied out of getpwnam_r's buffer.
struct PasswdEntry {
  uid_t uid;
  gid_t gid;
  std::string name;
  std::string home;
  std::string shell;
};

// getpwnam_r, or getpwuid_r for a numeric NAME that is no user name; the
// error names the user ("user NAME: no such user").
Result<PasswdEntry> find_passwd(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr && rc == 0 && !name.empty() &&
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    rc = getpwuid_r(static_cast<uid_t>(std::stoul(name)), &pw, buf.data(), buf.size(), &found);
  }
  if (found == nullptr) {
    return Error("user " + name + ": " + (rc != 0 ? strerror(rc) : "no such user"));
  }
  return PasswdEntry{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "",
                     pw.pw_shell ? pw.pw_shell : ""};
}

}  // namespace

Result<UserIds> lookup_user(const std::string& name) {
  Result<PasswdEntry> pw = find_passwd(name);
  if (!pw) return std::move(pw).error();
  UserIds user{pw->uid, pw->gid, {}};
  int count = 64;
  user.groups.resize(static_cast<size_t>(count));
  if (getgrouplist(pw->name.c_str(), pw->gid, user.groups.data(), &count) < 0) {
    user.groups.resize(static_cast<size_t>(count));
    getgrouplist(pw->name.c_str(), pw->gid, user.groups.data(), &count);
  }
  user.groups.resize(static_cast<size_t>(std::max(count, 0)));
  return user;
}

std::optional<Account> find_account(const std::string& name) {
  Result<PasswdEntry> pw = find_passwd(name);
  if (!pw) return std::nullopt;
  return Account{pw->uid, std::move(pw->name), std::move(pw->home), std::move(pw->shell)};
}

Result<std::optional<UserIds>> spawn_user(const SpawnRequest& request) {
  if (request.user.empty()) return std::optional<UserIds>();
  Result<UserIds> found = lookup_user(request.user);
  if (!found) return std::move(found).error();
  if (geteuid() != 0 && found->uid != geteuid()) {
    return Error("user " + request.user + ": switching user needs a daemon running as root");
  }
  return std::optional<UserIds>(std::move(*found));
}

Launched launch(const SpawnRequest& request, const std::vector<FdMapping>& fds,
                const rlimit& nofile_default, ParentOf parent) {
  if (request.argv.empty() || request.argv[0].empty())
    return launch_as(request, {}, fds, nofile_default, parent);
  Result<std::optional<UserIds>> user = spawn_user(request);
  if (!user) {
    Launched out;
    out.error = user.error().message();
    return out;
  }
  return launch_as(request, *user, fds, nofile_default, parent);
}

}  // namespace corral::daemon

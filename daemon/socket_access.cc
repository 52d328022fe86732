#include "daemon/socket_access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>

namespace corral::daemon {

namespace {

class SystemAccounts : public Accounts {
 public:
  std::optional<UserEntry> user(const std::string& name) const override {
    passwd* pw = getpwnam(name.c_str());
    if (pw == nullptr) return std::nullopt;
    return entry(pw->pw_name, pw->pw_uid, pw->pw_gid);
  }
  std::optional<UserEntry> user(uid_t uid) const override {
    passwd* pw = getpwuid(uid);
    if (pw == nullptr) return std::nullopt;
    return entry(pw->pw_name, pw->pw_uid, pw->pw_gid);
  }
  std::optional<gid_t> group(const std::string& name) const override {
    struct group* gr = getgrnam(name.c_str());
    if (gr == nullptr) return std::nullopt;
    return gr->gr_gid;
  }

 private:
  static UserEntry entry(const std::string& name, uid_t uid, gid_t gid) {
    UserEntry user{uid, {}};
    int count = 64;
    user.groups.resize(static_cast<size_t>(count));
    // Too small a list: getgrouplist says how many there are.
    if (getgrouplist(name.c_str(), gid, user.groups.data(), &count) < 0) {
      user.groups.resize(static_cast<size_t>(count));
      if (getgrouplist(name.c_str(), gid, user.groups.data(), &count) < 0) count = 0;
    }
    user.groups.resize(static_cast<size_t>(count));
    if (user.groups.empty()) user.groups.push_back(gid);
    return user;
  }
};

// TEXT as an id when it is only digits (and not -1, which means "no id").
std::optional<uint32_t> numeric_id(const std::string& text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint32_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (error != std::errc() || end != text.data() + text.size() || id == UINT32_MAX) {
    return std::nullopt;
  }
  return id;
}

std::string octal(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

// "lets only its owner (uid 0) and its group (gid 0) connect".
std::string who_may_connect(unsigned mode, uid_t owner, gid_t group) {
  std::vector<std::string> who;
  if (mode & S_IWUSR) who.push_back("its owner (uid " + std::to_string(owner) + ")");
  if (mode & S_IWGRP) who.push_back("its group (gid " + std::to_string(group) + ")");
  if (who.empty()) return "lets no one but root connect";
  std::string text = "lets only " + who[0];
  if (who.size() > 1) text += " and " + who[1];
  return text + " connect";
}

}  // namespace

const Accounts& system_accounts() {
  static const SystemAccounts accounts;
  return accounts;
}

SocketAccess plan_socket_access(const config::DaemonSpec& daemon, const Accounts& accounts,
                                uid_t euid, gid_t file_gid) {
  SocketAccess access;
  std::vector<std::pair<std::string, UserEntry>> users;
  for (const auto& name : daemon.allow_users) {
    std::optional<UserEntry> user = accounts.user(name);
    if (!user) {
      if (auto uid = numeric_id(name)) {
        // A uid need not be in the user database (a container's, say).
        user = accounts.user(static_cast<uid_t>(*uid));
        if (!user) user = UserEntry{static_cast<uid_t>(*uid), {}};
      }
    }
    if (!user) {
      access.warnings.push_back("daemon.allow_users: no such user \"" + name +
                                "\" (a user name or a uid)");
      continue;
    }
    access.uids.insert(user->uid);
    users.emplace_back(name, *user);
  }
  std::vector<std::pair<std::string, gid_t>> groups;
  for (const auto& name : daemon.allow_groups) {
    std::optional<gid_t> gid = accounts.group(name);
    if (!gid) {
      if (auto number = numeric_id(name)) gid = static_cast<gid_t>(*number);
    }
    if (!gid) {
      access.warnings.push_back("daemon.allow_groups: no such group \"" + name +
                                "\" (a group name or a gid)");
      continue;
    }
    access.gids.insert(*gid);
    groups.emplace_back(name, *gid);
  }
  if (daemon.allow_users.empty() && daemon.allow_groups.size() == 1 && groups.size() == 1) {
    access.socket_group = groups[0].second;
  }

  // Connecting to a Unix socket needs write permission on its file, judged
  // as for any file: the owner's bits, else the group's, else the others'.
  const unsigned mode = daemon.socket_mode;
  const gid_t socket_gid = access.socket_group.value_or(file_gid);
  auto cannot_connect = [&](const std::string& key, const std::string& name) {
    access.warnings.push_back("daemon." + key + ": " + name + " cannot connect: socket_mode " +
                              octal(mode) + " " + who_may_connect(mode, euid, socket_gid) +
                              "; set socket_mode: \"0666\" (every peer is still checked with "
                              "SO_PEERCRED)");
  };
  for (const auto& [name, user] : users) {
    bool may = false;
    if (user.uid == 0) {
      may = true;
    } else if (user.uid == euid) {
      may = (mode & S_IWUSR) != 0;
    } else if (std::find(user.groups.begin(), user.groups.end(), socket_gid) != user.groups.end()) {
      may = (mode & S_IWGRP) != 0;
    } else {
      may = (mode & S_IWOTH) != 0;
    }
    if (!may) cannot_connect("allow_users", name);
  }
  for (const auto& [name, gid] : groups) {
    bool may = gid == socket_gid ? (mode & S_IWGRP) != 0 : (mode & S_IWOTH) != 0;
    if (!may) cannot_connect("allow_groups", name);
  }
  return access;
}

SocketAccess plan_socket_access(const config::DaemonSpec& daemon) {
  // A new file gets the group of a set-group-ID directory, else ours.
  gid_t file_gid = getegid();
  std::string dir = std::filesystem::path(daemon.socket).parent_path().string();
  struct stat st {};
  if (::stat(dir.empty() ? "." : dir.c_str(), &st) == 0 && (st.st_mode & S_ISGID) != 0) {
    file_gid = st.st_gid;
  }
  return plan_socket_access(daemon, system_accounts(), geteuid(), file_gid);
}

}  // namespace corral::daemon

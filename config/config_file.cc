#include "config/config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "base/unique_fd.h"
#include "config/parse.h"
#include "config/units.h"

namespace corral::config {
namespace {

// "nobody (uid 65534)", or "uid 65534" for an id without a name.
std::string user_text(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  std::string id = "uid " + std::to_string(uid);
  if (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return id;
  }
  return std::string(found->pw_name) + " (" + id + ")";
}

std::string group_text(gid_t gid) {
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  std::string id = "gid " + std::to_string(gid);
  if (getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return id;
  }
  return std::string(found->gr_name) + " (" + id + ")";
}

}  // namespace

Status check_config_owner(const struct stat& st, const std::string& path, uid_t euid, gid_t egid) {
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (st.st_uid != 0 && st.st_uid != euid) {
    return Error("refused: it is owned by " + user_text(st.st_uid) +
                 ", not by root or the user reading the config (" + user_text(euid) +
                 "); fix: chown root " + path);
  }
  if ((st.st_mode & S_IWOTH) != 0) {
    return Error(std::string("refused: it is writable by others (mode ") + mode +
                 "); fix: chmod o-w " + path);
  }
  if ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0 && st.st_gid != egid) {
    return Error("refused: it is writable by group " + group_text(st.st_gid) + " (mode " + mode +
                 "); fix: chmod g-w " + path);
  }
  return {};
}

Result<std::string> read_config_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer, and hang
  // `--check` or the daemon's reload; only regular files are read.
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) return errno_error("cannot open");
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error("cannot read");
  if (S_ISDIR(st.st_mode)) return Error("cannot read: it is a directory");
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a file";
    return Error(std::string("cannot read: it is ") + kind + ", not a regular file");
  }
  if (Status trusted = check_config_owner(st, path, geteuid(), getegid()); !trusted) {
    return std::move(trusted).error();
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    return Error("file is " + std::to_string(st.st_size) +
                 " bytes; a config file may hold at most " + format_size(kMaxConfigBytes));
  }
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot read");
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    // A file that grows, or a pipe, is cut off here rather than read forever.
    if (text.size() > kMaxConfigBytes) {
      return Error("file is larger than " + format_size(kMaxConfigBytes) +
                   ", the most a config file may hold");
    }
  }
  return text;
}

}  // namespace corral::config

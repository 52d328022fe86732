#include "daemon/state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "daemon/private_dir.h"
#include "daemon/safe_file.h"

namespace corral::daemon {

namespace {

// The pid a holder of the lock wrote into it; nullopt while it has not yet.
std::optional<long> holder_pid(int lock_fd) {
  char text[32] = {};
  const ssize_t n = ::pread(lock_fd, text, sizeof text - 1, 0);
  if (n <= 0) return std::nullopt;
  char* end = nullptr;
  const long pid = ::strtol(text, &end, 10);
  if (end == text || pid <= 0) return std::nullopt;
  return pid;
}

// Where the directory DIR_FD really is, so that the spools' paths pass
// through no symbolic link; PATH when /proc cannot say.
std::string real_path_of(int dir_fd, const std::string& path) {
  char target[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(dir_fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target);
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof target) || target[0] != '/') return path;
  return std::string(target, static_cast<size_t>(n));
}

Error state_dir_link_error(const std::string& path) {
  return Error("daemon.state_dir " + path +
               " is a symbolic link: refused (corrald keeps its state only in a real directory: "
               "set state_dir to the directory the link leads to)");
}

}  // namespace

StateDir::StateDir(std::string path, std::string real_path, UniqueFd dir, UniqueFd lock,
                   std::string warning)
    : path_(std::move(path)),
      real_path_(std::move(real_path)),
      dir_(std::move(dir)),
      lock_(std::move(lock)),
      warning_(std::move(warning)) {}

Result<StateDir> StateDir::open(const std::string& path, bool enforce_private) {
  struct stat seen {};
  if (::lstat(path.c_str(), &seen) == 0 && S_ISLNK(seen.st_mode)) {
    return state_dir_link_error(path);
  }
  PrivateDir opened = open_private_dir(path, "daemon.state_dir", /*create=*/true, enforce_private,
                                       /*create_mode=*/0700);
  if (!opened.dir) return Error(std::move(opened.error));
  std::string warning = std::move(opened.warning);
  // The walk follows links; the last name must be the directory itself, as
  // it is now (not a link put there after the look above).
  UniqueFd dir(::fcntl(opened.dir->fd(), F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) return errno_error("daemon.state_dir " + path);
  opened.dir.reset();
  struct stat held {};
  if (::fstat(dir.get(), &held) != 0) return errno_error("daemon.state_dir " + path);
  if (::lstat(path.c_str(), &seen) != 0) return errno_error("daemon.state_dir " + path);
  if (S_ISLNK(seen.st_mode)) return state_dir_link_error(path);
  if (seen.st_dev != held.st_dev || seen.st_ino != held.st_ino) {
    return Error("daemon.state_dir " + path + " was replaced while corrald opened it");
  }

  // spool/, made 0700, and held to the private-directory rule as its last step.
  if (::mkdirat(dir.get(), "spool", 0700) != 0 && errno != EEXIST) {
    return errno_error("daemon.state_dir " + path + ": cannot create spool/");
  }
  const std::string spool_dir = path + "/spool";
  struct stat spool {};
  if (::fstatat(dir.get(), "spool", &spool, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno_error("daemon.state_dir " + spool_dir);
  }
  if (!S_ISDIR(spool.st_mode)) {
    return Error("daemon.state_dir " + spool_dir + " is not a directory: refused (move it away)");
  }
  const PathStep step{spool_dir, spool.st_uid, spool.st_gid, spool.st_mode};
  if (auto problem = private_dir_problem({step}, ::geteuid(), ::getegid())) {
    std::string text = "daemon.state_dir " + spool_dir +
                       " is not private: " + describe_problem(*problem, step, "", "") +
                       "; fix: " + fix_for_problem(*problem, step);
    if (enforce_private) return Error(text + ", or set daemon.private_dirs: false");
    if (warning.empty()) warning = text + "; daemon.private_dirs is false: going on";
  }

  const std::string lock_path = path + "/" + kLockName;
  UniqueFd lock(
      ::openat(dir.get(), kLockName, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!lock.valid()) {
    if (errno == ELOOP) return Error("lock file " + lock_path + " is a symbolic link: refused");
    return errno_error("lock file " + lock_path);
  }
  struct stat lock_stat {};
  if (::fstat(lock.get(), &lock_stat) != 0) return errno_error("lock file " + lock_path);
  if (auto refusal = file_refusal(lock_stat, ::geteuid())) {
    return Error("lock file " + lock_path + " " + *refusal + ": refused (remove it)");
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return errno_error("lock file " + lock_path + ": flock");
    std::optional<long> pid = holder_pid(lock.get());
    return Error("state_dir " + path + " is in use by another corrald" +
                 (pid ? " (pid " + std::to_string(*pid) + ")" : std::string()));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock.get(), 0) != 0 ||
      ::pwrite(lock.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return errno_error("lock file " + lock_path + ": cannot write the pid");
  }
  std::string real_path = real_path_of(dir.get(), path);
  return StateDir(path, std::move(real_path), std::move(dir), std::move(lock), std::move(warning));
}

std::string StateDir::spool_path(std::string_view job) const {
  return real_path_ + "/spool/" + std::string(job) + ".sqlite";
}

std::string StateDir::read(std::string_view name) const {
  UniqueFd fd(::openat(dir_.get(), std::string(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return "";
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

Status StateDir::replace(std::string_view name, std::string_view text) const {
  const std::string temporary = std::string(name) + ".new";
  ::unlinkat(dir_.get(), temporary.c_str(), 0);
  UniqueFd fd(::openat(dir_.get(), temporary.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return errno_error(path_ + "/" + temporary);
  while (!text.empty()) {
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(path_ + "/" + temporary);
    text.remove_prefix(static_cast<size_t>(n));
  }
  if (::renameat(dir_.get(), temporary.c_str(), dir_.get(), std::string(name).c_str()) < 0) {
    return errno_error(path_ + "/" + std::string(name));
  }
  return {};
}

}  // namespace corral::daemon

#include "daemon/safe_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

namespace corral::daemon {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

}  // namespace

std::optional<std::string> file_refusal(const struct stat& file, uid_t euid) {
  if (!S_ISREG(file.st_mode)) return std::string("is ") + kind_of(file.st_mode);
  // A second name for the file: a hard link that someone made to a file of
  // root's (/etc/shadow) from a directory they can write.
  if (file.st_nlink > 1) return "has " + std::to_string(file.st_nlink) + " hard links";
  // Root's own files and corrald's are the only ones it made or trusts; a
  // file of anyone else's was put there by them.
  if (file.st_uid != 0 && file.st_uid != euid) {
    return "is owned by uid " + std::to_string(file.st_uid) + ", not by root or corrald's uid " +
           std::to_string(euid);
  }
  return std::nullopt;
}

std::string SafeDir::path_of(std::string_view name) const {
  std::string path = path_;
  if (path.empty() || path.back() != '/') path += '/';
  return path.append(name);
}

std::optional<struct stat> SafeDir::stat(std::string_view name) const {
  struct stat st {};
  if (::fstatat(dir_.get(), std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return std::nullopt;
  }
  return st;
}

int SafeDir::rename(std::string_view from, std::string_view to) const {
  if (::renameat(dir_.get(), std::string(from).c_str(), dir_.get(), std::string(to).c_str()) != 0) {
    return errno;
  }
  return 0;
}

Result<OpenedFile> SafeDir::open(std::string_view name, FileUse use, std::string_view what) const {
  const std::string file(name);
  auto refuse = [&](const std::string& why) {
    return Error(std::string(what) + " " + path_of(name) + " " + why + ": refused");
  };
  auto failed = [&](int error) {
    return errno_error(std::string(what) + " " + path_of(name), error);
  };
  if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
    return refuse("is not a file name");
  }
  // Looked at first, so that a device or FIFO is refused without being
  // opened at all (opening some devices does things); the fstat after the
  // open is what decides, since the name can change in between.
  if (auto before = stat(file)) {
    if (auto why = file_refusal(*before, ::geteuid())) return refuse(*why);
  }
  int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  switch (use) {
    case FileUse::kAppend:
      // Readable too, so that a sink can look at its last byte.
      flags |= O_RDWR | O_APPEND | O_CREAT;
      break;
    case FileUse::kTruncate:
      flags |= O_WRONLY;
      break;
    case FileUse::kRead:
      flags |= O_RDONLY;
      break;
    case FileUse::kLock:
      flags |= O_RDONLY | O_CREAT;
      break;
  }
  OpenedFile opened;
  opened.fd.reset(::openat(dir_.get(), file.c_str(), flags, use == FileUse::kLock ? 0600 : 0640));
  if (!opened.fd.valid()) {
    const int error = errno;
    if (error == ENOENT && use != FileUse::kAppend && use != FileUse::kLock) {
      opened.missing = true;
      return opened;
    }
    // ELOOP: a link put there since the look above (O_NOFOLLOW); ENXIO: a
    // FIFO without a reader, or a socket. Say what is there if we can.
    if (auto now = stat(file); now && file_refusal(*now, ::geteuid())) {
      return refuse(*file_refusal(*now, ::geteuid()));
    }
    if (error == ELOOP) return refuse("is a symbolic link");
    return failed(error);
  }
  if (::fstat(opened.fd.get(), &opened.st) != 0) return failed(errno);
  if (auto why = file_refusal(opened.st, ::geteuid())) return refuse(*why);
  return opened;
}

std::pair<std::string, std::string> split_file_path(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace corral::daemon

// Files corrald opens on someone else's behalf: worker logs it appends to,
// truncates and tails, a job's sink it appends to and its source it reads.
// corrald runs as root and these live in directories that a worker's user may
// be able to write, so a name there may be a link to /etc/shadow, a FIFO that
// no one reads, or a hard link to a file of root's. Each such file is opened
// here: relative to its directory, held as an fd since the daemon started
// using it; with O_NOFOLLOW (a symbolic link fails with ELOOP) and
// O_NONBLOCK (a FIFO never makes the event loop wait); then fstat of what was
// opened decides: anything but a regular file with one link, owned by root or
// by corrald's own user, is refused with an error naming the file and why.
//
// Not thread-safe objects; fds are closed by their owners (base/unique_fd.h).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::daemon {

// Why the file FILE describes (fstat of the opened fd, or fstatat without
// following links) may not be used by a daemon running as EUID: "is a
// symbolic link", "is a FIFO (named pipe)", "has 2 hard links", "is owned by
// uid 65534"; nullopt when it is a regular file with one link, owned by root
// or EUID. Pure: the rule itself, tested on made-up stat results.
std::optional<std::string> file_refusal(const struct stat& file, uid_t euid);

// How a file is opened.
enum class FileUse {
  kAppend,    // write at the end, created 0640 when missing (logs, sinks)
  kTruncate,  // write, never created (`corralctl clear`)
  kRead,      // read only (sources, `corralctl tail`)
  kLock,      // read only, created 0600 when missing: a file to flock (SOCKET.lock)
};

// A file opened, and its fstat; or nothing at the name, where the use does
// not create the file (kTruncate, kRead).
struct OpenedFile {
  UniqueFd fd;  // empty when missing
  struct stat st {};
  bool missing = false;
};

// A directory held open for the daemon's life, whose files are opened,
// renamed and looked at only relative to it.
class SafeDir {
 public:
  // DIR: an fd of the directory (O_DIRECTORY); PATH: how messages name it.
  SafeDir(std::string path, UniqueFd dir) : path_(std::move(path)), dir_(std::move(dir)) {}

  const std::string& path() const { return path_; }
  int fd() const { return dir_.get(); }
  // PATH/NAME, for messages.
  std::string path_of(std::string_view name) const;

  // Opens NAME (a plain file name, no '/') for USE. Never follows a link and
  // never blocks. The error names the file after WHAT and says why:
  // "log file /var/log/corral/web-0.out.log is a symbolic link: refused", or
  // "...: Permission denied".
  Result<OpenedFile> open(std::string_view name, FileUse use, std::string_view what) const;
  // fstatat(NAME) without following a link; nullopt with errno set when
  // nothing is there or it cannot be looked at.
  std::optional<struct stat> stat(std::string_view name) const;
  // renameat(FROM, TO) within the directory; 0 or an errno.
  int rename(std::string_view from, std::string_view to) const;

 private:
  std::string path_;
  UniqueFd dir_;
};

// Splits PATH into its directory and its file name ("/a/b.log" -> "/a",
// "b.log"; "b.log" -> ".", "b.log"); the name is empty when PATH ends in '/'.
std::pair<std::string, std::string> split_file_path(const std::string& path);

}  // namespace corral::daemon

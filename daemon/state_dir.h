// daemon.state_dir (default /var/lib/corral): where corrald keeps what must
// outlive it, such as the spools of durable jobs (spool/JOB.sqlite). It is
// root's alone: private like every directory corrald opens files in
// (daemon/private_dir.h), created 0700 when missing, never a symbolic link
// itself, and held by one corrald at a time: corrald.lock in it is flocked
// for the daemon's life and holds its pid, so a second corrald on the same
// state_dir is refused with the first one's pid instead of sharing its
// spools. The lock file stays when corrald ends (removing a lock file
// another daemon may be opening races with it); the lock goes with the fd.
//
// Not thread-safe; made once at start. Movable.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::daemon {

class StateDir {
 public:
  static constexpr const char* kLockName = "corrald.lock";

  // Opens (making it when missing) the state directory PATH and its spool/,
  // and takes the lock. With ENFORCE_PRIVATE false (daemon.private_dirs:
  // false), a directory others can write is used anyway and warning() says so.
  static Result<StateDir> open(const std::string& path, bool enforce_private = true);

  // The path as configured, for messages.
  const std::string& path() const { return path_; }
  // Where job JOB's spool is (JOB follows base/job_name.h's rule):
  // STATE_DIR/spool/JOB.sqlite, under the directory's real path (the spool
  // is opened by name, refusing any symbolic link on the way).
  std::string spool_path(std::string_view job) const;
  // Why the directory is used although it is not private; "" when it is.
  const std::string& warning() const { return warning_; }

  // The file NAME in the directory: its text ("" when missing), and TEXT
  // put in its place at once (a temporary file renamed over it). Neither
  // follows a link.
  std::string read(std::string_view name) const;
  Status replace(std::string_view name, std::string_view text) const;

 private:
  StateDir(std::string path, std::string real_path, UniqueFd dir, UniqueFd lock,
           std::string warning);

  std::string path_;
  std::string real_path_;
  UniqueFd dir_;
  UniqueFd lock_;  // flocked while this object lives
  std::string warning_;
};

}  // namespace corral::daemon

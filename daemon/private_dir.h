// Private directories: where corrald, as root, creates, appends to and reads
// files (daemon.log_dir, the directory of a job's sink or source, and any
// later directory of its own such as daemon.state_dir), only root and
// corrald's own user may add, rename or remove names. Otherwise whoever else
// can write there (a worker's user) can plant a link or a FIFO at a name
// corrald is about to open, or swap the directory itself for a link. The rule,
// for the directory and every directory and link passed through on the way
// to it from /: owned by root or by corrald's user; not writable by others,
// nor by a group other than root's (or corrald's own group, which is root's
// when corrald runs as root); a sticky directory (/tmp) is fine above
// the last step, since the entries below it are owned by root or corrald's
// user too and the sticky bit keeps anyone else from renaming them.
//
// private_dir_problem() is the rule, over what lstat says of each step;
// open_private_dir() walks a real path (following each link by hand, so
// that the directories a link leads through are seen too) and opens it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "daemon/safe_file.h"

namespace corral::daemon {

// One directory or symbolic link passed through on the way to a directory,
// as lstat (or fstat of the opened directory) saw it.
struct PathStep {
  std::string path;  // where it is, for messages: "/tmp", "/var/run" (a link)
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;  // st_mode, with the file type
};

// The first step that makes the directory (the last step) not private.
struct DirProblem {
  size_t step = 0;
  bool foreign_owner = false;   // owned by neither root nor corrald's user
  bool group_writable = false;  // by a group other than root's or corrald's
  bool other_writable = false;
};

// The first step of STEPS, walked from / to the directory in that order,
// that lets someone other than root and corrald's user (EUID, whose own
// group is EGID) change what the directory's names lead to; nullopt when
// there is none.
std::optional<DirProblem> private_dir_problem(const std::vector<PathStep>& steps, uid_t euid,
                                              gid_t egid);

// The problem of STEP in words: "/srv/logs is owned by alice (uid 1000),
// mode 0755"; OWNER and GROUP are the names of its uid and gid ("" when they
// have none).
std::string describe_problem(const DirProblem& problem, const PathStep& step,
                             std::string_view owner, std::string_view group);
// What makes it private: "chown root /srv/logs", "chmod o-w /srv".
std::string fix_for_problem(const DirProblem& problem, const PathStep& step);

// A directory opened through open_private_dir, with all there is to say of
// it (corrald --check reports warnings and tells missing directories apart).
struct PrivateDir {
  std::shared_ptr<SafeDir> dir;  // null when it could not be opened (or not private)
  std::string error;             // why not; the problem when ENFORCE refused it
  std::string warning;           // the problem, when not enforced
  bool missing = false;          // a part of the path does not exist
};

// Opens directory PATH for the files of KEY ("daemon.log_dir", "sink
// directory"; messages start with it), walking it from /, creating missing
// directories with exactly CREATE_MODE (the umask aside) when CREATE. A
// directory that is not private is refused when ENFORCE (daemon.private_dirs),
// else opened with a warning. Nothing is created when not CREATE: then a
// missing part is an error with `missing` set, and the directories above it
// are still judged (corrald --check).
PrivateDir open_private_dir(const std::string& path, std::string_view key, bool create,
                            bool enforce, mode_t create_mode = 0750);

// daemon.private_dirs for the daemon's life: open_private_dir for each
// directory corrald opens files in, refusing those that are not private when
// ENFORCE, else logging a warning for each, once (a job whose feed is made
// again at each spawn does not repeat it). Not thread-safe.
class PrivateDirs {
 public:
  explicit PrivateDirs(bool enforce) : enforce_(enforce) {}
  // The directory, held open; the error is open_private_dir's (a missing
  // one included), the warning is logged here.
  Result<std::shared_ptr<SafeDir>> open(const std::string& path, std::string_view key, bool create,
                                        mode_t create_mode = 0750);
  bool enforced() const { return enforce_; }

 private:
  bool enforce_;
  std::set<std::string> warned_;
};

}  // namespace corral::daemon

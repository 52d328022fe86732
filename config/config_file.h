// Reads a config file as corrald and corralctl may trust it: a regular file
// (a FIFO or a device would block or never end), at most kMaxConfigBytes,
// owned by root or the user reading it and writable by nobody else. The
// config says what corrald runs and as which user, so a file that someone
// else could write would let them run anything as root. Safe from any thread.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>

#include "base/result.h"

namespace corral::config {

// The whole text of PATH; the error is a message without the path
// ("cannot open: No such file or directory", "refused: it is writable by
// others (mode 0666); fix: chmod o-w PATH").
Result<std::string> read_config_file(const std::string& path);

// Why a config file (ST: its fstat, PATH: its name in the fix) is not to be
// trusted, as sudo judges sudoers: one that someone other than root or the
// user loading it (EUID) owns, or can write. Root's group, and the loading
// user's own group (EGID; root's, for root), may write it. Ok when trusted.
Status check_config_owner(const struct stat& st, const std::string& path, uid_t euid, gid_t egid);

}  // namespace corral::config

// corrald's own log, written to a file besides stderr (corrald --log-file):
// for corrald run by hand, or by an init that keeps no journal. corrald runs
// as root, so the file is opened as worker logs are (daemon/safe_file.h):
// in a directory judged by daemon.private_dirs and held open, never through
// a link, a FIFO or a second hard link; appended to; and opened again by
// name on SIGUSR1, after logrotate has moved it away.
//
// Not thread-safe: corrald logs from its one event-loop thread.
#pragma once

#include <spdlog/sinks/sink.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/safe_file.h"

namespace corral::daemon {

class LogFile {
 public:
  // Opens PATH to append to (created 0640), making its directory (0750) when
  // missing. A directory others can write is refused when ENFORCE
  // (daemon.private_dirs), else WARNING says why it is not private. The
  // error names the file: "--log-file /var/log/x/corrald.log: Permission
  // denied", "--log-file /tmp/l is a symbolic link: refused".
  static Result<std::unique_ptr<LogFile>> open(const std::string& path, bool enforce,
                                               std::string* warning = nullptr);

  // Appends TEXT (whole log lines). A failed write (a full disk) does not
  // stop corrald: it is said once on stderr, and the lines are lost until
  // the next write that succeeds.
  void write(std::string_view text);
  // Opens the file again by its name (after a rotation); the old one is
  // kept when that fails.
  Status reopen();
  const std::string& path() const { return path_; }

 private:
  LogFile(std::string path, std::shared_ptr<SafeDir> dir, std::string name, UniqueFd fd)
      : path_(std::move(path)), dir_(std::move(dir)), name_(std::move(name)), fd_(std::move(fd)) {}

  std::string path_;
  std::shared_ptr<SafeDir> dir_;
  std::string name_;
  UniqueFd fd_;
  bool failing_ = false;
};

// An spdlog sink that writes each formatted line to LOG, which must outlive it.
std::shared_ptr<spdlog::sinks::sink> make_log_file_sink(LogFile& log);

}  // namespace corral::daemon

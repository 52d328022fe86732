// Where workers' stdout and stderr go: a pipe per stream, read by the event
// loop and appended to LOG_DIR/JOB-INDEX.out.log / .err.log, rotated by size
// (log_rotate). Nothing a worker writes is dropped: a pipe is read until EOF,
// and what is left at shutdown is drained before the daemon exits.
//
// The files are opened, rotated and truncated only relative to the log
// directory's fd, through safe_file.h: a link, FIFO, device or foreign file
// that someone planted at a log's name is refused (the error is logged once).
// The pipe is still read, so the worker never blocks on its output, but what
// it writes while its file is refused is discarded; each write tries the
// name again.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "config/spec.h"
#include "daemon/host.h"
#include "daemon/safe_file.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

// An append-only file NAME in DIR that rotates when it would pass max_size:
// FILE is renamed FILE.1, FILE.1 FILE.2, ... up to FILE.KEEP; with keep 0 it
// is truncated instead. Opened at the first write.
class RotatingFile {
 public:
  RotatingFile(std::shared_ptr<const SafeDir> dir, std::string name, config::LogRotate rotate);
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  void write(const char* data, size_t size);
  // Closes the file; the next write opens PATH anew (after logrotate moved it).
  void reopen();
  const std::string& path() const { return path_; }

 private:
  bool open();
  void rotate();
  // Writes all of DATA to the file, or reports why not.
  bool write_whole(std::string_view data);
  void refresh_size();
  // Logs ERROR unless an error was logged since the file was last open.
  void report(const std::string& error);
  std::shared_ptr<const SafeDir> dir_;
  std::string name_;
  std::string path_;
  config::LogRotate rotate_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  bool reported_error_ = false;
  bool reported_rotation_ = false;
};

class OutputCapture {
 public:
  explicit OutputCapture(boost::asio::io_context& io);
  ~OutputCapture();

  // Reads READ_FD (taking ownership) until EOF into FILE (dropping it all
  // when FILE has no directory and no name: log `off`). Two captures of one
  // file (an old and a new process of a worker) share it.
  void capture(int read_fd, const OutputFile& file, const config::LogRotate& rotate);
  // Reads whatever the open pipes hold right now, without waiting.
  void drain();
  // Reopens every file (SIGUSR1, after logrotate).
  void reopen();

 private:
  struct Stream;
  std::shared_ptr<RotatingFile> file(const std::shared_ptr<const SafeDir>& dir,
                                     const std::string& name, const config::LogRotate& rotate);
  void read_more(const std::shared_ptr<Stream>& stream);
  // One read of what the pipe holds into its file: something was read, the
  // pipe was empty, or it is closed (EOF or an error).
  enum class Read { kData, kEmpty, kClosed };
  Read read_once(Stream& stream);
  void finish(const std::shared_ptr<Stream>& stream);

  static constexpr size_t kBufferSize = 64 * 1024;
  boost::asio::io_context& io_;
  std::unique_ptr<char[]> buffer_;
  std::map<std::string, std::weak_ptr<RotatingFile>> files_;
  std::set<std::shared_ptr<Stream>> streams_;
};

}  // namespace corral::daemon

// Where workers' stdout and stderr go: a pipe per stream, read by the event
// loop and appended to LOG_DIR/JOB-INDEX.out.log / .err.log, rotated by size
// (log_rotate). Nothing a worker writes is dropped: a pipe is read until EOF,
// and what is left at shutdown is drained before the daemon exits.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "config/spec.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

// An append-only file that rotates when it would pass max_size: FILE is
// renamed FILE.1, FILE.1 FILE.2, ... up to FILE.KEEP; with keep 0 it is
// truncated instead. Opened at the first write.
class RotatingFile {
 public:
  RotatingFile(std::string path, config::LogRotate rotate);
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
  bool write_all(const char* data, size_t size);
  void refresh_size();
  std::string path_;
  config::LogRotate rotate_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool reported_error_ = false;
};

class OutputCapture {
 public:
  explicit OutputCapture(boost::asio::io_context& io);
  ~OutputCapture();

  // Reads READ_FD (taking ownership) until EOF into the file at PATH. Two
  // captures of one path (an old and a new process of a worker) share the file.
  void capture(int read_fd, const std::string& path, const config::LogRotate& rotate);
  // Reads whatever the open pipes hold right now, without waiting.
  void drain();
  // Reopens every file (SIGUSR1, after logrotate).
  void reopen();

 private:
  struct Stream;
  std::shared_ptr<RotatingFile> file(const std::string& path, const config::LogRotate& rotate);
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

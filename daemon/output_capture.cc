#include "daemon/output_capture.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "base/io.h"

namespace corral::daemon {

namespace asio = boost::asio;

RotatingFile::RotatingFile(std::shared_ptr<const SafeDir> dir, std::string name,
                           config::LogRotate rotate)
    : dir_(std::move(dir)),
      name_(std::move(name)),
      path_(dir_ ? dir_->path_of(name_) : name_),
      rotate_(rotate) {}

RotatingFile::~RotatingFile() = default;

void RotatingFile::report(const std::string& error) {
  if (!reported_error_) spdlog::error("{}", error);
  reported_error_ = true;
}

bool RotatingFile::open() {
  if (!dir_) {
    report("log file " + path_ + ": no log directory");
    return false;
  }
  Result<OpenedFile> opened = dir_->open(name_, FileUse::kAppend, "log file");
  if (!opened) {
    report(opened.error().message() +
           "; what the worker writes there is discarded until it is fixed");
    return false;
  }
  reported_error_ = false;
  fd_ = std::move(opened->fd);
  size_ = static_cast<uint64_t>(opened->st.st_size);
  return true;
}

void RotatingFile::rotate() {
  if (rotate_.keep <= 0) {
    // The file we hold, not whatever the name leads to now.
    if (::ftruncate(fd_.get(), 0) == 0) {
      size_ = 0;
      return;
    }
    report("cannot truncate log file " + path_ + ": " + strerror(errno));
    fd_.reset();
    open();
    return;
  }
  fd_.reset();
  // Renamed within the directory we hold: a link at FILE.N is moved or
  // replaced, never followed.
  for (int i = rotate_.keep - 1; i >= 1; --i) {
    dir_->rename(name_ + "." + std::to_string(i), name_ + "." + std::to_string(i + 1));
  }
  if (int error = dir_->rename(name_, name_ + ".1"); error != 0 && error != ENOENT) {
    // Once until a rotation works again, not at every write past max_size.
    if (!reported_rotation_) {
      spdlog::error("cannot rotate log file {} to {}.1: {}; appending to it", path_, path_,
                    strerror(error));
    }
    reported_rotation_ = true;
  } else {
    reported_rotation_ = false;
  }
  open();
}

// Writes DATA, rotating whenever the file would pass max_size. A chunk is
// cut at its last newline that fits, so lines stay whole unless a single line
// is longer than max_size.
void RotatingFile::write(const char* data, size_t size) {
  if (!fd_.valid() && !open()) return;
  const uint64_t max = std::max<uint64_t>(rotate_.max_size, 1);
  // The file may have been truncated under us (logrotate's copytruncate,
  // `corralctl clear`): its real size decides, looked up only when ours
  // says it is time to rotate.
  if (size_ + size > max) refresh_size();
  while (size > 0) {
    uint64_t room = size_ < max ? max - size_ : 0;
    size_t take = size;
    if (size > room) {
      const char* cut = room > 0 ? static_cast<const char*>(memrchr(data, '\n', room)) : nullptr;
      if (cut != nullptr) {
        take = static_cast<size_t>(cut - data) + 1;
      } else if (size_ > 0) {
        rotate();
        if (!fd_.valid()) return;
        continue;
      } else {
        take = static_cast<size_t>(max);  // one line longer than the whole file
      }
    }
    if (!write_whole(std::string_view(data, take))) return;
    data += take;
    size -= take;
    if (size > 0) {
      rotate();
      if (!fd_.valid()) return;
    }
  }
}

bool RotatingFile::write_whole(std::string_view data) {
  if (Status written = corral::write_all(fd_.get(), data, "cannot write log file " + path_);
      !written) {
    report(written.error().message());
    return false;
  }
  size_ += data.size();
  return true;
}

void RotatingFile::refresh_size() {
  struct stat st {};
  if (fd_.valid() && fstat(fd_.get(), &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
}

void RotatingFile::reopen() { fd_.reset(); }

struct OutputCapture::Stream {
  Stream(asio::io_context& io, int fd, std::shared_ptr<RotatingFile> file)
      : pipe(io, fd), file(std::move(file)) {}
  asio::posix::stream_descriptor pipe;
  std::shared_ptr<RotatingFile> file;  // null: what the pipe carries is dropped (log: off)
};

OutputCapture::OutputCapture(asio::io_context& io) : io_(io) {}
OutputCapture::~OutputCapture() = default;

std::shared_ptr<RotatingFile> OutputCapture::file(const std::shared_ptr<const SafeDir>& dir,
                                                  const std::string& name,
                                                  const config::LogRotate& rotate) {
  auto& slot = files_[dir ? dir->path_of(name) : name];
  if (auto existing = slot.lock()) return existing;
  auto created = std::make_shared<RotatingFile>(dir, name, rotate);
  slot = created;
  return created;
}

void OutputCapture::capture(int read_fd, const OutputFile& output,
                            const config::LogRotate& rotate) {
  // Read only when the loop says there is something: non-blocking, so that
  // one read never waits.
  fcntl(read_fd, F_SETFL, fcntl(read_fd, F_GETFL) | O_NONBLOCK);
  const bool dropped = !output.dir && output.name.empty();
  auto stream = std::make_shared<Stream>(io_, read_fd,
                                         dropped ? nullptr : file(output.dir, output.name, rotate));
  streams_.insert(stream);
  read_more(stream);
}

void OutputCapture::read_more(const std::shared_ptr<Stream>& stream) {
  stream->pipe.async_wait(asio::posix::descriptor_base::wait_read,
                          [this, stream](boost::system::error_code ec) {
                            if (ec == asio::error::operation_aborted) return;
                            if (ec || read_once(*stream) == Read::kClosed) return finish(stream);
                            read_more(stream);
                          });
}

OutputCapture::Read OutputCapture::read_once(Stream& stream) {
  // One buffer for every pipe: a pipe waiting for output holds no memory.
  if (!buffer_) buffer_ = std::make_unique<char[]>(kBufferSize);
  ssize_t n;
  do {
    n = ::read(stream.pipe.native_handle(), buffer_.get(), kBufferSize);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    if (stream.file) stream.file->write(buffer_.get(), static_cast<size_t>(n));
    return Read::kData;
  }
  return n < 0 && errno == EAGAIN ? Read::kEmpty : Read::kClosed;
}

void OutputCapture::finish(const std::shared_ptr<Stream>& stream) {
  // A stream whose output is dropped (log: off) has no file.
  std::string path = stream->file ? stream->file->path() : std::string();
  streams_.erase(stream);
  if (path.empty()) return;
  auto it = files_.find(path);
  if (it != files_.end() && it->second.expired()) files_.erase(it);
}

void OutputCapture::drain() {
  for (const auto& stream : streams_) {
    while (read_once(*stream) == Read::kData) {
    }
  }
}

void OutputCapture::reopen() {
  for (auto& [path, weak] : files_) {
    if (auto file = weak.lock()) file->reopen();
  }
}

}  // namespace corral::daemon

#include "daemon/log_file.h"

#include <errno.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/private_dir.h"

namespace corral::daemon {

namespace {

const char* const kWhat = "--log-file";

class LogFileSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit LogFileSink(LogFile& log) : log_(log) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    log_.write(std::string_view(line.data(), line.size()));
  }
  void flush_() override {}

 private:
  LogFile& log_;
};

}  // namespace

Result<std::unique_ptr<LogFile>> LogFile::open(const std::string& path, bool enforce,
                                               std::string* warning) {
  auto [dir_path, name] = split_file_path(path);
  if (name.empty()) return Error(std::string(kWhat) + " " + path + ": not a file name");
  PrivateDir dir = open_private_dir(dir_path, std::string(kWhat) + "'s directory", true, enforce);
  if (!dir.dir) return Error(dir.error);
  if (warning != nullptr) *warning = dir.warning;
  Result<OpenedFile> opened = dir.dir->open(name, FileUse::kAppend, kWhat);
  if (!opened) return opened.error();
  return std::unique_ptr<LogFile>(
      new LogFile(path, std::move(dir.dir), std::move(name), std::move(opened->fd)));
}

void LogFile::write(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd_.get(), text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!failing_) {
        // Not through spdlog: this is one of its sinks.
        std::fprintf(stderr, "corrald: %s %s: %s; its lines are lost until a write succeeds\n",
                     kWhat, path_.c_str(), n < 0 ? strerror(errno) : "nothing written");
        failing_ = true;
      }
      return;
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  failing_ = false;
}

Status LogFile::reopen() {
  Result<OpenedFile> opened = dir_->open(name_, FileUse::kAppend, kWhat);
  if (!opened) return opened.error();
  fd_ = std::move(opened->fd);
  failing_ = false;
  return {};
}

std::shared_ptr<spdlog::sinks::sink> make_log_file_sink(LogFile& log) {
  return std::make_shared<LogFileSink>(log);
}

}  // namespace corral::daemon

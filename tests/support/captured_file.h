// A temp file that stands for a command's stdout or stderr, and what was
// written to it. Header-only; not thread-safe.
#pragma once

#include <stdio.h>
#include <unistd.h>

#include <string>

namespace corral::testing {

class CapturedFile {
 public:
  CapturedFile() : file_(std::tmpfile()) {}
  ~CapturedFile() { std::fclose(file_); }
  CapturedFile(const CapturedFile&) = delete;
  CapturedFile& operator=(const CapturedFile&) = delete;
  int fd() const { return ::fileno(file_); }
  // Everything written so far, read without moving the file's offset.
  std::string text() const {
    std::string content;
    char chunk[64 * 1024];
    ssize_t n;
    off_t at = 0;
    while ((n = ::pread(fd(), chunk, sizeof chunk, at)) > 0) {
      content.append(chunk, static_cast<size_t>(n));
      at += n;
    }
    return content;
  }

 private:
  FILE* file_;
};

}  // namespace corral::testing

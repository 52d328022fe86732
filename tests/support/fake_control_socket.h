// A fake corrald for corralctl's client tests: a listening Unix socket in a
// temp dir of its own, whose first connection is handed to a script the test
// writes (read the request, answer, misbehave). The script runs on a thread
// of its own, joined by join() or the destructor; everything else is for the
// test's thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "base/unique_fd.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

namespace corral::testing {

// Sends all of DATA on the socket FD, stopping at the first error (a peer
// that has gone is an answer, not a SIGPIPE).
inline void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The next line on FD without its '\n', read a byte at a time so that
// nothing after it is taken; what came before EOF at EOF.
inline std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

class FakeControlSocket {
 public:
  FakeControlSocket() : dir_("corralctl-test"), path_(dir_.file("corral.sock")) {
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
  }
  ~FakeControlSocket() { join(); }
  FakeControlSocket(const FakeControlSocket&) = delete;
  FakeControlSocket& operator=(const FakeControlSocket&) = delete;

  const std::string& path() const { return path_; }

  // A file in the temp dir holding CONTENT; its path.
  std::string file(const std::string& name, std::string_view content) {
    std::string path = dir_.file(name);
    write_file(path, std::string(content));
    return path;
  }

  // Runs SCRIPT on the first connection, on a thread; the connection is
  // closed when it returns.
  void serve(std::function<void(int fd)> script) {
    thread_ = std::thread([this, script = std::move(script)] {
      int fd = ::accept(listener_.get(), nullptr, nullptr);
      ASSERT_GE(fd, 0);
      script(fd);
      ::close(fd);
    });
  }
  // Waits until the script is done, so that what it recorded can be read.
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  // Closes the listener: the socket file stays, with nobody behind it.
  void stop_listening() { listener_.reset(); }

 private:
  TempDir dir_;
  std::string path_;
  UniqueFd listener_;
  std::thread thread_;
};

}  // namespace corral::testing

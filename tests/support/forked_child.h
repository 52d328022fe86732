// A forked child running a function and exiting with what it returns, for
// tests of memory shared between processes (rings, segments). Killed and
// reaped if the test leaves early, so that no spinning child outlives it.
// Not thread-safe: one thread owns it.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace corral::testing {

class ForkedChild {
 public:
  template <class Fn>
  explicit ForkedChild(Fn fn) : pid_(::fork()) {
    if (pid_ == 0) ::_exit(fn());
  }
  ~ForkedChild() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // False once it has ended (and then it is reaped).
  bool running() {
    if (!reaped_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return !reaped_;
  }
  // Its exit code (waiting for it), or -1 if it did not exit normally.
  int wait() {
    if (!reaped_ && ::waitpid(pid_, &status_, 0) == pid_) reaped_ = true;
    return reaped_ && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

 private:
  pid_t pid_;
  bool reaped_ = false;
  int status_ = 0;
};

}  // namespace corral::testing

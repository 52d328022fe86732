// How a process ended, as a value: exited with a code, or killed by a signal
// (folly's ProcessReturnCode). Built from waitid()'s siginfo.
#pragma once

#include <signal.h>

#include <cstdint>
#include <string>

namespace corral::daemon {

class ExitStatus {
 public:
  static ExitStatus exited(int code) { return ExitStatus(false, code, false); }
  static ExitStatus killed(int signal, bool core_dumped = false) {
    return ExitStatus(true, signal, core_dumped);
  }
  static ExitStatus from_siginfo(const siginfo_t& info);

  bool was_killed() const { return killed_; }
  int code() const { return killed_ ? -1 : value_; }
  int signal() const { return killed_ ? value_ : 0; }
  bool core_dumped() const { return core_; }
  // The shell's convention: the code, or 128 + the signal.
  int shell_status() const { return killed_ ? 128 + value_ : value_; }
  // "exit status 1", "killed by SIGKILL", "killed by SIGSEGV (core dumped)",
  // or the cause, when one is known.
  std::string str() const;
  // The same status, with who ended it and why: "killed by the kernel:
  // memory.max 512MiB reached".
  ExitStatus because(std::string cause) const {
    ExitStatus copy = *this;
    copy.cause_ = std::move(cause);
    return copy;
  }

  bool operator==(const ExitStatus&) const = default;

 private:
  ExitStatus(bool killed, int value, bool core) : killed_(killed), value_(value), core_(core) {}
  bool killed_;
  int value_;
  bool core_;
  std::string cause_;
};

// Who an unexpected exit of a worker is charged to. kTask: the worker died
// running a task while it was doing its job (it had finished tasks since it
// started, or the task had already taken a worker down): the task pays with an
// attempt and the worker restarts at once. kWorker: everything else (an exit
// before READY, while idle, on the first task of a fresh process): the
// worker's backoff and restart intensity count it.
enum class ExitBlame : uint8_t { kWorker, kTask };

// "SIGTERM" for 15; "signal 99" for what has no name.
std::string signal_full_name(int signal);

}  // namespace corral::daemon

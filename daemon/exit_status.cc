#include "daemon/exit_status.h"

#include <string.h>

namespace corral::daemon {

ExitStatus ExitStatus::from_siginfo(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return exited(info.si_status);
    case CLD_DUMPED:
      return killed(info.si_status, true);
    default:  // CLD_KILLED
      return killed(info.si_status, false);
  }
}

std::string signal_full_name(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  if (abbrev == nullptr) return "signal " + std::to_string(signal);
  return std::string("SIG") + abbrev;
}

std::string ExitStatus::str() const {
  if (!cause_.empty()) return cause_;
  if (!killed_) return "exit status " + std::to_string(value_);
  std::string text = "killed by " + signal_full_name(value_);
  if (core_) text += " (core dumped)";
  return text;
}

}  // namespace corral::daemon

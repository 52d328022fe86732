#include "tests/support/poll.h"

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

namespace corral::testing {

std::chrono::milliseconds scaled(std::chrono::milliseconds timeout) {
  static const double factor = [] {
    const char* value = std::getenv("CORRAL_TEST_TIME_SCALE");
    double f = value != nullptr ? std::strtod(value, nullptr) : 1.0;
    return f > 1.0 ? f : 1.0;
  }();
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(timeout.count()) * factor));
}

bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

int wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 || std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(2ms);
  }
}

}  // namespace corral::testing

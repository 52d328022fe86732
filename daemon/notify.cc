#include "daemon/notify.h"

#include <errno.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace corral::daemon {
namespace {

// The decimal value of environment variable NAME, if it is one.
std::optional<uint64_t> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return std::nullopt;
  std::string_view s(text);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

// The protocol is sd_notify(3)'s: one datagram of NAME=VALUE lines to the
// AF_UNIX socket named in NOTIFY_SOCKET (a leading '@' names the abstract
// namespace). Spoken here rather than through libsystemd, which would load
// seven libraries and most of a megabyte of resident memory for these lines.
ServiceNotifier::ServiceNotifier(Host& host) : host_(host) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return;
  std::string_view name(path);
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof address_.sun_path) {
    spdlog::warn("NOTIFY_SOCKET={}: not a unix socket path corrald can use; not notifying", name);
    return;
  }
  address_.sun_family = AF_UNIX;
  memcpy(address_.sun_path, name.data(), name.size());
  if (name[0] == '@') address_.sun_path[0] = '\0';
  address_size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  socket_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!socket_) {
    spdlog::warn("NOTIFY_SOCKET: socket: {}; not notifying", strerror(errno));
    return;
  }
  enabled_ = true;
  // WATCHDOG_PID, when set, names the process the watchdog is for.
  auto pid = env_number("WATCHDOG_PID");
  if (pid && *pid != static_cast<uint64_t>(getpid())) return;
  if (auto usec = env_number("WATCHDOG_USEC"); usec && *usec > 0)
    watchdog_ = std::chrono::microseconds(*usec);
}

void ServiceNotifier::send(const std::string& state) {
  if (!enabled_) return;
  ssize_t n;
  do {
    n = sendto(socket_.get(), state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&address_), address_size_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) spdlog::warn("sd_notify: {}", strerror(errno));
}

void ServiceNotifier::ready(std::function<std::string()> summary) {
  summary_ = std::move(summary);
  if (!enabled_) return;
  send("READY=1\nSTATUS=" + summary_());
  status_timer_ = host_.make_timer();
  status_timer_->arm(host_.now() + kStatusEvery, [this] { refresh_status(); });
  if (watchdog_.count() > 0) {
    watchdog_timer_ = host_.make_timer();
    ping();
  }
}

void ServiceNotifier::refresh_status() {
  send("STATUS=" + summary_());
  status_timer_->arm(host_.now() + kStatusEvery, [this] { refresh_status(); });
}

// From a timer of the event loop: if the loop is stuck, the pings stop.
void ServiceNotifier::ping() {
  send("WATCHDOG=1");
  auto half = std::chrono::duration_cast<Duration>(watchdog_ / 2);
  watchdog_timer_->arm(host_.now() + std::max<Duration>(half, Duration(1)), [this] { ping(); });
}

void ServiceNotifier::reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t usec =
      static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading the config");
}

void ServiceNotifier::reloaded() {
  send("READY=1\nSTATUS=" + (summary_ ? summary_() : std::string("running")));
}

void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=stopping every worker"); }

}  // namespace corral::daemon

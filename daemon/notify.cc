#include "daemon/notify.h"

#include <spdlog/spdlog.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>

namespace corral::daemon {

ServiceNotifier::ServiceNotifier(Host& host) : host_(host) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is ours.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
}

void ServiceNotifier::send(const std::string& state) {
  if (!enabled_) return;
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) spdlog::warn("sd_notify: {}", strerror(-rc));
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

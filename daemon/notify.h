// What corrald tells its service manager through systemd's notify protocol
// (sd_notify): READY=1 once the autostart jobs are spawned, a one-line
// STATUS= refreshed every few seconds, WATCHDOG=1 at half of WATCHDOG_USEC
// sent from the event loop (a stuck loop stops the pings and systemd
// restarts the service), RELOADING=1 with MONOTONIC_USEC then READY=1 around
// a reload, STOPPING=1 at shutdown. Without NOTIFY_SOCKET every call does
// nothing.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "base/unique_fd.h"
#include "daemon/host.h"

namespace corral::daemon {

class ServiceNotifier {
 public:
  static constexpr auto kStatusEvery = std::chrono::seconds(5);

  explicit ServiceNotifier(Host& host);
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // Under a service manager (NOTIFY_SOCKET is set).
  bool enabled() const { return enabled_; }
  // The watchdog interval systemd asked for (WATCHDOG_USEC), or zero.
  std::chrono::microseconds watchdog() const { return watchdog_; }

  // READY=1 with STATUS=SUMMARY(), then the STATUS refresh and the watchdog
  // pings on the loop.
  void ready(std::function<std::string()> summary);
  void reloading();
  void reloaded();
  void stopping();

 private:
  void send(const std::string& state);
  void refresh_status();
  void ping();

  Host& host_;
  bool enabled_ = false;
  UniqueFd socket_;
  sockaddr_un address_{};
  socklen_t address_size_ = 0;
  std::chrono::microseconds watchdog_{0};
  std::function<std::string()> summary_;
  std::unique_ptr<Timer> status_timer_;
  std::unique_ptr<Timer> watchdog_timer_;
};

}  // namespace corral::daemon

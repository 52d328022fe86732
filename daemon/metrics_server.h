// GET /metrics over HTTP/1.1 (Boost.Beast) on daemon.metrics.listen, for
// Prometheus. Served from the daemon's event loop: each scrape renders the
// text at once from what is in memory. Requests are small and bounded (8 KiB
// of headers, 10 s per exchange, 10 s idle between keep-alive requests);
// anything but GET or HEAD /metrics is 404 or 405.
//
// Anyone who can reach the port can connect, so connections are few: at
// most kMaxConnections, each holding a place in the ClientBudget it shares
// with the control socket. A connection that comes when they are all taken
// replaces the oldest one that waits for its next request, else the oldest
// of all; a control client that finds the budget spent takes a place from
// /metrics the same way. So a flood of connections costs corrald no more
// fds, and a fresh scrape is still answered.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "daemon/fd_reserve.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class MetricsServer {
 public:
  static constexpr size_t kMaxConnections = 16;

  // BUDGET: the places for clients, shared with the control socket.
  MetricsServer(boost::asio::io_context& io, std::function<std::string()> render,
                std::shared_ptr<ClientBudget> budget = std::make_shared<ClientBudget>());
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on LISTEN, "HOST:PORT" ("[::1]:9464" for IPv6; port 0 picks
  // one); the error says why it cannot.
  Status open(const std::string& listen);
  // Where it listens ("127.0.0.1:9464"), or "" when it does not.
  std::string address() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::daemon

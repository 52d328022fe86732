// GET /metrics over HTTP/1.1 (Boost.Beast) on daemon.metrics.listen, for
// Prometheus. Served from the daemon's event loop: each scrape renders the
// text at once from what is in memory. Requests are small and bounded (8 KiB
// of headers, 10 s per exchange); anything but GET or HEAD /metrics is 404
// or 405.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class MetricsServer {
 public:
  MetricsServer(boost::asio::io_context& io, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on LISTEN, "HOST:PORT" ("[::1]:9464" for IPv6; port 0 picks
  // one); an error message, or "" when it listens.
  std::string open(const std::string& listen);
  // Where it listens ("127.0.0.1:9464"), or "" when it does not.
  std::string address() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::daemon

#include "daemon/metrics_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <utility>

#include "daemon/fd_reserve.h"

namespace corral::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kExchangeTimeout = std::chrono::seconds(10);
constexpr size_t kMaxHeaderBytes = 8 << 10;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>& render)
      : stream_(std::move(socket)), render_(render) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(0);
    stream_.expires_after(kExchangeTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->close();
                       self->answer(self->parser_->release());
                     });
  }

  void answer(const http::request<http::empty_body>& request) {
    auto response = std::make_shared<http::response<http::string_body>>();
    response->version(request.version());
    response->keep_alive(request.keep_alive());
    response->set(http::field::server, "corrald");
    const bool get = request.method() == http::verb::get;
    const bool head = request.method() == http::verb::head;
    std::string_view target(request.target().data(), request.target().size());
    target = target.substr(0, target.find('?'));
    if (target != "/metrics") {
      response->result(http::status::not_found);
      response->set(http::field::content_type, "text/plain; charset=utf-8");
      response->body() = "corrald serves its metrics at /metrics\n";
    } else if (!get && !head) {
      response->result(http::status::method_not_allowed);
      response->set(http::field::allow, "GET, HEAD");
    } else {
      response->result(http::status::ok);
      response->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response->body() = render_();
    }
    response->prepare_payload();
    if (head) response->body().clear();  // Content-Length stays the GET's
    stream_.expires_after(kExchangeTimeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, size_t) {
                        if (ec || !response->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kMaxHeaderBytes};
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::function<std::string()> render_;
};

}  // namespace

struct MetricsServer::Impl {
  Impl(asio::io_context& io, std::function<std::string()> render)
      : io(io), acceptor(io), render(std::move(render)) {}

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (FdReserve::out_of_fds(ec)) {
        // The connection stays queued and the socket readable: accepting
        // again at once would spin. The scraper waits, then is served.
        if (!std::exchange(starved, true)) {
          spdlog::error("metrics: accept: {}; pausing until fds are free", ec.message());
        }
        pause.expires_after(std::chrono::milliseconds(100));
        pause.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor.is_open()) accept();
        });
        return;
      }
      if (!ec) {
        if (std::exchange(starved, false)) spdlog::info("metrics: accepting connections again");
        std::make_shared<Session>(std::move(socket), render)->start();
      } else {
        spdlog::warn("metrics: accept: {}", ec.message());
      }
      accept();
    });
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer pause{io};
  bool starved = false;
  std::function<std::string()> render;
};

MetricsServer::MetricsServer(asio::io_context& io, std::function<std::string()> render)
    : impl_(std::make_unique<Impl>(io, std::move(render))) {}

MetricsServer::~MetricsServer() { close(); }

std::string MetricsServer::open(const std::string& listen) {
  // HOST:PORT, the host maybe in brackets (IPv6).
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return "metrics.listen " + listen + ": expected HOST:PORT";
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  tcp::resolver resolver(impl_->io);
  auto endpoints =
      resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return "metrics.listen " + listen + ": " + (ec ? ec.message() : "no such address");
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return "metrics.listen " + listen + ": " + ec.message();
  }
  impl_->accept();
  return "";
}

std::string MetricsServer::address() const {
  beast::error_code ec;
  if (!impl_->acceptor.is_open()) return "";
  tcp::endpoint endpoint = impl_->acceptor.local_endpoint(ec);
  if (ec) return "";
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

void MetricsServer::close() {
  if (!impl_ || !impl_->acceptor.is_open()) return;
  beast::error_code ignored;
  impl_->pause.cancel();
  impl_->acceptor.close(ignored);
}

}  // namespace corral::daemon

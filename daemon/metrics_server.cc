#include "daemon/metrics_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <utility>

#include "daemon/fd_reserve.h"

namespace corral::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Named, not anonymous: MetricsServer::Impl holds these sessions, and a
// member of a type with external linkage may not have an internal type when
// this file is compiled with others in one unity translation unit.
namespace metrics_http {

constexpr auto kExchangeTimeout = std::chrono::seconds(10);
constexpr size_t kMaxHeaderBytes = 8 << 10;

// One connection: waits for a request (idle), reads it, answers, and waits
// again while the client keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>& render, Tally::Place place)
      : stream_(std::move(socket)), render_(render), place_(std::move(place)) {}

  void start() { wait_for_request(); }
  bool open() const { return open_; }
  // Waiting for its next request: nothing of it is under way.
  bool idle() const { return open_ && idle_; }
  // Closes the connection now and hands over its place.
  Tally::Place evict() {
    Tally::Place place = std::move(place_);
    close();
    return place;
  }

 private:
  // Idle until the first byte of a request (or of the first one) arrives:
  // that is when a connection is worth keeping.
  void wait_for_request() {
    if (buffer_.size() > 0) return read();  // the next request came with the last
    idle_ = true;
    stream_.expires_after(kExchangeTimeout);
    stream_.async_read_some(buffer_.prepare(kMaxHeaderBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->idle_ = false;
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read();
                            });
  }

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
                        self->wait_for_request();
                      });
  }

  // The fd goes at once (not when the last handler has run), and with it
  // the place.
  void close() {
    if (!std::exchange(open_, false)) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    place_ = Tally::Place();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kMaxHeaderBytes};
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::function<std::string()> render_;
  Tally::Place place_;
  bool open_ = true;
  bool idle_ = false;
};

}  // namespace metrics_http

using metrics_http::Session;

struct MetricsServer::Impl {
  Impl(asio::io_context& io, std::function<std::string()> render,
       std::shared_ptr<ClientBudget> budget)
      : io(io), acceptor(io), render(std::move(render)), budget(std::move(budget)) {
    this->budget->set_reclaimer([this] { return evict(); });
  }
  ~Impl() { budget->set_reclaimer({}); }

  // Closes the oldest connection that waits for a request, else the oldest
  // of all, and hands over its place; an empty place when there is none.
  Tally::Place evict() {
    forget_closed();
    auto victim = std::find_if(sessions.begin(), sessions.end(), [](const auto& weak) {
      auto session = weak.lock();
      return session && session->idle();
    });
    if (victim == sessions.end()) victim = sessions.begin();
    if (victim == sessions.end()) return {};
    auto session = victim->lock();
    sessions.erase(victim);
    return session->evict();
  }

  void forget_closed() {
    std::erase_if(sessions, [](const auto& weak) {
      auto session = weak.lock();
      return !session || !session->open();
    });
  }

  // A place for a new connection: one of ours when we hold our most, else
  // one from the budget (which may take one of ours too).
  Tally::Place place_for_new() {
    forget_closed();
    if (sessions.size() >= kMaxConnections) return evict();
    return budget->take();
  }

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
        serve(std::move(socket));
      } else {
        spdlog::warn("metrics: accept: {}", ec.message());
      }
      accept();
    });
  }

  void serve(tcp::socket socket) {
    Tally::Place place = place_for_new();
    if (!place) {
      // Control clients hold the whole budget: this scraper is not served.
      if (!std::exchange(full, true)) {
        spdlog::warn(
            "metrics: the client budget is spent by control connections; refusing "
            "scrapes until some close");
      }
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      beast::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.send(asio::buffer(kBusy), 0, ignored);
      socket.close(ignored);
      return;
    }
    full = false;
    auto session = std::make_shared<Session>(std::move(socket), render, std::move(place));
    sessions.push_back(session);
    session->start();
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer pause{io};
  bool starved = false;
  bool full = false;
  std::function<std::string()> render;
  std::shared_ptr<ClientBudget> budget;
  std::deque<std::weak_ptr<Session>> sessions;  // oldest first
};

MetricsServer::MetricsServer(asio::io_context& io, std::function<std::string()> render,
                             std::shared_ptr<ClientBudget> budget)
    : impl_(std::make_unique<Impl>(io, std::move(render), std::move(budget))) {}

MetricsServer::~MetricsServer() { close(); }

Status MetricsServer::open(const std::string& listen) {
  // HOST:PORT, the host maybe in brackets (IPv6).
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Error("metrics.listen " + listen + ": expected HOST:PORT");
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
    return Error("metrics.listen " + listen + ": " + (ec ? ec.message() : "no such address"));
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
    return Error("metrics.listen " + listen + ": " + ec.message());
  }
  impl_->accept();
  return {};
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

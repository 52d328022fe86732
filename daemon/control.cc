#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <filesystem>

namespace corral::daemon {

namespace asio = boost::asio;
using protocol::Json;
using Socket = asio::local::stream_protocol::socket;

struct ControlServer::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io) {}
  asio::local::stream_protocol::acceptor acceptor;
};

// One client connection: reads a line, hands it to Commands, writes the
// answer, then reads the next; answers go out in request order.
class ControlServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, Commands& commands)
      : socket_(std::move(socket)), commands_(commands), input_(protocol::kMaxLineBytes + 1) {}

  void start() { read_request(); }
  // Answers with one error line and closes. REFUSED marks a peer that may
  // not use the socket at all (corralctl treats it as unreachable).
  void refuse(const std::string& why, bool refused) {
    Json reply = protocol::error_reply(why);
    if (refused) reply["refused"] = true;
    send(reply);
    close_after_write_ = true;
  }
  Socket& socket() { return socket_; }

 private:
  void read_request() {
    auto self = shared_from_this();
    asio::async_read_until(socket_, input_, '\n', [self](boost::system::error_code ec, size_t n) {
      self->on_line(ec, n);
    });
  }

  void on_line(boost::system::error_code ec, size_t n) {
    if (ec == asio::error::not_found) {
      refuse("request line longer than " + std::to_string(protocol::kMaxLineBytes) + " bytes",
             false);
      return;
    }
    if (ec) return;  // the client left
    std::string line(asio::buffers_begin(input_.data()), asio::buffers_begin(input_.data()) + n);
    input_.consume(n);
    line.pop_back();
    Json request = Json::parse(line, nullptr, false);
    if (request.is_discarded()) {
      send(protocol::error_reply("bad JSON in request"));
      read_request();
      return;
    }
    // The reply may come later (start waits for RUNNING): the pending reply
    // keeps the session alive until then.
    commands_.handle(request, [self = shared_from_this()](const Json& reply) {
      self->send(reply);
      self->read_request();
    });
  }

  void send(const Json& message) {
    outbox_.push_back(protocol::encode_line(message));
    if (outbox_.size() == 1) write_next();
  }

  void write_next() {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(outbox_.front()),
                      [self](boost::system::error_code ec, size_t) {
                        if (ec) return;
                        self->outbox_.pop_front();
                        if (!self->outbox_.empty()) return self->write_next();
                        if (self->close_after_write_) {
                          boost::system::error_code ignored;
                          self->socket_.shutdown(Socket::shutdown_both, ignored);
                        }
                      });
  }

  Socket socket_;
  Commands& commands_;
  asio::streambuf input_;
  std::deque<std::string> outbox_;
  bool close_after_write_ = false;
};

ControlServer::ControlServer(asio::io_context& io, Commands& commands)
    : io_(io), commands_(commands) {}

ControlServer::~ControlServer() { close(); }

static std::string errno_text(const std::string& what) { return what + ": " + strerror(errno); }

std::string ControlServer::open(const config::DaemonSpec& daemon) {
  const std::string& path = daemon.socket;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return "daemon.socket " + path + ": longer than " +
           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes";
  }
  std::error_code fs_error;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, fs_error);
  if (fs_error) return "cannot create " + parent.string() + ": " + fs_error.message();

  lock_path_ = path + ".lock";
  const std::string& lock_path = lock_path_;
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return errno_text("cannot open " + lock_path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) < 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    return "another corrald is running on " + path + " (" + lock_path + " is locked)";
  }
  // We hold the lock: whatever socket file is there was left by a dead daemon.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return path + " exists and is not a socket";
    ::unlink(path.c_str());
  }

  for (const auto& user : daemon.allow_users) {
    if (passwd* pw = getpwnam(user.c_str())) {
      allowed_uids_.insert(pw->pw_uid);
    } else {
      spdlog::warn("daemon.allow_users: no such user {}", user);
    }
  }
  for (const auto& group : daemon.allow_groups) {
    if (struct group* gr = getgrnam(group.c_str())) {
      allowed_gids_.insert(gr->gr_gid);
    } else {
      spdlog::warn("daemon.allow_groups: no such group {}", group);
    }
  }

  acceptor_ = std::make_unique<Acceptor>(io_);
  boost::system::error_code ec;
  asio::local::stream_protocol::endpoint endpoint(path);
  acceptor_->acceptor.open(endpoint.protocol(), ec);
  if (ec) return "socket " + path + ": " + ec.message();
  // Bound under a umask that leaves exactly socket_mode: no window in which
  // the socket has looser permissions.
  mode_t old_mask = ::umask(static_cast<mode_t>(~daemon.socket_mode & 0777));
  acceptor_->acceptor.bind(endpoint, ec);
  ::umask(old_mask);
  if (ec) return "bind " + path + ": " + ec.message();
  acceptor_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "listen " + path + ": " + ec.message();
  path_ = path;
  accept();
  return {};
}

void ControlServer::accept() {
  acceptor_->acceptor.async_accept([this](boost::system::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      ucred cred{};
      socklen_t len = sizeof cred;
      int fd = socket.native_handle();
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
      std::vector<gid_t> groups(64);
      socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
      if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
        groups.resize(glen / sizeof(gid_t));
      } else {
        groups.clear();
      }
      auto session = std::make_shared<Session>(std::move(socket), commands_);
      if (allowed(cred.uid, cred.gid, groups)) {
        session->start();
      } else {
        spdlog::warn("control: refused uid {} (pid {})", cred.uid, cred.pid);
        session->refuse("permission denied: uid " + std::to_string(cred.uid) +
                            " may not use this socket (see daemon.allow_users and allow_groups)",
                        true);
      }
    } else {
      spdlog::warn("control: accept: {}", ec.message());
    }
    accept();
  });
}

bool ControlServer::allowed(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const {
  if (uid == 0 || uid == geteuid() || allowed_uids_.contains(uid)) return true;
  if (allowed_gids_.contains(gid)) return true;
  for (gid_t g : groups) {
    if (allowed_gids_.contains(g)) return true;
  }
  return false;
}

void ControlServer::close() {
  if (acceptor_) {
    boost::system::error_code ignored;
    acceptor_->acceptor.close(ignored);
    acceptor_.reset();
  }
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
  if (lock_fd_ >= 0) {
    ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

}  // namespace corral::daemon

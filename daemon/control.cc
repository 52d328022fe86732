#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <utility>

#include "daemon/private_dir.h"

namespace corral::daemon {

namespace asio = boost::asio;
using protocol::Json;
using Socket = asio::local::stream_protocol::socket;

struct ControlServer::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io), pause(io) {}
  asio::local::stream_protocol::acceptor acceptor;
  asio::steady_timer pause;  // accepting again after running out of fds
};

// Spare fds for clients when the daemon is out of fds: three sessions at a
// time (a `status`, a `stop`, a `tail`), and the last one only tells a
// further client why it is not served.
constexpr size_t kReservedFds = 4;
// How long accepting pauses when not even a spare fd is left.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

// One client connection. Requests are answered one at a time, in order;
// while a request is being answered (start waits for RUNNING) further input
// stays buffered. A streaming command (submit) takes the following input
// lines itself. Replies are appended to one buffer and written in large
// writes; while more than kMaxUnsent bytes of replies wait for a client that
// reads slowly, no further input is taken (a submit stream stops feeding
// tasks), so a session's memory stays bounded. The session keeps itself alive
// while an exchange is open, and nothing else keeps it: when the client goes,
// the session ends, its fd is closed, and Commands drops whatever waited to
// answer it.
class ControlServer::Session : public Conversation, public std::enable_shared_from_this<Session> {
 public:
  // RESERVE: the socket's fd is a spare of it, to be given back.
  Session(Socket socket, CommandHandler& commands, std::shared_ptr<FdReserve> reserve)
      : socket_(std::move(socket)), commands_(commands), reserve_(std::move(reserve)) {}
  ~Session() override {
    if (!reserve_) return;
    boost::system::error_code ignored;
    socket_.close(ignored);
    reserve_->refill();  // the fd just closed, before anything else takes it
  }

  // Holds the session's places (its user's connections, the client budget)
  // until it ends.
  void keep(Tally::Place user_place, Tally::Place budget_place) {
    user_place_ = std::move(user_place);
    budget_place_ = std::move(budget_place);
  }
  void start() { read_more(); }
  // Answers with one error line and closes. REFUSED marks a peer that may
  // not use the socket at all (corralctl treats it as unreachable).
  void refuse(const std::string& why, bool refused) {
    Json reply = protocol::error_reply(why);
    if (refused) reply["refused"] = true;
    queue(protocol::encode_line(reply));
    close_after_write_ = true;
  }

  // ---- Conversation ----
  void send(const Json& message, bool final) override {
    queue(protocol::encode_line(message));
    if (final) end_exchange();
  }
  void send_raw(std::string_view line) override { queue(line); }
  std::string& raw_buffer() override {
    if (closed_) discarded_.clear();
    return closed_ ? discarded_ : pending_;
  }
  void raw_appended(size_t /*from*/) override {
    if (!closed_ && !writing_) write_next();
  }
  void take_lines(std::function<Verdict(std::string_view)> on_line,
                  std::function<void()> on_batch) override {
    on_line_ = std::move(on_line);
    on_batch_ = std::move(on_batch);
  }
  void resume() override {
    if (!paused_) return;
    paused_ = false;
    process();
  }
  void on_close(std::function<void()> on_close) override { on_close_ = std::move(on_close); }
  bool closed() const override { return closed_; }

 private:
  // Small enough that the replies of a busy submit stay in the caches
  // while they are written and sent (4 MiB ran 15-20% slower: the buffers
  // grew by doubling into fresh mappings, written once and sent once).
  static constexpr size_t kMaxUnsent = 256 << 10;

  size_t buffered() const { return in_.size() - in_start_; }
  size_t unsent() const override { return pending_.size() + writing_buffer_.size(); }

  void read_more() {
    if (reading_ || closed_ || paused_ || buffered() > protocol::kMaxLineBytes ||
        unsent() > kMaxUnsent) {
      return;
    }
    reading_ = true;
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              self->reading_ = false;
                              if (ec) return self->close();
                              self->in_.append(self->chunk_.data(), n);
                              self->process();
                            });
  }

  void process() {
    if (processing_) return;  // a command answered from inside; the loop below goes on
    processing_ = true;
    bool batch = false;
    while (!closed_ && !paused_ && (on_line_ || !busy_) && unsent() <= kMaxUnsent) {
      size_t nl = in_.find('\n', in_start_);
      if (nl == std::string::npos) break;
      std::string_view line(in_.data() + in_start_, nl - in_start_);
      in_start_ = nl + 1;
      if (on_line_) {
        batch = true;
        Verdict verdict = on_line_(line);
        if (verdict == Verdict::kPause) paused_ = true;
        if (verdict == Verdict::kEnd) {
          on_line_ = nullptr;
          if (on_batch_) on_batch_();
          on_batch_ = nullptr;
          batch = false;
        }
        continue;
      }
      if (line.size() > protocol::kMaxLineBytes) {
        refuse_long();
        break;
      }
      auto request = protocol::parse_request_line(line);
      if (!request) {
        queue(protocol::encode_line(protocol::error_reply(request.error().message())));
        continue;
      }
      busy_ = true;
      hold_ = shared_from_this();
      commands_.handle(*request, std::static_pointer_cast<Conversation>(hold_));
    }
    if (batch && on_batch_) on_batch_();
    // Compact what was consumed.
    if (in_start_ > 0 && (in_start_ == in_.size() || in_start_ > (64 << 10))) {
      in_.erase(0, in_start_);
      in_start_ = 0;
    }
    processing_ = false;
    if (!closed_ && buffered() > protocol::kMaxLineBytes && in_.find('\n') == std::string::npos) {
      refuse_long();
      return;
    }
    read_more();
  }

  void refuse_long() {
    refuse("request line longer than " + std::to_string(protocol::kMaxLineBytes) + " bytes", false);
    in_.clear();
    in_start_ = 0;
    paused_ = true;  // read nothing more; the session ends after the error is written
  }

  void end_exchange() {
    busy_ = false;
    on_line_ = nullptr;
    on_batch_ = nullptr;
    on_close_ = nullptr;
    auto self = std::move(hold_);  // released at the end of this call
    if (!processing_) process();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (auto on_close = std::move(on_close_)) on_close();
    on_line_ = nullptr;
    on_batch_ = nullptr;
    if (busy_) commands_.client_gone();
    hold_.reset();
  }

  void queue(std::string_view line) {
    if (closed_) return;
    pending_.append(line);
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    writing_buffer_.swap(pending_);
    pending_.clear();
    asio::async_write(socket_, asio::buffer(writing_buffer_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->on_written(ec);
                      });
  }

  void on_written(boost::system::error_code ec) {
    bool was_full = unsent() > kMaxUnsent;
    writing_ = false;
    writing_buffer_.clear();
    if (ec) return close();
    if (!pending_.empty()) write_next();
    if (was_full && !closed_) process();  // input was held back while replies piled up
    if (writing_ || !close_after_write_) return;
    boost::system::error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    close();
  }

  Socket socket_;
  CommandHandler& commands_;
  std::shared_ptr<FdReserve> reserve_;
  Tally::Place user_place_;
  Tally::Place budget_place_;
  std::array<char, 64 * 1024> chunk_;
  std::string in_;
  size_t in_start_ = 0;
  std::string pending_;
  std::string writing_buffer_;
  std::string discarded_;  // what send_raw_with() writes once the session is closed
  std::function<Verdict(std::string_view)> on_line_;
  std::function<void()> on_batch_;
  std::function<void()> on_close_;
  std::shared_ptr<Session> hold_;  // set while an exchange is open
  bool busy_ = false;
  bool paused_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool processing_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
};

ControlServer::ControlServer(asio::io_context& io, CommandHandler& commands,
                             std::shared_ptr<ClientBudget> budget)
    : io_(io),
      commands_(commands),
      reserve_(std::make_shared<FdReserve>(kReservedFds)),
      budget_(std::move(budget)) {}

ControlServer::~ControlServer() { close(); }

Status ControlServer::open(const config::DaemonSpec& daemon) {
  const std::string& path = daemon.socket;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Error("daemon.socket " + path + ": longer than " +
                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  // corrald runs as root: a directory another user can write would let
  // that user swap the socket under a root corralctl, or make corrald
  // create or lock a file of their choosing. So it must be private, like
  // the log_dir (private_dir.h); made when missing with 0755, so that
  // allowed users get through to the socket.
  auto [directory, name] = split_file_path(path);
  if (name.empty()) {
    return Error("daemon.socket " + path + ": names a directory, not a socket file");
  }
  PrivateDirs dirs(daemon.private_dirs);
  auto opened_dir = dirs.open(directory, "daemon.socket's directory", true, 0755);
  if (!opened_dir) return std::move(opened_dir).error();
  const std::shared_ptr<SafeDir>& dir = *opened_dir;

  Result<OpenedFile> lock = dir->open(name + ".lock", FileUse::kLock, "lock file");
  if (!lock) return Error(lock.error().message() + " (remove it)");
  if (flock(lock->fd.get(), LOCK_EX | LOCK_NB) < 0) {
    return Error("another corrald is running on " + path + " (" + path + ".lock is locked)");
  }
  lock_ = std::move(lock->fd);
  socket_dir_ = dir;
  socket_name_ = name;
  // We hold the lock: whatever socket file is there was left by a dead daemon.
  if (auto st = dir->stat(name)) {
    if (!S_ISSOCK(st->st_mode)) return Error(path + " exists and is not a socket");
    ::unlinkat(dir->fd(), name.c_str(), 0);
  }

  SocketAccess access = plan_socket_access(daemon);
  for (const auto& warning : access.warnings) spdlog::warn("{}", warning);
  allowed_uids_ = access.uids;
  allowed_gids_ = access.gids;

  acceptor_ = std::make_unique<Acceptor>(io_);
  boost::system::error_code ec;
  asio::local::stream_protocol::endpoint endpoint(path);
  acceptor_->acceptor.open(endpoint.protocol(), ec);
  if (ec) return Error("socket " + path + ": " + ec.message());
  // Bound under a umask that leaves exactly socket_mode: no window in which
  // the socket has looser permissions.
  mode_t old_mask = ::umask(static_cast<mode_t>(~daemon.socket_mode & 0777));
  acceptor_->acceptor.bind(endpoint, ec);
  ::umask(old_mask);
  if (ec) return Error("bind " + path + ": " + ec.message());
  path_ = path;
  // Nobody can connect before listen(), so the group changes in time.
  if (access.socket_group &&
      ::lchown(path.c_str(), static_cast<uid_t>(-1), *access.socket_group) != 0) {
    return errno_error("cannot give " + path + " the group " +
                       std::to_string(*access.socket_group) + " of daemon.allow_groups");
  }
  return {};
}

Status ControlServer::listen() {
  boost::system::error_code ec;
  acceptor_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error("listen " + path_ + ": " + ec.message());
  accept();
  return {};
}

void ControlServer::accept() {
  acceptor_->acceptor.async_accept([this](boost::system::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (FdReserve::out_of_fds(ec)) return shed(ec);
    if (ec) {
      spdlog::warn("control: accept: {}", ec.message());
    } else {
      if (std::exchange(starved_, false)) spdlog::info("control: accepting connections again");
      reserve_->refill();
      serve(std::move(socket), false);
    }
    accept();
  });
}

void ControlServer::serve(Socket socket, bool on_reserve) {
  ucred cred{};
  socklen_t len = sizeof cred;
  int fd = socket.native_handle();
  // Unread credentials are no one's: refused, not taken for root's.
  const bool credentials =
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred;
  const int peercred_errno = errno;
  std::vector<gid_t> groups(64);
  socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
    groups.resize(glen / sizeof(gid_t));
  } else {
    groups.clear();
  }
  auto session =
      std::make_shared<Session>(std::move(socket), commands_, on_reserve ? reserve_ : nullptr);
  if (!credentials) {
    spdlog::warn("control: refused a client whose credentials cannot be read (SO_PEERCRED: {})",
                 strerror(peercred_errno));
    return session->refuse(
        "permission denied: corrald cannot read the credentials of this connection", true);
  }
  if (!allowed(cred.uid, cred.gid, groups)) {
    spdlog::warn("control: refused uid {} (pid {})", cred.uid, cred.pid);
    return session->refuse("permission denied: uid " + std::to_string(cred.uid) +
                               " may not use this socket (see daemon.allow_users and allow_groups)",
                           true);
  }
  Result<Places> places = admit(cred.uid);
  if (!places) return session->refuse(places.error().message(), true);
  session->keep(std::move(places->user), std::move(places->budget));
  session->start();
}

Result<ControlServer::Places> ControlServer::admit(uid_t uid) {
  Places places;
  // Root and the daemon's own uid could end the daemon anyway; a cap would
  // only stand in their way. They count towards the budget like anyone.
  if (uid != 0 && uid != geteuid()) {
    User& user = users_[uid];
    if (user.connections.count() >= kMaxConnectionsPerUser) {
      if (!std::exchange(user.capped, true)) {
        spdlog::warn(
            "control: uid {} has {} connections open, the most one user may have; "
            "refusing more until some close",
            uid, kMaxConnectionsPerUser);
      }
      return Error("uid " + std::to_string(uid) + " has " + std::to_string(kMaxConnectionsPerUser) +
                   " connections open to corrald, the most one user may have; close some first");
    }
    user.capped = false;
    places.user = user.connections.take();
  }
  places.budget = budget_->take();
  if (!places.budget) {
    if (!std::exchange(budget_spent_, true)) {
      spdlog::warn(
          "control: {} clients are connected, the most corrald serves (a quarter of "
          "RLIMIT_NOFILE); refusing more until some close",
          budget_->in_use());
    }
    return Error("corrald serves " + std::to_string(budget_->in_use()) +
                 " clients already, its most (a quarter of its file descriptor limit); try again "
                 "when some have closed");
  }
  budget_spent_ = false;
  return places;
}

void ControlServer::shed(const boost::system::error_code& ec) {
  if (!std::exchange(starved_, true)) {
    spdlog::error("control: accept: {}; serving clients from {} reserved fds until fds are free",
                  ec.message(), kReservedFds - 1);
  }
  const bool last_spare = reserve_->available() == 1;
  UniqueFd fd = reserve_->accept_with_spare(acceptor_->acceptor.native_handle());
  if (fd && !last_spare) {
    Socket socket(io_);
    boost::system::error_code assign_error;
    socket.assign(asio::local::stream_protocol(), fd.get(), assign_error);
    if (!assign_error) {
      (void)fd.release();  // the socket owns it now
      serve(std::move(socket), true);
      accept();
      return;
    }
    fd.reset();
    reserve_->refill();
  } else if (fd) {
    // The client's request is not read: this answer is all it gets.
    // "refused": corralctl reports a daemon it cannot reach (exit 3).
    Json reply = protocol::error_reply("corrald is out of file descriptors (" + ec.message() +
                                       "); try again when workers or clients have closed some");
    reply["refused"] = true;
    std::string line = protocol::encode_line(reply);
    (void)!::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    fd.reset();
    reserve_->refill();
    accept();  // the connection left the queue: no spin
    return;
  }
  // No spare left (every one serves a client): the connection stays queued,
  // so wait instead of accepting, and failing, again at once.
  acceptor_->pause.expires_after(kAcceptPause);
  acceptor_->pause.async_wait([this](boost::system::error_code wait_ec) {
    if (wait_ec || !acceptor_) return;
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
    acceptor_->pause.cancel();
    acceptor_->acceptor.close(ignored);
    acceptor_.reset();
  }
  if (!path_.empty()) {
    ::unlinkat(socket_dir_->fd(), socket_name_.c_str(), 0);
    path_.clear();
  }
  if (lock_.valid()) {
    ::unlinkat(socket_dir_->fd(), (socket_name_ + ".lock").c_str(), 0);
    lock_.reset();
  }
}

}  // namespace corral::daemon

#include "ctl/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "base/io.h"
#include "config/spec.h"
#include "protocol/exit_codes.h"
#include "protocol/task_lines.h"

namespace corral::ctl {

ClientError ClientError::unreachable(std::string_view socket, int err) {
  return unreachable(socket, std::strerror(err));
}

ClientError ClientError::unreachable(std::string_view socket, std::string_view why) {
  std::string message = "cannot reach corrald at ";
  message.append(socket).append(": ").append(why);
  return ClientError(Kind::kUnreachable, std::move(message));
}

ClientError ClientError::protocol(std::string message) {
  return ClientError(Kind::kProtocol, std::move(message));
}

int ClientError::exit_code() const {
  return kind_ == Kind::kUnreachable ? protocol::kExitUnreachable : protocol::kExitFailed;
}

namespace {

// A blocking connect interrupted by a signal goes on in the background; wait
// for it instead of starting another one (which would fail with EALREADY).
int finish_interrupted_connect(int fd) {
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) return errno;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

// Whether REPLY is corrald's refusal of a request for carrying FIELD, which
// it does not know (`unknown field "FIELD" in a ... request`).
bool refuses_field(const Json& reply, std::string_view field) {
  auto ok = reply.find("ok");
  auto error = reply.find("error");
  if (ok == reply.end() || !ok->is_boolean() || ok->get<bool>() || error == reply.end() ||
      !error->is_string()) {
    return false;
  }
  return error->get_ref<const std::string&>().starts_with("unknown field \"" + std::string(field) +
                                                          "\"");
}

// Whether corralctl may talk to who serves the socket FD is connected to
// (trust_peer).
Status check_peer(int fd, const std::string& socket_path) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    return Error(
        std::string("cannot read the credentials of the process serving it (SO_PEERCRED: ") +
        std::strerror(errno) + ")");
  }
  std::optional<SocketDirectory> dir;
  std::string dir_path = std::filesystem::path(socket_path).parent_path().string();
  if (dir_path.empty()) dir_path = ".";
  struct stat st {};
  if (::stat(dir_path.c_str(), &st) == 0) dir = SocketDirectory{dir_path, st.st_uid, st.st_mode};
  return trust_peer(cred.uid, ::geteuid(), dir);
}

}  // namespace

Status trust_peer(uid_t peer, uid_t me, const std::optional<SocketDirectory>& dir) {
  if (peer == 0 || peer == me) return {};
  const bool shared = dir && (dir->mode & (S_IWGRP | S_IWOTH)) != 0;
  if (dir && !shared && peer == dir->uid) return {};
  std::string why = "the process serving it runs as uid " + std::to_string(peer) +
                    ", which is neither root nor you (uid " + std::to_string(me) + ")";
  if (!dir) {
    why += ", and the socket's directory cannot be read";
  } else if (shared) {
    why += "; the owner of " + dir->path + " does not count, since others may write in it";
  } else {
    why += " nor uid " + std::to_string(dir->uid) + ", the owner of " + dir->path;
  }
  return Error(why + ": corralctl sent it nothing");
}

ClientResult<Client> Client::connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty()) return ClientError::unreachable(socket_path, "empty socket path");
  if (socket_path.size() >= sizeof addr.sun_path) {
    return ClientError::unreachable(
        socket_path,
        "socket path too long (at most " + std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ClientError::unreachable(socket_path, errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
    int err = errno == EINTR ? finish_interrupted_connect(fd.get()) : errno;
    if (err != 0) return ClientError::unreachable(socket_path, err);
  }
  // Before the first byte: a request may carry what an impostor should not
  // see (tasks), or make it answer what a script then trusts.
  if (Status trusted = check_peer(fd.get(), socket_path); !trusted) {
    return ClientError::unreachable(socket_path, trusted.error().message());
  }
  return Client(std::move(fd), socket_path);
}

ClientStatus Client::send(const Json& request) {
  if (!fd_) return ClientError::protocol("not connected to corrald");
  std::string line = protocol::encode_line(request);
  if (line.size() - 1 > protocol::kMaxLineBytes) {
    return ClientError::protocol("request too long (over " +
                                 std::to_string(protocol::kMaxLineBytes) + " bytes)");
  }
  std::string_view rest = line;
  while (!rest.empty()) {
    // MSG_NOSIGNAL: a daemon that went away is an error to report, not SIGPIPE.
    ssize_t n = ::send(fd_.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) {
        peer_closed_ = true;
        return ClientError::protocol("corrald closed the connection");
      }
      return ClientError::protocol(std::string("sending to corrald: ") + std::strerror(errno));
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

ClientResult<std::string> Client::read_line() {
  if (!fd_) return ClientError::protocol("not connected to corrald");
  size_t scanned = 0;  // bytes of buffer_ known to hold no '\n'
  while (true) {
    size_t newline = buffer_.find('\n', scanned);
    if (newline != std::string::npos) {
      if (newline > protocol::kMaxLineBytes) break;
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    scanned = buffer_.size();
    if (scanned > protocol::kMaxLineBytes) break;

    char chunk[64 * 1024];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return ClientError::protocol("corrald closed the connection");
      return ClientError::protocol(std::string("reading from corrald: ") + std::strerror(errno));
    }
    if (n == 0) {
      return ClientError::protocol(buffer_.empty()
                                       ? "corrald closed the connection"
                                       : "corrald closed the connection in the middle of a line");
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
  // The stream cannot be resynchronised after an oversized line.
  fd_.reset();
  return ClientError::protocol("reply line from corrald longer than " +
                               std::to_string(protocol::kMaxLineBytes) + " bytes");
}

ClientResult<Json> Client::read_message() {
  auto line = read_line();
  if (!line) return line.error();
  Json message = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) {
    return ClientError::protocol("malformed reply from corrald: bad JSON");
  }
  if (!message.is_object()) {
    return ClientError::protocol("malformed reply from corrald: not a JSON object");
  }
  return message;
}

ClientResult<Json> Client::call(const Json& request) {
  auto sent = send(request);
  // A peer that corrald refuses gets one error line, then the connection is
  // closed, maybe before our request went out: that line is still readable.
  if (!sent && !peer_closed_) return sent.error();
  auto reply = read_message();
  if (!reply) return sent ? reply.error() : sent.error();
  // Refused is "cannot reach", like a socket file we may not open.
  auto refused = reply->find("refused");
  if (refused != reply->end() && refused->is_boolean() && refused->get<bool>()) {
    auto error = reply->find("error");
    return ClientError::unreachable(socket_path_, error != reply->end() && error->is_string()
                                                      ? error->get<std::string>()
                                                      : "refused by corrald");
  }
  if (request.contains("fields") && refuses_field(*reply, "fields")) {
    Json without = request;
    without.erase("fields");
    return call(without);
  }
  return reply;
}

ClientStatus Client::read_until_end(const std::function<void(const Json&)>& on_message) {
  for (;;) {
    auto message = read_message();
    if (!message) return message.error();
    auto end = message->find("end");
    if (end != message->end() && end->is_boolean() && end->get<bool>()) return {};
    on_message(*message);
  }
}

// The result lines of results and retry --wait, copied to stdout as they
// come so that a follower sees each result when corrald records it.
ClientResult<ResultTotals> Client::read_results(int out_fd) {
  ResultTotals totals;
  for (;;) {
    auto line = read_line();
    if (!line) return line.error();
    // An ok line is copied as it is: most lines are, and a follower of a busy
    // job should not parse each.
    if (!protocol::is_ok_result_line(*line)) {
      Json message = Json::parse(*line, nullptr, /*allow_exceptions=*/false);
      if (!message.is_object()) {
        return ClientError::protocol("corrald sent a line that is not a JSON object");
      }
      auto end = message.find("end");
      if (end != message.end() && end->is_boolean() && end->get<bool>()) {
        totals.end = std::move(message);
        return totals;
      }
      if (auto ok = message.find("ok"); ok != message.end()) {
        auto error = message.find("error");
        return ClientError::protocol(error != message.end() && error->is_string()
                                         ? error->get<std::string>()
                                         : "corrald ended the results with an error");
      }
      auto status = message.find("status");
      std::string_view name = status != message.end() && status->is_string()
                                  ? std::string_view(status->get_ref<const std::string&>())
                                  : std::string_view();
      if (name == "cancelled") {
        ++totals.cancelled;
      } else if (name == "expired") {
        ++totals.expired;
      } else {
        ++totals.failed;  // failed, dead, or a status this corralctl does not know
      }
    }
    ++totals.results;
    line->push_back('\n');
    // A failed write has nowhere left to be told (a closed stdout ends
    // corralctl by SIGPIPE anyway).
    (void)corral::write_all(out_fd, *line);
  }
}

std::optional<std::string> named_socket(const std::optional<std::string>& flag, const char* env) {
  if (flag) return *flag;
  if (env != nullptr && *env != '\0') return std::string(env);
  return std::nullopt;
}

SocketChoice socket_without_config(const std::optional<std::string>& flag, const char* env) {
  return {named_socket(flag, env).value_or(config::DaemonSpec().socket), {}};
}

}  // namespace corral::ctl

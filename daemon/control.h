// The control socket: a Unix stream socket at daemon.socket, one JSON request
// per line, answered by Commands. Every peer is checked with SO_PEERCRED
// (root, the daemon's uid, allow_users, allow_groups). A bad line gets an
// error reply and the session goes on; an over-long line gets an error and
// the session ends. One slow client never holds up another, and no client
// holds more than its share: each user but root and the daemon's own has at
// most kMaxConnectionsPerUser connections, and every connection takes a
// place in the ClientBudget it shares with /metrics.
//
// Single instance: SOCKET.lock is flock()ed for the daemon's life, so a
// second corrald on the same socket refuses to start, and a socket file left
// by a dead daemon is replaced. The socket's directory, and every one above
// it, must be safe from other users (socket_access.h); the lock is opened
// without following links.
#pragma once

#include <sys/types.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/spec.h"
#include "daemon/commands.h"
#include "daemon/fd_reserve.h"
#include "daemon/safe_file.h"
#include "daemon/socket_access.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class ControlServer {
 public:
  // Connections of one uid at a time, root and the daemon's uid excepted:
  // enough for a busy operator's shells, scripts and `corralctl top`s.
  static constexpr size_t kMaxConnectionsPerUser = 32;

  // BUDGET: the places for clients, shared with /metrics.
  ControlServer(boost::asio::io_context& io, CommandHandler& commands,
                std::shared_ptr<ClientBudget> budget = std::make_shared<ClientBudget>());
  ~ControlServer();

  // Checks (and makes, 0755) the socket's directory, takes the lock and
  // binds; the error says why not. Until listen(), a client's connect() is
  // refused, so nobody reaches a daemon whose later start-up steps may
  // still fail.
  Status open(const config::DaemonSpec& daemon);
  // Starts taking connections.
  Status listen();
  // Stops accepting, removes the socket file and releases the lock.
  void close();

 private:
  class Session;
  struct Acceptor;
  void accept();
  // Checks the peer and starts a session; ON_RESERVE: its fd is a spare of
  // reserve_, given back when the session ends.
  void serve(boost::asio::local::stream_protocol::socket socket, bool on_reserve);
  // accept() found no fd for a connection: serve it with a spare fd, tell
  // it why with the last spare, or pause accepting.
  void shed(const boost::system::error_code& ec);
  bool allowed(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const;
  // The places one more connection of a client of UID takes (among its
  // user's connections, in the client budget), or why it may not have one.
  struct Places {
    Tally::Place user;
    Tally::Place budget;
  };
  Result<Places> admit(uid_t uid);

  boost::asio::io_context& io_;
  CommandHandler& commands_;
  std::unique_ptr<Acceptor> acceptor_;
  std::string path_;                     // the socket, once bound (removed by close())
  std::shared_ptr<SafeDir> socket_dir_;  // its directory, held open
  std::string socket_name_;
  UniqueFd lock_;                       // SOCKET.lock, flock()ed
  std::shared_ptr<FdReserve> reserve_;  // sessions on a spare fd give it back
  bool starved_ = false;                // accept() is failing for want of fds (logged once)
  std::set<uid_t> allowed_uids_;
  std::set<gid_t> allowed_gids_;
  std::shared_ptr<ClientBudget> budget_;
  struct User {
    Tally connections;
    bool capped = false;  // at its cap since it was last logged
  };
  std::map<uid_t, User> users_;
  bool budget_spent_ = false;  // logged once until a client gets a place again
};

}  // namespace corral::daemon

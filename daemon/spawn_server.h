// A small process that starts workers for corrald.
//
// Every clone() copies the caller's fd table, and before exec the child
// closes all of it: with corrald holding a few fds per worker (pidfd, output
// pipes, /proc files), starting N workers costs O(N^2) fd closes, half of
// corrald's time at 1000 workers. So corrald forks this server at startup,
// while its own table is still small. The server holds nothing but its end of
// a socketpair; for each spawn corrald sends the request with the child's fds
// attached (SCM_RIGHTS), the server runs spawner.h's launch() with
// CLONE_PARENT, so the worker is still corrald's child (its SIGCHLD, its
// waitid, its PR_SET_PDEATHSIG), and sends back the pid and the pidfd.
//
// The server dies with corrald (PR_SET_PDEATHSIG) and ends when its socket
// closes. A request it cannot take (larger than the socket's buffer) or a
// server that is gone falls back to launch() in corrald itself, which is the
// same spawn, only slower with many workers.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/host.h"
#include "daemon/spawner.h"

namespace corral::daemon {

class SpawnServer {
 public:
  // Forks the server; the failed call ("fork: ...") when it cannot.
  static Result<std::unique_ptr<SpawnServer>> start();
  // Closes the socket and reaps the server.
  ~SpawnServer();
  SpawnServer(const SpawnServer&) = delete;
  SpawnServer& operator=(const SpawnServer&) = delete;

  // launch() in the server; in corrald when the server cannot take it.
  Launched launch(const SpawnRequest& request, const std::vector<FdMapping>& fds,
                  const rlimit& nofile_default);

  pid_t pid() const { return pid_; }

  // Made by start() alone: only it can make the key.
  class Forked {
    friend class SpawnServer;
    explicit Forked() = default;
  };
  SpawnServer(Forked, pid_t pid, UniqueFd socket) : pid_(pid), socket_(std::move(socket)) {}

 private:
  // False when the server did not answer (it is gone): the caller falls back.
  bool remote(const std::vector<char>& message, const std::vector<int>& sources, Launched& out);
  void lost(const char* why);

  pid_t pid_;
  UniqueFd socket_;
};

}  // namespace corral::daemon

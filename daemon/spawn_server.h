// A small process that starts workers for corrald.
//
// Every clone() copies the caller's fd table, and before exec the child
// closes all of it: with corrald holding a few fds per worker (pidfd, output
// pipes, /proc files), starting N workers costs O(N^2) fd closes, half of
// corrald's time at 1000 workers. So corrald starts this server at startup,
// while its own table is still small. The server holds nothing but its end of
// a socketpair; for each spawn corrald sends the request with the child's fds
// attached (SCM_RIGHTS), the server runs spawner.h's launch_as() with
// CLONE_PARENT, so the worker is still corrald's child (its SIGCHLD, its
// waitid, its PR_SET_PDEATHSIG), and sends back the pid and the pidfd.
//
// The server is a program of its own, corral-spawn (spawn_main.cc), linked
// with libc alone, so that it maps none of corrald's libraries and shares
// none of its heap: a fork of corrald kept 2.7 MiB resident with 100
// workers, corral-spawn keeps 1.4 MiB (0.3 MiB PSS). corrald looks users up
// itself and sends their ids. Where corral-spawn cannot be found or does not
// greet, corrald forks the same loop from itself, as before.
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
  // Starts corral-spawn (found beside corrald, else where it is installed),
  // else forks the server from corrald; the failed call ("fork: ...") when
  // neither serves.
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
  static Result<std::unique_ptr<SpawnServer>> start_program(const std::string& path);
  static Result<std::unique_ptr<SpawnServer>> start_fork();
  // False when the server did not answer (it is gone): the caller falls back.
  bool remote(const std::vector<char>& message, const std::vector<int>& sources, Launched& out);
  void lost(const char* why);

  pid_t pid_;
  UniqueFd socket_;
};

}  // namespace corral::daemon

#include "daemon/spawn_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string_view>

#include "base/companion_program.h"
#include "daemon/spawn_protocol.h"

namespace corral::daemon {
namespace {

using spawn_protocol::kBuffer;
using spawn_protocol::kGreeting;
using spawn_protocol::kMaxFds;
using spawn_protocol::receive_with_fds;
using spawn_protocol::send_with_fds;

// Where corral-spawn is: beside corrald, else where it is installed.
std::vector<std::string> program_paths() {
#ifdef CORRAL_SPAWN_INSTALLED
  return companion_program_paths("corral-spawn", CORRAL_SPAWN_INSTALLED);
#else
  return companion_program_paths("corral-spawn", nullptr);
#endif
}

// Waits for the server's greeting on SOCKET; an empty string when it came,
// else what came instead.
std::string await_greeting(int socket) {
  pollfd ready{socket, POLLIN, 0};
  int rc;
  do {
    rc = poll(&ready, 1, 10'000);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return "no greeting within 10 s";
  char buffer[256];
  std::vector<UniqueFd> fds;
  bool truncated = false;
  ssize_t n = receive_with_fds(socket, buffer, sizeof buffer, fds, truncated);
  if (n < 0) return strerror(errno);
  if (n == 0) return "exited at once";
  if (truncated || !fds.empty() || std::string_view(buffer, static_cast<size_t>(n)) != kGreeting) {
    return "a wrong greeting";
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<SpawnServer>> SpawnServer::start() {
  std::string why;
  for (const std::string& path : program_paths()) {
    if (access(path.c_str(), X_OK) != 0) continue;
    auto server = start_program(path);
    if (server) return server;
    why = server.error().message();
    break;
  }
  if (why.empty()) why = "no corral-spawn beside corrald or where it is installed";
  // The server forked from corrald: the same loop, with a copy of corrald's
  // address space (its libraries' pages and the heap it had then).
  spdlog::warn("spawn server: {}; forking it from corrald", why);
  return start_fork();
}

namespace {
// corrald's end (with room for a whole request) and the server's end of
// their connection.
Result<std::pair<UniqueFd, UniqueFd>> socket_pair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    return errno_error("socketpair");
  }
  std::pair<UniqueFd, UniqueFd> ends{UniqueFd(sv[0]), UniqueFd(sv[1])};
  int size = kBuffer;
  setsockopt(ends.first.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  return ends;
}
}  // namespace

Result<std::unique_ptr<SpawnServer>> SpawnServer::start_program(const std::string& path) {
  Result<std::pair<UniqueFd, UniqueFd>> ends = socket_pair();
  if (!ends) return std::move(ends).error();
  auto& [ours, theirs] = *ends;
  // The server's end stays open across exec; corrald spawns from this
  // thread alone, so no other child can inherit it meanwhile.
  if (fcntl(theirs.get(), F_SETFD, 0) < 0) return errno_error("fcntl");
  // Every disposition back to its default (corrald ignores SIGPIPE); the
  // mask is inherited until the server has set its own dispositions.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigemptyset(&all);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaddset(&all, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  std::string fd = std::to_string(theirs.get());
  std::string daemon = std::to_string(getpid());
  char* argv[] = {const_cast<char*>("corral-spawn"), fd.data(), daemon.data(),
                  const_cast<char*>(kGreeting), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, path.c_str(), nullptr, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  theirs.reset();
  if (rc != 0) return errno_error("exec " + path, rc);
  std::string why = await_greeting(ours.get());
  if (!why.empty()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return Error(path + ": " + why);
  }
  return std::make_unique<SpawnServer>(Forked{}, pid, std::move(ours));
}

Result<std::unique_ptr<SpawnServer>> SpawnServer::start_fork() {
  Result<std::pair<UniqueFd, UniqueFd>> ends = socket_pair();
  if (!ends) return std::move(ends).error();
  auto& [ours, theirs] = *ends;
  const pid_t daemon = getpid();
  pid_t pid = fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    ours.reset();
    spawn_protocol::serve(theirs.release(), daemon);
  }
  theirs.reset();
  std::string why = await_greeting(ours.get());
  if (!why.empty()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return Error("forked: " + why);
  }
  return std::make_unique<SpawnServer>(Forked{}, pid, std::move(ours));
}

SpawnServer::~SpawnServer() {
  socket_.reset();  // the server ends when its socket closes
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

void SpawnServer::lost(const char* why) {
  spdlog::warn("spawn server (pid {}) {}; starting workers from corrald from now on", pid_, why);
  socket_.reset();
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

bool SpawnServer::remote(const std::vector<char>& message, const std::vector<int>& sources,
                         Launched& out) {
  const ssize_t sent =
      send_with_fds(socket_.get(), message.data(), message.size(), sources.data(), sources.size());
  if (sent < 0) {
    // Too large for the socket: this one spawn goes the slow way.
    if (errno == EMSGSIZE || errno == ENOBUFS) return false;
    lost(strerror(errno));
    return false;
  }
  char buffer[4096];
  std::vector<UniqueFd> fds;
  bool truncated = false;
  ssize_t n = receive_with_fds(socket_.get(), buffer, sizeof buffer, fds, truncated);
  if (n <= 0 || truncated) {
    lost(n == 0 ? "exited" : n < 0 ? strerror(errno) : "sent a truncated reply");
    return false;
  }
  pid_t pid = 0;
  const bool read = spawn_protocol::decode_reply(buffer, static_cast<size_t>(n), pid, out.error);
  const bool well_formed =
      pid > 0 ? fds.size() == 1 && out.error.empty() : fds.size() <= 1 && !out.error.empty();
  if (!read || !well_formed) {
    lost("sent a malformed reply");
    return false;
  }
  if (pid > 0) {
    out.pid = pid;
    out.pidfd = std::move(fds[0]);
    return true;
  }
  if (!fds.empty()) {
    // The child failed before exec: it is ours to reap.
    siginfo_t info{};
    waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fds[0].get()), &info, WEXITED);
  }
  return true;
}

Launched SpawnServer::launch(const SpawnRequest& request, const std::vector<FdMapping>& fds,
                             const rlimit& nofile_default) {
  if (!socket_ || fds.size() + 1 > kMaxFds || request.argv.empty() || request.argv[0].empty()) {
    return daemon::launch(request, fds, nofile_default);
  }
  // The user is looked up here, in corrald: the server has no NSS.
  Result<std::optional<UserIds>> user = spawn_user(request);
  if (!user) {
    Launched out;
    out.error = user.error().message();
    return out;
  }
  std::vector<int> sources;
  for (const auto& m : fds) sources.push_back(m.source);
  if (request.cgroup_fd >= 0) sources.push_back(request.cgroup_fd);
  Launched out;
  if (remote(spawn_protocol::encode_request(request, *user, fds, nofile_default), sources, out)) {
    return out;
  }
  return launch_as(request, *user, fds, nofile_default);
}

}  // namespace corral::daemon

#include "daemon/spawn_server.h"

#include <errno.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <optional>

namespace corral::daemon {
namespace {

// The most fds one message carries (the kernel's SCM_MAX_FD).
constexpr size_t kMaxFds = 253;
// The socket buffer corrald asks for; a request above what it gets is
// launched in corrald.
constexpr int kBuffer = 1 << 20;

// A flat encoding of what launch() reads: fixed-size integers and
// length-prefixed strings, in the machine's byte order (both ends are one
// binary).
class Writer {
 public:
  template <typename T>
  void put(T value) {
    const auto* bytes = reinterpret_cast<const char*>(&value);
    out_.insert(out_.end(), bytes, bytes + sizeof value);
  }
  void put(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void put(const std::vector<std::string>& list) {
    put<uint32_t>(static_cast<uint32_t>(list.size()));
    for (const auto& s : list) put(s);
  }
  std::vector<char>& bytes() { return out_; }

 private:
  std::vector<char> out_;
};

class Reader {
 public:
  Reader(const char* data, size_t size) : data_(data), left_(size) {}
  template <typename T>
  bool get(T& value) {
    if (left_ < sizeof value) return false;
    memcpy(&value, data_, sizeof value);
    data_ += sizeof value;
    left_ -= sizeof value;
    return true;
  }
  bool get(std::string& s) {
    uint32_t size = 0;
    if (!get(size) || left_ < size) return false;
    s.assign(data_, size);
    data_ += size;
    left_ -= size;
    return true;
  }
  bool get(std::vector<std::string>& list) {
    uint32_t count = 0;
    if (!get(count) || count > left_ / sizeof(uint32_t)) return false;
    list.resize(count);
    for (auto& s : list) {
      if (!get(s)) return false;
    }
    return true;
  }
  bool done() const { return left_ == 0; }

 private:
  const char* data_;
  size_t left_;
};

// What launch() needs besides the fds' sources, and corrald's resource
// limits as they are now: a worker inherits them, as if corrald had made it,
// even after they were changed at run time (prlimit), and the server's own
// RLIMIT_NPROC is the one clone() checks.
struct Request {
  SpawnRequest spawn;
  std::vector<int> targets;
  bool cgroup = false;  // the last fd received is the cgroup's
  rlimit nofile_default{};
  std::array<rlimit, RLIM_NLIMITS> limits{};
};

std::vector<char> encode(const SpawnRequest& request, const std::vector<FdMapping>& fds,
                         const rlimit& nofile_default) {
  Writer w;
  w.put<uint32_t>(static_cast<uint32_t>(fds.size()));
  for (const auto& m : fds) w.put<int32_t>(m.target);
  w.put(request.argv);
  w.put(request.env);
  w.put(request.cwd);
  w.put(request.user);
  w.put<int32_t>(request.nice);
  w.put<int32_t>(request.umask ? static_cast<int32_t>(*request.umask) : -1);
  w.put<uint8_t>(request.nofile.has_value());
  w.put<uint64_t>(request.nofile.value_or(0));
  w.put<uint32_t>(static_cast<uint32_t>(request.cpus.size()));
  for (int cpu : request.cpus) w.put<int32_t>(cpu);
  w.put<uint8_t>(request.cgroup_fd >= 0);  // the cgroup's fd follows the mappings' sources
  w.put<uint64_t>(nofile_default.rlim_cur);
  w.put<uint64_t>(nofile_default.rlim_max);
  for (int resource = 0; resource < RLIM_NLIMITS; ++resource) {
    rlimit limit{RLIM_INFINITY, RLIM_INFINITY};
    getrlimit(static_cast<__rlimit_resource>(resource), &limit);
    w.put<uint64_t>(limit.rlim_cur);
    w.put<uint64_t>(limit.rlim_max);
  }
  return std::move(w.bytes());
}

std::optional<Request> decode(const char* data, size_t size) {
  Reader r(data, size);
  Request out;
  uint32_t count = 0;
  if (!r.get(count) || count > kMaxFds) return std::nullopt;
  out.targets.resize(count);
  for (auto& target : out.targets) {
    int32_t t = 0;
    if (!r.get(t)) return std::nullopt;
    target = t;
  }
  uint8_t has_nofile = 0;
  uint64_t nofile = 0;
  int32_t nice = 0;
  int32_t umask = -1;
  if (!r.get(out.spawn.argv) || !r.get(out.spawn.env) || !r.get(out.spawn.cwd) ||
      !r.get(out.spawn.user) || !r.get(nice) || !r.get(umask) || umask > 0777 ||
      !r.get(has_nofile) || !r.get(nofile) || !r.get(count) || count > size) {
    return std::nullopt;
  }
  out.spawn.nice = nice;
  if (umask >= 0) out.spawn.umask = static_cast<unsigned>(umask);
  if (has_nofile != 0) out.spawn.nofile = nofile;
  out.spawn.cpus.resize(count);
  for (auto& cpu : out.spawn.cpus) {
    int32_t c = 0;
    if (!r.get(c)) return std::nullopt;
    cpu = c;
  }
  uint8_t has_cgroup = 0;
  if (!r.get(has_cgroup)) return std::nullopt;
  out.cgroup = has_cgroup != 0;
  uint64_t cur = 0, max = 0;
  if (!r.get(cur) || !r.get(max)) return std::nullopt;
  out.nofile_default.rlim_cur = cur;
  out.nofile_default.rlim_max = max;
  for (auto& limit : out.limits) {
    if (!r.get(cur) || !r.get(max)) return std::nullopt;
    limit.rlim_cur = cur;
    limit.rlim_max = max;
  }
  if (!r.done()) return std::nullopt;
  return out;
}

// Takes corrald's limits as the server's own (those that changed since the
// last spawn). One that cannot be taken (a hard limit raised beyond what
// this process may) stays as it was.
void adopt_limits(const std::array<rlimit, RLIM_NLIMITS>& limits,
                  std::array<rlimit, RLIM_NLIMITS>& current) {
  for (int resource = 0; resource < RLIM_NLIMITS; ++resource) {
    const rlimit& want = limits[static_cast<size_t>(resource)];
    rlimit& have = current[static_cast<size_t>(resource)];
    if (want.rlim_cur == have.rlim_cur && want.rlim_max == have.rlim_max) continue;
    if (setrlimit(static_cast<__rlimit_resource>(resource), &want) == 0) have = want;
  }
}

// Sends DATA with FDS attached; the send's result.
ssize_t send_with_fds(int socket, const void* data, size_t size, const int* fds, size_t count) {
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * count));
  if (count > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  }
  ssize_t n;
  do {
    n = sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

// Receives one message into BUFFER and the fds attached to it (close-on-exec);
// its size, 0 at the end, < 0 on an error. TRUNCATED: the message or its fds
// did not fit.
ssize_t receive_with_fds(int socket, char* buffer, size_t size, std::vector<UniqueFd>& fds,
                         bool& truncated) {
  iovec iov{buffer, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  fds.clear();
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, data + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return n;
}

std::vector<char> encode_reply(const Launched& launched) {
  Writer w;
  w.put<int32_t>(launched.pid);
  w.put(launched.error);
  return std::move(w.bytes());
}

// The server's loop, in the forked process: one request, one reply, until
// corrald closes its end.
[[noreturn]] void serve(int socket, pid_t daemon) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != daemon) _exit(0);
  prctl(PR_SET_NAME, "corral-spawn");
  // corrald's signals are its own (SIGHUP reloads it, a terminal's SIGINT
  // stops it, which closes the socket); SIGTERM and SIGKILL end the server.
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE}) signal(sig, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Only stdio (where a worker's early failure could be written) and the socket.
  if (socket > 3) close_range(3, static_cast<unsigned>(socket - 1), 0);
  close_range(static_cast<unsigned>(socket + 1), ~0U, 0);

  // As large as any message corrald can send (the kernel may double the
  // buffer asked for), left untouched until used: no RSS for the headroom.
  const size_t size = 2 * kBuffer + 1;
  auto buffer = std::make_unique_for_overwrite<char[]>(size);
  std::vector<UniqueFd> received;
  std::array<rlimit, RLIM_NLIMITS> limits{};
  for (int resource = 0; resource < RLIM_NLIMITS; ++resource) {
    getrlimit(static_cast<__rlimit_resource>(resource), &limits[static_cast<size_t>(resource)]);
  }
  for (;;) {
    bool truncated = false;
    ssize_t n = receive_with_fds(socket, buffer.get(), size, received, truncated);
    if (n <= 0) _exit(0);
    Launched launched;
    std::optional<Request> request;
    if (!truncated) request = decode(buffer.get(), static_cast<size_t>(n));
    if (!request || request->targets.size() + (request->cgroup ? 1 : 0) != received.size()) {
      launched.error = "spawn server: malformed request";
    } else {
      std::vector<FdMapping> fds;
      for (size_t i = 0; i < request->targets.size(); ++i)
        fds.push_back({request->targets[i], received[i].get()});
      if (request->cgroup) request->spawn.cgroup_fd = received.back().get();
      adopt_limits(request->limits, limits);
      launched = launch(request->spawn, fds, request->nofile_default, ParentOf::kCallersParent);
    }
    received.clear();
    std::vector<char> reply = encode_reply(launched);
    const int pidfd = launched.pidfd.get();
    ssize_t sent =
        send_with_fds(socket, reply.data(), reply.size(), &pidfd, launched.pidfd ? 1 : 0);
    launched.pidfd.reset();
    if (sent < 0) _exit(0);
  }
}

}  // namespace

Result<std::unique_ptr<SpawnServer>> SpawnServer::start() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    return errno_error("socketpair");
  }
  UniqueFd ours(sv[0]);
  UniqueFd theirs(sv[1]);
  int size = kBuffer;
  setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  const pid_t daemon = getpid();
  pid_t pid = fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    ours.reset();
    serve(theirs.release(), daemon);
  }
  theirs.reset();
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
  Reader r(buffer, static_cast<size_t>(n));
  int32_t pid = 0;
  const bool read = r.get(pid) && r.get(out.error) && r.done();
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
  if (socket_ && fds.size() + 1 <= kMaxFds) {
    std::vector<int> sources;
    for (const auto& m : fds) sources.push_back(m.source);
    if (request.cgroup_fd >= 0) sources.push_back(request.cgroup_fd);
    Launched out;
    if (remote(encode(request, fds, nofile_default), sources, out)) return out;
  }
  return daemon::launch(request, fds, nofile_default);
}

}  // namespace corral::daemon

#include "daemon/spawn_protocol.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <memory>

namespace corral::daemon::spawn_protocol {
namespace {

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

// What launch_as() needs besides the fds' sources, and corrald's resource
// limits as they are now: a worker inherits them, as if corrald had made it,
// even after they were changed at run time (prlimit), and the server's own
// RLIMIT_NPROC is the one clone() checks.
struct Request {
  SpawnRequest spawn;
  std::optional<UserIds> user;
  std::vector<int> targets;
  bool cgroup = false;  // the last fd received is the cgroup's
  rlimit nofile_default{};
  std::array<rlimit, RLIM_NLIMITS> limits{};
};

std::optional<Request> decode_request(const char* data, size_t size) {
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
  uint8_t has_user = 0;
  if (!r.get(has_user)) return std::nullopt;
  if (has_user != 0) {
    UserIds user{};
    uint32_t uid = 0, gid = 0;
    if (!r.get(uid) || !r.get(gid) || !r.get(count) || count > size) return std::nullopt;
    user.uid = uid;
    user.gid = gid;
    user.groups.resize(count);
    for (auto& group : user.groups) {
      uint32_t g = 0;
      if (!r.get(g)) return std::nullopt;
      group = g;
    }
    out.user = std::move(user);
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

std::vector<char> encode_reply(const Launched& launched) {
  Writer w;
  w.put<int32_t>(launched.pid);
  w.put(launched.error);
  return std::move(w.bytes());
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

}  // namespace

std::vector<char> encode_request(const SpawnRequest& request, const std::optional<UserIds>& user,
                                 const std::vector<FdMapping>& fds, const rlimit& nofile_default) {
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
  w.put<uint8_t>(user.has_value());
  if (user) {
    w.put<uint32_t>(user->uid);
    w.put<uint32_t>(user->gid);
    w.put<uint32_t>(static_cast<uint32_t>(user->groups.size()));
    for (gid_t group : user->groups) w.put<uint32_t>(group);
  }
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

bool decode_reply(const char* data, size_t size, pid_t& pid, std::string& error) {
  Reader r(data, size);
  int32_t p = 0;
  if (!r.get(p) || !r.get(error) || !r.done()) return false;
  pid = p;
  return true;
}

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

void serve(int socket, pid_t daemon) {
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
  if (send_with_fds(socket, kGreeting, strlen(kGreeting), nullptr, 0) < 0) _exit(0);

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
    if (!truncated) request = decode_request(buffer.get(), static_cast<size_t>(n));
    if (!request || request->targets.size() + (request->cgroup ? 1 : 0) != received.size()) {
      launched.error = "spawn server: malformed request";
    } else {
      std::vector<FdMapping> fds;
      for (size_t i = 0; i < request->targets.size(); ++i)
        fds.push_back({request->targets[i], received[i].get()});
      if (request->cgroup) request->spawn.cgroup_fd = received.back().get();
      adopt_limits(request->limits, limits);
      launched = launch_as(request->spawn, request->user, fds, request->nofile_default,
                           ParentOf::kCallersParent);
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

}  // namespace corral::daemon::spawn_protocol

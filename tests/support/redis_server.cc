#include "tests/support/redis_server.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "tests/support/file_io.h"
#include "tests/support/poll.h"

namespace corral::testing {
namespace {

constexpr const char* kServer = "/usr/bin/redis-server";
constexpr const char* kCli = "/usr/bin/redis-cli";

// Whether the server on SOCKET answers PING with +PONG.
bool answers(const std::string& socket) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    timeval timeout{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const char ping[] = "PING\r\n";
    char reply[16] = {};
    ok = ::write(fd, ping, sizeof ping - 1) == static_cast<ssize_t>(sizeof ping - 1) &&
         ::read(fd, reply, sizeof reply - 1) > 0 && std::strncmp(reply, "+PONG", 5) == 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

bool RedisServer::available() { return ::access(kServer, X_OK) == 0 && ::access(kCli, X_OK) == 0; }

RedisServer::RedisServer(std::string dir) : dir_(std::move(dir)), socket_(dir_ + "/redis.sock") {
  write_file(dir_ + "/redis.conf",
             "port 0\n"
             "unixsocket " +
                 socket_ +
                 "\n"
                 "unixsocketperm 700\n"
                 "dir " +
                 dir_ +
                 "\n"
                 "logfile " +
                 dir_ +
                 "/redis.log\n"
                 "daemonize no\n"
                 "save \"\"\n"
                 "appendonly yes\n"
                 "appendfsync always\n"
                 "maxmemory-policy noeviction\n");
}

RedisServer::~RedisServer() { stop(); }

bool RedisServer::start() {
  if (pid_ > 0) return true;
  const std::string config = dir_ + "/redis.conf";
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    // Never outlives the test, whatever ends it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::execl(kServer, kServer, config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (wait_until([&] { return answers(socket_); }, 10s)) return true;
  stop();
  return false;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  if (wait_for_exit(pid_, 10s) < 0) {
    ::kill(pid_, SIGKILL);
    wait_for_exit(pid_, 10s);
  }
  pid_ = -1;
}

void RedisServer::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_for_exit(pid_, 10s);
  pid_ = -1;
}

std::string RedisServer::log() const { return read_file(dir_ + "/redis.log"); }

std::string RedisServer::cli(const std::string& args) const {
  std::string command = std::string(kCli) + " -s " + socket_ + " " + args + " 2>&1";
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 4096> buffer{};
    size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
      out.append(buffer.data(), n);
    ::pclose(pipe);
  }
  return out;
}

}  // namespace corral::testing

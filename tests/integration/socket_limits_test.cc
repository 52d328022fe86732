// What no socket client can do to corrald: a flood of /metrics connections
// leaves spawning and scraping working; a user over its control-connection
// cap gets an error; clients that leave in the middle of a `wait` take their
// fds and waiters with them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
// docs/supervision.md: corrald holds at most this many /metrics connections.
constexpr size_t kMaxMetricsConnections = 16;
// docs/control-protocol.md: connections of one uid, root and corrald's excepted.
constexpr size_t kMaxConnectionsPerUser = 32;

std::string find_tool(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// A connected TCP socket to HOST:PORT, or -1.
int connect_tcp(const std::string& address) {
  size_t colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One HTTP/1.0 exchange; the whole response ("" when none came in 20 s).
std::string http(const std::string& address, const std::string& request) {
  int fd = connect_tcp(address);
  if (fd < 0) return "";
  timeval timeout{static_cast<time_t>(scaled(20s).count() / 1000), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  (void)!::write(fd, request.data(), request.size());
  std::string response;
  char buffer[65536];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, size_t(n));
  ::close(fd);
  return response;
}

// The socket inodes of PID's open fds.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  for (const auto& target : open_fds(pid)) {
    if (target.starts_with("socket:[")) out.insert(target.substr(8, target.size() - 9));
  }
  return out;
}

// How many TCP connections on local PORT (any state but LISTEN) PID holds open.
size_t tcp_connections(pid_t pid, int port) {
  std::set<std::string> inodes = socket_inodes(pid);
  char local_port[8];
  std::snprintf(local_port, sizeof local_port, ":%04X", port);
  size_t n = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream lines(read_file(table));
    std::string line;
    std::getline(lines, line);  // the header
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      if (local.ends_with(local_port) && state != "0A" && inodes.contains(inode)) ++n;
    }
  }
  return n;
}

// A function run in a child process as another user (setgroups, setgid,
// setuid), talking to the test through two pipes: what it writes to OUT the
// test reads with read_line(), and it may wait for the test's go().
class AsUser {
 public:
  AsUser(uid_t uid, gid_t gid, const std::function<void(AsUser&)>& body) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2";
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      in_ = to_child[0];
      out_ = from_child[1];
      if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        say("setuid failed");
        _exit(1);
      }
      body(*this);
      _exit(0);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    out_ = to_child[1];
    in_ = from_child[0];
  }
  ~AsUser() {
    ::close(out_);
    ::close(in_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // In the child: a line to the test. In the test: tells the child to go on.
  void say(const std::string& line) {
    std::string text = line + "\n";
    (void)!::write(out_, text.data(), text.size());
  }
  void go() { say("go"); }
  // The next line from the other side, "" at its end or after 30 s.
  std::string read_line() {
    std::string line;
    char c;
    pollfd p{in_, POLLIN, 0};
    while (::poll(&p, 1, static_cast<int>(scaled(30s).count())) == 1 && ::read(in_, &c, 1) == 1 &&
           c != '\n') {
      line.push_back(c);
    }
    return line;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
};

// One request line on an open connection; the reply line ("" on none).
std::string ask(int fd, const Json& request) {
  timeval timeout{static_cast<time_t>(scaled(20s).count() / 1000), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string line = protocol::encode_line(request);
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) return "";
  std::string reply;
  char c;
  while (::recv(fd, &c, 1, 0) == 1 && c != '\n') reply.push_back(c);
  return reply;
}

TEST(SocketLimitsTest, AThousandMetricsConnectionsLeaveSpawningAndScrapingWorking) {
  const std::string prlimit = find_tool("prlimit");
  if (prlimit.empty()) GTEST_SKIP() << "needs util-linux's prlimit to start corrald under a limit";
  rlimit mine{};
  getrlimit(RLIMIT_NOFILE, &mine);
  if (mine.rlim_max < 1100) GTEST_SKIP() << "the test needs 1100 fds of its own";
  mine.rlim_cur = mine.rlim_max;
  setrlimit(RLIMIT_NOFILE, &mine);

  Daemon d("jobs:\n  echo:\n    command: " + worker_command("--handler, echo") +
               "\n    channel: pipe\n    workers: 2\n    start: {settle: 0s}\n",
           "  metrics: {listen: 127.0.0.1:0}\n");
  d.set_wrapper({prlimit, "--nofile=256", "--"});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("echo:1", "RUNNING"));
  const std::string address = d.request({{"cmd", "stats"}})["daemon"]["metrics"];
  const int port = std::stoi(address.substr(address.rfind(':') + 1));

  // Held open, never sending a byte: each would cost corrald an fd.
  std::vector<int> flood;
  for (int i = 0; i < 1000; ++i) {
    int fd = connect_tcp(address);
    ASSERT_GE(fd, 0) << "connection " << i;
    flood.push_back(fd);
  }
  // A fresh scrape, queued behind all of them, is answered.
  std::string response = http(address, "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("corral_worker_state{job=\"echo\""));
  EXPECT_LE(tcp_connections(d.pid(), port), kMaxMetricsConnections);

  // Spawning still has its fds: a restart, and a job added by a reload.
  pid_t before = d.worker_pid("echo:0");
  RunResult restart = d.ctl({"restart", "echo:0"});
  EXPECT_EQ(restart.exit_code, 0) << restart.out << restart.err;
  EXPECT_EQ(d.state("echo:0"), "RUNNING");
  EXPECT_NE(d.worker_pid("echo:0"), before);
  d.rewrite_config("jobs:\n  echo:\n    command: " + worker_command("--handler, echo") +
                   "\n    channel: pipe\n    workers: 2\n    start: {settle: 0s}\n"
                   "  more:\n    command: " +
                   worker_command("--handler, echo") +
                   "\n    channel: pipe\n    start: {settle: 0s}\n");
  RunResult update = d.ctl({"update"});
  EXPECT_EQ(update.exit_code, 0) << update.out << update.err;
  EXPECT_TRUE(d.wait_state("more:0", "RUNNING")) << d.worker("more:0").dump();
  EXPECT_THAT(d.daemon_log(), Not(HasSubstr("Too many open files")));
  for (int fd : flood) ::close(fd);
}

TEST(SocketLimitsTest, AUserOverItsConnectionCapGetsAnErrorAndRootIsNotCapped) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  Daemon d("jobs: {}\n", "  socket_mode: \"0666\"\n  allow_users: [nobody]\n");
  ::chmod(d.dir().path().c_str(), 0755);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string socket = d.socket();

  // nobody holds its most, each connection served.
  AsUser nobody(kNobody, kNogroup, [&](AsUser& self) {
    std::vector<int> held;
    for (size_t i = 0; i < kMaxConnectionsPerUser; ++i) {
      int fd = connect_socket(socket);
      std::string reply = fd < 0 ? "" : ask(fd, {{"cmd", "version"}});
      if (reply.find("\"ok\":true") == std::string::npos) {
        self.say("connection " + std::to_string(i) + " was not served: " + reply);
        return;
      }
      held.push_back(fd);
    }
    self.say("holding");
    self.read_line();  // until the test has tried one more
    ::close(held.back());
    held.pop_back();
    int fd = connect_socket(socket);
    self.say(fd < 0 ? "no connection" : ask(fd, {{"cmd", "version"}}));
  });
  ASSERT_EQ(nobody.read_line(), "holding");

  // One more: the error, and corralctl says it cannot be served (exit 3).
  RunResult over = run({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        CORRALCTL_PATH, "-s", socket, "version"});
  EXPECT_EQ(over.exit_code, 3) << over.out << over.err;
  EXPECT_THAT(over.err, HasSubstr("uid 65534 has 32 connections open to corrald, the most one "
                                  "user may have; close some first"));
  // Root is not capped: more than a user's share at once, all served.
  std::vector<int> roots;
  for (size_t i = 0; i < kMaxConnectionsPerUser + 8; ++i) {
    roots.push_back(connect_socket(socket));
    EXPECT_THAT(ask(roots.back(), {{"cmd", "version"}}), HasSubstr("\"ok\":true"));
  }
  for (int fd : roots) ::close(fd);
  // A connection closed gives its place back.
  nobody.go();
  EXPECT_THAT(nobody.read_line(), HasSubstr("\"ok\":true"));
  EXPECT_THAT(d.daemon_log(), HasSubstr("control: uid 65534 has 32 connections open"));
}

TEST(SocketLimitsTest, AbandonedWaitsLeaveNeitherFdsNorWaitersBehind) {
  Daemon d(
      "jobs:\n  idle:\n    command: [sleep, '1000']\n    autostart: false\n"
      "  queue:\n    command: " +
      worker_command("--handler, echo") + "\n    channel: pipe\n    autostart: false\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // A task no worker takes: `wait --drained` never comes true either.
  ASSERT_EQ(d.submit("queue", {"x"}, false).back()["submitted"], 1);
  // corrald's fds once a request has come and gone (anything it samples is
  // open by then, and that request's connection closed).
  auto fds = [&] {
    d.request({{"cmd", "status"}});
    size_t last = open_fds(d.pid()).size();
    wait_until([&] {
      std::this_thread::sleep_for(50ms);
      return std::exchange(last, open_fds(d.pid()).size()) == last;
    });
    return last;
  };
  const size_t before = fds();

  for (int i = 0; i < 300; ++i) {
    int fd = connect_socket(d.socket());
    ASSERT_GE(fd, 0);
    Json wait = i % 2 == 0 ? Json{{"cmd", "wait"}, {"job", "idle"}, {"running", true}}
                           : Json{{"cmd", "wait"}, {"job", "queue"}, {"drained", true}};
    std::string line = protocol::encode_line(wait);
    ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL), ssize_t(line.size()));
    ::close(fd);
  }
  // A request after them: corrald has seen them go by the time it answers.
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);
  size_t after = 0;
  EXPECT_TRUE(wait_until([&] { return (after = fds()) == before; }))
      << "corrald holds " << after << " fds; it held " << before << " before the waits";
  EXPECT_EQ(d.request({{"cmd", "stats"}})["daemon"]["waiters"], 0);
}

}  // namespace
}  // namespace corral::testing

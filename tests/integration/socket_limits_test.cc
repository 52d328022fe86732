// What no socket client can do to corrald, and what corralctl will not talk
// to: a flood of /metrics connections leaves spawning and scraping working;
// a user over its control-connection cap gets an error; clients that leave
// in the middle of a `wait` take their fds and waiters with them; the
// socket's directory and lock cannot be turned against a root daemon;
// corralctl refuses a socket served by another user; allow_users and
// allow_groups work as configured, numbers included.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
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
#include "tests/support/users.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// docs/supervision.md: corrald holds at most this many /metrics connections.
constexpr size_t kMaxMetricsConnections = 16;
// docs/control-protocol.md: connections of one uid, root and corrald's excepted.
constexpr size_t kMaxConnectionsPerUser = 32;

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

// Why a test that runs a client as the user nobody cannot run here, or "".
std::string cannot_run_as_nobody() {
  if (geteuid() != 0) return "needs root to run a client as another uid";
  if (getpwnam("nobody") == nullptr) return "needs the user nobody";
  if (find_tool("setpriv").empty()) return "needs util-linux's setpriv";
  return "";
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
  if (std::string why = cannot_run_as_nobody(); !why.empty()) GTEST_SKIP() << why;
  Daemon d("jobs: {}\n", "  socket_mode: \"0666\"\n  allow_users: [nobody]\n");
  ::chmod(d.dir().path().c_str(), 0755);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string socket = d.socket();

  // nobody holds its most, each connection served.
  AsUser nobody(kNobodyUid, kNogroupGid, [&](AsUser& self) {
    std::vector<int> held;
    for (size_t i = 0; i < kMaxConnectionsPerUser; ++i) {
      int fd = connect_socket(socket);
      std::string reply =
          fd < 0 ? "" : exchange_line(fd, protocol::encode_line({{"cmd", "version"}}));
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
    self.say(fd < 0 ? "no connection"
                    : exchange_line(fd, protocol::encode_line({{"cmd", "version"}})));
  });
  ASSERT_EQ(nobody.read_line(), "holding");

  // One more: the error, and corralctl says it cannot be served (exit 3).
  RunResult over = run({find_tool("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        CORRALCTL_PATH, "-s", socket, "version"});
  EXPECT_EQ(over.exit_code, 3) << over.out << over.err;
  EXPECT_THAT(over.err, HasSubstr("uid 65534 has 32 connections open to corrald, the most one "
                                  "user may have; close some first"));
  // Root is not capped: more than a user's share at once, all served.
  std::vector<int> roots;
  for (size_t i = 0; i < kMaxConnectionsPerUser + 8; ++i) {
    roots.push_back(connect_socket(socket));
    EXPECT_THAT(exchange_line(roots.back(), protocol::encode_line({{"cmd", "version"}})),
                HasSubstr("\"ok\":true"));
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

TEST(SocketLimitsTest, ASymlinkAtTheLockIsRefusedAndNothingIsCreatedWhereItPoints) {
  Daemon d("jobs: {}\n");
  const std::string target = d.dir().file("made-by-corrald");
  ASSERT_EQ(::symlink(target.c_str(), (d.socket() + ".lock").c_str()), 0);
  EXPECT_FALSE(d.start());
  EXPECT_EQ(d.stop(), 1);
  EXPECT_THAT(d.daemon_log(), HasSubstr("lock file " + d.socket() +
                                        ".lock is a symbolic link: refused (remove it)"));
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_FALSE(std::filesystem::exists(d.socket()));
}

// The socket's directory is private like the log_dir (private_dir.h): a
// sticky one like /tmp too, since another user could take the lock's or the
// socket's name there first.
TEST(SocketLimitsTest, ASocketDirectoryAnotherUserCanWriteIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  struct Case {
    const char* what;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    const char* says;
  };
  for (const Case& c :
       {Case{"owned by nobody", kNobodyUid, kNogroupGid, 0755,
             " is owned by nobody (uid 65534), mode 0755"},
        Case{"writable by all", 0, 0, 0777, " is writable by others, mode 0777"},
        Case{"sticky, like /tmp", 0, 0, 01777, " is writable by others, mode 1777"}}) {
    SCOPED_TRACE(c.what);
    TempDir dir;
    const std::string run_dir = dir.file("run");
    ASSERT_EQ(::mkdir(run_dir.c_str(), 0700), 0);
    ASSERT_EQ(::chown(run_dir.c_str(), c.uid, c.gid), 0);
    ASSERT_EQ(::chmod(run_dir.c_str(), c.mode), 0);
    const std::string config = dir.file("corral.yaml");
    write_file(config, "daemon:\n  socket: " + run_dir + "/corral.sock\n  log_dir: " +
                           dir.file("logs") + "\n  metrics: {listen: off}\njobs: {}\n");
    const std::string problem =
        "daemon.socket's directory " + run_dir + " is not private: " + run_dir + c.says;
    RunResult started = run({CORRALD_PATH, "-c", config}, 10s);
    EXPECT_EQ(started.exit_code, 1) << started.err;
    EXPECT_THAT(started.err, HasSubstr(problem));
    EXPECT_FALSE(std::filesystem::exists(run_dir + "/corral.sock.lock"));
    EXPECT_FALSE(std::filesystem::exists(run_dir + "/corral.sock"));
    RunResult check = run({CORRALD_PATH, "--check", "-c", config});
    EXPECT_EQ(check.exit_code, 2) << check.err;
    EXPECT_THAT(check.err, HasSubstr(problem));
  }
}

TEST(SocketLimitsTest, AMissingSocketDirectoryIsMadeOpenToAllowedUsers) {
  Daemon d("jobs: {}\n");
  d.set_socket(d.dir().file("run/corral/corral.sock"));
  // Under umask 077 mkdir alone would make the directories 0700.
  d.set_wrapper({"/bin/sh", "-c", "umask 077 && exec \"$0\" \"$@\""});
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (const char* sub : {"run", "run/corral"}) {
    struct stat st {};
    ASSERT_EQ(::stat(d.dir().file(sub).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u) << sub;
  }
}

TEST(SocketLimitsTest, CorralctlRefusesASocketServedByAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to serve a socket as another uid";
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  // A "daemon" of nobody: it tells how many bytes it got on its first connection.
  auto impostor = [](const std::string& socket) {
    return [socket](AsUser& self) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      socket.copy(addr.sun_path, sizeof addr.sun_path - 1);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4)) {
        self.say("cannot listen");
        return;
      }
      self.say("listening");
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 30000) != 1) return self.say("no connection");
      int client = ::accept(fd, nullptr, nullptr);
      std::string got;
      char c;
      pollfd q{client, POLLIN, 0};
      // Up to the end of a request line, or the client's end.
      while (::poll(&q, 1, 30000) == 1 && ::read(client, &c, 1) == 1) {
        got.push_back(c);
        if (c == '\n') break;
      }
      ::close(client);
      self.say(std::to_string(got.size()) + " bytes");
    };
  };
  struct Case {
    std::string where;
    uid_t owner;
    mode_t mode;
    bool trusted;
  };
  for (const Case& c :
       {Case{"nobodys-shared", kNobodyUid, 0777, false},  // others write: no one vouches
        Case{"like-tmp", 0, 01777, false},                // sticky, root's
        Case{"nobodys-own", kNobodyUid, 0755, true}}) {   // only nobody can put it there
    const std::string sub = dir.file(c.where);
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    ASSERT_EQ(::chown(sub.c_str(), c.owner, c.owner == 0 ? 0 : kNogroupGid), 0);
    ASSERT_EQ(::chmod(sub.c_str(), c.mode), 0);
    const std::string socket = sub + "/corral.sock";
    AsUser fake(kNobodyUid, kNogroupGid, impostor(socket));
    ASSERT_EQ(fake.read_line(), "listening") << c.where;
    RunResult r = run({CORRALCTL_PATH, "-s", socket, "version"});
    if (c.trusted) {
      EXPECT_NE(r.exit_code, 3) << c.where << ": " << r.err;
      EXPECT_NE(fake.read_line(), "0 bytes") << c.where;
      continue;
    }
    EXPECT_EQ(r.exit_code, 3) << c.where << ": " << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("cannot reach corrald at " + socket +
                                 ": the process serving it runs as uid 65534, which is neither "
                                 "root nor you (uid 0); the owner of " +
                                 sub + " does not count"))
        << c.where;
    EXPECT_EQ(fake.read_line(), "0 bytes") << c.where;
  }
  // The real corrald, root's, is talked to.
  Daemon d("jobs: {}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult real = d.ctl({"version"});
  EXPECT_EQ(real.exit_code, 0) << real.err;
}

TEST(SocketLimitsTest, AllowUsersTakesAUid) {
  if (std::string why = cannot_run_as_nobody(); !why.empty()) GTEST_SKIP() << why;
  Daemon d("jobs: {}\n", "  socket_mode: \"0666\"\n  allow_users: [\"65534\"]\n");
  ::chmod(d.dir().path().c_str(), 0755);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  RunResult r = run({find_tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                     CORRALCTL_PATH, "-s", d.socket(), "version"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(d.daemon_log(), Not(HasSubstr("no such user")));
}

TEST(SocketLimitsTest, OneAllowedGroupLetsItsMembersInWithTheDefaultMode) {
  if (std::string why = cannot_run_as_nobody(); !why.empty()) GTEST_SKIP() << why;
  group* nogroup = getgrgid(kNogroupGid);
  if (nogroup == nullptr) GTEST_SKIP() << "needs a group with gid 65534";
  Daemon d("jobs: {}\n", "  allow_groups: [" + std::string(nogroup->gr_name) + "]\n");
  ::chmod(d.dir().path().c_str(), 0755);
  ASSERT_TRUE(d.start()) << d.daemon_log();
  struct stat st {};
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kNogroupGid);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  RunResult r = run({find_tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                     CORRALCTL_PATH, "-s", d.socket(), "version"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(SocketLimitsTest, AnAllowedUserTheModeKeepsOutIsWarnedOf) {
  if (getpwnam("nobody") == nullptr) GTEST_SKIP() << "needs the user nobody";
  Daemon d("jobs: {}\n", "  allow_users: [nobody]\n");
  const std::string warning =
      "daemon.allow_users: nobody cannot connect: socket_mode 0660 lets only its owner (uid " +
      std::to_string(geteuid()) + ") and its group (gid " + std::to_string(getegid()) +
      ") connect; set socket_mode: \"0666\" (every peer is still checked with SO_PEERCRED)";
  RunResult check = run({CORRALD_PATH, "-c", d.config(), "--check"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.err, HasSubstr(d.config() + ": warning: " + warning));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_THAT(d.daemon_log(), HasSubstr(warning));
}

}  // namespace
}  // namespace corral::testing

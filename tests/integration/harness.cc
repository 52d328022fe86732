#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace corral::testing {

namespace {

// The variables scripts/test sets for sanitizer builds.
constexpr const char* kSanitizerOptions[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                             "TSAN_OPTIONS"};

// Where every sanitized process started by this test program writes its
// reports: set up before main(), so that every environment a test copies
// (posix_spawn, fork+exec, tmux) already has it. This program's own options
// were read at its start: its reports still go to stderr, which ctest shows.
class SanitizerLogs {
 public:
  SanitizerLogs() {
    if (std::none_of(std::begin(kSanitizerOptions), std::end(kSanitizerOptions),
                     [](const char* name) { return getenv(name) != nullptr; })) {
      return;
    }
    std::string pattern = "/tmp/corral-sanitizer-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::fprintf(stderr, "harness: mkdtemp for sanitizer reports: %s\n", strerror(errno));
      std::exit(1);
    }
    dir_ = pattern;
    for (const char* name : kSanitizerOptions) {
      const char* value = getenv(name);
      if (value == nullptr) continue;
      std::string options = std::string(value) + ":log_path=" + dir_ + "/report";
      setenv(name, options.c_str(), 1);
    }
  }
  ~SanitizerLogs() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

SanitizerLogs sanitizer_logs;

// The last check, after every test of this program (and every destructor in
// them) has run: a failure here makes the program exit non-zero.
class SanitizerCheck : public ::testing::Environment {
 public:
  void TearDown() override { expect_no_sanitizer_reports("the processes this test started"); }
};

[[maybe_unused]] ::testing::Environment* const sanitizer_check =
    ::testing::AddGlobalTestEnvironment(new SanitizerCheck);

}  // namespace

std::vector<std::string> expect_no_sanitizer_reports(const std::string& where) {
  std::vector<std::string> reports;
  if (sanitizer_logs.dir().empty()) return reports;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(sanitizer_logs.dir(), error)) {
    std::string text = read_file(entry.path());
    ADD_FAILURE() << "sanitizer report from " << where << " (" << entry.path().filename().string()
                  << "):\n"
                  << text;
    reports.push_back(std::move(text));
    std::filesystem::remove(entry.path(), error);
  }
  return reports;
}

namespace {

// With TERMINAL (a terminal's path), ARGV runs in a session of its own whose
// controlling terminal that is, as its stdin: glibc's posix_spawn calls
// setsid() before the file actions, and a session leader's first open of a
// terminal without O_NOCTTY makes it the controlling one.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, const std::vector<std::string>& extra_env = {},
            const std::string& terminal = "") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (terminal.empty()) {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  } else {
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    posix_spawn_file_actions_addopen(&actions, 0, terminal.c_str(), O_RDWR, 0);
  }
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + strerror(rc));
  return pid;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir tmp;
  RunResult result;
  pid_t pid = spawn(argv, tmp.file("out"), tmp.file("err"));
  result.exit_code = wait_for_exit(pid, timeout);
  if (result.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  result.out = read_file(tmp.file("out"));
  result.err = read_file(tmp.file("err"));
  return result;
}

std::string worker_command(const std::string& args) {
  return std::string("[") + CORRAL_WORKER_PATH + ", " + args + "]";
}

std::string sum_below(uint64_t n) { return n == 0 ? "0" : std::to_string(n * (n - 1) / 2); }

std::string channel_test_name(const ::testing::TestParamInfo<std::string>& info) {
  const bool durable = info.param.find("durable") != std::string::npos;
  if (info.param.find("spin: off") != std::string::npos) return "ShmNoSpin";
  if (info.param.find("spin: 2ms") != std::string::npos) return "ShmSpin2ms";
  if (info.param.find("shm") != std::string::npos) return durable ? "ShmDurable" : "Shm";
  return info.param.find("length") != std::string::npos ? "PipeLength" : "PipeLines";
}

std::optional<ChildHandle> ChildHandle::of(pid_t parent, pid_t pid) {
  if (pid <= 0) return std::nullopt;
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return std::nullopt;
  // Checked after the pidfd is open: the pidfd holds this very process.
  if (parent_of(pid) != parent || !process_alive(pid)) return std::nullopt;
  return ChildHandle(pid, std::move(pidfd));
}

bool ChildHandle::signal(int sig) const {
  return syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0;
}

Daemon::Daemon(const std::string& jobs_yaml, const std::string& daemon_extra)
    : daemon_extra_(daemon_extra) {
  rewrite_config(jobs_yaml);
}

void Daemon::rewrite_config(const std::string& jobs_yaml) {
  jobs_yaml_ = jobs_yaml;
  // Tests run side by side: no fixed metrics port unless a test asks.
  std::string metrics =
      daemon_extra_.find("metrics:") == std::string::npos ? "  metrics: {listen: off}\n" : "";
  // Nor a shared state_dir (durable jobs' spools, and its lock).
  std::string state_dir = daemon_extra_.find("state_dir:") == std::string::npos
                              ? "  state_dir: " + state_dir_path() + "\n"
                              : "";
  // Nor a cgroup that is not the test's own (daemon.cgroup auto would take
  // the cgroup the tests run in, under a service manager that delegates it).
  std::string cgroup =
      daemon_extra_.find("cgroup:") == std::string::npos ? "  cgroup: \"off\"\n" : "";
  std::string config = "daemon:\n  socket: " + socket() + "\n  log_dir: " + log_dir() +
                       "\n  log_level: debug\n" + metrics + state_dir + cgroup + daemon_extra_ +
                       jobs_yaml;
  write_file(this->config(), config);
}

void Daemon::set_socket(std::string path) {
  socket_ = std::move(path);
  rewrite_config(jobs_yaml_);
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    if (stop(15s) == -1) kill9();
  }
  expect_no_sanitizer_reports("a process of this test (corrald in " + dir_.path() + " has ended)");
}

bool Daemon::start() {
  std::vector<std::string> argv = wrapper_;
  argv.insert(argv.end(), {CORRALD_PATH, "-c", config()});
  std::vector<std::string> env = env_;
  env.push_back(env_tag());
  pid_ = spawn(argv, dir_.file("corrald.out"), dir_.file("corrald.log"), env, terminal_);
  return wait_until(
             [&] {
               if (!process_alive(pid_)) return true;  // died: fail below
               int fd = connect_socket(socket());
               if (fd < 0) return false;
               close(fd);
               return true;
             },
             10s) &&
         process_alive(pid_);
}

int connect_socket(const std::string& path, std::chrono::milliseconds receive_timeout) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  if (receive_timeout.count() > 0) {
    const auto wait = scaled(receive_timeout);
    timeval tv{static_cast<time_t>(wait.count() / 1000),
               static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  return fd;
}

std::string exchange_line(int fd, const std::string& line, std::chrono::milliseconds timeout) {
  const auto wait = scaled(timeout);
  timeval tv{static_cast<time_t>(wait.count() / 1000),
             static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string sent = line.ends_with('\n') ? line : line + "\n";
  if (::send(fd, sent.data(), sent.size(), MSG_NOSIGNAL) < 0) return "";
  std::string reply;
  char c;
  while (::recv(fd, &c, 1, 0) == 1 && c != '\n') reply.push_back(c);
  return reply;
}

int connect_tcp(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) return -1;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

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

std::string find_tool(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

int Daemon::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int code = wait_for_exit(pid_, timeout);
  if (code != -1) pid_ = 0;
  return code;
}

void Daemon::kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

Json Daemon::request(const Json& message) {
  int fd = connect_socket(socket());
  if (fd < 0) throw std::runtime_error("cannot connect to " + socket());
  std::string line = protocol::encode_line(message);
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    close(fd);
    throw std::runtime_error("short write");
  }
  std::string reply;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
  close(fd);
  return Json::parse(reply);
}

std::vector<Json> Daemon::submit(const std::string& job, const std::vector<std::string>& payloads,
                                 bool wait, const std::function<void()>& before_reading,
                                 const Json& extra) {
  int fd = connect_socket(socket());
  if (fd < 0) throw std::runtime_error("cannot connect to " + socket());
  // A test must fail, not hang, when results stop coming.
  timeval timeout{static_cast<time_t>(scaled(120s).count() / 1000), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  FILE* in = fdopen(dup(fd), "r");
  auto read_line = [&]() -> std::optional<Json> {
    std::string line;
    for (int c; (c = fgetc(in)) != EOF && c != '\n';) line.push_back(static_cast<char>(c));
    if (line.empty()) return std::nullopt;
    return Json::parse(line);
  };
  Json request{{"cmd", "submit"}, {"job", job}, {"wait", wait}};
  request.update(extra);
  std::string header = protocol::encode_line(request);
  // send(MSG_NOSIGNAL): a daemon that closes early is an answer, not a SIGPIPE.
  (void)!::send(fd, header.data(), header.size(), MSG_NOSIGNAL);
  std::vector<Json> out;
  auto ack = read_line();
  if (!ack || !ack->value("ok", false)) {
    if (ack) out.push_back(*ack);
    fclose(in);
    close(fd);
    return out;
  }
  // Write from a thread while reading here, so back-pressure cannot deadlock.
  std::thread writer([&] {
    std::string chunk;
    for (const auto& p : payloads) {
      chunk += '+';
      chunk += p;
      chunk += '\n';
      if (chunk.size() > (1 << 16)) {
        if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) return;
        chunk.clear();
      }
    }
    chunk += ".\n";
    (void)!::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
  });
  if (before_reading) before_reading();
  while (auto line = read_line()) {
    out.push_back(*line);
    if (line->contains("end") || line->contains("error")) {
      if (!line->contains("seq")) break;
    }
  }
  writer.join();
  fclose(in);
  close(fd);
  return out;
}

RunResult Daemon::ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CORRALCTL_PATH, "-s", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

Json Daemon::worker(const std::string& name) {
  Json reply = request({{"cmd", "status"}, {"targets", {name}}});
  if (!reply.value("ok", false)) throw std::runtime_error("status " + name + ": " + reply.dump());
  return reply["workers"][0];
}

std::string Daemon::state(const std::string& name) { return worker(name)["state"]; }

pid_t Daemon::worker_pid(const std::string& name) {
  Json w = worker(name);
  return w["pid"].is_null() ? 0 : w["pid"].get<pid_t>();
}

std::optional<ChildHandle> Daemon::worker_process(const std::string& name) {
  return ChildHandle::of(pid_, worker_pid(name));
}

bool Daemon::wait_state(const std::string& name, const std::string& state,
                        std::chrono::milliseconds timeout) {
  return wait_until([&] { return this->state(name) == state; }, timeout);
}

}  // namespace corral::testing

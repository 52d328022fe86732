#include "tests/integration/pipe_child.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <thread>

#include "tests/integration/harness.h"

namespace corral::testing {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string u32le(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// NAME of "NAME=value", with the '='.
std::string_view env_name(const std::string& entry) {
  size_t eq = entry.find('=');
  return std::string_view(entry).substr(0, eq == std::string::npos ? entry.size() : eq + 1);
}

}  // namespace

std::string task_frame(uint64_t id, const std::string& payload) {
  return u32le(static_cast<uint32_t>(9 + payload.size())) + char(kTask) + u64le(id) + payload;
}

std::string tasks_frame(uint64_t first, const std::vector<std::string>& payloads) {
  std::string items;
  for (const std::string& p : payloads) items += u32le(static_cast<uint32_t>(p.size())) + p;
  return u32le(static_cast<uint32_t>(13 + items.size())) + char(kTasks) + u64le(first) +
         u32le(static_cast<uint32_t>(payloads.size())) + items;
}

std::string control_frame(uint8_t type) { return u32le(1) + char(type); }

PipeChild::PipeChild(const std::vector<std::string>& argv, const std::string& framing,
                     const std::vector<std::string>& env, bool stdio) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2");
  }
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CORRAL_", 7) != 0) environment.emplace_back(*e);
  }
  std::vector<std::string> settings = {"CORRAL_JOB=test",
                                       "CORRAL_WORKER=0",
                                       "CORRAL_CHANNEL=pipe",
                                       "CORRAL_FRAMING=" + framing,
                                       std::string("CORRAL_FDS=") + (stdio ? "0,1" : "3,4"),
                                       "CORRAL_MAX_TASK_BYTES=65536"};
  settings.insert(settings.end(), env.begin(), env.end());
  for (const std::string& setting : settings) {
    std::erase_if(environment,
                  [&](const std::string& e) { return e.starts_with(env_name(setting)); });
    environment.push_back(setting);
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    // High copies first, so that no dup2 below overwrites a pipe end.
    int child_in = ::fcntl(in[0], F_DUPFD, 10), child_out = ::fcntl(out[1], F_DUPFD, 10);
    int child_err = ::fcntl(err[1], F_DUPFD, 10);
    if (!stdio) {
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    ::dup2(child_in, stdio ? 0 : 3);
    ::dup2(child_out, stdio ? 1 : 4);
    ::dup2(child_err, 2);
    ::close_range(stdio ? 3 : 5, ~0U, 0);
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  ::fcntl(err_, F_SETFL, O_NONBLOCK);
}

PipeChild::~PipeChild() {
  close_input();
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::close(out_);
  ::close(err_);
}

void PipeChild::send(const std::string& bytes) {
  ASSERT_EQ(::write(in_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

void PipeChild::close_input() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

std::optional<Frame> PipeChild::frame(std::chrono::milliseconds timeout) {
  std::string header;
  if (!take(4, header, timeout)) return std::nullopt;
  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) length |= uint32_t(uint8_t(header[i])) << (8 * i);
  std::string body;
  if (length == 0 || !take(length, body, timeout)) return std::nullopt;
  Frame f;
  f.type = uint8_t(body[0]);
  if (f.type == kResult && body.size() >= 10) {
    for (int i = 0; i < 8; ++i) f.id |= uint64_t(uint8_t(body[1 + i])) << (8 * i);
    f.status = uint8_t(body[9]);
    f.payload = body.substr(10);
  } else if (f.type != kResult) {
    f.payload = body.substr(1);
  }
  return f;
}

std::optional<Frame> PipeChild::result(std::chrono::milliseconds timeout) {
  std::optional<Frame> f;
  while ((f = frame(timeout)) && f->type == kHeartbeat) {
  }
  return f;
}

std::optional<std::string> PipeChild::line(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + scaled(timeout);
  size_t scanned = 0;  // bytes of buffer_ known to hold no '\n'
  for (;;) {
    size_t newline = buffer_.find('\n', scanned);
    if (newline != std::string::npos) {
      std::string text = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return text;
    }
    scanned = buffer_.size();
    if (!read_more(deadline)) return std::nullopt;
  }
}

bool PipeChild::at_eof(std::chrono::milliseconds timeout) {
  std::string ignored;
  return !take(1, ignored, timeout) && eof_;
}

int PipeChild::wait_exit(std::chrono::milliseconds timeout) {
  const int code = wait_for_exit(pid_, timeout);
  if (code != -1) pid_ = -1;
  return code;
}

bool PipeChild::wait_stopped(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + scaled(timeout);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG | WUNTRACED) == pid_) return WIFSTOPPED(status);
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

std::string PipeChild::stderr_text() {
  std::string all;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(err_, buffer, sizeof buffer)) > 0) all.append(buffer, size_t(n));
  return all;
}

bool PipeChild::read_more(Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return false;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[64 * 1024];
    ssize_t got = ::read(out_, chunk, sizeof chunk);
    if (got <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, size_t(got));
    return true;
  }
}

bool PipeChild::take(size_t n, std::string& out, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + scaled(timeout);
  while (buffer_.size() < n) {
    if (!read_more(deadline)) return false;
  }
  out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return true;
}

}  // namespace corral::testing

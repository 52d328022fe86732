#include "daemon/proc_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <string>
#include <tuple>

namespace corral::daemon {

namespace {

std::optional<uint64_t> number(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return value;
}

// The value of "KEY:   123 kB" in a status text.
std::optional<uint64_t> status_field(std::string_view text, std::string_view key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || text[at - 1] == '\n') && text.substr(at + key.size()).starts_with(":")) {
      std::string_view rest = text.substr(at + key.size() + 1);
      rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
      return number(rest);
    }
    at += key.size();
  }
  return std::nullopt;
}

// The whole of a small /proc file from offset 0 (the kernel makes it anew).
// The kernel writes out the whole of /proc/PID/stat or status at each read
// from offset 0 and hands over what fits, so a read shorter than the buffer
// got all of it: one system call per file, not a second one to see the end.
bool read_whole(int fd, std::string& out) {
  std::array<char, 4096> buffer;
  out.clear();
  ssize_t n;
  off_t at = 0;
  while ((n = ::pread(fd, buffer.data(), buffer.size(), at)) > 0) {
    out.append(buffer.data(), size_t(n));
    at += n;
    if (size_t(n) < buffer.size()) return true;
  }
  return n == 0 && !out.empty();
}

// The numeric fields FIRST..LAST (1-based, as proc(5) counts them) of a
// /proc/PID/stat line, counted after the command name's last ')' (the name
// may hold spaces and parentheses); nullopt when one is missing or not a
// number.
template <size_t N>
std::optional<std::array<uint64_t, N>> stat_fields(std::string_view text,
                                                   const std::array<int, N>& wanted) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  std::array<uint64_t, N> values{};
  size_t found = 0;
  int field = 2;  // field 3 (state) is the first word after the ')'
  size_t pos = 0;
  while (pos < rest.size() && found < N) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view word = rest.substr(pos, end - pos);
    pos = end;
    if (word.empty()) break;
    ++field;
    if (field != wanted[found]) continue;
    auto value = number(word);
    if (!value) return std::nullopt;
    values[found++] = *value;
  }
  if (found < N) return std::nullopt;
  return values;
}

}  // namespace

bool parse_stat(std::string_view text, long ticks_per_second, ProcSample& sample) {
  if (ticks_per_second <= 0) return false;
  // utime, stime, num_threads, rss (pages).
  auto fields = stat_fields<4>(text, {14, 15, 20, 24});
  if (!fields) return false;
  const auto [utime, stime, threads, rss_pages] = *fields;
  sample.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
  sample.threads = static_cast<uint32_t>(threads);
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  sample.rss_bytes = rss_pages * page;
  return true;
}

std::optional<ProcIdentity> parse_identity(std::string_view text) {
  // ppid, pgrp, session, starttime.
  auto fields = stat_fields<4>(text, {4, 5, 6, 22});
  if (!fields) return std::nullopt;
  return ProcIdentity{static_cast<pid_t>((*fields)[0]), static_cast<pid_t>((*fields)[1]),
                      static_cast<pid_t>((*fields)[2]), (*fields)[3]};
}

std::optional<ProcIdentity> read_identity(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buffer[1024];
  ssize_t n;
  do {
    n = ::read(fd.get(), buffer, sizeof buffer);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  return parse_identity(std::string_view(buffer, static_cast<size_t>(n)));
}

uint64_t boot_ticks_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  static const long ticks = sysconf(_SC_CLK_TCK);
  return static_cast<uint64_t>(ts.tv_sec) * static_cast<uint64_t>(ticks) +
         static_cast<uint64_t>(ts.tv_nsec) * static_cast<uint64_t>(ticks) / 1'000'000'000ULL;
}

bool parse_status(std::string_view text, ProcSample& sample) {
  auto rss = status_field(text, "VmRSS");
  // A zombie or a kernel thread has no VmRSS: nothing resident.
  sample.rss_bytes = rss ? *rss * 1024 : 0;
  sample.voluntary_switches = status_field(text, "voluntary_ctxt_switches").value_or(0);
  sample.involuntary_switches = status_field(text, "nonvoluntary_ctxt_switches").value_or(0);
  return text.find("Name:") != std::string_view::npos;
}

std::optional<ProcSample> ProcReader::read(bool with_status) {
  static const long ticks = sysconf(_SC_CLK_TCK);
  // Each file is opened until it opens: with the daemon out of fds one may
  // open and the other not, and the next sample must not open a second copy.
  if (!stat_fd_ || !status_fd_) {
    std::string base = "/proc/" + std::to_string(pid_);
    if (!stat_fd_) stat_fd_.reset(::open((base + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
    if (!status_fd_) status_fd_.reset(::open((base + "/status").c_str(), O_RDONLY | O_CLOEXEC));
    if (!stat_fd_ || !status_fd_) return std::nullopt;
  }
  ProcSample sample;
  if (!read_whole(stat_fd_.get(), buffer_) || !parse_stat(buffer_, ticks, sample)) {
    return std::nullopt;
  }
  if (with_status) {
    if (!read_whole(status_fd_.get(), buffer_) || !parse_status(buffer_, sample))
      return std::nullopt;
    switches_ = {sample.voluntary_switches, sample.involuntary_switches};
  } else {
    std::tie(sample.voluntary_switches, sample.involuntary_switches) = switches_;
  }
  return sample;
}

std::optional<ProcSample> read_proc(pid_t pid) { return ProcReader(pid).read(); }

std::map<std::string, std::string> read_environ(pid_t pid,
                                                const std::vector<std::string_view>& names) {
  // The most of an environment read: a process may carry megabytes of it.
  constexpr size_t kMaxEnviron = 1 << 20;
  std::map<std::string, std::string> found;
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  size_t read = 0;
  while (read < kMaxEnviron && std::getline(in, entry, '\0')) {
    read += entry.size() + 1;
    const size_t equals = entry.find('=');
    if (equals == std::string::npos) continue;
    const std::string_view name(entry.data(), equals);
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      found.emplace(std::string(name), entry.substr(equals + 1));
    }
  }
  return found;
}

}  // namespace corral::daemon

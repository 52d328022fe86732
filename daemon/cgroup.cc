#include "daemon/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace corral::daemon {
namespace {

using namespace std::chrono_literals;

// The controllers a worker's limits use, handed down where DIR offers them.
constexpr std::string_view kControllers[] = {"memory", "cpu", "pids"};
// How long take() waits for what it ended to be gone.
constexpr auto kEndWait = 5s;
// Longest file corral reads here (cgroup.procs of a busy cgroup aside,
// whose lines are counted, not kept).
constexpr size_t kMaxRead = 1 << 20;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The lines of TEXT.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

bool is_cgroup2(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

// The mount point of the cgroup2 hierarchy DIR is in.
std::optional<std::string> mount_of(const std::string& dir) {
  std::optional<std::string> mount = cgroup2_mount(read_text("/proc/self/mountinfo"));
  if (mount && (dir == *mount || dir.starts_with(*mount + "/"))) return mount;
  return std::nullopt;
}

// "1234 (python3)" for a pid of cgroup.procs.
std::string describe(std::string_view pid) {
  std::string comm = read_text("/proc/" + std::string(pid) + "/comm");
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return std::string(pid) + (comm.empty() ? "" : " (" + comm + ")");
}

std::string format_limit(uint64_t value) { return std::to_string(value) + "\n"; }

}  // namespace

std::optional<std::string> cgroup2_mount(std::string_view mountinfo) {
  // "36 25 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw": the
  // filesystem type follows the " - " separator.
  for (std::string_view line : lines_of(mountinfo)) {
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::vector<std::string_view> after = words_of(line.substr(dash + 3));
    if (after.empty() || after[0] != "cgroup2") continue;
    std::vector<std::string_view> before = words_of(line.substr(0, dash));
    if (before.size() < 5 || before[3] != "/") continue;  // a bind mount of a subtree
    return std::string(before[4]);
  }
  return std::nullopt;
}

std::optional<std::string> own_cgroup(std::string_view proc_cgroup) {
  for (std::string_view line : lines_of(proc_cgroup)) {
    if (line.starts_with("0::/")) return std::string(line.substr(3));
  }
  return std::nullopt;
}

std::optional<bool> events_flag(std::string_view events, std::string_view key) {
  for (std::string_view line : lines_of(events)) {
    std::vector<std::string_view> words = words_of(line);
    if (words.size() == 2 && words[0] == key) return words[1] != "0";
  }
  return std::nullopt;
}

CgroupChoice choose_cgroup(const std::string& setting) {
  CgroupChoice choice;
  if (setting == "off") return choice;
  if (setting != "auto") {
    choice.dir = setting;
    return choice;
  }
  std::optional<std::string> mount = cgroup2_mount(read_text("/proc/self/mountinfo"));
  if (!mount) {
    choice.why_off = "no cgroup2 hierarchy is mounted";
    return choice;
  }
  std::optional<std::string> own = own_cgroup(read_text("/proc/self/cgroup"));
  if (!own) {
    choice.why_off = "/proc/self/cgroup names no cgroup2 cgroup of corrald";
    return choice;
  }
  if (*own == "/") {
    choice.why_off = "corrald runs in the root cgroup of " + *mount +
                     ", which it does not take over (run it under systemd with Delegate=yes, "
                     "or give daemon.cgroup a path)";
    return choice;
  }
  const std::string dir = *mount + *own;
  if (::access((dir + "/cgroup.procs").c_str(), W_OK) != 0 || ::access(dir.c_str(), W_OK) != 0) {
    choice.why_off =
        "corrald may not write its cgroup " + dir + " (under systemd: Delegate=yes in the unit)";
    return choice;
  }
  choice.dir = dir;
  return choice;
}

Result<CgroupTree> CgroupTree::take(const std::string& dir, std::vector<Leftover>* leftovers) {
  const std::string what = "daemon.cgroup " + dir;
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return errno_error(what);
  if (!is_cgroup2(dir)) return Error(what + ": not a directory of a cgroup2 hierarchy");
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return errno_error(what);
  CgroupTree tree(dir, std::move(fd));

  // One corrald per directory: the lock goes with corrald (its fd).
  if (::flock(tree.fd_.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) {
      return Error(what + " is in use by another corrald (its lock is held)");
    }
    return errno_error(what + ": flock");
  }
  // corrald inside DIR (its own cgroup, as systemd's Delegate=yes gives it)
  // moves into a leaf: controllers are handed down only from a cgroup
  // without processes. Elsewhere it stays where it is: a move costs an RCU
  // grace period, milliseconds of the start.
  const std::optional<std::string> mount = mount_of(dir);
  const std::optional<std::string> own = own_cgroup(read_text("/proc/self/cgroup"));
  const std::string self_dir = mount && own ? *mount + (*own == "/" ? "" : *own) : "";
  if (self_dir == dir || self_dir.starts_with(dir + "/")) {
    if (::mkdirat(tree.fd_.get(), "daemon", 0755) < 0 && errno != EEXIST) {
      return errno_error(what + "/daemon");
    }
    if (Status moved = tree.write_file("daemon/cgroup.procs", std::to_string(::getpid())); !moved) {
      return std::move(moved).error().context("moving corrald into its cgroup");
    }
  }

  // What an earlier corrald left: every process of every job:*/INDEX.
  const std::vector<std::pair<std::string, uint32_t>> found = tree.worker_cgroups();
  for (const auto& [job, index] : found) {
    const std::string rel = relative(job, index);
    Leftover left{rel, {}};
    const std::string procs = tree.read_file(rel + "/cgroup.procs").value_or("");
    for (std::string_view pid : lines_of(procs)) {
      if (!pid.empty()) left.processes.push_back(describe(pid));
    }
    if (!left.processes.empty()) {
      if (Status killed = tree.kill(job, index); !killed) {
        return std::move(killed).error().context("ending what an earlier corrald left in " + rel);
      }
      const auto deadline = std::chrono::steady_clock::now() + kEndWait;
      while (tree.populated(job, index) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(2ms);
      }
      if (tree.populated(job, index)) {
        return Error(what + "/" + rel + ": what an earlier corrald left there does not end");
      }
      if (leftovers != nullptr) leftovers->push_back(std::move(left));
    }
    tree.remove(job, index);
  }

  // The controllers DIR offers, handed down to the job cgroups (each job
  // hands them on to its workers when it is made).
  std::string text = tree.read_file("cgroup.controllers").value_or("");
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::vector<std::string_view> offered = words_of(text);
  for (std::string_view controller : kControllers) {
    if (std::find(offered.begin(), offered.end(), controller) == offered.end()) continue;
    if (tree.write_file("cgroup.subtree_control", "+" + std::string(controller))) {
      tree.controllers_.emplace_back(controller);
    }
  }
  return tree;
}

bool CgroupTree::has_controller(std::string_view name) const {
  return std::find(controllers_.begin(), controllers_.end(), name) != controllers_.end();
}

std::string CgroupTree::relative(std::string_view job, uint32_t index) {
  return "job:" + std::string(job) + "/" + std::to_string(index);
}

Status CgroupTree::write_file(const std::string& relative, std::string_view text) {
  UniqueFd file(::openat(fd_.get(), relative.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!file) return errno_error(dir_ + "/" + relative);
  // One write: an interface file takes what one write() gives it.
  ssize_t n;
  do {
    n = ::write(file.get(), text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error("writing " + std::string(text) + " to " + dir_ + "/" + relative);
  return {};
}

std::optional<std::string> CgroupTree::read_file(const std::string& relative) {
  UniqueFd file(::openat(fd_.get(), relative.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!file) return std::nullopt;
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(file.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxRead) break;
  }
  return text;
}

Result<UniqueFd> CgroupTree::prepare(std::string_view job, uint32_t index,
                                     const CgroupLimits& limits) {
  const std::string job_dir = "job:" + std::string(job);
  if (::mkdirat(fd_.get(), job_dir.c_str(), 0755) == 0) {
    for (const std::string& controller : controllers_) {
      // A controller the job cannot hand on leaves its limits sampled.
      (void)write_file(job_dir + "/cgroup.subtree_control", "+" + controller);
    }
  } else if (errno != EEXIST) {
    return errno_error(dir_ + "/" + job_dir);
  }
  const std::string rel = relative(job, index);
  if (::mkdirat(fd_.get(), rel.c_str(), 0755) < 0 && errno != EEXIST) {
    return errno_error(dir_ + "/" + rel);
  }
  auto set = [&](const char* controller, const char* file, const std::string& value) -> Status {
    if (!has_controller(controller)) return {};
    return write_file(rel + "/" + file, value);
  };
  Status written =
      set("memory", "memory.max", limits.memory_max ? format_limit(*limits.memory_max) : "max");
  if (written) {
    written = set("memory", "memory.high",
                  limits.memory_high ? format_limit(*limits.memory_high) : "max");
  }
  if (written) {
    // cpu.max: the quota per period of 100 ms.
    written = set(
        "cpu", "cpu.max",
        limits.cpu_percent ? std::to_string(*limits.cpu_percent * 1000) + " 100000" : "max 100000");
  }
  if (written) {
    written = set("pids", "pids.max", limits.pids_max ? format_limit(*limits.pids_max) : "max");
  }
  if (!written) return std::move(written).error();
  UniqueFd dir(::openat(fd_.get(), rel.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!dir) return errno_error(dir_ + "/" + rel);
  return dir;
}

Status CgroupTree::kill(std::string_view job, uint32_t index) {
  const std::string rel = relative(job, index);
  // Never made: nothing to end.
  if (::faccessat(fd_.get(), rel.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) return {};
  return write_file(rel + "/cgroup.kill", "1");
}

bool CgroupTree::populated(std::string_view job, uint32_t index) {
  std::optional<std::string> events = read_file(relative(job, index) + "/cgroup.events");
  return events && events_flag(*events, "populated").value_or(false);
}

Status CgroupTree::freeze(std::string_view job, uint32_t index, bool frozen) {
  return write_file(relative(job, index) + "/cgroup.freeze", frozen ? "1" : "0");
}

std::optional<bool> CgroupTree::frozen(std::string_view job, uint32_t index) {
  std::optional<std::string> events = read_file(relative(job, index) + "/cgroup.events");
  if (!events) return std::nullopt;
  return events_flag(*events, "frozen");
}

std::optional<uint64_t> CgroupTree::oom_kills(std::string_view job, uint32_t index) {
  if (!has_controller("memory")) return std::nullopt;
  std::optional<std::string> events = read_file(relative(job, index) + "/memory.events");
  if (!events) return std::nullopt;
  for (std::string_view line : lines_of(*events)) {
    std::vector<std::string_view> words = words_of(line);
    uint64_t n = 0;
    if (words.size() == 2 && words[0] == "oom_kill" &&
        std::from_chars(words[1].data(), words[1].data() + words[1].size(), n).ec == std::errc()) {
      return n;
    }
  }
  return std::nullopt;
}

CgroupTree::Usage CgroupTree::usage(std::string_view job, uint32_t index) {
  Usage usage;
  const std::string rel = relative(job, index);
  if (std::optional<std::string> stat = read_file(rel + "/cpu.stat")) {
    for (std::string_view line : lines_of(*stat)) {
      std::vector<std::string_view> words = words_of(line);
      uint64_t us = 0;
      if (words.size() == 2 && words[0] == "usage_usec" &&
          std::from_chars(words[1].data(), words[1].data() + words[1].size(), us).ec ==
              std::errc()) {
        usage.cpu_s = static_cast<double>(us) / 1e6;
      }
    }
  }
  if (has_controller("memory")) {
    if (std::optional<std::string> current = read_file(rel + "/memory.current")) {
      uint64_t bytes = 0;
      std::string_view text = *current;
      while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
      if (std::from_chars(text.data(), text.data() + text.size(), bytes).ec == std::errc()) {
        usage.memory_bytes = bytes;
      }
    }
  }
  return usage;
}

void CgroupTree::remove(std::string_view job, uint32_t index) {
  // EBUSY while processes are left: kept, and tried again at the next stop.
  ::unlinkat(fd_.get(), relative(job, index).c_str(), AT_REMOVEDIR);
  ::unlinkat(fd_.get(), ("job:" + std::string(job)).c_str(), AT_REMOVEDIR);
}

std::vector<std::pair<std::string, uint32_t>> CgroupTree::worker_cgroups() const {
  std::vector<std::pair<std::string, uint32_t>> found;
  DIR* top = ::fdopendir(::dup(fd_.get()));
  if (top == nullptr) return found;
  while (dirent* job = ::readdir(top)) {
    std::string_view name = job->d_name;
    if (job->d_type != DT_DIR || !name.starts_with("job:")) continue;
    UniqueFd job_fd(
        ::openat(fd_.get(), job->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    DIR* workers = job_fd ? ::fdopendir(job_fd.release()) : nullptr;
    if (workers == nullptr) continue;
    while (dirent* worker = ::readdir(workers)) {
      std::string_view index = worker->d_name;
      uint32_t n = 0;
      auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), n);
      if (worker->d_type == DT_DIR && ec == std::errc() && end == index.data() + index.size()) {
        found.emplace_back(std::string(name.substr(4)), n);
      }
    }
    ::closedir(workers);
  }
  ::closedir(top);
  return found;
}

void CgroupTree::remove_all() {
  for (const auto& [job, index] : worker_cgroups()) remove(job, index);
}

}  // namespace corral::daemon

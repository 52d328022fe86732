#include "daemon/worker_record.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "base/unique_fd.h"

namespace corral::daemon {
namespace {

constexpr std::string_view kMagic = "corral-workers 1";

template <class T>
std::optional<T> number(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

}  // namespace

std::string format_record(std::string_view boot_id, const std::vector<RecordedWorker>& workers) {
  std::string text = std::string(kMagic) + "\nboot " + std::string(boot_id) + "\n";
  for (const RecordedWorker& w : workers) {
    text += std::to_string(w.pid) + " " + std::to_string(w.start_ticks) + " " + w.name + "\n";
  }
  return text;
}

std::vector<RecordedWorker> parse_record(std::string_view text, std::string_view boot_id) {
  std::vector<RecordedWorker> workers;
  std::istringstream lines{std::string(text)};
  std::string line;
  if (!std::getline(lines, line) || line != kMagic) return {};
  if (!std::getline(lines, line) || boot_id.empty() || line != "boot " + std::string(boot_id)) {
    return {};
  }
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string pid, start, name;
    if (!(fields >> pid >> start >> name)) return {};
    std::optional<pid_t> p = number<pid_t>(pid);
    std::optional<uint64_t> s = number<uint64_t>(start);
    if (!p || !s || *p <= 1) return {};
    workers.push_back({*p, *s, name});
  }
  return workers;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::vector<pid_t> leftovers_of(const std::vector<RecordedWorker>& workers,
                                const std::vector<ProcessEntry>& processes) {
  std::vector<pid_t> chosen;
  for (const RecordedWorker& w : workers) {
    auto holder = std::find_if(processes.begin(), processes.end(),
                               [&](const ProcessEntry& p) { return p.pid == w.pid; });
    // Held by another process: that group and session are gone.
    if (holder != processes.end() && holder->id.start_ticks != w.start_ticks) continue;
    for (const ProcessEntry& p : processes) {
      const bool member = p.pid == w.pid || p.id.pgid == w.pid || p.id.sid == w.pid;
      if (member && p.id.start_ticks >= w.start_ticks &&
          std::find(chosen.begin(), chosen.end(), p.pid) == chosen.end()) {
        chosen.push_back(p.pid);
      }
    }
  }
  return chosen;
}

std::vector<ProcessEntry> process_table() {
  std::vector<ProcessEntry> table;
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return table;
  while (dirent* entry = ::readdir(proc)) {
    std::optional<pid_t> pid = number<pid_t>(entry->d_name);
    if (!pid || *pid == self) continue;
    std::optional<ProcIdentity> id = read_identity(*pid);
    if (!id || id->ppid == self) continue;
    table.push_back({*pid, *id});
  }
  ::closedir(proc);
  return table;
}

std::vector<std::string> end_leftovers(const std::vector<RecordedWorker>& workers) {
  std::vector<std::string> ended;
  if (workers.empty()) return ended;
  const std::vector<ProcessEntry> table = process_table();
  for (pid_t pid : leftovers_of(workers, table)) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) continue;  // gone already
    // Checked again now that the pidfd pins the process: still the one chosen.
    auto before = std::find_if(table.begin(), table.end(),
                               [&](const ProcessEntry& p) { return p.pid == pid; });
    std::optional<ProcIdentity> now = read_identity(pid);
    if (before == table.end() || !now || now->start_ticks != before->id.start_ticks) continue;
    const std::string comm = comm_of(pid);
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0) {
      std::string whose;
      for (const RecordedWorker& w : workers) {
        if (now->pgid == w.pid || now->sid == w.pid || pid == w.pid) whose = w.name;
      }
      ended.push_back(std::to_string(pid) + " (" + comm + "), left by " + whose);
    }
  }
  return ended;
}

}  // namespace corral::daemon

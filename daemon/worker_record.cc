#include "daemon/worker_record.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/unique_fd.h"

namespace corral::daemon {
namespace {

constexpr std::string_view kMagic = "corral-workers 2";

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

std::string format_record(std::string_view boot_id, const Record& record) {
  std::string text = std::string(kMagic) + "\nboot " + std::string(boot_id) + "\ninstance " +
                     record.instance + " " + std::to_string(record.start_ticks) + "\n";
  for (const RecordedWorker& w : record.workers) {
    text += std::to_string(w.pid) + " " + std::to_string(w.start_ticks) + " " + w.name + "\n";
  }
  return text;
}

Record parse_record(std::string_view text, std::string_view boot_id) {
  Record record;
  std::istringstream lines{std::string(text)};
  std::string line;
  if (!std::getline(lines, line) || line != kMagic) return {};
  if (!std::getline(lines, line) || boot_id.empty() || line != "boot " + std::string(boot_id)) {
    return {};
  }
  if (!std::getline(lines, line)) return {};
  {
    std::istringstream fields(line);
    std::string word, instance, start;
    if (!(fields >> word >> instance >> start) || word != "instance" || instance.size() != 16) {
      return {};
    }
    std::optional<uint64_t> s = number<uint64_t>(start);
    if (!s) return {};
    record.instance = instance;
    record.start_ticks = *s;
  }
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string pid, start, name;
    if (!(fields >> pid >> start >> name)) return {};
    std::optional<pid_t> p = number<pid_t>(pid);
    std::optional<uint64_t> s = number<uint64_t>(start);
    if (!p || !s || *p <= 1) return {};
    record.workers.push_back({*p, *s, name});
  }
  return record;
}

std::string new_instance_id() {
  uint64_t value = 0;
  std::ifstream random("/dev/urandom", std::ios::binary);
  random.read(reinterpret_cast<char*>(&value), sizeof value);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::vector<pid_t> leftovers_of(const Record& record, const std::vector<ProcessEntry>& processes) {
  std::vector<pid_t> chosen;
  auto choose = [&](pid_t pid) {
    if (std::find(chosen.begin(), chosen.end(), pid) == chosen.end()) chosen.push_back(pid);
  };
  for (const RecordedWorker& w : record.workers) {
    auto holder = std::find_if(processes.begin(), processes.end(),
                               [&](const ProcessEntry& p) { return p.pid == w.pid; });
    // Held by another process: that group and session are gone.
    if (holder != processes.end() && holder->id.start_ticks != w.start_ticks) continue;
    for (const ProcessEntry& p : processes) {
      const bool member = p.pid == w.pid || p.id.pgid == w.pid || p.id.sid == w.pid;
      if (member && p.id.start_ticks >= w.start_ticks) choose(p.pid);
    }
  }
  if (!record.instance.empty()) {
    for (const ProcessEntry& p : processes) {
      if (p.instance == record.instance && p.id.start_ticks >= record.start_ticks) choose(p.pid);
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
    std::map<std::string, std::string> env = read_environ(*pid, {"CORRAL_INSTANCE"});
    table.push_back({*pid, *id, env["CORRAL_INSTANCE"]});
  }
  ::closedir(proc);
  return table;
}

std::vector<std::string> end_leftovers(const Record& record) {
  std::vector<std::string> ended;
  if (record.workers.empty() && record.instance.empty()) return ended;
  const std::vector<ProcessEntry> table = process_table();
  for (pid_t pid : leftovers_of(record, table)) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) continue;  // gone already
    // Checked again now that the pidfd pins the process: still the one chosen.
    auto before = std::find_if(table.begin(), table.end(),
                               [&](const ProcessEntry& p) { return p.pid == pid; });
    std::optional<ProcIdentity> now = read_identity(pid);
    if (before == table.end() || !now || now->start_ticks != before->id.start_ticks) continue;
    const std::string comm = comm_of(pid);
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0) {
      std::string whose = "a worker (CORRAL_INSTANCE " + record.instance + ")";
      for (const RecordedWorker& w : record.workers) {
        if (now->pgid == w.pid || now->sid == w.pid || pid == w.pid) whose = w.name;
      }
      ended.push_back(std::to_string(pid) + " (" + comm + "), left by " + whose);
    }
  }
  return ended;
}

}  // namespace corral::daemon

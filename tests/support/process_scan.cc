#include "tests/support/process_scan.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <sstream>

#include "tests/support/file_io.h"

namespace corral::testing {

namespace {

std::string proc(pid_t pid, const std::string& what) {
  return "/proc/" + std::to_string(pid) + "/" + what;
}

// The numeric entries of a /proc directory.
std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      out.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> stat_fields(pid_t pid) {
  // The command name (field 2) may hold spaces and parentheses: the fields
  // after it start after the last ')'.
  const std::string stat = read_file(proc(pid, "stat"));
  const size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::istringstream fields(stat.substr(close_paren + 1));
  return {std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
}

bool process_alive(pid_t pid) {
  std::vector<std::string> fields = stat_fields(pid);
  return !fields.empty() && fields[0] != "Z";
}

pid_t parent_of(pid_t pid) {
  std::vector<std::string> fields = stat_fields(pid);
  return fields.size() < 2 ? 0 : static_cast<pid_t>(std::atol(fields[1].c_str()));
}

std::string comm_of(pid_t pid) {
  std::string comm = read_file(proc(pid, "comm"));
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (pid_t pid : numeric_entries("/proc")) {
    if (parent_of(pid) == parent && process_alive(pid)) out.push_back(pid);
  }
  return out;
}

std::vector<pid_t> children_named(pid_t parent, const std::string& comm) {
  std::vector<pid_t> out;
  for (pid_t child : children_of(parent)) {
    if (comm_of(child) == comm) out.push_back(child);
  }
  return out;
}

int zombies_of(pid_t parent) {
  int zombies = 0;
  for (pid_t pid : numeric_entries("/proc")) {
    std::vector<std::string> fields = stat_fields(pid);
    if (fields.size() >= 2 && fields[0] == "Z" && std::atol(fields[1].c_str()) == parent) {
      ++zombies;
    }
  }
  return zombies;
}

std::vector<std::string> environment_of(pid_t pid) {
  const std::string environ = read_file(proc(pid, "environ"));
  std::vector<std::string> out;
  for (size_t at = 0; at < environ.size();) {
    const size_t end = std::min(environ.find('\0', at), environ.size());
    out.push_back(environ.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string environment_value(pid_t pid, const std::string& name) {
  const std::string key = name + "=";
  for (const std::string& entry : environment_of(pid)) {
    if (entry.starts_with(key)) return entry.substr(key.size());
  }
  return "";
}

std::vector<pid_t> processes_with_env(const std::string& entry) {
  std::vector<pid_t> out;
  for (pid_t pid : numeric_entries("/proc")) {
    std::vector<std::string> env = environment_of(pid);
    if (std::find(env.begin(), env.end(), entry) != env.end() && process_alive(pid)) {
      out.push_back(pid);
    }
  }
  return out;
}

std::vector<std::string> open_fds(pid_t pid) {
  std::vector<std::string> out;
  const std::string dir = proc(pid, "fd");
  for (pid_t fd : numeric_entries(dir)) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(dir + "/" + std::to_string(fd), ec);
    out.push_back(ec ? "?" : target.string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace corral::testing

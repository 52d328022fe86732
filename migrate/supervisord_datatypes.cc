// supervisord's datatypes (supervisord_values.h; supervisor/datatypes.py):
// integers, booleans, byte sizes, octal modes, signals, autorestart, exit
// codes, lists, names, logging levels and log file names, with Python's
// string basics they rest on. The %-expansion is in supervisord_expand.cc,
// shlex in supervisord_shlex.cc.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>
#include <utility>

#include "migrate/supervisord_values.h"

namespace corral::migrate {

// Python's repr() of a str, enough for messages: single quotes unless the
// text holds one and no double quote.
std::string py_repr(std::string_view text) {
  char quote =
      (text.find('\'') != std::string_view::npos && text.find('"') == std::string_view::npos)
          ? '"'
          : '\'';
  std::string out(1, quote);
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      std::array<char, 8> hex{};
      std::snprintf(hex.data(), hex.size(), "\\x%02x", u);
      out += hex.data();
    } else {
      out.push_back(c);
    }
  }
  out.push_back(quote);
  return out;
}

bool py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
         (c >= '\x1c' && c <= '\x1f');
}

std::string_view py_strip(std::string_view text) {
  while (!text.empty() && py_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && py_space(text.back())) text.remove_suffix(1);
  return text;
}

std::string py_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<int64_t> integer(std::string_view text) {
  std::string_view t = py_strip(text);
  auto invalid = [&] { return Error("invalid literal for int() with base 10: " + py_repr(text)); };
  bool negative = false;
  if (!t.empty() && (t.front() == '+' || t.front() == '-')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  if (t.empty() || t.front() == '_' || t.back() == '_') return invalid();
  int64_t value = 0;
  char previous = ' ';
  for (char c : t) {
    if (c == '_') {
      if (previous == '_') return invalid();
    } else if (c >= '0' && c <= '9') {
      if (value > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) {
        return Error("the integer " + py_repr(text) + " is too large for the import");
      }
      value = value * 10 + (c - '0');
    } else {
      return invalid();
    }
    previous = c;
  }
  return negative ? -value : value;
}

Result<bool> boolean(std::string_view text) {
  std::string s = py_lower(text);
  if (s == "yes" || s == "true" || s == "on" || s == "1") return true;
  if (s == "no" || s == "false" || s == "off" || s == "0") return false;
  return Error("not a valid boolean value: " + py_repr(text));
}

Result<int64_t> byte_size(std::string_view text) {
  std::string s = py_lower(text);
  static constexpr std::array<std::pair<std::string_view, int64_t>, 3> kSuffixes = {
      {{"kb", 1024}, {"mb", 1024 * 1024}, {"gb", int64_t{1024} * 1024 * 1024}}};
  for (const auto& [suffix, multiplier] : kSuffixes) {
    if (s.size() >= 2 && s.ends_with(suffix)) {
      auto n = integer(std::string_view(s).substr(0, s.size() - 2));
      if (!n) return n.error();
      return *n * multiplier;
    }
  }
  return integer(s);
}

Result<int64_t> octal(std::string_view text) {
  std::string_view t = py_strip(text);
  bool negative = false;
  if (!t.empty() && (t.front() == '+' || t.front() == '-')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  if (t.size() >= 2 && t[0] == '0' && (t[1] == 'o' || t[1] == 'O')) {
    t.remove_prefix(2);
    if (!t.empty() && t.front() == '_') t.remove_prefix(1);
  }
  auto bad = [&] { return Error(std::string(text) + " can not be converted to an octal type"); };
  if (t.empty() || t.front() == '_' || t.back() == '_') return bad();
  int64_t value = 0;
  char previous = ' ';
  for (char c : t) {
    if (c == '_') {
      if (previous == '_') return bad();
    } else if (c >= '0' && c <= '7') {
      if (value > (std::numeric_limits<int64_t>::max() >> 3)) return bad();
      value = value * 8 + (c - '0');
    } else {
      return bad();
    }
    previous = c;
  }
  return negative ? -value : value;
}

Result<int> signal_number(std::string_view text) {
  // The names of Python's signal module on Linux that start with SIG (the
  // handler and mask constants SIG_DFL, SIG_IGN, SIG_BLOCK... included).
  static constexpr std::array<std::pair<std::string_view, int>, 41> kNames = {{
      {"SIG_BLOCK", 0}, {"SIG_DFL", 0},     {"SIG_UNBLOCK", 1}, {"SIG_IGN", 1},  {"SIGHUP", 1},
      {"SIGINT", 2},    {"SIG_SETMASK", 2}, {"SIGQUIT", 3},     {"SIGILL", 4},   {"SIGTRAP", 5},
      {"SIGIOT", 6},    {"SIGABRT", 6},     {"SIGBUS", 7},      {"SIGFPE", 8},   {"SIGKILL", 9},
      {"SIGUSR1", 10},  {"SIGSEGV", 11},    {"SIGUSR2", 12},    {"SIGPIPE", 13}, {"SIGALRM", 14},
      {"SIGTERM", 15},  {"SIGSTKFLT", 16},  {"SIGCLD", 17},     {"SIGCHLD", 17}, {"SIGCONT", 18},
      {"SIGSTOP", 19},  {"SIGTSTP", 20},    {"SIGTTIN", 21},    {"SIGTTOU", 22}, {"SIGURG", 23},
      {"SIGXCPU", 24},  {"SIGXFSZ", 25},    {"SIGVTALRM", 26},  {"SIGPROF", 27}, {"SIGWINCH", 28},
      {"SIGIO", 29},    {"SIGPOLL", 29},    {"SIGPWR", 30},     {"SIGSYS", 31},  {"SIGRTMIN", 34},
      {"SIGRTMAX", 64},
  }};
  int number = -1;
  if (auto n = integer(text)) {
    number = (*n >= 0 && *n <= 64) ? static_cast<int>(*n) : -1;
    bool known = std::any_of(kNames.begin(), kNames.end(),
                             [number](const auto& entry) { return entry.second == number; });
    if (!known) return Error("value " + py_repr(text) + " is not a valid signal number");
    return number;
  }
  std::string name(py_strip(text));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!name.starts_with("SIG")) name = "SIG" + name;
  for (const auto& [known, value] : kNames) {
    if (known == name) return value;
  }
  return Error("value " + py_repr(text) + " is not a valid signal name");
}

Result<AutoRestart> auto_restart(std::string_view text) {
  std::string s = py_lower(text);
  if (s == "yes" || s == "true" || s == "on" || s == "1") return AutoRestart::kAlways;
  if (s == "no" || s == "false" || s == "off" || s == "0") return AutoRestart::kNever;
  if (s == "unexpected") return AutoRestart::kUnexpected;
  return Error("invalid 'autorestart' value " + py_repr(s));
}

Result<std::vector<int>> exit_codes(std::string_view text) {
  std::vector<int> codes;
  if (text.empty()) return codes;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    auto n = integer(text.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (!n || *n < 0 || *n > 255) {
      return Error("not a valid list of exit codes: " + py_repr(text));
    }
    codes.push_back(static_cast<int>(*n));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return codes;
}

std::vector<std::string> list_of_strings(std::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    out.emplace_back(
        py_strip(text.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<std::string> process_or_group_name(std::string_view text) {
  std::string_view s = py_strip(text);
  for (char c : std::string_view(" :/")) {
    if (s.find(c) != std::string_view::npos) {
      return Error("Invalid name: " + py_repr(text) +
                   " because of character: " + py_repr(std::string(1, c)));
    }
  }
  return std::string(s);
}

Result<std::string> logging_level(std::string_view text) {
  std::string s = py_lower(text);
  for (std::string_view level :
       {"critical", "error", "warn", "info", "debug", "trace", "blather"}) {
    if (s == level) return s;
  }
  return Error("bad logging level name " + py_repr(text));
}

LogfileName logfile_name(std::string_view text) {
  std::string s = py_lower(text);
  if (s == "none" || s == "off") return {LogfileName::Kind::kNone, {}};
  if (s == "auto") return {LogfileName::Kind::kAuto, {}};
  if (s == "syslog") return {LogfileName::Kind::kSyslog, {}};
  return {LogfileName::Kind::kPath, std::string(text)};
}

}  // namespace corral::migrate

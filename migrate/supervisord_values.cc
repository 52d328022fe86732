#include "migrate/supervisord_values.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>
#include <utility>

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

namespace {

// Digits of NUMBER's magnitude in BASE (no sign).
std::string digits_of(uint64_t magnitude, int base, bool upper) {
  const char* set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  do {
    out.push_back(set[magnitude % static_cast<uint64_t>(base)]);
    magnitude /= static_cast<uint64_t>(base);
  } while (magnitude != 0);
  std::reverse(out.begin(), out.end());
  return out;
}

bool has_flag(const Conversion& c, char flag) { return c.flags.find(flag) != std::string::npos; }

// BODY padded to the conversion's width: left-justified with '-', else with
// zeros after PREFIX (sign, 0x) when ZERO_OK and '0' is given, else spaces.
std::string pad(const Conversion& c, const std::string& prefix, const std::string& body,
                bool zero_ok) {
  size_t width = c.width ? static_cast<size_t>(std::max(0, *c.width)) : 0;
  size_t length = prefix.size() + body.size();
  if (length >= width) return prefix + body;
  size_t fill = width - length;
  if (has_flag(c, '-')) return prefix + body + std::string(fill, ' ');
  if (zero_ok && has_flag(c, '0')) return prefix + std::string(fill, '0') + body;
  return std::string(fill, ' ') + prefix + body;
}

Result<std::string> format_text_as(std::string_view text, const Conversion& c) {
  std::string body(text);
  if (c.precision && body.size() > static_cast<size_t>(std::max(0, *c.precision))) {
    body.resize(static_cast<size_t>(std::max(0, *c.precision)));
  }
  return pad(c, "", body, false);
}

}  // namespace

Result<std::string> format_integer(int64_t number, const Conversion& c) {
  bool negative = number < 0;
  uint64_t magnitude =
      negative ? (~static_cast<uint64_t>(number) + 1) : static_cast<uint64_t>(number);
  std::string sign = negative ? "-" : has_flag(c, '+') ? "+" : has_flag(c, ' ') ? " " : "";
  std::string body;
  std::string prefix = sign;
  switch (c.type) {
    case 'd':
    case 'i':
    case 'u':
      body = digits_of(magnitude, 10, false);
      break;
    case 'o':
      body = digits_of(magnitude, 8, false);
      if (has_flag(c, '#')) prefix += "0o";
      break;
    case 'x':
    case 'X':
      body = digits_of(magnitude, 16, c.type == 'X');
      if (has_flag(c, '#')) prefix += c.type == 'x' ? "0x" : "0X";
      break;
    case 's':
    case 'r':
    case 'a':
      return format_text_as(std::to_string(number), c);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G': {
      std::string format = "%" + c.flags;
      if (c.width) format += std::to_string(*c.width);
      if (c.precision) format += "." + std::to_string(*c.precision);
      format.push_back(c.type);
      std::array<char, 512> buffer{};
      std::snprintf(buffer.data(), buffer.size(), format.c_str(), static_cast<double>(number));
      return std::string(buffer.data());
    }
    case 'c':
      if (number < 0 || number > 0x10ffff) return Error("%c arg not in range(0x110000)");
      if (number < 0x80) return format_text_as(std::string(1, static_cast<char>(number)), c);
      return Error("%c of a number beyond ASCII is not supported by the import");
    default:
      return Error(std::string("unsupported format character '") + c.type + "'");
  }
  if (c.precision && body.size() < static_cast<size_t>(std::max(0, *c.precision))) {
    body.insert(0, static_cast<size_t>(*c.precision) - body.size(), '0');
  }
  return pad(c, prefix, body, true);
}

Result<std::string> format_text(std::string_view text, const Conversion& c) {
  switch (c.type) {
    case 's':
      return format_text_as(text, c);
    case 'r':
    case 'a':
      return format_text_as(py_repr(text), c);
    case 'c':
      if (text.size() == 1) return format_text_as(text, c);
      return Error("%c requires int or char");
    case 'd':
    case 'i':
    case 'u':
      return Error(std::string("%") + c.type + " format: a real number is required, not str");
    case 'o':
    case 'x':
    case 'X':
      return Error(std::string("%") + c.type + " format: an integer is required, not str");
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      return Error("must be real number, not str");
    default:
      return Error(std::string("unsupported format character '") + c.type + "'");
  }
}

Result<std::string> expand(std::string_view text, const Expansions& expansions,
                           std::string_view name, std::vector<Conversion>* per_process,
                           std::optional<int64_t> process_num) {
  auto bad = [&](const std::string& why) {
    return Error("Format string " + py_repr(text) + " for " + py_repr(name) +
                 " is badly formatted: " + why);
  };
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    char ch = text[i];
    if (ch != '%') {
      out.push_back(ch);
      ++i;
      continue;
    }
    size_t start = i;
    ++i;
    if (i >= text.size()) return bad("incomplete format");
    if (text[i] == '%') {
      out.push_back('%');
      ++i;
      continue;
    }
    if (text[i] != '(') {
      // Python would format the whole expansion table here ('%s' % dict);
      // no config means that.
      return bad("a conversion without a (name) at index " + std::to_string(start) +
                 " (supervisord would put its whole table of expansions there)");
    }
    // The key, with nested parentheses as Python counts them.
    int depth = 1;
    size_t key_start = ++i;
    while (i < text.size() && depth > 0) {
      if (text[i] == '(') ++depth;
      if (text[i] == ')') --depth;
      ++i;
    }
    if (depth > 0) return bad("incomplete format key");
    std::string key(text.substr(key_start, i - 1 - key_start));
    Conversion c;
    while (i < text.size() && std::string_view("-+ #0").find(text[i]) != std::string_view::npos) {
      c.flags.push_back(text[i++]);
    }
    if (i < text.size() && text[i] == '*') return bad("* wants int (not enough arguments)");
    if (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      int width = 0;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
        width = std::min(width * 10 + (text[i++] - '0'), 100000);
      }
      c.width = width;
    }
    if (i < text.size() && text[i] == '.') {
      ++i;
      if (i < text.size() && text[i] == '*') return bad("* wants int (not enough arguments)");
      int precision = 0;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
        precision = std::min(precision * 10 + (text[i++] - '0'), 100000);
      }
      c.precision = precision;
    }
    while (i < text.size() && (text[i] == 'h' || text[i] == 'l' || text[i] == 'L')) ++i;
    if (i >= text.size()) return bad("incomplete format");
    c.type = text[i];
    if (std::string_view("diouxXeEfFgGcrsa").find(c.type) == std::string_view::npos) {
      std::array<char, 96> why{};
      std::snprintf(why.data(), why.size(), "unsupported format character '%c' (0x%x) at index %zu",
                    c.type, static_cast<unsigned char>(c.type), i);
      return bad(why.data());
    }
    ++i;
    auto found = expansions.find(key);
    if (found == expansions.end()) {
      std::string available;
      for (const auto& [k, v] : expansions) available += (available.empty() ? "" : ", ") + k;
      return Error("Format string " + py_repr(text) + " for " + py_repr(name) +
                   " contains names (" + py_repr(key) +
                   ") which cannot be expanded. Available names: " + available);
    }
    const ExpansionValue& value = found->second;
    Result<std::string> piece = std::string();
    if (value.kind == ExpansionValue::Kind::kText) {
      bool marked = value.text.find(kMark) != std::string::npos;
      if (marked && (c.width || c.precision || c.type != 's')) {
        return bad("%(" + key + ") holds a per-process value; the import supports it only as " +
                   "%(" + key + ")s, without a width or precision");
      }
      piece = format_text(value.text, c);
    } else if (value.kind == ExpansionValue::Kind::kInteger) {
      piece = format_integer(value.number, c);
    } else if (process_num) {
      piece = format_integer(*process_num, c);
    } else {
      // Checked once now with 0, so that a bad conversion is refused here.
      auto check = format_integer(0, c);
      if (!check) return bad(check.error().message());
      if (per_process == nullptr) return bad("internal: no room for a per-process conversion");
      per_process->push_back(c);
      piece = std::string(1, kMark) + std::to_string(per_process->size() - 1) + kMarkEnd;
    }
    if (!piece) return bad(piece.error().message());
    out += *piece;
  }
  return out;
}

Result<std::string> fill_marks(std::string_view text, const std::vector<Conversion>& conversions,
                               int64_t process_num) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != kMark) {
      out.push_back(text[i++]);
      continue;
    }
    size_t end = text.find(kMarkEnd, i);
    if (end == std::string_view::npos) return Error("internal: an unterminated mark");
    size_t index = std::stoul(std::string(text.substr(i + 1, end - i - 1)));
    if (index >= conversions.size()) return Error("internal: a mark out of range");
    auto piece = format_integer(process_num, conversions[index]);
    if (!piece) return piece.error();
    out += *piece;
    i = end + 1;
  }
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

// ---- shlex ----

namespace {

// One character of the input as Python sees it: a code point, here its
// UTF-8 bytes (an invalid byte stands alone).
std::vector<std::string_view> code_points(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    auto u = static_cast<unsigned char>(text[i]);
    size_t n = u < 0x80 ? 1 : (u >> 5) == 0x6 ? 2 : (u >> 4) == 0xe ? 3 : (u >> 3) == 0x1e ? 4 : 1;
    if (i + n > text.size()) n = 1;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
        n = 1;
        break;
      }
    }
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

// shlex's wordchars in POSIX mode plus dict_of_key_value_pairs's "/.+-():",
// and the marks.
bool env_word_char(std::string_view ch) {
  if (ch.size() == 1) {
    char c = ch[0];
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
           std::string_view("/.+-():").find(c) != std::string_view::npos || c == kMark ||
           c == kMarkEnd;
  }
  if (ch.size() == 2) {
    // U+00C0..U+00FF but U+00D7 and U+00F7: shlex's Latin-1 letters.
    auto b0 = static_cast<unsigned char>(ch[0]);
    auto b1 = static_cast<unsigned char>(ch[1]);
    unsigned cp = ((b0 & 0x1fu) << 6) | (b1 & 0x3fu);
    return cp >= 0xc0 && cp <= 0xff && cp != 0xd7 && cp != 0xf7;
  }
  return false;
}

bool shlex_space(std::string_view ch) {
  return ch.size() == 1 && (ch[0] == ' ' || ch[0] == '\t' || ch[0] == '\r' || ch[0] == '\n');
}

// Python's shlex.shlex in POSIX mode: WHITESPACE_SPLIT as shlex.split sets
// it; COMMENTS: '#' starts a comment to the end of the line.
Result<std::vector<std::string>> shlex_tokens(std::string_view text, bool whitespace_split,
                                              bool comments) {
  std::vector<std::string_view> input = code_points(text);
  std::vector<std::string> tokens;
  size_t pos = 0;
  std::optional<std::string_view> pushed;
  auto next = [&]() -> std::string_view {
    if (pushed) {
      std::string_view c = *pushed;
      pushed.reset();
      return c;
    }
    if (pos >= input.size()) return {};
    return input[pos++];
  };
  auto skip_line = [&] {
    while (pos < input.size() && input[pos] != "\n") ++pos;
    if (pos < input.size()) ++pos;
  };
  auto is_quote = [](std::string_view c) { return c == "'" || c == "\""; };
  auto word_char = [&](std::string_view c) { return whitespace_split ? true : env_word_char(c); };
  bool at_eof = false;
  while (!at_eof) {
    std::string token;
    bool quoted = false;
    char state = ' ';
    char escaped_state = ' ';
    while (true) {
      std::string_view c = next();
      bool eof = c.empty();
      if (state == ' ') {
        if (eof) {
          at_eof = true;
          break;
        }
        if (shlex_space(c)) {
          if (!token.empty() || quoted) break;
          continue;
        }
        if (comments && c == "#") {
          skip_line();
          continue;
        }
        if (c == "\\") {
          escaped_state = 'a';
          state = '\\';
        } else if (!whitespace_split && env_word_char(c)) {
          token = std::string(c);
          state = 'a';
        } else if (is_quote(c)) {
          state = c[0];
        } else if (whitespace_split) {
          token = std::string(c);
          state = 'a';
        } else {
          token = std::string(c);
          break;  // a single punctuation character is a token
        }
      } else if (state == '\'' || state == '"') {
        quoted = true;
        if (eof) return Error("No closing quotation");
        if (c[0] == state && c.size() == 1) {
          state = 'a';
        } else if (c == "\\" && state == '"') {
          escaped_state = state;
          state = '\\';
        } else {
          token += c;
        }
      } else if (state == '\\') {
        if (eof) return Error("No escaped character");
        if ((escaped_state == '\'' || escaped_state == '"') && c != "\\" &&
            !(c.size() == 1 && c[0] == escaped_state)) {
          token.push_back('\\');
        }
        token += c;
        state = escaped_state;
      } else {  // 'a': in a word
        if (eof) {
          at_eof = true;
          break;
        }
        if (shlex_space(c)) {
          state = ' ';
          if (!token.empty() || quoted) break;
          continue;
        }
        if (comments && c == "#") {
          skip_line();
          state = ' ';
          if (!token.empty() || quoted) break;
          continue;
        }
        if (is_quote(c)) {
          state = c[0];
        } else if (c == "\\") {
          escaped_state = 'a';
          state = '\\';
        } else if (word_char(c)) {
          token += c;
        } else {
          pushed = c;
          state = ' ';
          if (!token.empty() || quoted) break;
          continue;
        }
      }
    }
    if (!token.empty() || quoted) tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace

Result<std::vector<std::string>> shlex_split(std::string_view text) {
  return shlex_tokens(text, true, false);
}

Result<std::vector<std::pair<std::string, std::string>>> key_value_pairs(std::string_view text) {
  auto tokens = shlex_tokens(text, false, true);
  if (!tokens) return tokens.error();
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < tokens->size(); i += 4) {
    if (i + 3 > tokens->size() || (*tokens)[i + 1] != "=") {
      return Error("Unexpected end of key/value pairs in value '" + std::string(text) + "'");
    }
    std::string key = (*tokens)[i];
    auto same =
        std::find_if(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == key; });
    if (same != pairs.end()) {
      same->second = (*tokens)[i + 2];
    } else {
      pairs.emplace_back(key, (*tokens)[i + 2]);
    }
  }
  return pairs;
}

}  // namespace corral::migrate

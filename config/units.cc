// Parsers and printers for the small value syntaxes of a config: durations,
// sizes, signals, file modes, CPU lists and command strings.
#include "config/units.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace corral::config {
namespace {

// Durations are added to steady_clock time points in nanoseconds; ten years
// keeps every sum far from overflow and is longer than any sane timeout.
constexpr int64_t kMaxDurationMs = int64_t{10} * 365 * 24 * 3600 * 1000;

// Bounds a CPU list so that "0-4000000000" cannot allocate gigabytes.
constexpr int kMaxCpu = 4095;

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A decimal number and the unit text after it: "1.5 MiB" -> {"1", "5", "MiB"}.
struct NumberWithUnit {
  std::string_view whole;
  std::string_view fraction;  // without the dot; may be empty
  std::string_view unit;
};

std::optional<NumberWithUnit> split_number(std::string_view text) {
  text = trim(text);
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return std::nullopt;  // also refuses a sign
  NumberWithUnit n{text.substr(0, i), {}, {}};
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) return std::nullopt;
    n.fraction = text.substr(start, i - start);
  }
  n.unit = trim(text.substr(i));
  return n;
}

// whole.fraction * scale as an exact integer; nullopt on overflow or when the
// product has a fractional part ("0.5ms", "0.3B").
std::optional<uint64_t> scale_exact(const NumberWithUnit& n, uint64_t scale) {
  uint64_t whole = 0;
  auto [end, ec] = std::from_chars(n.whole.data(), n.whole.data() + n.whole.size(), whole);
  if (ec != std::errc() || end != n.whole.data() + n.whole.size()) return std::nullopt;
  if (whole != 0 && scale > std::numeric_limits<uint64_t>::max() / whole) return std::nullopt;
  uint64_t result = whole * scale;

  std::string_view fraction = n.fraction;
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (fraction.empty()) return result;
  if (fraction.size() > 12) return std::nullopt;  // finer than any unit we scale by
  uint64_t digits = 0;
  uint64_t denominator = 1;
  for (char c : fraction) {
    digits = digits * 10 + static_cast<uint64_t>(c - '0');
    denominator *= 10;
  }
  // scale is at most 2^40 and digits < 10^12, so this product can overflow:
  // check before multiplying.
  if (digits != 0 && scale > std::numeric_limits<uint64_t>::max() / digits) return std::nullopt;
  uint64_t scaled = digits * scale;
  if (scaled % denominator != 0) return std::nullopt;
  uint64_t part = scaled / denominator;
  if (result > std::numeric_limits<uint64_t>::max() - part) return std::nullopt;
  return result + part;
}

// Why TEXT does not even start like a number.
std::string number_problem(std::string_view text) {
  text = trim(text);
  if (text.empty()) return "it is empty";
  if (text[0] == '-') return "it is negative";
  if (text[0] == '.') return "write a digit before the point, like 0.5";
  if (std::isdigit(static_cast<unsigned char>(text[0]))) return "write a digit after the point";
  return "it does not start with a number";
}

// Whether the "unit" after a number is the rest of a number written with
// thousands separators: "1,000", "1_000".
bool has_separator(std::string_view unit) {
  return unit.size() >= 2 && (unit[0] == ',' || unit[0] == '_') &&
         std::isdigit(static_cast<unsigned char>(unit[1]));
}

// UNIT quoted for a message, or empty when it is too odd to show.
std::string shown_unit(std::string_view unit) {
  if (unit.size() > 20 || !std::all_of(unit.begin(), unit.end(), [](char c) {
        return c > ' ' && c < 0x7F && c != '"' && c != '\\';
      })) {
    return "";
  }
  return "\"" + std::string(unit) + "\"";
}

// The message for a duration's unknown UNIT, with the unit meant when it is
// a common spelling ("sec", "min", "S").
std::string duration_unit_problem(std::string_view unit) {
  static constexpr std::pair<std::string_view, std::string_view> kMeant[] = {
      {"sec", "s"},           {"secs", "s"},   {"second", "s"},  {"seconds", "s"}, {"min", "m"},
      {"mins", "m"},          {"minute", "m"}, {"minutes", "m"}, {"hr", "h"},      {"hrs", "h"},
      {"hour", "h"},          {"hours", "h"},  {"msec", "ms"},   {"msecs", "ms"},  {"millis", "ms"},
      {"milliseconds", "ms"}, {"S", "s"},      {"MS", "ms"},     {"Ms", "ms"},     {"H", "h"},
  };
  std::string shown = shown_unit(unit);
  std::string message = "unknown unit" + (shown.empty() ? "" : " " + shown);
  for (const auto& [spelling, meant] : kMeant) {
    if (unit == spelling) return message + "; write " + std::string(meant);
  }
  if (unit == "d" || unit == "day" || unit == "days") return message + "; write hours, like 24h";
  if (unit == "us" || unit == "ns") return message + "; the finest unit is ms";
  return message + "; use ms, s, m or h";
}

struct SignalName {
  const char* name;
  int number;
};

constexpr std::array<SignalName, 31> kSignals = {{
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
}};

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  auto n = split_number(text);
  if (!n) return Error(number_problem(text));
  uint64_t scale = 0;
  if (n->unit == "ms") {
    scale = 1;
  } else if (n->unit == "s" || n->unit.empty()) {
    scale = 1000;
  } else if (n->unit == "m") {
    scale = 60 * 1000;
  } else if (n->unit == "h") {
    scale = 3600 * 1000;
  } else if (has_separator(n->unit)) {
    return Error("write the number without separators, like 1000");
  } else {
    return Error(duration_unit_problem(n->unit));
  }
  auto ms = scale_exact(*n, scale);
  if (!ms && !n->fraction.empty() && scale_exact({n->whole, {}, {}}, scale)) {
    return Error("not a whole number of milliseconds");
  }
  if (!ms || *ms > static_cast<uint64_t>(kMaxDurationMs)) {
    return Error("longer than 10 years, the longest duration");
  }
  return Duration(static_cast<int64_t>(*ms));
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Result<uint64_t> parse_size(std::string_view text) {
  auto n = split_number(text);
  if (!n) return Error(number_problem(text));
  struct Unit {
    const char* name;
    uint64_t bytes;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KiB", kKiB},
      {"KB", kKiB},
      {"K", kKiB},
      {"MiB", kMiB},
      {"MB", kMiB},
      {"M", kMiB},
      {"GiB", kGiB},
      {"GB", kGiB},
      {"G", kGiB},
      {"TiB", kGiB * kKiB},
      {"TB", kGiB * kKiB},
      {"T", kGiB * kKiB},
  };
  for (const Unit& unit : kUnits) {
    if (!equals_ignore_case(n->unit, unit.name)) continue;
    if (auto bytes = scale_exact(*n, unit.bytes)) return *bytes;
    if (!n->fraction.empty() && scale_exact({n->whole, {}, {}}, unit.bytes)) {
      return Error("not a whole number of bytes");
    }
    return Error("too large");
  }
  if (has_separator(n->unit)) return Error("write the number without separators, like 1000");
  std::string unit = shown_unit(n->unit);
  return Error("unknown unit" + (unit.empty() ? "" : " " + unit) + "; use B, KiB, MiB, GiB or TiB");
}

std::string format_size(uint64_t bytes) {
  if (bytes == 0) return "0B";
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {kGiB * kKiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  for (const auto& [size, name] : kUnits) {
    if (bytes % size == 0) return std::to_string(bytes / size) + name;
  }
  return std::to_string(bytes) + "B";
}

Result<int> parse_signal(std::string_view text) {
  text = trim(text);
  if (all_digits(text)) {
    int number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end != text.data() + text.size() || number < 1 || number > SIGRTMAX) {
      return Error("no signal has this number");
    }
    return number;
  }
  if (text.size() > 3 && equals_ignore_case(text.substr(0, 3), "SIG")) text.remove_prefix(3);
  for (const SignalName& s : kSignals) {
    if (equals_ignore_case(text, s.name)) return s.number;
  }
  return Error("unknown signal name");
}

std::string signal_name(int signal) {
  for (const SignalName& s : kSignals) {
    if (s.number == signal) return s.name;
  }
  return std::to_string(signal);
}

Result<unsigned> parse_mode(std::string_view text) {
  text = trim(text);
  Error not_a_mode("not an octal file mode from 0 to 7777");
  if (text.empty() || text.size() > 5) return not_a_mode;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return not_a_mode;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (mode > 07777) return not_a_mode;
  return mode;
}

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  auto parse_cpu = [](std::string_view s) -> std::optional<int> {
    s = trim(s);
    int cpu = 0;
    if (!all_digits(s) || s.size() > 6) return std::nullopt;
    std::from_chars(s.data(), s.data() + s.size(), cpu);
    if (cpu > kMaxCpu) return std::nullopt;
    return cpu;
  };
  std::vector<int> cpus;
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t dash = item.find('-');
    auto first = parse_cpu(item.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : parse_cpu(item.substr(dash + 1));
    if (!first || !last || *first > *last) {
      return Error("not a CPU list of numbers and ranges like 0-3,6 (CPUs from 0 to " +
                   std::to_string(kMaxCpu) + ")");
    }
    for (int cpu = *first; cpu <= *last; ++cpu) cpus.push_back(cpu);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

Result<std::vector<std::string>> split_command(std::string_view text) {
  const Error unterminated("unterminated quote or trailing backslash");
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // distinguishes '' (an empty word) from no word
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i++];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      size_t close = text.find('\'', i);
      if (close == std::string_view::npos) return unterminated;
      word.append(text.substr(i, close - i));
      i = close + 1;
      in_word = true;
    } else if (c == '"') {
      in_word = true;
      while (true) {
        if (i >= text.size()) return unterminated;
        char d = text[i++];
        if (d == '"') break;
        if (d == '\\' && i < text.size()) {
          char e = text[i];
          if (e == '"' || e == '\\' || e == '$' || e == '`') {
            word += e;
            ++i;
            continue;
          }
          if (e == '\n') {  // a line continuation disappears
            ++i;
            continue;
          }
        }
        word += d;
      }
    } else if (c == '\\') {
      if (i >= text.size()) return unterminated;
      char e = text[i++];
      if (e == '\n') continue;  // a line continuation disappears
      word += e;
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  // Two rows of the classic dynamic programme: row[j] is the distance between
  // the first i characters of a and the first j of b.
  std::vector<size_t> previous(b.size() + 1);
  std::vector<size_t> current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

Result<std::chrono::microseconds> parse_spin(std::string_view text) {
  text = trim(text);
  const bool micro = text.ends_with("us");
  if (!micro && !text.ends_with("ms")) return Error("not a time in us or ms");
  std::string_view digits = text.substr(0, text.size() - 2);
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      n > 1'000'000'000) {
    return Error("not a time in us or ms");
  }
  return std::chrono::microseconds(micro ? n : n * 1000);
}

std::string format_spin(std::chrono::microseconds spin) {
  if (spin.count() == 0) return "off";
  if (spin.count() % 1000 == 0) return std::to_string(spin.count() / 1000) + "ms";
  return std::to_string(spin.count()) + "us";
}

}  // namespace corral::config

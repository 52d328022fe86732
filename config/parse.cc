// Turns YAML text into a validated Config. yaml-cpp only builds the node tree;
// everything a user can get wrong is checked here, and each mistake becomes a
// Diagnostic so that one run of `corrald --check` shows all of them.
//
// The reading is done by a Section per YAML map: each typed getter both reads
// a key and declares it valid, so a Section's getters are its key whitelist
// and finish() reports the keys nobody asked for, with the closest valid one.
#include "config/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>

#include "config/names.h"
#include "config/units.h"

namespace corral::config {

std::string Diagnostic::str() const {
  std::string place = file;
  if (line > 0) {
    place += (place.empty() ? "" : ":") + std::to_string(line) + ":" + std::to_string(column);
  }
  return place.empty() ? message : place + ": " + message;
}

namespace {

// A typo of one digit should not start a hundred thousand processes.
constexpr uint64_t kMaxWorkers = 10000;
// Shared arrays live in the job's shared-memory segment: 8 bytes an element.
constexpr uint64_t kMaxSharedArrayLength = uint64_t{1} << 27;  // 1 GiB

// The code point of an invisible or space-like character at the start of
// TEXT (no-break space, soft hyphen, zero-width characters, a byte order
// mark) and its length in bytes.
std::optional<std::pair<unsigned, size_t>> invisible_at(std::string_view text) {
  static constexpr std::pair<std::string_view, unsigned> kInvisible[] = {
      {"\xC2\xA0", 0x00A0},     {"\xC2\xAD", 0x00AD},     {"\xE2\x80\x8B", 0x200B},
      {"\xE2\x80\x8C", 0x200C}, {"\xE2\x80\x8D", 0x200D}, {"\xE2\x80\x8E", 0x200E},
      {"\xE2\x80\x8F", 0x200F}, {"\xE2\x80\xA8", 0x2028}, {"\xE2\x80\xA9", 0x2029},
      {"\xE2\x81\xA0", 0x2060}, {"\xEF\xBB\xBF", 0xFEFF},
  };
  for (const auto& [bytes, code] : kInvisible) {
    if (text.substr(0, bytes.size()) == bytes) return std::pair(code, bytes.size());
  }
  return std::nullopt;
}

// TEXT as a message shows it: quoted, escaped, and cut after MAX_SHOWN bytes.
std::string quote(std::string_view text, size_t max_shown = 60) {
  bool cut = false;
  if (text.size() > max_shown) {
    size_t end = max_shown;
    // Do not split a UTF-8 sequence.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
    cut = true;
  }
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    // Characters a terminal does not show, pasted in from web pages and
    // editors: a key "workers" with a no-break space would look right.
    if (auto invisible = invisible_at(text.substr(i))) {
      char code[8];
      snprintf(code, sizeof code, "\\u%04x", invisible->first);
      out += code;
      i += invisible->second - 1;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += cut ? "...\"" : "\"";
  return out;
}

std::string lower_case(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// Unsigned decimal, no sign, no spaces: what a count looks like.
std::optional<uint64_t> parse_unsigned(std::string_view text) {
  uint64_t value = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int64_t> parse_signed(std::string_view text) {
  int64_t value = 0;
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty() || text[0] == '+') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A job or shared name: it ends up in file names, so "." and ".." are out.
bool valid_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
         });
}

// HOST:PORT, HOST possibly a bracketed IPv6 address; port 0 lets the kernel pick.
bool valid_listen(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = text.substr(0, colon);
  if (host.front() == '[' && host.back() != ']') return false;
  auto port = parse_unsigned(text.substr(colon + 1));
  return port && *port <= 65535;  // 0: any free port
}

// Where a map sits in the config, to name it in messages.
struct Scope {
  std::string job;   // empty outside a job
  std::string path;  // dotted keys from the job (or the top) down to the map

  Scope child(std::string_view key) const {
    return {job, path.empty() ? std::string(key) : path + "." + std::string(key)};
  }
  // "in restart.backoff of job "primes"", "in daemon", "at the top level".
  std::string where() const {
    if (job.empty()) return path.empty() ? "at the top level" : "in " + path;
    std::string of_job = "job " + quote(job);
    return path.empty() ? "in " + of_job : "in " + path + " of " + of_job;
  }
  // "queue.capacity of job "primes"", "daemon.socket".
  std::string label(std::string_view key) const {
    std::string name = path.empty() ? std::string(key) : path + "." + std::string(key);
    return job.empty() ? name : name + " of job " + quote(job);
  }
};

// One value of the config with what it takes to talk about it.
struct Item {
  Scope scope;      // of the map (or list) holding it
  std::string key;  // "initial", or "exit_codes[2]" for a list element
  YAML::Mark key_mark;
  YAML::Node value;

  std::string label() const { return scope.label(key); }
  // A missing value has no place of its own (yaml-cpp puts it at the next
  // token), so its key is the place to point at.
  YAML::Mark mark() const {
    if (value.IsDefined() && !value.IsNull() && value.Mark().line >= 0) return value.Mark();
    return key_mark;
  }
};

// Reads the nodes of one file, recording every problem as a Diagnostic.
class Reader {
 public:
  Reader(std::string file, std::vector<Diagnostic>& errors)
      : file_(std::move(file)), errors_(errors) {}

  const std::string& file() const { return file_; }
  size_t error_count() const { return errors_.size(); }

  void error(const YAML::Mark& at, std::string message) {
    Diagnostic d{file_, 0, 0, std::move(message)};
    if (at.line >= 0) {
      d.line = at.line + 1;
      d.column = at.column + 1;
    }
    errors_.push_back(std::move(d));
  }
  void error(const Item& item, const std::string& message) {
    error(item.mark(), item.label() + ": " + message);
  }
  // "LABEL: expected WHAT, got "abc"".
  // With WHY, "LABEL: expected WHAT, got "abc" (WHY)".
  void expected(const Item& item, std::string_view what, const std::string& why = "") {
    error(item, "expected " + std::string(what) + ", got " + describe(item.value) +
                    (why.empty() ? "" : " (" + why + ")"));
  }

  // The text of a scalar; nullopt (and an error) for anything else.
  std::optional<std::string> text(const Item& item, std::string_view what) {
    if (!item.value.IsScalar()) {
      expected(item, what);
      return std::nullopt;
    }
    const std::string& text = item.value.Scalar();
    if (text.find('\0') != std::string::npos) {
      error(item, "contains a NUL character");
      return std::nullopt;
    }
    return text;
  }

  // The elements of a list; a key without a value is an empty list.
  std::optional<std::vector<Item>> list(const Item& item, std::string_view what) {
    std::vector<Item> elements;
    if (item.value.IsNull()) return elements;
    if (!item.value.IsSequence()) {
      expected(item, what);
      return std::nullopt;
    }
    size_t index = 0;
    for (const YAML::Node& element : item.value) {
      Item e{item.scope, item.key + "[" + std::to_string(index++) + "]", item.key_mark, element};
      if (!element.IsNull() && element.Mark().line >= 0) e.key_mark = element.Mark();
      elements.push_back(std::move(e));
    }
    return elements;
  }

  std::optional<std::string> string(const Item& item, bool may_be_empty) {
    auto text = this->text(item, "a string");
    if (text && text->empty() && !may_be_empty) {
      error(item, "must not be empty");
      return std::nullopt;
    }
    return text;
  }

  std::optional<std::vector<std::string>> string_list(const Item& item) {
    auto elements = list(item, "a list of strings like [a, b]");
    if (!elements) return std::nullopt;
    std::vector<std::string> strings;
    bool ok = true;
    for (const Item& element : *elements) {
      auto s = string(element, false);
      ok = ok && s;
      if (s) strings.push_back(std::move(*s));
    }
    if (!ok) return std::nullopt;
    return strings;
  }

  std::optional<bool> boolean(const Item& item) {
    constexpr std::string_view kWhat = "true or false";
    auto text = this->text(item, kWhat);
    if (!text) return std::nullopt;
    std::string lower = lower_case(*text);
    if (lower == "true" || lower == "yes" || lower == "on") return true;
    if (lower == "false" || lower == "no" || lower == "off") return false;
    expected(item, kWhat);
    return std::nullopt;
  }

  // An unsigned integer in [min, max].
  std::optional<uint64_t> count(const Item& item, uint64_t min, uint64_t max) {
    std::string what = count_phrase(min, max);
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    auto n = parse_unsigned(*text);
    if (!n || *n < min || *n > max) {
      expected(item, what);
      return std::nullopt;
    }
    return n;
  }

  // Like count(), or `off`: the outer optional says whether it was read.
  std::optional<std::optional<uint64_t>> optional_count(const Item& item, uint64_t min) {
    std::string what = count_phrase(min, std::numeric_limits<uint64_t>::max()) + " or off";
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    if (*text == "off") return std::optional<uint64_t>();
    auto n = parse_unsigned(*text);
    if (!n || *n < min) {
      expected(item, what);
      return std::nullopt;
    }
    return std::optional<uint64_t>(*n);
  }

  std::optional<int64_t> integer(const Item& item, int64_t min, int64_t max) {
    std::string what = "an integer";
    if (min != std::numeric_limits<int64_t>::min() || max != std::numeric_limits<int64_t>::max()) {
      what += " from " + std::to_string(min) + " to " + std::to_string(max);
    }
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    auto n = parse_signed(*text);
    if (!n || *n < min || *n > max) {
      expected(item, what);
      return std::nullopt;
    }
    return n;
  }

  // A finite number in [min, max), or [min, max] when max is infinite.
  std::optional<double> real(const Item& item, double min, double max, std::string_view what) {
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    std::string_view number = *text;
    if (!number.empty() && number[0] == '+') number.remove_prefix(1);
    double value = 0;
    auto [stop, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || stop != number.data() + number.size() || !std::isfinite(value) ||
        value < min || (std::isfinite(max) && value >= max)) {
      expected(item, what);
      return std::nullopt;
    }
    return value;
  }

  std::optional<Duration> duration(const Item& item, Duration min) {
    std::string what =
        min.count() > 0 ? "a duration > 0 like 250ms or 30s" : "a duration like 250ms or 30s";
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    std::string why;
    auto d = parse_duration(*text, &why);
    if (*text == "off") why = "this one cannot be turned off";
    if (!d || *d < min) {
      expected(item, what, why);
      return std::nullopt;
    }
    return d;
  }

  // A duration > 0 or `off`: zero would fire at once, which `off` says better.
  std::optional<OptionalDuration> optional_duration(const Item& item) {
    constexpr std::string_view kWhat = "a duration like 250ms, 30s or off";
    auto text = this->text(item, kWhat);
    if (!text) return std::nullopt;
    if (*text == "off") return OptionalDuration();
    std::string why;
    auto d = parse_duration(*text, &why);
    if (!d) {
      expected(item, kWhat, why);
      return std::nullopt;
    }
    if (d->count() == 0) {
      expected(item, "a duration > 0 like 250ms or 30s, or off");
      return std::nullopt;
    }
    return OptionalDuration(*d);
  }

  std::optional<uint64_t> size(const Item& item, uint64_t min) {
    std::string what = "a size like 512KiB or 10MiB";
    if (min > 0) what += " (at least " + format_size(min) + ")";
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    std::string why;
    auto bytes = parse_size(*text, &why);
    if (!bytes || *bytes < min) {
      expected(item, what, why);
      return std::nullopt;
    }
    return bytes;
  }

  std::optional<std::optional<uint64_t>> optional_size(const Item& item) {
    constexpr std::string_view kWhat = "a size like 512MiB or 2GiB (more than 0), or off";
    auto text = this->text(item, kWhat);
    if (!text) return std::nullopt;
    if (*text == "off") return std::optional<uint64_t>();
    std::string why;
    auto bytes = parse_size(*text, &why);
    if (!bytes || *bytes == 0) {
      expected(item, kWhat, why);
      return std::nullopt;
    }
    return std::optional<uint64_t>(*bytes);
  }

  // One of the names of TABLE; a near miss gets a "did you mean".
  template <typename E, size_t N>
  std::optional<E> choice(const Item& item, const std::array<names::Name<E>, N>& table) {
    std::string what = "one of";
    for (size_t i = 0; i < N; ++i) {
      what += (i == 0 ? " " : i + 1 == N ? " or " : ", ") + std::string(table[i].text);
    }
    auto text = this->text(item, what);
    if (!text) return std::nullopt;
    for (const auto& name : table) {
      if (*text == name.text) return name.value;
    }
    std::string message = "expected " + what + ", got " + quote(*text);
    // Names are lower case; "SHM" is then one suggestion away from "shm".
    std::string lower = lower_case(*text);
    std::string_view closest;
    size_t best = std::numeric_limits<size_t>::max();
    for (const auto& name : table) {
      size_t d = edit_distance(lower, name.text);
      if (d < best) {
        best = d;
        closest = name.text;
      }
    }
    if (best <= 2) message += "; did you mean " + quote(closest) + "?";
    error(item, message);
    return std::nullopt;
  }

  // "nothing", "a map", "a list" or the quoted text: what a value turned out to be.
  static std::string describe(const YAML::Node& value) {
    if (!value.IsDefined() || value.IsNull()) return "nothing";
    if (value.IsMap()) return "a map";
    if (value.IsSequence()) return "a list";
    return quote(value.Scalar());
  }

 private:
  static std::string count_phrase(uint64_t min, uint64_t max) {
    // The bound of the field's type is no limit a user means to meet.
    if (max >= std::numeric_limits<uint32_t>::max()) {
      return "an integer >= " + std::to_string(min);
    }
    return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  }

  std::string file_;
  std::vector<Diagnostic>& errors_;
};

// One YAML map being read. Its getters read a key into a field when the key
// is there (the field keeps its default otherwise) and declare it valid;
// finish() then reports the other keys as unknown.
class Section {
 public:
  // ITEM holds the map; SCOPE names the map itself in messages. A key without
  // a value is an empty map; a scalar or list is an error (WHAT is expected).
  Section(Reader& reader, const Item& item, Scope scope, std::string_view what = "a map")
      : reader_(reader), scope_(std::move(scope)), mark_(item.key_mark) {
    if (item.value.IsNull()) return;
    if (!item.value.IsMap()) {
      // "command:x" is one scalar to YAML, not a key and its value.
      std::string why;
      if (item.value.IsScalar()) {
        const std::string& text = item.value.Scalar();
        size_t colon = text.find(':');
        if (colon != std::string::npos && colon + 1 < text.size() && text[colon + 1] != ' ') {
          why = "a key needs a space after its colon, like \"key: value\"";
        }
      }
      reader_.expected(item, what, why);
      valid_ = false;
      return;
    }
    std::map<std::string, YAML::Mark> seen;
    for (const auto& pair : item.value) {
      // Copies: yaml-cpp's iterators hand out proxies that do not outlive a
      // statement, and Nodes are cheap handles.
      YAML::Node key = pair.first;
      if (!key.IsScalar()) {
        reader_.error(key.Mark(), "a key " + scope_.where() + " must be a plain name");
        continue;
      }
      auto [first, inserted] = seen.emplace(key.Scalar(), key.Mark());
      if (!inserted) {
        reader_.error(key.Mark(), "duplicate key " + quote(key.Scalar()) + " " + scope_.where() +
                                      "; the first is at line " +
                                      std::to_string(first->second.line + 1) + ", column " +
                                      std::to_string(first->second.column + 1));
        continue;
      }
      entries_.push_back({scope_, key.Scalar(), key.Mark(), pair.second});
    }
  }

  Reader& reader() { return reader_; }
  const Scope& scope() const { return scope_; }
  // Whether the value was a map (or nothing); if not, it has been reported.
  bool valid() const { return valid_; }
  // Where the map's key is, for problems of the map as a whole.
  const YAML::Mark& mark() const { return mark_; }

  // KEY's entry without declaring it valid, for checks across keys.
  std::optional<Item> peek(std::string_view key) const {
    for (const Item& entry : entries_) {
      if (entry.key == key) return entry;
    }
    return std::nullopt;
  }

  // Declares KEY valid and returns its entry, if present.
  std::optional<Item> take(std::string_view key) {
    valid_keys_.emplace_back(key);
    return peek(key);
  }

  // Every entry, for maps whose keys are names chosen by the user.
  std::vector<Item> all() {
    any_key_ = true;
    return entries_;
  }

  // Reads KEY with CONVERT (Item -> optional<T>) into OUT when present and
  // valid. Returns whether KEY was present.
  template <typename T, typename Convert>
  bool get(std::string_view key, T& out, Convert convert) {
    auto item = take(key);
    if (!item) return false;
    if (auto value = convert(*item)) out = std::move(*value);
    return true;
  }

  bool get_string(std::string_view key, std::string& out, bool may_be_empty) {
    return get(key, out, [&](const Item& i) { return reader_.string(i, may_be_empty); });
  }
  bool get_string_list(std::string_view key, std::vector<std::string>& out) {
    return get(key, out, [&](const Item& i) { return reader_.string_list(i); });
  }
  bool get_bool(std::string_view key, bool& out) {
    return get(key, out, [&](const Item& i) { return reader_.boolean(i); });
  }
  template <typename T>
  bool get_count(std::string_view key, T& out, uint64_t min,
                 uint64_t max = std::numeric_limits<T>::max()) {
    return get(key, out, [&](const Item& i) -> std::optional<T> {
      auto n = reader_.count(i, min, max);
      return n ? std::optional<T>(static_cast<T>(*n)) : std::nullopt;
    });
  }
  bool get_optional_count(std::string_view key, std::optional<uint64_t>& out, uint64_t min) {
    return get(key, out, [&](const Item& i) { return reader_.optional_count(i, min); });
  }
  template <typename T>
  bool get_integer(std::string_view key, T& out, int64_t min, int64_t max) {
    return get(key, out, [&](const Item& i) -> std::optional<T> {
      auto n = reader_.integer(i, min, max);
      return n ? std::optional<T>(static_cast<T>(*n)) : std::nullopt;
    });
  }
  bool get_duration(std::string_view key, Duration& out, Duration min = Duration(0)) {
    return get(key, out, [&](const Item& i) { return reader_.duration(i, min); });
  }
  bool get_optional_duration(std::string_view key, OptionalDuration& out) {
    return get(key, out, [&](const Item& i) { return reader_.optional_duration(i); });
  }
  bool get_size(std::string_view key, uint64_t& out, uint64_t min) {
    return get(key, out, [&](const Item& i) { return reader_.size(i, min); });
  }
  bool get_optional_size(std::string_view key, std::optional<uint64_t>& out) {
    return get(key, out, [&](const Item& i) { return reader_.optional_size(i); });
  }
  template <typename E, size_t N>
  bool get_choice(std::string_view key, E& out, const std::array<names::Name<E>, N>& table) {
    return get(key, out, [&](const Item& i) { return reader_.choice(i, table); });
  }

  // Reads the map under KEY with READ(Section&), when present.
  bool get_section(std::string_view key, const std::function<void(Section&)>& read) {
    auto item = take(key);
    if (!item) return false;
    Section child(reader_, *item, scope_.child(key));
    read(child);
    child.finish();
    return true;
  }

  // Reports the keys that no getter asked for.
  void finish() {
    if (any_key_) return;
    for (const Item& entry : entries_) {
      if (std::find(valid_keys_.begin(), valid_keys_.end(), entry.key) != valid_keys_.end()) {
        continue;
      }
      if (entry.key == "<<") {
        reader_.error(entry.key_mark, "YAML merge keys (<<) are not supported " + scope_.where() +
                                          "; write the keys out, or use an alias (*name) for a "
                                          "whole value");
        continue;
      }
      reader_.error(entry.key_mark,
                    "unknown key " + quote(entry.key) + " " + scope_.where() + hint(entry.key));
    }
  }

 private:
  // "; did you mean "workers"?" for a near miss, else the keys that exist.
  std::string hint(std::string_view key) const {
    if (valid_keys_.empty()) return "";
    const std::string* closest = nullptr;
    size_t best = std::numeric_limits<size_t>::max();
    for (const std::string& valid : valid_keys_) {
      size_t d = edit_distance(key, valid);
      if (d < best) {
        best = d;
        closest = &valid;
      }
    }
    if (best <= std::max<size_t>(2, key.size() / 2)) {
      return "; did you mean " + quote(*closest) + "?";
    }
    std::string list;
    for (const std::string& valid : valid_keys_) list += (list.empty() ? "" : ", ") + valid;
    return "; valid keys: " + list;
  }

  Reader& reader_;
  Scope scope_;
  YAML::Mark mark_;
  bool valid_ = true;
  bool any_key_ = false;
  std::vector<Item> entries_;
  std::vector<std::string> valid_keys_;
};

// The first byte that makes TEXT something other than UTF-8 text, with a
// message; yaml-cpp would otherwise read binary junk as one long scalar or
// trip over a NUL with a baffling message.
std::optional<std::pair<YAML::Mark, std::string>> find_non_text(const std::string& text) {
  YAML::Mark mark;
  mark.line = 0;
  mark.column = 0;
  // Windows editors save "Unicode" as UTF-16: a byte order mark, or ASCII
  // with a NUL after (or before) every character.
  if (text.size() >= 2 &&
      ((text[0] == '\xFF' && text[1] == '\xFE') || (text[0] == '\xFE' && text[1] == '\xFF') ||
       ((text[0] == '\0') != (text[1] == '\0')))) {
    return std::pair(mark, std::string("the file is UTF-16 text; save it as UTF-8"));
  }
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool ok = length > 0 && i + length <= text.size() && c != 0xC0 && c != 0xC1 && c <= 0xF4;
    for (size_t k = 1; ok && k < length; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (!ok) {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%02x", c);
      return std::pair(mark, std::string("not a text file: byte ") + hex + " is not UTF-8");
    }
    if (c == 0) return std::pair(mark, std::string("not a text file: it contains a NUL byte"));
    if (c == '\n') {
      ++mark.line;
      mark.column = 0;
    } else {
      mark.column += static_cast<int>(length);
    }
    i += length;
  }
  return std::nullopt;
}

// The documents of a YAML stream as events: where each starts and whether
// it holds anything. YAML::LoadAll cannot be used: yaml-cpp 0.7 hands out
// an endless run of empty documents, without reading on, when a document
// starts with a token that cannot start a node (a stray ',': "," or
// ",}\n{"), and LoadAll collects them until memory runs out (yaml-cpp
// issue 1040, fixed in 0.8.0).
class DocumentScan : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark mark;  // of its root node
    bool empty = true;
    bool has_root = false;
  };
  // The documents of TEXT; nullopt, with MARK set, where yaml-cpp is stuck.
  // Throws what yaml-cpp throws for bad syntax.
  std::optional<std::vector<Document>> scan(const std::string& text, YAML::Mark& mark) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(*this)) {
      const Document& last = documents_.back();
      // An empty document where the one before it was: nothing was read.
      if (last.empty && documents_.size() > 1 && same(documents_[documents_.size() - 2], last)) {
        mark = last.mark;
        return std::nullopt;
      }
    }
    return std::move(documents_);
  }

  void OnDocumentStart(const YAML::Mark& mark) override { documents_.push_back({mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark, false);
  }
  void OnMapEnd() override {}

 private:
  // The first node of a document is its root; the rest is inside it.
  void node(const YAML::Mark& mark, bool null) {
    Document& d = documents_.back();
    if (d.has_root) return;
    d.has_root = true;
    d.mark = mark;
    d.empty = null;
  }
  static bool same(const Document& a, const Document& b) {
    return a.empty && a.mark.pos == b.mark.pos;
  }

  std::vector<Document> documents_;
};

// Whether line LINE (0-based) of TEXT, or the one before, is indented with a
// tab: yaml-cpp's message for that ("illegal map value") does not say so.
bool tab_indented_near(const std::string& text, int line) {
  int current = 0;
  size_t start = 0;
  while (start < text.size() && current <= line) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (current >= line - 1) {
      for (size_t i = start; i < end && (text[i] == ' ' || text[i] == '\t'); ++i) {
        if (text[i] == '\t') return true;
      }
    }
    start = end + 1;
    ++current;
  }
  return false;
}

// A config is small: these bound what a mistaken file costs to refuse, also
// in a running daemon on reload. yaml-cpp keeps about 500 bytes for each
// value and takes a few microseconds to read one; aliases are counted as the
// values they repeat, so that a "billion laughs" of nested aliases is refused
// before anything walks it.
constexpr int kMaxNesting = 500;  // yaml-cpp's own limit
constexpr size_t kMaxValues = 100000;

std::string nested_too_deeply(int levels) {
  return "lists and maps are nested too deeply (" + std::to_string(levels) + " levels)";
}

YAML::Mark mark_at(size_t pos, int line, int column) {
  YAML::Mark mark;
  mark.pos = static_cast<int>(pos);
  mark.line = line;
  mark.column = column;
  return mark;
}

// What a quick look at the flow brackets ([ ] { }) of a text finds. yaml-cpp
// reads a whole flow collection ahead before its depth check, at hundreds of
// bytes a bracket, so a deep one is refused here first. This is a rough YAML
// lexer: it knows where a value may start, and skips comments, quoted values
// and block scalars, so that brackets and quotes inside values do not count.
struct FlowScan {
  std::optional<YAML::Mark> too_deep;                 // the bracket past kMaxNesting
  std::vector<std::pair<char, YAML::Mark>> unclosed;  // open brackets at the end, outermost first
  std::optional<YAML::Mark> open_quote;               // a quote still open at the end
};

FlowScan scan_flow(const std::string& text) {
  FlowScan scan;
  size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // yaml-cpp does not count a BOM
  int line = 0;
  int column = 0;
  int indent = 0;           // of the current line
  bool in_indent = true;    // still in the current line's leading spaces
  bool value_start = true;  // a value may start here
  char previous = '\n';
  auto step = [&] {
    char c = text[i++];
    if (c == '\n') {
      ++line;
      column = 0;
      indent = 0;
      in_indent = true;
      value_start = true;
    } else {
      ++column;
      if (in_indent && c == ' ') {
        ++indent;
      } else {
        in_indent = false;
      }
    }
    previous = c;
  };
  auto blank_at = [&](size_t k) {
    return k >= text.size() || text[k] == ' ' || text[k] == '\t' || text[k] == '\n' ||
           text[k] == '\r';
  };
  auto in_flow = [&] { return !scan.unclosed.empty(); };
  while (i < text.size()) {
    char c = text[i];
    bool after_blank = previous == ' ' || previous == '\t' || previous == '\n';
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      step();
    } else if (c == '#' && after_blank) {
      while (i < text.size() && text[i] != '\n') step();
    } else if ((c == '"' || c == '\'') && value_start) {
      YAML::Mark start = mark_at(i, line, column);
      step();
      bool closed = false;
      while (i < text.size() && !closed) {
        if (c == '"' && text[i] == '\\' && i + 1 < text.size()) {
          step();
        } else if (text[i] == c) {
          // '' inside single quotes is a quote, not the end.
          closed = c == '"' || i + 1 >= text.size() || text[i + 1] != '\'';
          if (!closed) step();
        }
        step();
      }
      if (!closed) scan.open_quote = start;
      value_start = false;
    } else if ((c == '[' || c == '{') && (value_start || in_flow())) {
      scan.unclosed.emplace_back(c, mark_at(i, line, column));
      if (scan.unclosed.size() >= static_cast<size_t>(kMaxNesting)) {
        scan.too_deep = scan.unclosed.back().second;
        return scan;
      }
      step();
      value_start = true;
    } else if ((c == ']' || c == '}') && in_flow()) {
      scan.unclosed.pop_back();
      step();
      value_start = false;
    } else if (c == ',' && in_flow()) {
      step();
      value_start = true;
    } else if (c == ':' && (blank_at(i + 1) || (in_flow() && std::strchr(",]}", text[i + 1])))) {
      step();
      value_start = true;
    } else if ((c == '-' || c == '?') && value_start && blank_at(i + 1)) {
      step();
    } else if ((c == '&' || c == '!') && value_start) {
      // An anchor or a tag: the value comes after it.
      while (i < text.size() && !blank_at(i) && !(in_flow() && std::strchr(",[]{}", text[i]))) {
        step();
      }
      value_start = true;
    } else if ((c == '|' || c == '>') && value_start && !in_flow()) {
      // A block scalar: the lines indented deeper than its key's line.
      int parent = indent;
      while (i < text.size() && text[i] != '\n') step();
      while (i < text.size()) {
        size_t k = i + 1;
        int spaces = 0;
        while (k < text.size() && text[k] == ' ') {
          ++k;
          ++spaces;
        }
        bool empty = k >= text.size() || text[k] == '\n' || text[k] == '\r';
        if (!empty && spaces <= parent) break;
        step();  // the newline before that line
        while (i < text.size() && text[i] != '\n') step();
      }
    } else {
      step();
      value_start = false;
    }
  }
  return scan;
}

// Thrown out of yaml-cpp's parser by ValueCounter.
struct TooManyValues {
  YAML::Mark mark;
};

// Counts the values of a YAML stream as its events go by, without building
// a tree, and stops the parser past kMaxValues.
class ValueCounter : public YAML::EventHandler {
 public:
  explicit ValueCounter(size_t limit) : limit_(limit) {}
  size_t count() const { return count_; }
  // The last scalar's place: the one value an unclosed quote can run into.
  const std::optional<YAML::Mark>& last_scalar() const { return last_scalar_; }

  void OnDocumentStart(const YAML::Mark&) override { anchored_.clear(); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { add(mark, anchor, 1); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // An alias of a collection still open (a cycle) counts once.
    auto found = anchored_.find(anchor);
    add(mark, YAML::NullAnchor, found == anchored_.end() ? 1 : found->second);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    last_scalar_ = mark;
    add(mark, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  void add(const YAML::Mark& mark, YAML::anchor_t anchor, size_t values) {
    count_ += values;
    if (count_ > limit_) throw TooManyValues{mark};
    if (anchor != YAML::NullAnchor) anchored_[anchor] = values;
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, YAML::NullAnchor, 1);
    open_.emplace_back(anchor, count_ - 1);
  }
  void close() {
    if (open_.empty()) return;
    auto [anchor, start] = open_.back();
    open_.pop_back();
    if (anchor != YAML::NullAnchor) anchored_[anchor] = count_ - start;
  }

  size_t limit_;
  size_t count_ = 0;
  std::map<YAML::anchor_t, size_t> anchored_;            // anchor -> values it stands for
  std::vector<std::pair<YAML::anchor_t, size_t>> open_;  // open collections: anchor, count before
  std::optional<YAML::Mark> last_scalar_;
};

// The place of the opening quote of the scalar at MARK when that quote is
// never closed. yaml-cpp accepts such a scalar when the file ends with a
// newline, and it then silently holds the rest of the file.
std::optional<YAML::Mark> unclosed_quote(const std::string& text, const YAML::Mark& mark) {
  size_t i = static_cast<size_t>(mark.pos);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i += 3;  // yaml-cpp's positions skip a BOM
  int line = mark.line;
  int column = mark.column;
  // Skip the node's properties (&anchor, !tag) to its content.
  while (i < text.size() && (text[i] == '&' || text[i] == '!' || text[i] == ' ' ||
                             text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    if (text[i] == '&' || text[i] == '!') {
      while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') {
        ++i;
        ++column;
      }
    } else if (text[i] == '\n') {
      ++i;
      ++line;
      column = 0;
    } else {
      ++i;
      ++column;
    }
  }
  if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return std::nullopt;
  char quote = text[i];
  YAML::Mark start = mark_at(i, line, column);
  for (size_t k = i + 1; k < text.size(); ++k) {
    if (quote == '"' && text[k] == '\\') {
      ++k;
    } else if (text[k] == quote) {
      if (quote == '\'' && k + 1 < text.size() && text[k + 1] == '\'') {
        ++k;  // '' is a quote inside single quotes
      } else {
        return std::nullopt;
      }
    }
  }
  return start;
}

// A few words after yaml-cpp's MESSAGE on what usually causes it.
std::string syntax_hint(const std::string& message, const std::string& text, const YAML::Mark& at,
                        const FlowScan& flow) {
  namespace E = YAML::ErrorMsg;
  if (at.line >= 0 && tab_indented_near(text, at.line)) {
    return " (a tab in the indentation? YAML indents with spaces only)";
  }
  // A quote never closed runs to the end, where yaml-cpp then misses a bracket.
  if ((message == E::EOF_IN_SCALAR || message == E::END_OF_SEQ_FLOW ||
       message == E::END_OF_MAP_FLOW) &&
      flow.open_quote) {
    const YAML::Mark& open = *flow.open_quote;
    return std::string(" (the ") + text[open.pos] + " at line " + std::to_string(open.line + 1) +
           ", column " + std::to_string(open.column + 1) + " is never closed)";
  }
  if (message == E::END_OF_SEQ_FLOW || message == E::END_OF_MAP_FLOW) {
    char opening = message == E::END_OF_SEQ_FLOW ? '[' : '{';
    char closing = opening == '[' ? ']' : '}';
    if (!flow.unclosed.empty() && flow.unclosed.back().first == opening) {
      const YAML::Mark& open = flow.unclosed.back().second;
      return std::string(" (the ") + opening + " at line " + std::to_string(open.line + 1) +
             ", column " + std::to_string(open.column + 1) + " has no closing " + closing + ")";
    }
    return std::string(" (a ") + opening + " without its closing " + closing + ")";
  }
  if (message == E::FLOW_END) return " (a ] or } without its opening [ or {)";
  if (message == E::MAP_VALUE) {
    return " (check the indentation of this line, or quote a value that holds \": \")";
  }
  if (message == E::END_OF_MAP || message == E::END_OF_SEQ) {
    return " (check the indentation: the keys of one map, and the items of one list, line up)";
  }
  if (message == E::BLOCK_ENTRY) return " (a \"- \" list item where a key was expected?)";
  if (message.rfind(E::INVALID_ESCAPE, 0) == 0) {
    return " (in double quotes a backslash starts an escape: write \\\\, or use single quotes)";
  }
  if (message == E::UNKNOWN_TOKEN) return " (a value cannot start with @ or `; quote it)";
  if (message == E::UNKNOWN_ANCHOR) return " (an alias *name needs an anchor &name before it)";
  return "";
}

// "nobody (uid 65534)", or "uid 65534" for an id without a name.
std::string user_text(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  std::string id = "uid " + std::to_string(uid);
  if (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return id;
  }
  return std::string(found->pw_name) + " (" + id + ")";
}

std::string group_text(gid_t gid) {
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  std::string id = "gid " + std::to_string(gid);
  if (getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return id;
  }
  return std::string(found->gr_name) + " (" + id + ")";
}

// Why the config file PATH (ST: its fstat) is not to be trusted, as sudo
// judges sudoers: the config says what corrald runs and as which user, so a
// file that someone other than root or the user loading it owns, or can
// write, would let them run anything as root. Root's group, and the loading
// user's own group (root's, for root), may write it.
std::optional<std::string> untrusted_config(const struct stat& st, const std::string& path) {
  const uid_t euid = geteuid();
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (st.st_uid != 0 && st.st_uid != euid) {
    return "refused: it is owned by " + user_text(st.st_uid) +
           ", not by root or the user reading the config (" + user_text(euid) +
           "); fix: chown root " + path;
  }
  if ((st.st_mode & S_IWOTH) != 0) {
    return std::string("refused: it is writable by others (mode ") + mode + "); fix: chmod o-w " +
           path;
  }
  if ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0 && st.st_gid != getegid()) {
    return "refused: it is writable by group " + group_text(st.st_gid) + " (mode " + mode +
           "); fix: chmod g-w " + path;
  }
  return std::nullopt;
}

// Reads PATH whole, refusing more than kMaxConfigBytes; nullopt with ERROR.
std::optional<std::string> read_whole(const std::string& path, std::string& error) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer, and hang
  // `--check` or the daemon's reload; only regular files are read.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    error = std::string("cannot open: ") + strerror(errno);
    return std::nullopt;
  }
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { close(*f); });
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    error = std::string("cannot read: ") + strerror(errno);
    return std::nullopt;
  }
  if (S_ISDIR(st.st_mode)) {
    error = "cannot read: it is a directory";
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a file";
    error = std::string("cannot read: it is ") + kind + ", not a regular file";
    return std::nullopt;
  }
  if (auto why = untrusted_config(st, path)) {
    error = *why;
    return std::nullopt;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    error = "file is " + std::to_string(st.st_size) + " bytes; a config file may hold at most " +
            format_size(kMaxConfigBytes);
    return std::nullopt;
  }
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::string("cannot read: ") + strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    // A file that grows, or a pipe, is cut off here rather than read forever.
    if (text.size() > kMaxConfigBytes) {
      error = "file is larger than " + format_size(kMaxConfigBytes) +
              ", the most a config file may hold";
      return std::nullopt;
    }
  }
  return text;
}

std::string directory_of(const std::string& file) {
  size_t slash = file.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : file.substr(0, slash);
}

// DIR with glob(3)'s special characters escaped, so that only the include's
// own pattern is expanded.
std::string escape_glob(const std::string& dir) {
  std::string out;
  for (char c : dir) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Why glob(3) gave up; its error callback has no context argument.
thread_local std::string glob_failure;

// A directory that does not exist matches nothing, like a missing file; one
// that cannot be read would silently hide jobs, so it stops the expansion.
int on_glob_error(const char* path, int error) {
  if (error == ENOENT || error == ENOTDIR) return 0;
  glob_failure = std::string(path) + ": " + strerror(error);
  return 1;
}

std::optional<std::string> canonical(const std::string& path) {
  std::unique_ptr<char, void (*)(void*)> resolved(realpath(path.c_str(), nullptr), free);
  if (!resolved) return std::nullopt;
  return std::string(resolved.get());
}

// A name a shell could export: letters, digits and '_', not starting with a digit.
bool shell_variable_name(std::string_view name) {
  return !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
         });
}

// daemon.pass_env: shell variable names, none of corrald's own.
std::optional<std::vector<std::string>> read_pass_env(Reader& r, const Item& item) {
  auto elements = r.list(item, "a list of environment variable names like [LANG, http_proxy]");
  if (!elements) return std::nullopt;
  std::vector<std::string> names;
  bool ok = true;
  for (const Item& element : *elements) {
    auto name = r.string(element, false);
    if (!name) {
      ok = false;
    } else if (!shell_variable_name(*name)) {
      r.expected(element,
                 "an environment variable name (letters, digits and '_', not "
                 "starting with a digit)");
      ok = false;
    } else if (daemon_only_variable(*name)) {
      r.error(element, quote(*name) + " belongs to corrald itself (its service manager or " +
                           "corral) and is never passed on to workers");
      ok = false;
    } else {
      names.push_back(std::move(*name));
    }
  }
  if (!ok) return std::nullopt;
  return names;
}

void read_daemon(Section& s, DaemonSpec& d) {
  Reader& r = s.reader();
  s.get("socket", d.socket, [&](const Item& item) -> std::optional<std::string> {
    auto path = r.string(item, false);
    if (path && path->size() >= sizeof(sockaddr_un::sun_path)) {
      r.error(item, "is " + std::to_string(path->size()) + " bytes long; a Unix socket path " +
                        "holds at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1));
      return std::nullopt;
    }
    return path;
  });
  s.get("socket_mode", d.socket_mode, [&](const Item& item) -> std::optional<unsigned> {
    constexpr std::string_view kWhat = "an octal file mode like \"0660\"";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    auto mode = parse_mode(*text);
    if (!mode) r.expected(item, kWhat);
    return mode;
  });
  s.get_string_list("allow_users", d.allow_users);
  s.get_string_list("allow_groups", d.allow_groups);
  s.get("pass_env", d.pass_env, [&](const Item& item) { return read_pass_env(r, item); });
  s.get_string("log_dir", d.log_dir, false);
  s.get_bool("private_dirs", d.private_dirs);
  s.get_choice("log_level", d.log_level, names::kLogLevels);
  s.get_section("log_rotate", [&](Section& rotate) {
    rotate.get_size("max_size", d.log_rotate.max_size, 1);
    rotate.get_integer("keep", d.log_rotate.keep, 0, std::numeric_limits<int>::max());
  });
  s.get_section("metrics", [&](Section& metrics) {
    metrics.get("listen", d.metrics.listen,
                [&](const Item& item) -> std::optional<std::optional<std::string>> {
                  constexpr std::string_view kWhat = "HOST:PORT like \"127.0.0.1:9464\", or off";
                  auto text = r.text(item, kWhat);
                  if (!text) return std::nullopt;
                  if (*text == "off") return std::optional<std::string>();
                  if (!valid_listen(*text)) {
                    r.expected(item, kWhat);
                    return std::nullopt;
                  }
                  return std::optional<std::string>(*text);
                });
    metrics.get_duration("interval", d.metrics.interval, Duration(1));
  });
}

std::optional<std::vector<std::string>> read_command(Reader& r, const Item& item) {
  std::vector<std::string> argv;
  if (item.value.IsScalar()) {
    auto text = r.text(item, "");
    if (!text) return std::nullopt;
    auto words = split_command(*text);
    if (!words) {
      r.error(item, "unterminated quote or trailing backslash in " + quote(*text));
      return std::nullopt;
    }
    argv = std::move(*words);
  } else {
    auto elements = r.list(item, "an argv list like [prog, --flag] or a command string");
    if (!elements) return std::nullopt;
    bool ok = true;
    for (const Item& element : *elements) {
      auto arg = r.string(element, true);
      ok = ok && arg;
      if (arg) argv.push_back(std::move(*arg));
    }
    if (!ok) return std::nullopt;
  }
  if (argv.empty()) {
    r.error(item, "must not be empty; it needs at least the program to run");
    return std::nullopt;
  }
  if (argv[0].empty()) {
    r.error(item, "the program (the first word) must not be empty");
    return std::nullopt;
  }
  return argv;
}

void read_queue(Section& s, QueueSpec& q) {
  s.get_count("capacity", q.capacity, 1);
  s.get_size("max_task_bytes", q.max_task_bytes, 1);
  s.get_count("prefetch", q.prefetch, 1);
  s.get_count("max_attempts", q.max_attempts, 1);
  s.get_optional_duration("task_timeout", q.task_timeout);
}

void read_backoff(Section& s, BackoffSpec& b) {
  Reader& r = s.reader();
  size_t errors_before = r.error_count();
  s.get_duration("initial", b.initial);
  s.get_duration("max", b.max);
  s.get("multiplier", b.multiplier,
        [&](const Item& item) { return r.real(item, 1.0, HUGE_VAL, "a number >= 1 like 2.0"); });
  s.get("jitter", b.jitter, [&](const Item& item) {
    return r.real(item, 0.0, 1.0, "a number from 0 up to (not including) 1, like 0.1");
  });
  // Compare only values that were read fine, or a bad one would be blamed twice.
  if (r.error_count() == errors_before && b.initial > b.max) {
    auto at = s.peek("initial");
    if (!at) at = s.peek("max");
    r.error(at ? at->mark() : s.mark(), s.scope().label("initial") + ": " +
                                            format_duration(b.initial) + " is longer than max (" +
                                            format_duration(b.max) + ")");
  }
}

void read_restart(Section& s, RestartSpec& restart) {
  Reader& r = s.reader();
  s.get_choice("policy", restart.policy, names::kRestartPolicies);
  s.get("exit_codes", restart.exit_codes, [&](const Item& item) -> std::optional<std::vector<int>> {
    auto elements = r.list(item, "a list of exit codes like [0, 2]");
    if (!elements) return std::nullopt;
    std::vector<int> codes;
    bool ok = true;
    for (const Item& element : *elements) {
      auto code = r.integer(element, 0, 255);
      ok = ok && code;
      if (code) codes.push_back(static_cast<int>(*code));
    }
    if (!ok) return std::nullopt;
    // A set in meaning: sorted and unique, so that equal configs compare equal.
    std::sort(codes.begin(), codes.end());
    codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    return codes;
  });
  s.get_section("backoff", [&](Section& backoff) { read_backoff(backoff, restart.backoff); });
  s.get_duration("reset_after", restart.reset_after);
  s.get_count("max_restarts", restart.max_restarts, 0);
  s.get_duration("window", restart.window, Duration(1));
  s.get_optional_duration("cooldown", restart.cooldown);
}

void read_stop(Section& s, StopSpec& stop) {
  Reader& r = s.reader();
  s.get("signal", stop.signal, [&](const Item& item) -> std::optional<int> {
    constexpr std::string_view kWhat = "a signal name or number like TERM, INT or 15";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    auto signal = parse_signal(*text);
    if (!signal) r.expected(item, kWhat);
    return signal;
  });
  s.get_duration("timeout", stop.timeout);
  s.get_duration("kill_after", stop.kill_after);
}

void read_limits(Section& s, LimitsSpec& limits) {
  Reader& r = s.reader();
  s.get_optional_size("memory", limits.memory);
  s.get_optional_count("max_tasks", limits.max_tasks, 1);
  s.get("cpus", limits.cpus, [&](const Item& item) -> std::optional<CpuSpec> {
    constexpr std::string_view kWhat = "off, auto or a CPU list like \"0-3,6\"";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    CpuSpec cpus;
    if (*text == "off") return cpus;
    if (*text == "auto") {
      cpus.mode = CpuSpec::Mode::kAuto;
      return cpus;
    }
    auto list = parse_cpu_list(*text);
    if (!list) {
      r.expected(item, kWhat);
      return std::nullopt;
    }
    cpus.mode = CpuSpec::Mode::kList;
    cpus.cpus = std::move(*list);
    return cpus;
  });
  s.get_integer("nice", limits.nice, -20, 19);
  s.get_optional_count("nofile", limits.nofile, 1);
}

void read_env(Section& s, std::map<std::string, std::string>& env) {
  Reader& r = s.reader();
  for (const Item& variable : s.all()) {
    if (variable.key.empty() || variable.key.find('=') != std::string::npos ||
        variable.key.find('\0') != std::string::npos) {
      r.error(variable.key_mark, "invalid environment variable name " + quote(variable.key));
      continue;
    }
    if (auto value = r.string(variable, true)) env[variable.key] = std::move(*value);
  }
}

void read_shared(Section& s, SharedSpec& shared) {
  Reader& r = s.reader();
  auto check_name = [&](const Item& item) {
    if (valid_name(item.key)) return true;
    r.error(item.key_mark,
            "invalid shared name " + quote(item.key) + ": use letters, digits, '_', '.' and '-'");
    return false;
  };
  s.get_section("values", [&](Section& values) {
    for (const Item& value : values.all()) {
      if (!check_name(value)) continue;
      if (auto type = r.choice(value, names::kSharedTypes)) shared.values[value.key] = *type;
    }
  });
  s.get_section("arrays", [&](Section& arrays) {
    for (const Item& array : arrays.all()) {
      if (!check_name(array)) continue;
      if (shared.values.count(array.key)) {
        r.error(array.key_mark,
                "shared name " + quote(array.key) + " is both a value and an array");
        continue;
      }
      Section body(r, array, arrays.scope().child(array.key), "a map like {type: u64, length: 64}");
      SharedArraySpec spec;
      body.get_choice("type", spec.type, names::kSharedTypes);
      if (!body.get_count("length", spec.length, 1, kMaxSharedArrayLength) && body.valid()) {
        r.error(body.mark(), arrays.scope().label(array.key) + " needs length:");
      }
      body.finish();
      shared.arrays[array.key] = spec;
    }
  });
}

void read_source(Section& s, SourceSpec& source) {
  Reader& r = s.reader();
  auto item = s.take("source");
  if (!item) return;
  if (item->value.IsScalar() && item->value.Scalar() == "none") {
    source = SourceSpec{};
    return;
  }
  Section body(r, *item, s.scope().child("source"),
               "none, {range: {from: 0, to: 1000}} or {file: PATH}");
  body.get_section("range", [&](Section& range) {
    size_t errors_before = r.error_count();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    bool has_from = range.get_integer("from", source.from, kMin, kMax);
    bool has_to = range.get_integer("to", source.to, kMin, kMax);
    source.kind = SourceSpec::Kind::kRange;
    if (range.valid() && (!has_from || !has_to)) {
      r.error(range.mark(), s.scope().label("source.range") + " needs both from: and to:");
    } else if (r.error_count() == errors_before && source.from > source.to) {
      r.error(range.peek("from")->mark(),
              s.scope().label("source.range") + ": from (" + std::to_string(source.from) +
                  ") must not be greater than to (" + std::to_string(source.to) + ")");
    }
  });
  bool has_file = body.get("file", source.file, [&](const Item& i) { return r.string(i, false); });
  if (has_file) source.kind = SourceSpec::Kind::kFile;
  if (body.peek("range") && has_file) {
    r.error(body.mark(), s.scope().label("source") + " takes range or file, not both");
  } else if (!body.peek("range") && !has_file && body.valid()) {
    r.error(body.mark(), s.scope().label("source") + " needs range: or file: (or write none)");
  }
  body.finish();
}

void read_sink(Section& s, SinkSpec& sink) {
  Reader& r = s.reader();
  auto item = s.take("sink");
  if (!item) return;
  if (item->value.IsScalar() && item->value.Scalar() == "none") {
    sink = SinkSpec{};
    return;
  }
  Section body(r, *item, s.scope().child("sink"), "none or {file: PATH}");
  if (body.get("file", sink.file, [&](const Item& i) { return r.string(i, false); })) {
    sink.kind = SinkSpec::Kind::kFile;
  } else if (body.valid()) {
    r.error(body.mark(), s.scope().label("sink") + " needs file: (or write none)");
  }
  body.finish();
}

void read_job(Section& s, JobSpec& job, unsigned cpus) {
  Reader& r = s.reader();
  if (auto command = s.take("command")) {
    if (auto argv = read_command(r, *command)) job.command = std::move(*argv);
  } else if (s.valid()) {
    r.error(s.mark(),
            "job " + quote(job.name) + " has no command; add command: [program, args...]");
  }
  s.get("workers", job.workers, [&](const Item& item) -> std::optional<uint32_t> {
    std::string what = "an integer from 0 to " + std::to_string(kMaxWorkers) + " or auto";
    auto text = r.text(item, what);
    if (!text) return std::nullopt;
    if (*text == "auto") {
      job.workers_auto = true;
      // No CPU count known (0) still means one worker, not none.
      return std::max(cpus, 1u);
    }
    auto n = parse_unsigned(*text);
    if (!n || *n > kMaxWorkers) {
      r.expected(item, what);
      return std::nullopt;
    }
    return static_cast<uint32_t>(*n);
  });
  s.get_bool("autostart", job.autostart);
  s.get_choice("channel", job.channel, names::kChannels);
  s.get_section("pipe", [&](Section& pipe) {
    pipe.get_choice("fds", job.pipe.fds, names::kPipeFds);
    pipe.get_choice("framing", job.pipe.framing, names::kFramings);
  });
  s.get_section("queue", [&](Section& queue) { read_queue(queue, job.queue); });
  s.get_section("restart", [&](Section& restart) { read_restart(restart, job.restart); });
  s.get_section("start", [&](Section& start) { start.get_duration("settle", job.start.settle); });
  s.get_section("stop", [&](Section& stop) { read_stop(stop, job.stop); });
  s.get_section("health", [&](Section& health) {
    health.get_optional_duration("heartbeat_timeout", job.health.heartbeat_timeout);
    // Heartbeats are frames of the length protocol or a cell of the shm
    // slot: a line worker or a job without a channel has no way to send them.
    const bool can_beat = job.channel == Channel::kShm ||
                          (job.channel == Channel::kPipe && job.pipe.framing == Framing::kLength);
    if (job.health.heartbeat_timeout && !can_beat) {
      r.error(health.mark(), "health.heartbeat_timeout of job " + quote(job.name) +
                                 " needs channel: shm, or channel: pipe with framing: length "
                                 "(its workers have no way to send heartbeats)");
    }
  });
  s.get_section("limits", [&](Section& limits) { read_limits(limits, job.limits); });
  s.get_section("env", [&](Section& env) { read_env(env, job.env); });
  s.get_string("cwd", job.cwd, true);
  s.get_string("user", job.user, true);
  s.get_section("shared", [&](Section& shared) { read_shared(shared, job.shared); });
  read_source(s, job.source);
  read_sink(s, job.sink);
}

// Reads a main file and the files its includes name into one Config.
class Loader {
 public:
  Loader(unsigned cpus, bool read_includes) : cpus_(cpus), read_includes_(read_includes) {}

  ParseResult load(const std::string& text, const std::string& file) {
    config_.file = file;
    if (auto path = canonical(file)) loaded_.insert(*path);
    file_order_.push_back(file);
    Reader reader(file, errors_);
    std::vector<Item> includes;
    if (text.size() > kMaxConfigBytes) {
      reader.error(YAML::Mark::null_mark(), "config is " + std::to_string(text.size()) +
                                                " bytes; a config file may hold at most " +
                                                format_size(kMaxConfigBytes));
    } else if (auto root = parse_yaml(reader, text)) {
      includes = read_main(reader, *root);
    }
    if (read_includes_) {
      for (const Item& glob : includes) include(reader, glob);
    }
    return finish();
  }

 private:
  struct Origin {
    std::string file;
    YAML::Mark mark;
  };

  // The document of TEXT; nullopt after recording why there is none.
  std::optional<YAML::Node> parse_yaml(Reader& reader, const std::string& text) {
    if (auto bad = find_non_text(text)) {
      reader.error(bad->first, bad->second);
      return std::nullopt;
    }
    FlowScan flow = scan_flow(text);
    if (flow.too_deep) {
      reader.error(*flow.too_deep, nested_too_deeply(kMaxNesting));
      return std::nullopt;
    }
    std::vector<YAML::Node> documents;
    try {
      // yaml-cpp 0.7 reads some inputs (a stray ',') as endless empty
      // documents: find that first, before any pass that would loop.
      YAML::Mark stuck;
      if (!DocumentScan().scan(text, stuck)) {
        std::string what = static_cast<size_t>(stuck.pos) < text.size()
                               ? quote(text.substr(static_cast<size_t>(stuck.pos), 1))
                               : std::string("the end of the file");
        reader.error(stuck, "YAML syntax error: unexpected " + what);
        return std::nullopt;
      }
      // A first pass over the events finds syntax errors and counts the
      // values, before a tree of them is built.
      ValueCounter counter(values_left_);
      std::istringstream in(text);
      YAML::Parser parser(in);
      while (parser.HandleNextDocument(counter)) {
      }
      values_left_ -= counter.count();
      if (counter.last_scalar()) {
        if (auto open = unclosed_quote(text, *counter.last_scalar())) {
          reader.error(*open, std::string("YAML syntax error: the ") + text[open->pos] +
                                  " that starts this value is never closed, so the value runs "
                                  "to the end of the file");
          return std::nullopt;
        }
      }
      documents = YAML::LoadAll(text);
    } catch (const TooManyValues& e) {
      reader.error(e.mark, "the config holds more than " + std::to_string(kMaxValues) +
                               " values, counting its included files and each alias as the "
                               "values it repeats; a config this large is a mistake");
      return std::nullopt;
    } catch (const YAML::DeepRecursion& e) {
      // yaml-cpp words this "bad file".
      reader.error(e.mark, nested_too_deeply(e.depth()));
      return std::nullopt;
    } catch (const YAML::Exception& e) {
      reader.error(e.mark, "YAML syntax error: " + e.msg + syntax_hint(e.msg, text, e.mark, flow));
      return std::nullopt;
    }
    if (documents.empty()) return YAML::Node();
    for (size_t i = 1; i < documents.size(); ++i) {
      if (!documents[i].IsNull()) {
        reader.error(documents[i].Mark(), "a config file holds one YAML document; this is another");
      }
    }
    return documents[0];
  }

  // Reads the main file's ROOT into config_; returns its include globs.
  std::vector<Item> read_main(Reader& reader, const YAML::Node& root) {
    Item top{Scope{}, "", YAML::Mark(), root};
    if (!root.IsNull() && !root.IsMap()) {
      reader.error(top.mark(),
                   "the top level must be a map with keys like daemon: and jobs:, got " +
                       Reader::describe(root));
      return {};
    }
    Section s(reader, top, Scope{});
    s.get_section("daemon", [&](Section& daemon) { read_daemon(daemon, config_.daemon); });
    std::vector<Item> globs;
    if (auto item = s.take("include")) {
      if (auto elements = reader.list(*item, "a list of globs like [\"jobs.d/*.yaml\"]")) {
        for (const Item& element : *elements) {
          if (auto glob = reader.string(element, false)) {
            config_.include.push_back(*glob);
            globs.push_back(element);
          }
        }
      }
    }
    if (auto jobs = s.take("jobs")) read_jobs(reader, *jobs);
    s.finish();
    return globs;
  }

  void read_jobs(Reader& reader, const Item& item) {
    Section jobs(reader, item, Scope{"", "jobs"}, "a map of job names to jobs");
    for (const Item& entry : jobs.all()) {
      // A job with a bad name is still read, to report its other mistakes too.
      bool named_well = valid_name(entry.key);
      if (!named_well) {
        reader.error(entry.key_mark, "invalid job name " + quote(entry.key) +
                                         ": use letters, digits, '_', '.' and '-'");
      }
      JobSpec job;
      job.name = entry.key;
      Section body(reader, entry, Scope{entry.key, ""}, "a map of job settings");
      read_job(body, job, cpus_);
      body.finish();
      if (named_well) add_job(std::move(job), Origin{reader.file(), entry.key_mark}, reader);
    }
  }

  void add_job(JobSpec job, Origin origin, Reader& reader) {
    auto [first, inserted] = origins_.emplace(job.name, origin);
    if (!inserted) {
      const Origin& o = first->second;
      reader.error(origin.mark, "job " + quote(job.name) + " is already defined at " + o.file +
                                    ":" + std::to_string(o.mark.line + 1) + ":" +
                                    std::to_string(o.mark.column + 1));
      return;
    }
    config_.jobs.push_back(std::move(job));
  }

  // Expands one include glob of the main file and reads each file it names.
  void include(Reader& reader, const Item& glob) {
    const std::string& pattern = glob.value.Scalar();
    std::string full = pattern;
    std::string dir = directory_of(reader.file());
    if (!pattern.empty() && pattern[0] != '/' && !dir.empty()) {
      full = escape_glob(dir) + (dir == "/" ? "" : "/") + pattern;
    }
    glob_t matches{};
    glob_failure.clear();
    int rc = ::glob(full.c_str(), 0, on_glob_error, &matches);
    std::unique_ptr<glob_t, void (*)(glob_t*)> freer(&matches, globfree);
    if (rc == GLOB_NOMATCH) {
      // An empty or missing jobs.d is fine; a file named without wildcards
      // is meant to be there, and a misspelt name would drop its jobs.
      if (pattern.find_first_of("*?[") == std::string::npos) {
        std::string path =
            pattern[0] == '/' || dir.empty() ? pattern : dir + (dir == "/" ? "" : "/") + pattern;
        reader.error(glob, "no file " + quote(path, PATH_MAX) +
                               " (a name without *, ? or [ must name an existing file)");
      }
      return;
    }
    if (rc != 0) {
      reader.error(glob, "cannot expand " + quote(full) + ": " +
                             (rc == GLOB_NOSPACE ? "out of memory" : glob_failure));
      return;
    }
    std::string from = reader.file() + ":" + std::to_string(glob.mark().line + 1) + ":" +
                       std::to_string(glob.mark().column + 1);
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      std::string path = matches.gl_pathv[i];
      // A file matched twice, or the main file matching its own glob, is read once.
      if (auto real = canonical(path); real && !loaded_.insert(*real).second) continue;
      load_included(path, from);
    }
  }

  void load_included(const std::string& path, const std::string& from) {
    file_order_.push_back(path);
    Reader reader(path, errors_);
    std::string error;
    auto text = read_whole(path, error);
    if (!text) {
      reader.error(YAML::Mark::null_mark(), error + " (included from " + from + ")");
      return;
    }
    auto root = parse_yaml(reader, *text);
    if (!root) return;
    Item top{Scope{}, "", YAML::Mark(), *root};
    if (!root->IsNull() && !root->IsMap()) {
      reader.error(top.mark(),
                   "an included file must be a map holding jobs:, got " + Reader::describe(*root));
      return;
    }
    Section s(reader, top, Scope{});
    for (std::string_view key : {"daemon", "include"}) {
      if (auto item = s.take(key)) {
        reader.error(item->key_mark, quote(key) +
                                         " is not allowed in an included file (included from " +
                                         from + "); it holds only a jobs: map");
      }
    }
    if (auto jobs = s.take("jobs")) read_jobs(reader, *jobs);
    s.finish();
  }

  ParseResult finish() {
    std::sort(config_.jobs.begin(), config_.jobs.end(),
              [](const JobSpec& a, const JobSpec& b) { return a.name < b.name; });
    // Errors are found section by section; a reader wants them in file order.
    auto rank = [this](const Diagnostic& d) {
      auto at = std::find(file_order_.begin(), file_order_.end(), d.file);
      return std::tuple(at - file_order_.begin(), d.line, d.column);
    };
    std::stable_sort(errors_.begin(), errors_.end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return rank(a) < rank(b); });
    return ParseResult{std::move(config_), std::move(errors_)};
  }

  unsigned cpus_;
  bool read_includes_;
  Config config_;
  std::vector<Diagnostic> errors_;
  std::map<std::string, Origin> origins_;  // job name -> where it was defined first
  std::set<std::string> loaded_;           // canonical paths of the files read
  std::vector<std::string> file_order_;
  size_t values_left_ = kMaxValues;  // shared by the main file and its includes
};

}  // namespace

ParseResult load_string(const std::string& text, const std::string& file, unsigned cpus,
                        bool read_includes) {
  try {
    return Loader(cpus, read_includes).load(text, file);
  } catch (const std::exception& e) {
    // yaml-cpp's node accessors may throw on a tree we did not expect; the
    // contract is to never throw, so report it rather than crash a reload.
    ParseResult result;
    result.errors.push_back(
        {file, 0, 0, std::string("internal error reading config: ") + e.what()});
    return result;
  }
}

ParseResult load_file(const std::string& file, unsigned cpus) {
  std::string error;
  auto text = read_whole(file, error);
  if (!text) {
    ParseResult result;
    result.config.file = file;
    result.errors.push_back({file, 0, 0, error});
    return result;
  }
  return load_string(*text, file, cpus);
}

}  // namespace corral::config

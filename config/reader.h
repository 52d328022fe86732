// The toolkit the schema readers (schema_*.cc) read a YAML tree with, each
// problem becoming a Diagnostic of its file and place:
// - Scope and Item: where a value sits, to name it in messages
//   ("queue.capacity of job "primes"");
// - Reader: the typed readers of one value (a count, a duration, a size, one
//   of a table's names with a "did you mean"), for one file;
// - Section: one YAML map whose getters both read a key and declare it
//   valid, so that finish() reports the keys nobody asked for, with the
//   closest valid one.
// Internal to the config library; one loader on one thread at a time.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/names.h"
#include "config/parse.h"
#include "config/quote.h"
#include "config/spec.h"
#include "config/units.h"

namespace corral::config {

// TEXT in lower case (ASCII).
std::string lower_case(std::string_view text);

// Unsigned decimal, no sign, no spaces: what a count looks like.
std::optional<uint64_t> parse_unsigned(std::string_view text);
// Signed decimal, a '+' allowed.
std::optional<int64_t> parse_signed(std::string_view text);

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

  void error(const YAML::Mark& at, std::string message);
  void error(const Item& item, const std::string& message) {
    error(item.mark(), item.label() + ": " + message);
  }
  // "LABEL: expected WHAT, got "abc"".
  // With WHY, "LABEL: expected WHAT, got "abc" (WHY)".
  void expected(const Item& item, std::string_view what, const std::string& why = "");

  // The text of a scalar; nullopt (and an error) for anything else.
  std::optional<std::string> text(const Item& item, std::string_view what);

  // The elements of a list; a key without a value is an empty list.
  std::optional<std::vector<Item>> list(const Item& item, std::string_view what);

  std::optional<std::string> string(const Item& item, bool may_be_empty);

  std::optional<std::vector<std::string>> string_list(const Item& item);

  std::optional<bool> boolean(const Item& item);

  // An unsigned integer in [min, max].
  std::optional<uint64_t> count(const Item& item, uint64_t min, uint64_t max);

  // Like count(), or WORD (`off`, `auto`) for none: the outer optional says
  // whether it was read.
  std::optional<std::optional<uint64_t>> optional_count(
      const Item& item, uint64_t min, std::string_view word = "off",
      uint64_t max = std::numeric_limits<uint64_t>::max());

  std::optional<int64_t> integer(const Item& item, int64_t min, int64_t max);

  // A finite number in [min, max), or [min, max] when max is infinite.
  std::optional<double> real(const Item& item, double min, double max, std::string_view what);

  std::optional<Duration> duration(const Item& item, Duration min);

  // A duration > 0 or `off`: zero would fire at once, which `off` says better.
  std::optional<OptionalDuration> optional_duration(const Item& item);

  std::optional<uint64_t> size(const Item& item, uint64_t min);

  std::optional<std::optional<uint64_t>> optional_size(const Item& item);

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
  static std::string describe(const YAML::Node& value);

 private:
  static std::string count_phrase(uint64_t min, uint64_t max);

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
  Section(Reader& reader, const Item& item, Scope scope, std::string_view what = "a map");

  Reader& reader() { return reader_; }
  const Scope& scope() const { return scope_; }
  // Whether the value was a map (or nothing); if not, it has been reported.
  bool valid() const { return valid_; }
  // Where the map's key is, for problems of the map as a whole.
  const YAML::Mark& mark() const { return mark_; }

  // KEY's entry without declaring it valid, for checks across keys.
  std::optional<Item> peek(std::string_view key) const;

  // Declares KEY valid and returns its entry, if present.
  std::optional<Item> take(std::string_view key);

  // Every entry, for maps whose keys are names chosen by the user.
  std::vector<Item> all();

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
  // A count >= MIN, or `off` for none (nullopt).
  bool get_optional_count(std::string_view key, std::optional<uint64_t>& out, uint64_t min) {
    return get_count_or(key, out, min, "off");
  }
  // A count in [min, max], or WORD for none (nullopt).
  template <typename T>
  bool get_count_or(std::string_view key, std::optional<T>& out, uint64_t min,
                    std::string_view word, uint64_t max = std::numeric_limits<T>::max()) {
    return get(key, out, [&](const Item& i) -> std::optional<std::optional<T>> {
      auto n = reader_.optional_count(i, min, word, max);
      if (!n) return std::nullopt;
      return *n ? std::optional<T>(static_cast<T>(**n)) : std::optional<T>();
    });
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
  bool get_section(std::string_view key, const std::function<void(Section&)>& read);

  // Reports the keys that no getter asked for.
  void finish();

 private:
  // "; did you mean "workers"?" for a near miss, else the keys that exist.
  std::string hint(std::string_view key) const;

  Reader& reader_;
  Scope scope_;
  YAML::Mark mark_;
  bool valid_ = true;
  bool any_key_ = false;
  std::vector<Item> entries_;
  std::vector<std::string> valid_keys_;
};

}  // namespace corral::config

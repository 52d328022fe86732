#include "config/reader.h"

#include <cctype>

namespace corral::config {

std::string lower_case(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

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

void Reader::error(const YAML::Mark& at, std::string message) {
  Diagnostic d{file_, 0, 0, std::move(message)};
  if (at.line >= 0) {
    d.line = at.line + 1;
    d.column = at.column + 1;
  }
  errors_.push_back(std::move(d));
}

void Reader::expected(const Item& item, std::string_view what, const std::string& why) {
  error(item, "expected " + std::string(what) + ", got " + describe(item.value) +
                  (why.empty() ? "" : " (" + why + ")"));
}

std::optional<std::string> Reader::text(const Item& item, std::string_view what) {
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

std::optional<std::vector<Item>> Reader::list(const Item& item, std::string_view what) {
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

std::optional<std::string> Reader::string(const Item& item, bool may_be_empty) {
  auto text = this->text(item, "a string");
  if (text && text->empty() && !may_be_empty) {
    error(item, "must not be empty");
    return std::nullopt;
  }
  return text;
}

std::optional<std::vector<std::string>> Reader::string_list(const Item& item) {
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

std::optional<bool> Reader::boolean(const Item& item) {
  constexpr std::string_view kWhat = "true or false";
  auto text = this->text(item, kWhat);
  if (!text) return std::nullopt;
  std::string lower = lower_case(*text);
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  expected(item, kWhat);
  return std::nullopt;
}

std::optional<uint64_t> Reader::count(const Item& item, uint64_t min, uint64_t max) {
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

std::optional<std::optional<uint64_t>> Reader::optional_count(const Item& item, uint64_t min,
                                                              std::string_view word, uint64_t max) {
  std::string what = count_phrase(min, max) + " or " + std::string(word);
  auto text = this->text(item, what);
  if (!text) return std::nullopt;
  if (*text == word) return std::optional<uint64_t>();
  auto n = parse_unsigned(*text);
  if (!n || *n < min || *n > max) {
    expected(item, what);
    return std::nullopt;
  }
  return std::optional<uint64_t>(*n);
}

std::optional<int64_t> Reader::integer(const Item& item, int64_t min, int64_t max) {
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

std::optional<double> Reader::real(const Item& item, double min, double max,
                                   std::string_view what) {
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

std::optional<Duration> Reader::duration(const Item& item, Duration min) {
  std::string what =
      min.count() > 0 ? "a duration > 0 like 250ms or 30s" : "a duration like 250ms or 30s";
  auto text = this->text(item, what);
  if (!text) return std::nullopt;
  Result<Duration> d = parse_duration(*text);
  std::string why = *text == "off" ? "this one cannot be turned off" : message_of(d);
  if (!d || *d < min) {
    expected(item, what, why);
    return std::nullopt;
  }
  return *d;
}

std::optional<OptionalDuration> Reader::optional_duration(const Item& item) {
  constexpr std::string_view kWhat = "a duration like 250ms, 30s or off";
  auto text = this->text(item, kWhat);
  if (!text) return std::nullopt;
  if (*text == "off") return OptionalDuration();
  Result<Duration> d = parse_duration(*text);
  if (!d) {
    expected(item, kWhat, d.error().message());
    return std::nullopt;
  }
  if (d->count() == 0) {
    expected(item, "a duration > 0 like 250ms or 30s, or off");
    return std::nullopt;
  }
  return OptionalDuration(*d);
}

std::optional<uint64_t> Reader::size(const Item& item, uint64_t min) {
  std::string what = "a size like 512KiB or 10MiB";
  if (min > 0) what += " (at least " + format_size(min) + ")";
  auto text = this->text(item, what);
  if (!text) return std::nullopt;
  Result<uint64_t> bytes = parse_size(*text);
  if (!bytes || *bytes < min) {
    expected(item, what, message_of(bytes));
    return std::nullopt;
  }
  return *bytes;
}

std::optional<std::optional<uint64_t>> Reader::optional_size(const Item& item) {
  constexpr std::string_view kWhat = "a size like 512MiB or 2GiB (more than 0), or off";
  auto text = this->text(item, kWhat);
  if (!text) return std::nullopt;
  if (*text == "off") return std::optional<uint64_t>();
  Result<uint64_t> bytes = parse_size(*text);
  if (!bytes || *bytes == 0) {
    expected(item, kWhat, message_of(bytes));
    return std::nullopt;
  }
  return std::optional<uint64_t>(*bytes);
}

std::string Reader::describe(const YAML::Node& value) {
  if (!value.IsDefined() || value.IsNull()) return "nothing";
  if (value.IsMap()) return "a map";
  if (value.IsSequence()) return "a list";
  return quote(value.Scalar());
}

std::string Reader::count_phrase(uint64_t min, uint64_t max) {
  // The bound of the field's type is no limit a user means to meet.
  if (max >= std::numeric_limits<uint32_t>::max()) {
    return "an integer >= " + std::to_string(min);
  }
  return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

Section::Section(Reader& reader, const Item& item, Scope scope, std::string_view what)
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

std::optional<Item> Section::peek(std::string_view key) const {
  for (const Item& entry : entries_) {
    if (entry.key == key) return entry;
  }
  return std::nullopt;
}

std::optional<Item> Section::take(std::string_view key) {
  valid_keys_.emplace_back(key);
  return peek(key);
}

std::vector<Item> Section::all() {
  any_key_ = true;
  return entries_;
}

bool Section::get_section(std::string_view key, const std::function<void(Section&)>& read) {
  auto item = take(key);
  if (!item) return false;
  Section child(reader_, *item, scope_.child(key));
  read(child);
  child.finish();
  return true;
}

void Section::finish() {
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

std::string Section::hint(std::string_view key) const {
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

}  // namespace corral::config

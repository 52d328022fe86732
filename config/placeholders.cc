#include "config/placeholders.h"

#include <optional>

namespace corral::config {
namespace {

// A placeholder's text between the braces, with its meaning.
struct Placeholder {
  enum class Kind { kJob, kIndex } kind = Kind::kJob;
  uint32_t offset = 0;  // {index+K}: K
  int width = 0;        // {index:0N}: N
};

std::optional<Placeholder> read_placeholder(std::string_view inside) {
  if (inside == "job") return Placeholder{Placeholder::Kind::kJob, 0, 0};
  if (!inside.starts_with("index")) return std::nullopt;
  inside.remove_prefix(5);
  Placeholder index{Placeholder::Kind::kIndex, 0, 0};
  if (inside.starts_with("+")) {
    inside.remove_prefix(1);
    size_t digits = 0;
    while (digits < inside.size() && inside[digits] >= '0' && inside[digits] <= '9') ++digits;
    if (digits == 0 || digits > 6) return std::nullopt;
    for (size_t i = 0; i < digits; ++i) index.offset = index.offset * 10 + (inside[i] - '0');
    inside.remove_prefix(digits);
  }
  if (inside.size() == 3 && inside.starts_with(":0") && inside[2] >= '1' && inside[2] <= '9') {
    index.width = inside[2] - '0';
    inside = {};
  }
  if (!inside.empty()) return std::nullopt;
  return index;
}

// Calls LITERAL(text) and HOLE(placeholder) along PATH, in order;
// false at the first brace that opens no placeholder.
template <typename Literal, typename Hole>
bool walk(std::string_view path, Literal literal, Hole hole, std::string* bad = nullptr) {
  size_t at = 0;
  while (at < path.size()) {
    size_t open = path.find('{', at);
    size_t close = path.find('}', at);
    if (close < open) {
      if (bad != nullptr) *bad = "a '}' that closes nothing";
      return false;
    }
    if (open == std::string_view::npos) {
      literal(path.substr(at));
      return true;
    }
    literal(path.substr(at, open - at));
    close = path.find('}', open);
    std::optional<Placeholder> placeholder;
    if (close != std::string_view::npos) {
      placeholder = read_placeholder(path.substr(open + 1, close - open - 1));
    }
    if (!placeholder) {
      if (bad != nullptr) {
        *bad =
            "'" +
            std::string(path.substr(open, close == std::string_view::npos ? std::string_view::npos
                                                                          : close - open + 1)) +
            "' is not {job}, {index}, {index+K} or {index:0N}";
      }
      return false;
    }
    hole(*placeholder);
    at = close + 1;
  }
  return true;
}

// Appends what placeholder P stands for in worker INDEX of JOB.
void append(std::string& out, const Placeholder& p, std::string_view job, uint32_t index) {
  if (p.kind == Placeholder::Kind::kJob) {
    out += job;
    return;
  }
  std::string digits = std::to_string(uint64_t{index} + p.offset);
  if (static_cast<int>(digits.size()) < p.width) {
    out.append(static_cast<size_t>(p.width) - digits.size(), '0');
  }
  out += digits;
}

}  // namespace

Status check_log_path(std::string_view path) {
  if (!path.starts_with("/")) return Error("must be an absolute path (or auto, off)");
  if (path.ends_with("/")) return Error("names a directory; give the file's name too");
  if (path.find('\0') != std::string_view::npos) return Error("has a NUL byte");
  std::string bad;
  if (!walk(
          path, [](std::string_view) {}, [](const Placeholder&) {}, &bad))
    return Error(bad);
  return {};
}

std::string expand_log_path(std::string_view path, std::string_view job, uint32_t index) {
  std::string out;
  walk(
      path, [&](std::string_view text) { out += text; },
      [&](const Placeholder& p) { append(out, p, job, index); });
  return out;
}

std::string expand_placeholders(std::string_view arg, std::string_view job, uint32_t index) {
  std::string out;
  size_t at = 0;
  for (size_t open = arg.find('{'); open != std::string_view::npos; open = arg.find('{', at)) {
    size_t close = arg.find('}', open);
    if (close == std::string_view::npos) break;
    out += arg.substr(at, open - at);
    std::optional<Placeholder> placeholder =
        read_placeholder(arg.substr(open + 1, close - open - 1));
    if (placeholder) {
      append(out, *placeholder, job, index);
      at = close + 1;
    } else {
      out += '{';  // not a placeholder: kept, and the text after it looked at again
      at = open + 1;
    }
  }
  out += arg.substr(at);
  return out;
}

}  // namespace corral::config

#include "config/log_path.h"

#include <optional>

namespace corral::config {
namespace {

// A placeholder's text between the braces, with its meaning.
struct Placeholder {
  enum class Kind { kJob, kIndex } kind = Kind::kJob;
  int width = 0;  // {index:0N}: N
};

std::optional<Placeholder> read_placeholder(std::string_view inside) {
  if (inside == "job") return Placeholder{Placeholder::Kind::kJob, 0};
  if (inside == "index") return Placeholder{Placeholder::Kind::kIndex, 0};
  if (inside.size() == 8 && inside.starts_with("index:0") && inside[7] >= '1' && inside[7] <= '9') {
    return Placeholder{Placeholder::Kind::kIndex, inside[7] - '0'};
  }
  return std::nullopt;
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
            "' is not {job}, {index} or {index:0N}";
      }
      return false;
    }
    hole(*placeholder);
    at = close + 1;
  }
  return true;
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
      [&](const Placeholder& p) {
        if (p.kind == Placeholder::Kind::kJob) {
          out += job;
          return;
        }
        std::string digits = std::to_string(index);
        if (static_cast<int>(digits.size()) < p.width) {
          out.append(static_cast<size_t>(p.width) - digits.size(), '0');
        }
        out += digits;
      });
  return out;
}

}  // namespace corral::config

// The guards that read a config's text before yaml-cpp does, each refusing
// what would make yaml-cpp misread it, give a baffling message, or spend
// unbounded time and memory: bytes that are not UTF-8 text (binary junk, a
// NUL, UTF-16), and flow collections ([ ] { }) nested deeper than yaml-cpp's
// own limit, which it would read ahead whole before checking. The flow scan
// also remembers the open brackets and quotes that later explain a syntax
// error. Pure functions of the text, safe from any thread.
#pragma once

#include <yaml-cpp/mark.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace corral::config {

// A config is small: these bound what a mistaken file costs to refuse, also
// in a running daemon on reload. yaml-cpp keeps about 500 bytes for each
// value and takes a few microseconds to read one; aliases are counted as the
// values they repeat, so that a "billion laughs" of nested aliases is refused
// before anything walks it.
constexpr int kMaxNesting = 500;  // yaml-cpp's own limit
constexpr size_t kMaxValues = 100000;

// "lists and maps are nested too deeply (LEVELS levels)".
std::string nested_too_deeply(int levels);

// A mark at byte POS, on LINE and COLUMN (0-based).
YAML::Mark mark_at(size_t pos, int line, int column);

// The first byte that makes TEXT something other than UTF-8 text, with a
// message; yaml-cpp would otherwise read binary junk as one long scalar or
// trip over a NUL with a baffling message.
std::optional<std::pair<YAML::Mark, std::string>> find_non_text(const std::string& text);

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
FlowScan scan_flow(const std::string& text);

}  // namespace corral::config

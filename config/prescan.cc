#include "config/prescan.h"

#include <cstdio>
#include <cstring>

namespace corral::config {

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

}  // namespace corral::config

// supervisord's expand() (supervisord_values.h): Python's `text % dict`
// with its conversions, the per-process value (%(process_num)) left as a
// mark, and the marks filled in for one process.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "migrate/supervisord_values.h"

namespace corral::migrate {
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

}  // namespace corral::migrate

#include "config/quote.h"

#include <optional>
#include <utility>

namespace corral::config {
namespace {

// The code point of an invisible or space-like character at the start of
// TEXT (no-break space, soft hyphen, zero-width characters, a byte order
// mark) and its length in bytes: characters a terminal does not show, pasted
// in from web pages and editors.
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

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string escape_double_quoted(std::string_view text, Invisible invisible) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    std::optional<std::pair<unsigned, size_t>> hidden;
    if (invisible == Invisible::kShow) hidden = invisible_at(text.substr(i));
    if (hidden) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(hidden->first >> shift) & 0xF];
      i += hidden->second - 1;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

std::string quote(std::string_view text, size_t max_shown) {
  bool cut = false;
  if (text.size() > max_shown) {
    size_t end = max_shown;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
    cut = true;
  }
  return "\"" + escape_double_quoted(text, Invisible::kShow) + (cut ? "...\"" : "\"");
}

}  // namespace corral::config

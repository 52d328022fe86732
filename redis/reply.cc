#include "redis/reply.h"

namespace corral::redis {
namespace {

// TEXT quoted, with bytes other than printable ASCII as \xNN.
std::string quoted(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out + "\"";
}

}  // namespace

std::string describe(const Reply& reply) {
  switch (reply.type) {
    case Reply::Type::kString:
      return quoted(reply.text);
    case Reply::Type::kStatus:
      return reply.text;
    case Reply::Type::kError:
      return "(error) " + reply.text;
    case Reply::Type::kInteger:
      return std::to_string(reply.integer);
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < reply.elements.size(); ++i) {
        if (i > 0) out += ", ";
        out += describe(reply.elements[i]);
      }
      return out + "]";
    }
  }
  return "?";
}

}  // namespace corral::redis

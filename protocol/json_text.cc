#include "protocol/json_text.h"

namespace corral::protocol {

std::string json_text(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string json_string(std::string_view text) { return json_text(Json(std::string(text))); }

bool is_plain_json_text(std::string_view text) {
  // Every byte looked at, without a branch per byte: results are short.
  bool plain = true;
  for (const char c : text) plain &= c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  return plain;
}

void append_json_string(std::string& out, std::string_view text) {
  if (!is_plain_json_text(text)) {
    out += json_string(text);
    return;
  }
  out.push_back('"');
  out += text;
  out.push_back('"');
}

}  // namespace corral::protocol

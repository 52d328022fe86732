#include "protocol/json_text.h"

#include <algorithm>

namespace corral::protocol {

std::string json_text(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string json_string(std::string_view text) { return json_text(Json(std::string(text))); }

bool is_plain_json_text(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
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

// JSON as text, written one way wherever corral writes it: on the wire (both
// ends), in corralctl's output and in messages. Bytes that are not UTF-8
// become U+FFFD instead of an exception, since a worker's result or a log
// line may hold any bytes. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace corral::protocol {

using Json = nlohmann::json;

// VALUE as JSON text: compact on one line (INDENT < 0), else pretty-printed
// with INDENT spaces per level.
std::string json_text(const Json& value, int indent = -1);

// TEXT as a JSON string, quotes included: "a\"b".
std::string json_string(std::string_view text);

// TEXT is printable ASCII without `"` or `\`: its JSON string is TEXT
// between quotes.
bool is_plain_json_text(std::string_view text);

// Appends json_string(TEXT) to OUT. Printable ASCII, what most task results
// are, is copied as it is without going through the JSON library: this runs
// once per task of a submit.
void append_json_string(std::string& out, std::string_view text);

}  // namespace corral::protocol

#include "protocol/control.h"

#include <charconv>
#include <cmath>
#include <map>

namespace corral::protocol {

bool valid_job_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<Target> parse_target(std::string_view text) {
  if (text == "all") return Target{};
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    if (!valid_job_name(text)) return std::nullopt;
    return Target{std::string(text), std::nullopt};
  }
  std::string_view job = text.substr(0, colon);
  std::string_view index = text.substr(colon + 1);
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), value);
  if (!valid_job_name(job) || index.empty() || ec != std::errc() ||
      end != index.data() + index.size()) {
    return std::nullopt;
  }
  return Target{std::string(job), value};
}

std::string to_string(const Target& target) {
  if (target.all()) return "all";
  if (!target.index) return target.job;
  return target.job + ":" + std::to_string(*target.index);
}

namespace {

enum class Field { kTargets, kString, kFlag, kCount, kSeconds };

// The fields each command takes besides "cmd", with their types; a command
// not listed is unknown.
const std::map<std::string, std::map<std::string, Field>, std::less<>>& known_fields() {
  using enum Field;
  static const std::map<std::string, std::map<std::string, Field>, std::less<>> fields = {
      {"status", {{"targets", kTargets}}},
      {"start", {{"targets", kTargets}}},
      {"stop", {{"targets", kTargets}}},
      {"restart", {{"targets", kTargets}, {"rolling", kFlag}}},
      {"signal", {{"signal", kString}, {"targets", kTargets}}},
      {"pid", {{"targets", kTargets}}},
      {"tail", {{"target", kString}, {"lines", kCount}, {"follow", kFlag}, {"stderr", kFlag}}},
      {"clear", {{"targets", kTargets}}},
      {"reread", {}},
      {"update", {}},
      {"reload", {}},
      {"submit", {{"job", kString}, {"wait", kFlag}, {"timing", kFlag}}},
      {"stats", {{"job", kString}}},
      {"shared", {{"job", kString}}},
      {"dead", {{"job", kString}}},
      {"retry", {{"job", kString}}},
      {"wait", {{"job", kString}, {"running", kFlag}, {"drained", kFlag}, {"timeout_s", kSeconds}}},
      {"version", {}},
      {"shutdown", {}},
  };
  return fields;
}

// Why VALUE is not of TYPE, or "".
std::string check_field(std::string_view key, const Json& value, Field type) {
  const std::string name = "\"" + std::string(key) + "\"";
  switch (type) {
    case Field::kTargets:
      if (value.is_null()) return "";  // the same as none given
      if (value.is_array()) {
        bool strings = true;
        for (const Json& item : value) strings = strings && item.is_string();
        if (strings) return "";
      }
      return name + " must be a list of strings";
    case Field::kString:
      return value.is_string() ? "" : name + " must be a string";
    case Field::kFlag:
      return value.is_boolean() ? "" : name + " must be true or false";
    case Field::kCount:
      return value.is_number_unsigned() ? "" : name + " must be an integer, 0 or more";
    case Field::kSeconds: {
      // Not from a parsed line (1e999 is bad JSON), but a request built in
      // code may hold infinity or NaN.
      double seconds = value.is_number() ? value.get<double>() : -1;
      if (std::isfinite(seconds) && seconds >= 0 && seconds <= kMaxTimeoutSeconds) return "";
      return name + " must be a number of seconds from 0 to 1e9";
    }
  }
  return name + " has a type no command takes";
}

}  // namespace

std::optional<Json> parse_request_line(std::string_view line, std::string& error) {
  if (line.size() > kMaxLineBytes) {
    error = "request line longer than " + std::to_string(kMaxLineBytes) + " bytes";
    return std::nullopt;
  }
  Json request = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) {
    error = "bad JSON in request";
    return std::nullopt;
  }
  return request;
}

std::string check_request(const Json& request) {
  if (!request.is_object()) return "a request is a JSON object";
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) return "a request needs \"cmd\": a string";
  const std::string& name = cmd->get_ref<const std::string&>();
  auto known = known_fields().find(name);
  if (known == known_fields().end()) return "unknown command: " + name;
  for (const auto& [key, value] : request.items()) {
    if (key == "cmd") continue;
    auto field = known->second.find(key);
    if (field == known->second.end()) {
      std::string list;
      for (const auto& [taken, type] : known->second) list += (list.empty() ? "" : ", ") + taken;
      return "unknown field \"" + key + "\" in a " + name + " request" +
             (list.empty() ? " (it takes none)" : " (it takes " + list + ")");
    }
    if (std::string error = check_field(key, value, field->second); !error.empty()) {
      return error + " in a " + name + " request";
    }
  }
  return "";
}

std::string encode_line(const Json& message) {
  std::string line = message.dump(-1, ' ', false, Json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

Json error_reply(std::string_view message) {
  return Json{{"ok", false}, {"error", std::string(message)}};
}

}  // namespace corral::protocol

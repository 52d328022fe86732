#include "protocol/control.h"

#include <charconv>
#include <cstdio>

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

std::string encode_line(const Json& message) {
  std::string line = message.dump(-1, ' ', false, Json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

Json error_reply(std::string_view message) {
  return Json{{"ok", false}, {"error", std::string(message)}};
}

std::string format_uptime(double seconds) {
  if (seconds < 0) seconds = 0;
  auto total = static_cast<long long>(seconds);
  long long days = total / 86400;
  long long h = total % 86400 / 3600, m = total % 3600 / 60, s = total % 60;
  char buf[64];
  if (days > 0) {
    std::snprintf(buf, sizeof buf, "%lld day%s, %lld:%02lld:%02lld", days, days == 1 ? "" : "s", h,
                  m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  }
  return buf;
}

}  // namespace corral::protocol

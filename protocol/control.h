// The control protocol between corralctl and corrald: one JSON object per
// line each way over a Unix stream socket (docs/control-protocol.md). This
// header holds what both ends must agree on: limits, defaults, target syntax
// and line framing. It knows nothing of sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace corral::protocol {

using Json = nlohmann::json;

inline constexpr std::size_t kMaxLineBytes = 1 << 20;  // a request or reply line, '\n' excluded
inline constexpr const char* kDefaultSocket = "/run/corral/corral.sock";
inline constexpr const char* kDefaultConfig = "/etc/corral/corral.yaml";
inline constexpr const char* kVersion = CORRAL_VERSION;

// corralctl's exit codes (corralctl(1)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

// TARGET: `all`, `JOB` or `JOB:INDEX`.
struct Target {
  std::string job;  // empty for all
  std::optional<uint32_t> index;
  bool all() const { return job.empty(); }
  bool operator==(const Target&) const = default;
};
std::optional<Target> parse_target(std::string_view text);
std::string to_string(const Target& target);

// A job name as the config allows it: [A-Za-z0-9_.-]+.
bool valid_job_name(std::string_view name);

// One request line as corrald reads it ('\n' excluded): a JSON value of at
// most kMaxLineBytes. nullopt, with ERROR set, for anything else.
std::optional<Json> parse_request_line(std::string_view line, std::string& error);

// Why REQUEST is not a request corrald takes, or "" when it is: a JSON object
// with a known "cmd" and only the fields that command takes, each of its
// type (targets: a list of strings or null; flags: true or false; job,
// target, signal: strings; lines: an integer >= 0; timeout_s: seconds from
// 0 to kMaxTimeoutSeconds). The commands then read fields without checks.
std::string check_request(const Json& request);
inline constexpr double kMaxTimeoutSeconds = 1e9;  // about 31 years; more overflows a deadline

// One line of the wire: compact JSON and a '\n'.
std::string encode_line(const Json& message);

// An error reply: {"ok": false, "error": MESSAGE}.
Json error_reply(std::string_view message);

}  // namespace corral::protocol

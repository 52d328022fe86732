// The control protocol between corralctl and corrald: one JSON object per
// line each way over a Unix stream socket (docs/control-protocol.md). This
// header holds what both ends must agree on: limits, defaults, target syntax
// and line framing; the exit codes are in protocol/exit_codes.h, JSON as text
// in protocol/json_text.h, the lines of a submit stream in
// protocol/task_lines.h. It knows nothing of sockets. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/job_name.h"
#include "base/result.h"

namespace corral::protocol {

using Json = nlohmann::json;

inline constexpr std::size_t kMaxLineBytes = 1 << 20;  // a request or reply line, '\n' excluded
inline constexpr const char* kDefaultConfig = "/etc/corral/corral.yaml";
inline constexpr const char* kVersion = CORRAL_VERSION;

// TARGET: `all`, `JOB`, `JOB:INDEX`, or `JOB:*` (supervisorctl's GROUP:*),
// which is the same as `JOB`.
struct Target {
  std::string job;  // empty for all
  std::optional<uint32_t> index;
  bool all() const { return job.empty(); }
  bool operator==(const Target&) const = default;
};
// TEXT as a Target; the error names TEXT, says what is wrong with it and
// what a target is.
Result<Target> parse_target(std::string_view text);
std::string to_string(const Target& target);

// A job name as the config allows it (base/job_name.h).
using corral::valid_job_name;

// One request line as corrald reads it ('\n' excluded): a JSON value of at
// most kMaxLineBytes.
Result<Json> parse_request_line(std::string_view line);

// Whether REQUEST is a request corrald takes, and if not why: a JSON object
// with a known "cmd" and only the fields that command takes, each of its
// type (targets: a list of strings or null; flags: true or false; job,
// target, signal: strings; lines, since and a cancel's or results' submit: an
// integer >= 0; ids: a list of integers >= 0; a status's fields: a list of
// names from worker_fields(); timeout_s: seconds from 0 to
// kMaxTimeoutSeconds; deadline_s: seconds over 0, up to kMaxTimeoutSeconds).
// That a cancel names exactly one of ids, submit and queued is the command's
// to check. The commands then read fields without checks.
Status check_request(const Json& request);
inline constexpr double kMaxTimeoutSeconds = 1e9;  // about 31 years; more overflows a deadline

// The commands check_request takes, sorted, and the fields that COMMAND takes
// besides "cmd", sorted (none for an unknown command).
std::vector<std::string> request_commands();
std::vector<std::string> request_fields(std::string_view command);

// The fields of a worker object (`status`, docs/control-protocol.md), in
// the order of that table; a status request's "fields" names some of them
// and its reply's workers carry those alone.
const std::vector<std::string_view>& worker_fields();
// Whether FIELD is one of a worker's sampled figures (cpu_s, rss_bytes, ...),
// which corrald reads from /proc when its last sample is old; a status that
// asks for none of them takes no sample.
bool sampled_worker_field(std::string_view field);

// One line of the wire: compact JSON (protocol/json_text.h) and a '\n'.
std::string encode_line(const Json& message);

// An error reply: {"ok": false, "error": MESSAGE}.
Json error_reply(std::string_view message);

}  // namespace corral::protocol

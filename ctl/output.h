// The pieces every command's output is made of: usage errors and failures
// with their exit codes, JSON as corralctl prints it, and corrald's reply
// fields read leniently (a field of the wrong type reads as absent, so that a
// reply of another shape is reported, not thrown). Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctl/commands.h"

namespace corral::ctl {

// `corralctl NAME SYNOPSIS`.
std::string command_line(const Command& command);
// A usage error (exit 2): "usage: ..." of COMMAND when known, then MESSAGE.
Output usage_error(const Command* command, std::string_view message);
// The command failed (exit 1) with MESSAGE.
Output failed(std::string_view message);
// corrald's reply is not of the documented shape (exit 1).
Output malformed(std::string_view what);
// VALUE as indented JSON and a '\n', what --json prints.
std::string dump(const Json& value);

// A field of OBJECT; absent or of another type: "", nullopt, 0, false.
std::string string_field(const Json& object, const char* key);
std::optional<int64_t> int_field(const Json& object, const char* key);
double number_field(const Json& object, const char* key);
bool ok_field(const Json& object);
// OBJECT[KEY] when it is a list of objects, or null.
const Json* objects_field(const Json& object, const char* key);
// corrald's {"ok": false, "error": ...} as a failure.
Output error_reply(const Json& reply);
// The "workers" list of REPLY, or null.
const Json* workers_of(const Json& reply);

// Columns of text tables.
std::string pad(std::string text, size_t width);
size_t name_width(const Json& workers);
void trim_right(std::string& text);

// REPLY without its "ok": what --json shows of stats, retry, shared and wait.
Json without_ok(const Json& reply);
// One line of text for a field that may hold any bytes.
std::string one_line(std::string text);
// A number or any other JSON value as text: 12, 0.5, "x".
std::string value_text(const Json& value);
// Microseconds as people read them: 850us, 12.3ms, 1.20s.
std::string format_micros(double us);
// "1 task", "2 tasks".
std::string plural(uint64_t n, std::string_view one, std::string_view many);
// The job of a request, for messages.
std::string job_of(const Json& request);

// The "broker" object of a broker job's status or stats entry, or null.
const Json* broker_of(const Json& object);
// A broker job's broker in one line: "ready: redis unix:///r.sock stream
// corral:sums, lag 0, pending 4 (4 here)", or "down: WHY".
std::string broker_text(const Json& broker);

}  // namespace corral::ctl

#include "ctl/output.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "config/units.h"
#include "ctl/arguments.h"
#include "ctl/output.h"
#include "protocol/exit_codes.h"
#include "protocol/json_text.h"
#include "protocol/task_lines.h"

namespace corral::ctl {

using protocol::kExitFailed;
using protocol::kExitUsage;

// ---- Outputs ----

std::string command_line(const Command& command) {
  std::string line = "corralctl ";
  line.append(command.name);
  if (!command.synopsis.empty()) line.append(" ").append(command.synopsis);
  return line;
}

Output usage_error(const Command* command, std::string_view message) {
  Output output;
  output.exit_code = kExitUsage;
  output.err.append("corralctl: ").append(message).append("\n");
  if (command != nullptr) {
    output.err.append("usage: ").append(command_line(*command)).append("\n");
  } else {
    output.err.append("run 'corralctl help' for the list of commands\n");
  }
  return output;
}

Output failed(std::string_view message) {
  Output output;
  output.exit_code = kExitFailed;
  output.err.append("corralctl: ").append(message).append("\n");
  return output;
}

Output malformed(std::string_view what) {
  return failed(std::string("malformed reply from corrald: ").append(what));
}

std::string dump(const Json& value) { return protocol::json_text(value, 2) + "\n"; }

// ---- Reading replies: a field of the wrong type reads as absent ----

std::string string_field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<int64_t> int_field(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

double number_field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

bool ok_field(const Json& object) {
  auto it = object.find("ok");
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

const Json* objects_field(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return nullptr;
  bool objects = std::all_of(it->begin(), it->end(), [](const Json& v) { return v.is_object(); });
  return objects ? &*it : nullptr;
}

// The reply's error, for a reply with ok:false.
Output error_reply(const Json& reply) {
  std::string message = string_field(reply, "error");
  return failed(message.empty() ? "corrald reported an error without a message" : message);
}

// reply["workers"], which must be a list of objects; null if it is not.
const Json* workers_of(const Json& reply) {
  auto it = reply.find("workers");
  if (it == reply.end() || !it->is_array()) return nullptr;
  for (const auto& worker : *it) {
    if (!worker.is_object()) return nullptr;
  }
  return &*it;
}

std::string pad(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

size_t name_width(const Json& workers) {
  size_t width = 0;
  for (const auto& worker : workers) width = std::max(width, string_field(worker, "name").size());
  return width;
}

void trim_right(std::string& text) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
}

// ---- Replies of the task commands ----

// REPLY without its "ok": what --json shows of stats, retry, shared and wait.
Json without_ok(const Json& reply) {
  Json copy = reply;
  copy.erase("ok");
  return copy;
}

// One line of text for a field that may hold any bytes.
std::string one_line(std::string text) {
  std::string line;
  line.reserve(text.size());
  for (char c : text) {
    if (c == '\n') {
      line += "\\n";
    } else if (c == '\r') {
      line += "\\r";
    } else {
      line += c;
    }
  }
  return line;
}

// A number or any other JSON value as text: 12, 0.5, "x".
std::string value_text(const Json& value) { return protocol::json_text(value); }

// Microseconds as people read them: 850us, 12.3ms, 1.20s.
std::string format_micros(double us) {
  char text[32];
  if (us < 1000) {
    std::snprintf(text, sizeof text, "%.0fus", us);
  } else if (us < 1e6) {
    std::snprintf(text, sizeof text, "%.1fms", us / 1000);
  } else {
    std::snprintf(text, sizeof text, "%.2fs", us / 1e6);
  }
  return text;
}

std::string plural(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// The job of a request, for messages.
std::string job_of(const Json& request) { return string_field(request, "job"); }

// A broker job's broker in one line: "ready: redis unix:///r.sock stream
// corral:sums, lag 0, pending 4 (4 here)", or "down: WHY".
std::string broker_text(const Json& broker) {
  std::string state = string_field(broker, "state");
  std::string line = state + ": " + string_field(broker, "url") + " stream " +
                     string_field(broker, "stream") + " as " + string_field(broker, "consumer");
  auto count = [&](const char* key) {
    auto it = broker.find(key);
    return it != broker.end() && it->is_number() ? value_text(*it) : std::string("?");
  };
  line +=
      ", lag " + count("lag") + ", pending " + count("pending") + " (" + count("held") + " here)";
  std::string error = string_field(broker, "error");
  if (!error.empty()) line += (state == "ready" ? "; last error: " : "; ") + error;
  return line;
}

const Json* broker_of(const Json& object) {
  auto it = object.is_object() ? object.find("broker") : object.end();
  return object.is_object() && it != object.end() && it->is_object() ? &*it : nullptr;
}

}  // namespace corral::ctl

#include "protocol/control.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "protocol/json_text.h"

namespace corral::protocol {

Result<Target> parse_target(std::string_view text) {
  if (text == "all") return Target{};
  auto invalid = [text](std::string_view why) {
    return Error("invalid target '" + std::string(text) + "'" + std::string(why) +
                 " (expected JOB, JOB:INDEX, JOB:* or all)");
  };
  auto colon = text.find(':');
  std::string_view job = text.substr(0, colon);
  if (!valid_job_name(job)) {
    if (colon == std::string_view::npos) return invalid("");
    if (job.empty()) return invalid(": no JOB before ':'");
    return invalid(": '" + std::string(job) + "' is not a job name");
  }
  if (colon == std::string_view::npos) return Target{std::string(job), std::nullopt};
  // supervisorctl's GROUP:*, every worker of the job: the same as JOB.
  std::string_view index = text.substr(colon + 1);
  if (index == "*") return Target{std::string(job), std::nullopt};
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), value);
  if (index.empty() || ec != std::errc() || end != index.data() + index.size()) {
    return invalid(": after '" + std::string(job) + ":' comes a worker INDEX (0, 1, ...) or *");
  }
  return Target{std::string(job), value};
}

std::string to_string(const Target& target) {
  if (target.all()) return "all";
  if (!target.index) return target.job;
  return target.job + ":" + std::to_string(*target.index);
}

namespace {

enum class Field { kTargets, kString, kFlag, kCount, kSeconds, kDeadline, kIds, kWorkerFields };

// The fields each command takes besides "cmd", with their types; a command
// not listed is unknown.
const std::map<std::string, std::map<std::string, Field>, std::less<>>& known_fields() {
  using enum Field;
  static const std::map<std::string, std::map<std::string, Field>, std::less<>> fields = {
      {"status", {{"targets", kTargets}, {"fields", kWorkerFields}}},
      {"start", {{"targets", kTargets}}},
      {"stop", {{"targets", kTargets}}},
      {"restart", {{"targets", kTargets}, {"rolling", kFlag}}},
      {"signal", {{"signal", kString}, {"targets", kTargets}}},
      {"pid", {{"targets", kTargets}}},
      {"tail", {{"target", kString}, {"lines", kCount}, {"follow", kFlag}, {"stderr", kFlag}}},
      {"fg", {{"target", kString}, {"lines", kCount}}},
      {"clear", {{"targets", kTargets}}},
      {"pause", {{"targets", kTargets}}},
      {"resume", {{"targets", kTargets}}},
      {"maintail", {{"lines", kCount}, {"follow", kFlag}}},
      {"reread", {}},
      {"avail", {}},
      {"update", {}},
      {"reload", {}},
      {"submit",
       {{"job", kString},
        {"wait", kFlag},
        {"timing", kFlag},
        {"batches", kFlag},
        {"deadline_s", kDeadline}}},
      {"cancel",
       {{"job", kString},
        {"ids", kIds},
        {"submit", kCount},
        {"queued", kFlag},
        {"running", kFlag}}},
      {"results", {{"job", kString}, {"follow", kFlag}, {"since", kCount}, {"submit", kCount}}},
      {"stats", {{"job", kString}}},
      {"shared", {{"job", kString}}},
      {"dead", {{"job", kString}, {"clear", kFlag}}},
      {"retry", {{"job", kString}, {"ids", kIds}, {"wait", kFlag}}},
      {"wait", {{"job", kString}, {"running", kFlag}, {"drained", kFlag}, {"timeout_s", kSeconds}}},
      {"version", {}},
      {"shutdown", {}},
  };
  return fields;
}

// Whether VALUE is of TYPE, and if not why.
Status check_field(std::string_view key, const Json& value, Field type) {
  const std::string name = "\"" + std::string(key) + "\"";
  switch (type) {
    case Field::kTargets:
      if (value.is_null()) return {};  // the same as none given
      if (value.is_array()) {
        bool strings = true;
        for (const Json& item : value) strings = strings && item.is_string();
        if (strings) return {};
      }
      return Error(name + " must be a list of strings");
    case Field::kString:
      if (value.is_string()) return {};
      return Error(name + " must be a string");
    case Field::kFlag:
      if (value.is_boolean()) return {};
      return Error(name + " must be true or false");
    case Field::kIds:
      if (value.is_array()) {
        bool ids = true;
        for (const Json& item : value) ids = ids && item.is_number_unsigned();
        if (ids) return {};
      }
      return Error(name + " must be a list of task ids (integers, 0 or more)");
    case Field::kWorkerFields: {
      if (!value.is_array()) return Error(name + " must be a list of worker fields");
      for (const Json& item : value) {
        if (!item.is_string()) return Error(name + " must be a list of worker fields");
        const std::string& field = item.get_ref<const std::string&>();
        const auto& known = worker_fields();
        if (std::find(known.begin(), known.end(), field) == known.end()) {
          std::string list;
          for (std::string_view f : known) list += (list.empty() ? "" : ", ") + std::string(f);
          return Error(name + " names no worker field \"" + field + "\" (they are " + list + ")");
        }
      }
      return {};
    }
    case Field::kCount:
      if (value.is_number_unsigned()) return {};
      return Error(name + " must be an integer, 0 or more");
    case Field::kSeconds: {
      // Not from a parsed line (1e999 is bad JSON), but a request built in
      // code may hold infinity or NaN.
      double seconds = value.is_number() ? value.get<double>() : -1;
      if (std::isfinite(seconds) && seconds >= 0 && seconds <= kMaxTimeoutSeconds) return {};
      return Error(name + " must be a number of seconds from 0 to 1e9");
    }
    case Field::kDeadline: {
      // A deadline of 0 would expire every task at once.
      double seconds = value.is_number() ? value.get<double>() : -1;
      if (std::isfinite(seconds) && seconds > 0 && seconds <= kMaxTimeoutSeconds) return {};
      return Error(name + " must be a number of seconds over 0, at most 1e9");
    }
  }
  return Error(name + " has a type no command takes");
}

}  // namespace

const std::vector<std::string_view>& worker_fields() {
  static const std::vector<std::string_view> fields = {"name",
                                                       "job",
                                                       "index",
                                                       "state",
                                                       "pid",
                                                       "uptime_s",
                                                       "restarts",
                                                       "exit_status",
                                                       "exit_description",
                                                       "spawn_error",
                                                       "description",
                                                       "cgroup",
                                                       "cgroup_off",
                                                       "paused",
                                                       "limits",
                                                       "tasks_ok",
                                                       "tasks_failed",
                                                       "tasks_held",
                                                       "job_tasks",
                                                       "broker",
                                                       "cpu_s",
                                                       "rss_bytes",
                                                       "cgroup_memory_bytes",
                                                       "cpu_percent",
                                                       "threads",
                                                       "voluntary_switches",
                                                       "involuntary_switches",
                                                       "enforced",
                                                       "exits"};
  return fields;
}

bool sampled_worker_field(std::string_view field) {
  return field == "cpu_s" || field == "rss_bytes" || field == "cgroup_memory_bytes" ||
         field == "cpu_percent" || field == "threads" || field == "voluntary_switches" ||
         field == "involuntary_switches";
}

Result<Json> parse_request_line(std::string_view line) {
  if (line.size() > kMaxLineBytes) {
    return Error("request line longer than " + std::to_string(kMaxLineBytes) + " bytes");
  }
  Json request = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return Error("bad JSON in request");
  return request;
}

Status check_request(const Json& request) {
  if (!request.is_object()) return Error("a request is a JSON object");
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) {
    return Error("a request needs \"cmd\": a string");
  }
  const std::string& name = cmd->get_ref<const std::string&>();
  auto known = known_fields().find(name);
  if (known == known_fields().end()) return Error("unknown command: " + name);
  for (const auto& [key, value] : request.items()) {
    if (key == "cmd") continue;
    auto field = known->second.find(key);
    if (field == known->second.end()) {
      std::string list;
      for (const auto& [taken, type] : known->second) list += (list.empty() ? "" : ", ") + taken;
      return Error("unknown field \"" + key + "\" in a " + name + " request" +
                   (list.empty() ? " (it takes none)" : " (it takes " + list + ")"));
    }
    // The field first: "\"rolling\" must be true or false in a restart request".
    if (Status checked = check_field(key, value, field->second); !checked) {
      return Error(checked.error().message() + " in a " + name + " request");
    }
  }
  return {};
}

std::vector<std::string> request_commands() {
  std::vector<std::string> names;
  for (const auto& [name, fields] : known_fields()) names.push_back(name);
  return names;
}

std::vector<std::string> request_fields(std::string_view command) {
  std::vector<std::string> names;
  auto known = known_fields().find(command);
  if (known == known_fields().end()) return names;
  for (const auto& [name, type] : known->second) names.push_back(name);
  return names;
}

std::string encode_line(const Json& message) {
  std::string line = json_text(message);
  line.push_back('\n');
  return line;
}

Json error_reply(std::string_view message) {
  return Json{{"ok", false}, {"error", std::string(message)}};
}

}  // namespace corral::protocol

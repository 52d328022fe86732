// corralctl's text of the worker and daemon commands' replies (status, the
// actions, tail and fg's acceptance, reread/update/reload, avail, pid,
// shutdown, version; ctl/replies.h). The task commands' are in
// task_replies.cc.
#include "ctl/replies.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>
#include <utility>

#include "base/uptime.h"
#include "config/units.h"
#include "ctl/arguments.h"
#include "ctl/output.h"
#include "protocol/exit_codes.h"
#include "protocol/json_text.h"
#include "protocol/task_lines.h"

namespace corral::ctl {

using protocol::kExitFailed;

namespace {

// What a status line says after the state: the daemon's description, then
// the counters that are not zero.
std::string describe(const Json& worker) {
  std::vector<std::string> parts;
  std::string description = string_field(worker, "description");
  if (description.empty()) {
    // An older or terser daemon: rebuild what supervisorctl would say.
    if (auto pid = int_field(worker, "pid")) {
      description = "pid " + std::to_string(*pid) + ", uptime " +
                    format_uptime(number_field(worker, "uptime_s"));
    } else {
      description = string_field(worker, "spawn_error");
      if (description.empty()) description = string_field(worker, "exit_description");
    }
  }
  if (!description.empty()) parts.push_back(description);
  if (int64_t restarts = int_field(worker, "restarts").value_or(0); restarts > 0) {
    parts.push_back("restarts " + std::to_string(restarts));
  }
  int64_t tasks_ok = int_field(worker, "tasks_ok").value_or(0);
  int64_t tasks_failed = int_field(worker, "tasks_failed").value_or(0);
  if (tasks_ok > 0 || tasks_failed > 0) {
    std::string tasks = "tasks " + std::to_string(tasks_ok) + " ok";
    if (tasks_failed > 0) tasks += ", " + std::to_string(tasks_failed) + " failed";
    parts.push_back(tasks);
  }
  std::string text;
  for (const auto& part : parts) {
    if (!text.empty()) text += "; ";
    text += part;
  }
  return text;
}

}  // namespace

const std::vector<std::string>& status_text_fields() {
  // name, state and describe()'s; job and broker for a broker job's line. A
  // corrald that takes "fields" always sends a description, so what an older
  // one's terser reply is described from (pid, uptime_s, spawn_error,
  // exit_description) is not asked for: an older corrald answers with every
  // field (Client::call sends the request again without "fields").
  static const std::vector<std::string> fields = {
      "name", "job", "state", "description", "restarts", "tasks_ok", "tasks_failed", "broker"};
  return fields;
}

Output format_status(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  const Json* workers = workers_of(reply);
  if (workers == nullptr) return malformed("status reply without a list of workers");

  Output output;
  for (const auto& worker : *workers) {
    std::string state = string_field(worker, "state");
    if (state == "FATAL" || state == "BACKOFF") output.exit_code = kExitFailed;
  }
  if (format == Format::kJson) {
    output.out = dump(*workers);
    return output;
  }
  // supervisorctl's layout: name, state in 10 columns, description.
  size_t width = name_width(*workers);
  for (const auto& worker : *workers) {
    if (broker_of(worker) != nullptr) {
      width = std::max(width, string_field(worker, "job").size() + 9);
    }
  }
  for (const auto& worker : *workers) {
    std::string line = pad(string_field(worker, "name"), width) + "  " +
                       pad(string_field(worker, "state"), 10) + describe(worker);
    trim_right(line);
    output.out += line + "\n";
  }
  // Each broker job's broker once, after its workers: "JOB (broker)  STATE  ...".
  std::set<std::string> shown;
  for (const auto& worker : *workers) {
    const Json* broker = broker_of(worker);
    std::string job = string_field(worker, "job");
    if (broker == nullptr || !shown.insert(job).second) continue;
    std::string state = string_field(*broker, "state");
    if (state == "down") output.exit_code = kExitFailed;
    std::string upper = state;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    output.out +=
        pad(job + " (broker)", width) + "  " + pad(upper, 10) + broker_text(*broker) + "\n";
  }
  return output;
}

// start, stop, restart: NAME: MESSAGE per worker.
std::optional<std::string> why_waiting(std::string_view job, const Json& status_reply) {
  const std::string prefix = "waiting: " + std::string(job);
  if (!ok_field(status_reply)) {
    return prefix + ": " + string_field(status_reply, "error");
  }
  const Json* workers = workers_of(status_reply);
  if (workers == nullptr) return std::nullopt;
  if (workers->empty()) return prefix + " has no workers (workers: 0); its tasks stay queued";
  const Json* first = nullptr;
  for (const auto& worker : *workers) {
    if (string_field(worker, "state") == "RUNNING") return std::nullopt;
    if (first == nullptr) first = &worker;
  }
  std::string state = string_field(*first, "state");
  std::string description = string_field(*first, "description");
  // A worker that speaks the protocol is RUNNING once it says READY.
  if (state == "STARTING") {
    description += "; not RUNNING yet";
    // Caught between two tries: how the last one ended is the reason.
    std::string last = string_field(*first, "exit_description");
    if (!last.empty()) description += " (its last process: " + last + ")";
  }
  return prefix + " has 0 of " + std::to_string(workers->size()) +
         (workers->size() == 1 ? " worker" : " workers") +
         " running: " + string_field(*first, "name") + " " + state +
         (description.empty() ? std::string() : " " + description);
}

Output format_action(const Json& request, const Json& reply, Format format) {
  const Json* workers = workers_of(reply);
  if (workers == nullptr) {
    if (!ok_field(reply)) return error_reply(reply);
    return malformed("reply without a list of workers");
  }
  Output output;
  if (!ok_field(reply)) output.exit_code = kExitFailed;
  std::string cmd = string_field(request, "cmd");
  std::string done = cmd == "stop" ? "stopped" : cmd == "restart" ? "restarted" : "started";
  for (const auto& worker : *workers) {
    auto ok = worker.find("ok");
    bool worker_ok = ok != worker.end() && ok->is_boolean() ? ok->get<bool>() : ok_field(reply);
    if (!worker_ok) output.exit_code = kExitFailed;
    if (format == Format::kJson) continue;
    std::string message = string_field(worker, "message");
    if (message.empty()) {
      std::string state = string_field(worker, "state");
      message = worker_ok ? done : state.empty() ? "ERROR" : "ERROR (" + state + ")";
    }
    output.out += string_field(worker, "name") + ": " + message + "\n";
  }
  if (format == Format::kJson) output.out = dump(*workers);
  if (!ok_field(reply) && !string_field(reply, "error").empty()) {
    output.err = error_reply(reply).err;
  }
  return output;
}

// tail's first line: nothing to show when corrald accepts; the data follows.
Output format_tail(const Json&, const Json& reply, Format) {
  if (!ok_field(reply)) return error_reply(reply);
  return Output{};
}

// fg's acceptance: a line on stderr saying whose output follows and how to
// leave (stdout is the worker's); --json: corrald's line as it is.
Output format_fg(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  std::string name = string_field(reply, "name");
  auto pid = int_field(reply, "pid");
  if (name.empty() || !pid) return malformed("fg's reply has no \"name\" and \"pid\"");
  Output output;
  if (format == Format::kJson) {
    output.out = protocol::json_text(reply) + "\n";
  } else {
    output.err = "corralctl: " + name + " (pid " + std::to_string(*pid) +
                 ") in the foreground; Ctrl-C leaves it running; typing is not sent to it\n";
  }
  return output;
}

// reread, update, reload: what changed (supervisorctl's words), the config's
// errors, the warnings.
Output format_reload(const Json& request, const Json& reply, Format format) {
  Output output;
  if (!ok_field(reply)) {
    output = error_reply(reply);
    if (auto errors = reply.find("errors"); errors != reply.end() && errors->is_array()) {
      output.err.clear();
      for (const auto& error : *errors) {
        if (error.is_string()) output.err += "corralctl: " + error.get<std::string>() + "\n";
      }
      output.err += "corralctl: the config has errors; nothing was changed\n";
    }
    if (format == Format::kJson) output.out = dump(reply);
    return output;
  }
  if (auto warnings = reply.find("warnings"); warnings != reply.end() && warnings->is_array()) {
    for (const auto& warning : *warnings) {
      if (warning.is_string())
        output.err += "corralctl: warning: " + warning.get<std::string>() + "\n";
    }
  }
  if (format == Format::kJson) {
    output.out = dump(reply);
    return output;
  }
  const bool applied = string_field(request, "cmd") != "reread";
  auto list = [&](const char* key, const char* reread_word, const char* update_word) {
    auto names = reply.find(key);
    if (names == reply.end() || !names->is_array()) return;
    for (const auto& name : *names) {
      if (!name.is_string()) continue;
      output.out += name.get<std::string>() + ": " + (applied ? update_word : reread_word) + "\n";
    }
  };
  list("added", "available", "added process group");
  list("changed", "changed", "updated process group");
  list("removed", "disappeared", "removed process group");
  if (output.out.empty()) output.out = "No config updates to processes\n";
  return output;
}

// avail: one line per job of the file and of the running config, as
// supervisorctl's avail: name, in use / avail / removed, auto / manual, and
// the workers.
Output format_avail(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return format_reload(Json{{"cmd", "avail"}}, reply, format);
  const Json* jobs = objects_field(reply, "jobs");
  if (jobs == nullptr) return malformed("avail reply without a list of jobs");
  Output output;
  if (format == Format::kJson) {
    output.out = dump(*jobs);
    return output;
  }
  size_t name_width = 0;
  size_t state_width = 0;
  for (const auto& job : *jobs) {
    name_width = std::max(name_width, string_field(job, "name").size());
    state_width = std::max(state_width, string_field(job, "state").size());
  }
  for (const auto& job : *jobs) {
    auto autostart = job.find("autostart");
    bool manual = autostart != job.end() && autostart->is_boolean() && !autostart->get<bool>();
    uint64_t workers =
        static_cast<uint64_t>(std::max<int64_t>(0, int_field(job, "workers").value_or(0)));
    std::string line = pad(string_field(job, "name"), name_width) + "  " +
                       pad(string_field(job, "state"), state_width) + "  " +
                       pad(manual ? "manual" : "auto", 6) + "  " +
                       plural(workers, "worker", "workers");
    auto changed = job.find("changed");
    if (changed != job.end() && changed->is_boolean() && changed->get<bool>()) {
      line += "  (changed in the file: update applies it)";
    }
    output.out += line + "\n";
  }
  if (jobs->empty()) output.out = "No jobs in the config file or in corrald\n";
  return output;
}

namespace {

// `pid JOB:INDEX` names one worker whatever the config says: print its bare
// pid, as supervisorctl does, so that `kill $(corralctl pid web:0)` works.
bool names_one_worker(const Json& request) {
  auto targets = request.find("targets");
  if (targets == request.end() || !targets->is_array() || targets->size() != 1) return false;
  if (!targets->front().is_string()) return false;
  auto target = protocol::parse_target(targets->front().get<std::string>());
  return target && target->index.has_value();
}

}  // namespace

Output format_pid(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  Output output;
  if (!request.contains("targets")) {
    auto pid = int_field(reply, "pid");
    if (!pid) return malformed("pid reply without a pid");
    output.out = std::to_string(*pid) + "\n";
    return output;
  }
  const Json* workers = workers_of(reply);
  if (workers == nullptr) return malformed("pid reply without a list of workers");

  bool one = names_one_worker(request) && workers->size() == 1;
  if (one && !int_field(workers->front(), "pid")) {
    output = failed(string_field(workers->front(), "name") + " has no process");
  }
  if (format == Format::kJson) {
    output.out = dump(*workers);
  } else if (one) {
    if (auto pid = int_field(workers->front(), "pid")) output.out = std::to_string(*pid) + "\n";
  } else {
    size_t width = name_width(*workers);
    for (const auto& worker : *workers) {
      auto pid = int_field(worker, "pid");
      output.out += pad(string_field(worker, "name"), width) + "  " +
                    (pid ? std::to_string(*pid) : std::string("-")) + "\n";
    }
  }
  return output;
}

Output format_shutdown(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  Output output;
  output.out = format == Format::kJson ? dump(reply) : "shutting down\n";
  return output;
}

Output format_version(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) {
    Output output = error_reply(reply);
    output.out = format == Format::kJson
                     ? dump(Json{{"corralctl", protocol::kVersion}, {"corrald", nullptr}})
                     : std::string("corralctl ") + protocol::kVersion + "\n";
    return output;
  }
  std::string daemon = string_field(reply, "version");
  if (daemon.empty()) return malformed("version reply without a version");
  Output output;
  if (format == Format::kJson) {
    output.out = dump(Json{{"corralctl", protocol::kVersion}, {"corrald", daemon}});
  } else {
    output.out = std::string("corralctl ") + protocol::kVersion + "\ncorrald " + daemon + "\n";
  }
  return output;
}

}  // namespace corral::ctl

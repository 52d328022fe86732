#include "daemon/commands.h"

#include <unistd.h>

#include <memory>

namespace corral::daemon {

using protocol::Json;

Commands::Commands(Supervisor& supervisor, std::function<void()> shutdown)
    : supervisor_(supervisor), shutdown_(std::move(shutdown)) {}

Json to_json(const WorkerStatus& s) {
  Json j;
  j["name"] = s.id.str();
  j["job"] = s.id.job;
  j["index"] = s.id.index;
  j["state"] = to_string(s.state);
  j["pid"] = s.pid > 0 ? Json(s.pid) : Json(nullptr);
  j["uptime_s"] = s.uptime_s;
  j["restarts"] = s.restarts;
  j["exit_status"] = s.last_exit ? Json(s.last_exit->shell_status()) : Json(nullptr);
  j["exit_description"] = s.last_exit ? Json(s.last_exit->str()) : Json(nullptr);
  j["spawn_error"] = s.spawn_error.empty() ? Json(nullptr) : Json(s.spawn_error);
  j["description"] = s.description;
  j["tasks_ok"] = s.tasks_ok;
  j["tasks_failed"] = s.tasks_failed;
  j["cpu_s"] = s.cpu_s;
  j["rss_bytes"] = s.rss_bytes;
  return j;
}

void Commands::handle(const Json& request, Reply reply) {
  if (!request.is_object()) return reply(protocol::error_reply("a request is a JSON object"));
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) {
    return reply(protocol::error_reply("a request needs \"cmd\": a string"));
  }
  const std::string name = *cmd;
  if (name == "status") return status(request, std::move(reply));
  if (name == "start" || name == "stop" || name == "restart") {
    return change(request, name, std::move(reply));
  }
  if (name == "pid") return pid(request, std::move(reply));
  if (name == "version") return reply(Json{{"ok", true}, {"version", protocol::kVersion}});
  if (name == "shutdown") {
    reply(Json{{"ok", true}});
    shutdown_();
    return;
  }
  reply(protocol::error_reply("unknown command: " + name));
}

std::optional<std::vector<WorkerId>> Commands::targets(const Json& request, bool default_all,
                                                       const Reply& reply) {
  std::vector<protocol::Target> wanted;
  auto it = request.find("targets");
  if (it != request.end() && !it->is_null()) {
    if (!it->is_array()) {
      reply(protocol::error_reply("\"targets\" must be a list of strings"));
      return std::nullopt;
    }
    for (const auto& item : *it) {
      auto target =
          item.is_string() ? protocol::parse_target(item.get<std::string>()) : std::nullopt;
      if (!target) {
        reply(protocol::error_reply("bad target " + item.dump() +
                                    ": expected all, JOB or JOB:INDEX"));
        return std::nullopt;
      }
      wanted.push_back(*target);
    }
  }
  if (wanted.empty()) {
    if (!default_all) {
      reply(protocol::error_reply("no target given: name JOB, JOB:INDEX or all"));
      return std::nullopt;
    }
    wanted.push_back(protocol::Target{});
  }
  auto selected = supervisor_.select(wanted);
  if (auto* error = std::get_if<std::string>(&selected)) {
    reply(protocol::error_reply(*error));
    return std::nullopt;
  }
  return std::get<std::vector<WorkerId>>(std::move(selected));
}

void Commands::status(const Json& request, Reply reply) {
  auto ids = targets(request, true, reply);
  if (!ids) return;
  Json workers = Json::array();
  for (const auto& id : *ids) workers.push_back(to_json(supervisor_.status(id)));
  reply(Json{{"ok", true}, {"workers", std::move(workers)}});
}

namespace {

// How one worker's start/stop/restart ended; nullopt while it goes on.
struct Outcome {
  bool ok;
  std::string message;
};

std::optional<Outcome> start_outcome(const Supervisor& supervisor, const WorkerId& id) {
  auto state = supervisor.state(id);
  if (!state) return Outcome{false, "ERROR (no such worker)"};
  if (supervisor.in_transition(id)) return std::nullopt;
  switch (*state) {
    case State::kRunning:
      return Outcome{true, "started"};
    case State::kFatal:
      return Outcome{false, supervisor.status(id).spawn_error.empty()
                                ? "ERROR (abnormal termination)"
                                : "ERROR (spawn error)"};
    case State::kExited:
      return Outcome{false, "ERROR (exited: " + supervisor.status(id).description + ")"};
    case State::kStopped:
      return Outcome{false, "ERROR (stopped)"};
    default:
      return std::nullopt;
  }
}

std::optional<Outcome> stop_outcome(const Supervisor& supervisor, const WorkerId& id) {
  auto state = supervisor.state(id);
  if (!state) return Outcome{true, "stopped"};
  if (has_process(*state)) return std::nullopt;
  return Outcome{true, "stopped"};
}

}  // namespace

void Commands::change(const Json& request, const std::string& verb, Reply reply) {
  auto ids = targets(request, false, reply);
  if (!ids) return;

  // What each worker was before: a start of a running worker is "already
  // started", a stop of one without a process "not running".
  struct Pending {
    WorkerId id;
    std::optional<Outcome> outcome;
  };
  auto pending = std::make_shared<std::vector<Pending>>();
  for (const auto& id : *ids) {
    State before = *supervisor_.state(id);
    Pending p{id, std::nullopt};
    if (verb == "start" && (before == State::kRunning))
      p.outcome = Outcome{true, "already started"};
    if (verb == "stop" && !has_process(before)) {
      p.outcome = Outcome{
          true, before == State::kBackoff || before == State::kFatal ? "stopped" : "not running"};
    }
    pending->push_back(std::move(p));
  }
  for (const auto& p : *pending) {
    if (p.outcome) {
      if (verb == "stop") supervisor_.stop(p.id);  // BACKOFF/FATAL -> STOPPED
      continue;
    }
    if (verb == "start") supervisor_.start(p.id);
    if (verb == "stop") supervisor_.stop(p.id);
    if (verb == "restart") supervisor_.restart(p.id);
  }

  Supervisor* supervisor = &supervisor_;
  bool stopping = verb == "stop";
  supervisor_.add_waiter([supervisor, pending, stopping, reply = std::move(reply)] {
    bool all_done = true;
    for (auto& p : *pending) {
      if (!p.outcome) {
        p.outcome = stopping ? stop_outcome(*supervisor, p.id) : start_outcome(*supervisor, p.id);
      }
      if (!p.outcome) all_done = false;
    }
    if (!all_done) return false;
    bool ok = true;
    Json workers = Json::array();
    for (const auto& p : *pending) {
      ok = ok && p.outcome->ok;
      auto state = supervisor->state(p.id);
      workers.push_back(Json{{"name", p.id.str()},
                             {"ok", p.outcome->ok},
                             {"state", state ? to_string(*state) : "REMOVED"},
                             {"message", p.outcome->message}});
    }
    Json answer{{"ok", ok}, {"workers", std::move(workers)}};
    if (!ok)
      answer["error"] =
          "not every worker could be " + std::string(stopping ? "stopped" : "started");
    reply(answer);
    return true;
  });
}

void Commands::pid(const Json& request, Reply reply) {
  auto it = request.find("targets");
  if (it == request.end() || it->is_null() || (it->is_array() && it->empty())) {
    return reply(Json{{"ok", true}, {"pid", getpid()}});
  }
  auto ids = targets(request, false, reply);
  if (!ids) return;
  Json workers = Json::array();
  for (const auto& id : *ids) {
    WorkerStatus s = supervisor_.status(id);
    workers.push_back(Json{{"name", id.str()}, {"pid", s.pid > 0 ? Json(s.pid) : Json(nullptr)}});
  }
  reply(Json{{"ok", true}, {"workers", std::move(workers)}});
}

}  // namespace corral::daemon

#include "daemon/commands.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/units.h"

namespace corral::daemon {

using protocol::Json;

Commands::Commands(Supervisor& supervisor, Host& host, std::function<void()> shutdown,
                   ConfigLoader load, config::DaemonSpec daemon)
    : supervisor_(supervisor),
      host_(host),
      shutdown_(std::move(shutdown)),
      load_(std::move(load)),
      daemon_(std::move(daemon)) {}

Reply Reply::to(const ConversationPtr& conversation) {
  auto state = std::make_shared<State>();
  state->conversation = conversation;
  return Reply(std::move(state));
}

void Reply::operator()(const Json& message) const {
  if (std::exchange(state_->answered, true)) return;
  if (state_->send) return state_->send(message);
  auto conversation = state_->conversation.lock();
  if (conversation && !conversation->closed()) conversation->send(message, true);
}

bool Reply::needed() const {
  if (state_->answered) return false;
  if (state_->send) return true;
  auto conversation = state_->conversation.lock();
  return conversation && !conversation->closed();
}

Json to_json(const BrokerStatus& b) {
  auto known = [](int64_t n) { return n >= 0 ? Json(n) : Json(nullptr); };
  return Json{{"state", b.state},
              {"error", b.error.empty() ? Json(nullptr) : Json(b.error)},
              {"url", b.url},
              {"stream", b.stream},
              {"consumer", b.consumer},
              {"lag", known(b.lag)},
              {"pending", known(b.pending)},
              {"held", b.held},
              {"read", b.read},
              {"claimed", b.claimed},
              {"acked", b.acked},
              {"dead", b.dead},
              {"added", b.added},
              {"reconnects", b.reconnects}};
}

Json to_json(const WorkerStatus& s, const std::vector<std::string>* fields) {
  auto want = [fields](std::string_view key) {
    return fields == nullptr || std::find(fields->begin(), fields->end(), key) != fields->end();
  };
  Json j = Json::object();
  if (want("name")) j["name"] = s.id.str();
  if (want("job")) j["job"] = s.id.job;
  if (want("index")) j["index"] = s.id.index;
  if (want("state")) j["state"] = to_string(s.state);
  if (want("pid")) j["pid"] = s.pid > 0 ? Json(s.pid) : Json(nullptr);
  if (want("uptime_s")) j["uptime_s"] = s.uptime_s;
  if (want("restarts")) j["restarts"] = s.restarts;
  if (want("exit_status")) {
    j["exit_status"] = s.last_exit ? Json(s.last_exit->shell_status()) : Json(nullptr);
  }
  if (want("exit_description")) {
    j["exit_description"] = s.last_exit ? Json(s.last_exit->str()) : Json(nullptr);
  }
  if (want("cgroup")) j["cgroup"] = s.cgroup.empty() ? Json(nullptr) : Json(s.cgroup);
  if (s.cgroup.empty() && want("cgroup_off")) j["cgroup_off"] = s.cgroup_off;
  if (want("paused")) j["paused"] = s.paused;
  if (want("limits")) j["limits"] = s.limits;
  if (want("spawn_error")) {
    j["spawn_error"] = s.spawn_error.empty() ? Json(nullptr) : Json(s.spawn_error);
  }
  if (want("description")) j["description"] = s.description;
  if (want("tasks_ok")) j["tasks_ok"] = s.tasks_ok;
  if (want("tasks_failed")) j["tasks_failed"] = s.tasks_failed;
  if (want("tasks_held")) j["tasks_held"] = s.tasks_held;
  if (want("job_tasks")) {
    j["job_tasks"] = s.job_tasks ? Json{{"queued", s.job_tasks->queued},
                                        {"delayed", s.job_tasks->delayed},
                                        {"in_flight", s.job_tasks->in_flight},
                                        {"spooled", s.job_tasks->spooled}}
                                 : Json(nullptr);
  }
  if (want("broker")) j["broker"] = s.broker ? to_json(*s.broker) : Json(nullptr);
  if (want("cpu_s")) j["cpu_s"] = s.cpu_s;
  if (want("rss_bytes")) j["rss_bytes"] = s.rss_bytes;
  if (want("cgroup_memory_bytes")) {
    j["cgroup_memory_bytes"] = s.cgroup_memory_bytes ? Json(*s.cgroup_memory_bytes) : Json(nullptr);
  }
  if (want("cpu_percent")) j["cpu_percent"] = s.cpu_percent;
  if (want("threads")) j["threads"] = s.threads;
  if (want("voluntary_switches")) j["voluntary_switches"] = s.voluntary_switches;
  if (want("involuntary_switches")) j["involuntary_switches"] = s.involuntary_switches;
  if (want("enforced")) j["enforced"] = s.enforced;
  if (want("exits")) j["exits"] = s.exits;
  return j;
}

Result<std::vector<WorkerId>> select_workers(const Supervisor& supervisor,
                                             const std::vector<protocol::Target>& targets) {
  std::set<WorkerId> chosen;
  for (const auto& target : targets) {
    if (target.all()) {
      for (const auto& job : supervisor.job_names()) {
        for (const auto& id : supervisor.workers_of(job)) chosen.insert(id);
      }
      continue;
    }
    if (!supervisor.has_job(target.job)) return Error("no such job: " + target.job);
    std::vector<WorkerId> workers = supervisor.workers_of(target.job);
    if (target.index) {
      if (*target.index >= workers.size()) {
        return Error("no such worker: " + protocol::to_string(target) + " (job " + target.job +
                     " has " + std::to_string(workers.size()) + " workers)");
      }
      chosen.insert(WorkerId{target.job, *target.index});
    } else {
      chosen.insert(workers.begin(), workers.end());
    }
  }
  return std::vector<WorkerId>(chosen.begin(), chosen.end());
}

void Commands::handle(const Json& request, ConversationPtr conversation) {
  if (auto checked = protocol::check_request(request); !checked) {
    return conversation->send(protocol::error_reply(checked.error().message()), true);
  }
  if (request.is_object() && request.value("cmd", "") == "submit") {
    return submit(request, std::move(conversation));
  }
  if (request.is_object() && request.value("cmd", "") == "tail") {
    return tail(request, std::move(conversation));
  }
  if (request.is_object() && request.value("cmd", "") == "fg") {
    return fg(request, std::move(conversation));
  }
  if (request.is_object() && request.value("cmd", "") == "retry" && request.value("wait", false)) {
    return retry_and_wait(request, std::move(conversation));
  }
  if (request.is_object() && request.value("cmd", "") == "maintail") {
    return maintail(request, std::move(conversation));
  }
  if (request.is_object() && request.value("cmd", "") == "results") {
    return results(request, std::move(conversation));
  }
  handle(request, Reply::to(conversation));
}

void Commands::client_gone() {
  supervisor_.prune_waiters();
  for (const auto& job : supervisor_.job_names()) {
    if (auto feed = supervisor_.feed(job)) feed->prune_listeners();
  }
}

void Commands::handle(const Json& request, Reply reply) {
  if (auto checked = protocol::check_request(request); !checked) {
    return reply(protocol::error_reply(checked.error().message()));
  }
  const std::string name = request["cmd"];
  if (name == "status") return status(request, std::move(reply));
  if (name == "start" || name == "stop" || name == "restart") {
    return change(request, name, std::move(reply));
  }
  if (name == "pid") return pid(request, std::move(reply));
  if (name == "dead") return dead(request, std::move(reply));
  if (name == "cancel") return cancel(request, std::move(reply));
  if (name == "retry") return retry(request, std::move(reply));
  if (name == "shared") return shared(request, std::move(reply));
  if (name == "wait") return wait(request, std::move(reply));
  if (name == "stats") return stats(request, std::move(reply));
  if (name == "reread") return reload(false, std::move(reply));
  if (name == "avail") return avail(std::move(reply));
  if (name == "update" || name == "reload") return reload(true, std::move(reply));
  if (name == "signal") return signal(request, std::move(reply));
  if (name == "clear") return clear(request, std::move(reply));
  if (name == "pause" || name == "resume") return pause(request, name == "pause", std::move(reply));
  if (name == "submit" || name == "tail" || name == "fg" || name == "maintail") {
    return reply(protocol::error_reply(name + " needs a streaming connection"));
  }
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
      auto target = protocol::parse_target(item.is_string() ? item.get<std::string>() : "");
      if (!target) {
        reply(protocol::error_reply(target.error().message()));
        return std::nullopt;
      }
      wanted.push_back(*target);
    }
  }
  if (wanted.empty()) {
    if (!default_all) {
      reply(protocol::error_reply("no target given: name JOB, JOB:INDEX, JOB:* or all"));
      return std::nullopt;
    }
    wanted.push_back(protocol::Target{});
  }
  auto selected = select_workers(supervisor_, wanted);
  if (!selected) {
    reply(protocol::error_reply(selected.error().message()));
    return std::nullopt;
  }
  return std::move(*selected);
}

void Commands::status(const Json& request, Reply reply) {
  // "fields": only those; /proc is sampled only for a sampled one.
  std::optional<std::vector<std::string>> fields;
  if (auto it = request.find("fields"); it != request.end()) {
    fields = it->get<std::vector<std::string>>();
  }
  if (!fields || std::any_of(fields->begin(), fields->end(), protocol::sampled_worker_field)) {
    supervisor_.refresh();
  }
  auto ids = targets(request, true, reply);
  if (!ids) return;
  Json workers = Json::array();
  const std::vector<std::string>* only = fields ? &*fields : nullptr;
  for (const auto& id : *ids) workers.push_back(to_json(supervisor_.status(id), only));
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
  if (verb == "restart" && request.value("rolling", false)) return rolling_restart(*ids, reply);

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
  auto gone = reply.unneeded();
  auto waiter = [supervisor, pending, stopping, reply = std::move(reply)] {
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
  };
  supervisor_.add_waiter(std::move(waiter), std::move(gone));
}

// One worker at a time, in order: each next one once the last is RUNNING
// again. A worker that fails to start ends the roll; the rest keep running.
// So does a client that goes away: the roll is its command.
void Commands::rolling_restart(const std::vector<WorkerId>& ids, Reply reply) {
  struct Roll {
    std::vector<WorkerId> ids;
    size_t next = 0;
    bool waiting = false;
    Json workers = Json::array();
    bool ok = true;
  };
  auto roll = std::make_shared<Roll>();
  roll->ids = ids;
  Supervisor* supervisor = &supervisor_;
  auto waiter = [roll, supervisor, reply] {
    for (;;) {
      if (roll->waiting) {
        const WorkerId& id = roll->ids[roll->next];
        auto outcome = start_outcome(*supervisor, id);
        if (!outcome) return false;
        roll->waiting = false;
        roll->ok = roll->ok && outcome->ok;
        auto state = supervisor->state(id);
        roll->workers.push_back(Json{{"name", id.str()},
                                     {"ok", outcome->ok},
                                     {"state", state ? to_string(*state) : "REMOVED"},
                                     {"message", outcome->ok ? "restarted" : outcome->message}});
        ++roll->next;
      }
      if (roll->next == roll->ids.size() || !roll->ok) break;
      roll->waiting = true;
      supervisor->restart(roll->ids[roll->next]);
    }
    for (size_t i = roll->next; i < roll->ids.size(); ++i) {
      roll->workers.push_back(Json{{"name", roll->ids[i].str()},
                                   {"ok", false},
                                   {"message", "not restarted: an earlier worker failed"}});
    }
    Json answer{{"ok", roll->ok}, {"workers", roll->workers}};
    if (!roll->ok) answer["error"] = "the rolling restart stopped at a worker that did not start";
    reply(answer);
    return true;
  };
  supervisor_.add_waiter(std::move(waiter), reply.unneeded());
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

std::optional<config::Config> Commands::read_config(const Reply& reply) {
  if (!load_) {
    reply(protocol::error_reply("this daemon has no config file to read"));
    return std::nullopt;
  }
  config::ParseResult parsed = load_();
  if (!parsed.ok()) {
    Json errors = Json::array();
    for (const auto& diagnostic : parsed.error()) errors.push_back(diagnostic.str());
    std::string first = errors.empty() ? std::string() : errors[0].get<std::string>();
    reply(Json{{"ok", false},
               {"error", "the config has " + std::to_string(errors.size()) +
                             (errors.size() == 1 ? " error" : " errors") +
                             "; nothing was changed: " + first},
               {"errors", std::move(errors)}});
    return std::nullopt;
  }
  return std::move(*parsed);
}

void Commands::reload(bool apply, Reply reply) {
  if (load_ && supervisor_.updating()) {
    return reply(protocol::error_reply("an update is already under way; try again when it ends"));
  }
  std::optional<config::Config> parsed = read_config(reply);
  if (!parsed) return;
  JobChanges changes = supervisor_.diff(parsed->jobs);
  Json answer{{"ok", true},
              {"added", changes.added},
              {"changed", changes.changed},
              {"removed", changes.removed},
              {"applied", apply}};
  if (!(parsed->daemon == daemon_)) {
    answer["warnings"] = Json::array(
        {"the daemon: section changed; restart corrald to apply it (jobs are updated)"});
  }
  if (!apply) return reply(answer);
  if (on_reload_) on_reload_(true);
  auto on_reload = on_reload_;
  if (!supervisor_.update(parsed->jobs, [reply, answer, on_reload] {
        if (on_reload) on_reload(false);
        reply(answer);
      })) {
    if (on_reload_) on_reload_(false);
    reply(protocol::error_reply("cannot update while the daemon shuts down"));
  }
}

// supervisorctl's avail: the jobs of the file (as reread reads it) and of
// the running config, each "in use", "avail" (update would add it) or
// "removed" (update would remove it).
void Commands::avail(Reply reply) {
  std::optional<config::Config> parsed = read_config(reply);
  if (!parsed) return;
  JobChanges changes = supervisor_.diff(parsed->jobs);
  auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  std::map<std::string, Json> jobs;
  auto entry = [](const config::JobSpec& spec, const char* state, bool changed) {
    return Json{{"name", spec.name},
                {"state", state},
                {"autostart", spec.autostart},
                {"workers", spec.workers},
                {"changed", changed}};
  };
  for (const auto& spec : parsed->jobs) {
    if (const config::JobSpec* running = supervisor_.job_spec(spec.name)) {
      jobs[spec.name] = entry(*running, "in use", listed(changes.changed, spec.name));
    } else {
      jobs[spec.name] = entry(spec, "avail", false);
    }
  }
  for (const auto& name : changes.removed) {
    if (const config::JobSpec* running = supervisor_.job_spec(name)) {
      jobs[name] = entry(*running, "removed", false);
    }
  }
  Json list = Json::array();
  for (auto& [name, job] : jobs) list.push_back(std::move(job));
  reply(Json{{"ok", true}, {"jobs", std::move(list)}});
}

namespace {

// The reply of a command done to each worker at once: each worker's
// message is DONE or "ERROR (why ACT failed)".
Json each_worker(const std::vector<WorkerId>& ids,
                 const std::function<Status(const WorkerId&)>& act, const char* done,
                 const char* failed) {
  bool ok = true;
  Json workers = Json::array();
  for (const auto& id : ids) {
    Status acted = act(id);
    ok = ok && acted.ok();
    workers.push_back(Json{{"name", id.str()},
                           {"ok", acted.ok()},
                           {"message", acted ? done : "ERROR (" + acted.error().message() + ")"}});
  }
  Json answer{{"ok", ok}, {"workers", std::move(workers)}};
  if (!ok) answer["error"] = failed;
  return answer;
}

}  // namespace

void Commands::signal(const Json& request, Reply reply) {
  auto name = request.find("signal");
  std::optional<int> signo;
  if (name != request.end() && name->is_string()) {
    if (auto parsed = config::parse_signal(name->get<std::string>())) signo = *parsed;
  }
  if (!signo) {
    return reply(protocol::error_reply(
        "\"signal\" must name a signal: TERM, HUP, USR1, KILL, ... or a number"));
  }
  auto ids = targets(request, false, reply);
  if (!ids) return;
  reply(each_worker(
      *ids, [&](const WorkerId& id) { return supervisor_.signal(id, *signo); }, "signalled",
      "not every worker could be signalled"));
}

void Commands::clear(const Json& request, Reply reply) {
  auto ids = targets(request, false, reply);
  if (!ids) return;
  reply(each_worker(
      *ids, [&](const WorkerId& id) { return supervisor_.clear_logs(id); }, "cleared",
      "not every log could be cleared"));
}

void Commands::pause(const Json& request, bool paused, Reply reply) {
  auto ids = targets(request, false, reply);
  if (!ids) return;
  reply(each_worker(
      *ids,
      [&](const WorkerId& id) -> Status {
        Result<std::string> how = supervisor_.pause(id, paused);
        if (!how) return std::move(how).error();
        return {};
      },
      paused ? "paused" : "resumed",
      paused ? "not every worker could be paused" : "not every worker could be resumed"));
}

}  // namespace corral::daemon

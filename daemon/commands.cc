#include "daemon/commands.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "config/units.h"
#include "protocol/task_lines.h"

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

namespace {

// A waiter's GONE: its answer is no longer awaited.
std::function<bool()> unneeded(const Reply& reply) {
  return [reply] { return !reply.needed(); };
}

}  // namespace

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
  j["cpu_percent"] = s.cpu_percent;
  j["threads"] = s.threads;
  j["voluntary_switches"] = s.voluntary_switches;
  j["involuntary_switches"] = s.involuntary_switches;
  j["enforced"] = s.enforced;
  j["exits"] = s.exits;
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
  if (is_test_hook(request)) return handle(request, Reply::to(conversation));
  if (auto checked = protocol::check_request(request); !checked) {
    return conversation->send(protocol::error_reply(checked.error().message()), true);
  }
  if (request.is_object() && request.value("cmd", "") == "submit") {
    return submit(request, std::move(conversation));
  }
  if (request.is_object() && request.value("cmd", "") == "tail") {
    return tail(request, std::move(conversation));
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
  if (is_test_hook(request)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(request.value("ms", 0)));
    return reply(Json{{"ok", true}});
  }
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
  if (name == "retry") return retry(request, std::move(reply));
  if (name == "shared") return shared(request, std::move(reply));
  if (name == "wait") return wait(request, std::move(reply));
  if (name == "stats") return stats(request, std::move(reply));
  if (name == "reread") return reload(false, std::move(reply));
  if (name == "update" || name == "reload") return reload(true, std::move(reply));
  if (name == "signal") return signal(request, std::move(reply));
  if (name == "clear") return clear(request, std::move(reply));
  if (name == "submit" || name == "tail") {
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
  auto selected = select_workers(supervisor_, wanted);
  if (!selected) {
    reply(protocol::error_reply(selected.error().message()));
    return std::nullopt;
  }
  return std::move(*selected);
}

void Commands::status(const Json& request, Reply reply) {
  supervisor_.refresh();
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
  auto gone = unneeded(reply);
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
  supervisor_.add_waiter(std::move(waiter), unneeded(reply));
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

std::shared_ptr<JobFeed> Commands::feed_of(const Json& request, const Reply& reply) {
  auto it = request.find("job");
  if (it == request.end() || !it->is_string()) {
    reply(protocol::error_reply("\"job\" must name a job"));
    return nullptr;
  }
  const std::string job = *it;
  if (!supervisor_.has_job(job)) {
    reply(protocol::error_reply("no such job: " + job));
    return nullptr;
  }
  std::shared_ptr<JobFeed> feed = supervisor_.feed(job);
  if (feed == nullptr) {
    std::string why = supervisor_.feed_error(job);
    reply(protocol::error_reply(why.empty() ? "job " + job + " has channel: none; it takes no tasks"
                                            : "job " + job + " has no task feed: " + why));
  }
  return feed;
}

namespace {

// A result line of `submit --wait`. TIMING adds run_us: dispatch to result,
// as corrald saw it.
std::string result_line(const FinishedTask& task, bool timing) {
  return protocol::result_line({task.id, task.seq, to_string(task.outcome), task.result,
                                task.attempts,
                                timing ? std::optional(task.run_time) : std::nullopt});
}

}  // namespace

void Commands::submit(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  const std::string job = request["job"];
  const uint64_t max_bytes = supervisor_.job_spec(job)->queue.max_task_bytes;
  bool wait = request.value("wait", false);
  bool timing = request.value("timing", false);

  struct State {
    uint64_t submitter = 0;
    uint64_t seq = 0;
    uint64_t accepted = 0;
    uint64_t refused = 0;
    uint64_t finished = 0;
    bool input_done = false;
    bool ended = false;
  };
  auto state = std::make_shared<State>();
  std::weak_ptr<Conversation> weak = conversation;
  auto maybe_end = [state, weak, feed] {
    auto conv = weak.lock();
    if (!conv || state->ended || !state->input_done) return;
    if (state->submitter != 0 && state->finished < state->accepted) return;
    state->ended = true;
    if (state->submitter != 0) feed->remove_submitter(state->submitter);
    conv->send(Json{{"end", true}, {"submitted", state->accepted}, {"refused", state->refused}},
               true);
  };
  if (wait) {
    state->submitter = feed->add_submitter([state, weak, maybe_end, timing](FinishedTask&& task) {
      ++state->finished;
      if (auto conv = weak.lock()) conv->send_raw(result_line(task, timing));
      maybe_end();
    });
  }
  conversation->on_close([state, feed] {
    state->ended = true;
    if (state->submitter != 0) feed->remove_submitter(state->submitter);
  });
  conversation->send(Json{{"ok", true}}, false);

  Dispatcher* dispatcher = &feed->dispatcher();
  conversation->take_lines(
      [state, weak, feed, dispatcher, max_bytes, maybe_end, job](std::string_view line) {
        if (line == protocol::kEndOfTasks) {
          state->input_done = true;
          feed->pump();
          maybe_end();
          return Conversation::Verdict::kEnd;
        }
        if (line.empty() || line[0] != protocol::kTaskMark) {
          state->input_done = true;
          state->ended = true;
          if (state->submitter != 0) feed->remove_submitter(state->submitter);
          if (auto conv = weak.lock()) {
            conv->send(protocol::error_reply("bad line in a submit stream: expected +PAYLOAD or ."),
                       true);
          }
          return Conversation::Verdict::kEnd;
        }
        if (feed->retired()) {
          state->input_done = true;
          state->ended = true;
          if (state->submitter != 0) feed->remove_submitter(state->submitter);
          if (auto conv = weak.lock()) {
            conv->send(
                protocol::error_reply("job " + job +
                                      " was removed or rebuilt by a reload during this "
                                      "submit; " +
                                      std::to_string(state->accepted) + " tasks had been accepted"),
                true);
          }
          return Conversation::Verdict::kEnd;
        }
        std::string_view payload = line.substr(1);
        uint64_t seq = state->seq++;
        if (payload.size() > max_bytes) {
          ++state->refused;
          if (auto conv = weak.lock()) {
            conv->send_raw(
                protocol::encode_line(Json{{"seq", seq},
                                           {"status", "refused"},
                                           {"error", "task of " + std::to_string(payload.size()) +
                                                         " bytes exceeds queue.max_task_bytes (" +
                                                         std::to_string(max_bytes) + ")"}}));
          }
          return Conversation::Verdict::kContinue;
        }
        dispatcher->submit(std::string(payload), state->submitter, seq);
        ++state->accepted;
        if (!dispatcher->full()) return Conversation::Verdict::kContinue;
        // Back-pressure: read no more until the queue has room.
        feed->pump();
        if (!dispatcher->full()) return Conversation::Verdict::kContinue;
        feed->add_listener(
            [weak, dispatcher] {
              if (dispatcher->full()) return false;
              if (auto conv = weak.lock()) conv->resume();
              return true;
            },
            [weak] {
              auto conv = weak.lock();
              return !conv || conv->closed();
            });
        return Conversation::Verdict::kPause;
      },
      [feed] { feed->pump(); });
}

void Commands::dead(const Json& request, Reply reply) {
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  Json letters = Json::array();
  for (const DeadLetter& letter : feed->dispatcher().dead_letters()) {
    letters.push_back(Json{{"id", letter.id},
                           {"payload", letter.payload},
                           {"status", to_string(letter.outcome)},
                           {"reason", letter.reason},
                           {"attempts", letter.attempts}});
  }
  reply(Json{{"ok", true},
             {"dead", std::move(letters)},
             {"dropped", feed->dispatcher().counts().dead_letters_dropped}});
}

void Commands::retry(const Json& request, Reply reply) {
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  size_t n = feed->dispatcher().retry_dead_letters();
  feed->pump();
  reply(Json{{"ok", true}, {"requeued", n}});
}

void Commands::shared(const Json& request, Reply reply) {
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  Json values = Json::object(), arrays = Json::object();
  for (const SharedReading& r : feed->shared()) {
    Json items = Json::array();
    for (size_t i = 0; i < r.text.size(); ++i) {
      // Exact integers, not doubles.
      if (r.type == "f64")
        items.push_back(r.values[i]);
      else if (r.type == "u64")
        items.push_back(std::stoull(r.text[i]));
      else
        items.push_back(std::stoll(r.text[i]));
    }
    if (r.is_array)
      arrays[r.name] = std::move(items);
    else
      values[r.name] = items.empty() ? Json(nullptr) : items[0];
  }
  reply(Json{{"ok", true}, {"values", std::move(values)}, {"arrays", std::move(arrays)}});
}

void Commands::wait(const Json& request, Reply reply) {
  auto job_it = request.find("job");
  if (job_it == request.end() || !job_it->is_string()) {
    return reply(protocol::error_reply("\"job\" must name a job"));
  }
  const std::string job = *job_it;
  if (!supervisor_.has_job(job)) return reply(protocol::error_reply("no such job: " + job));
  bool running = request.value("running", false);
  bool drained = request.value("drained", false);
  if (!running && !drained) {
    return reply(protocol::error_reply("wait needs \"running\" or \"drained\""));
  }
  std::shared_ptr<JobFeed> feed = supervisor_.feed(job);
  if (drained && feed == nullptr) {
    return reply(protocol::error_reply("job " + job + " takes no tasks: it cannot be drained"));
  }

  struct Waiting {
    std::unique_ptr<Timer> timer;
  };
  auto state = std::make_shared<Waiting>();
  Supervisor* supervisor = &supervisor_;
  auto describe = [supervisor, job, feed] {
    if (!supervisor->has_job(job)) return "job " + job + " is gone";
    std::vector<WorkerId> ids = supervisor->workers_of(job);
    size_t up = 0;
    for (const auto& id : ids) up += supervisor->state(id) == State::kRunning ? 1 : 0;
    std::string text = std::to_string(up) + "/" + std::to_string(ids.size()) + " workers RUNNING";
    if (feed != nullptr) {
      text += ", " + std::to_string(feed->dispatcher().queued()) + " queued, " +
              std::to_string(feed->dispatcher().in_flight()) + " in flight";
    }
    return text;
  };
  // Answers, then drops the waiter and the listener at once, not at a next
  // change of state that may be far off (a client may ask again and again
  // on one connection).
  std::weak_ptr<JobFeed> weak_feed = feed;
  auto answer = [supervisor, weak_feed, reply](const Json& message) {
    reply(message);
    supervisor->prune_waiters();
    if (auto feed = weak_feed.lock()) feed->prune_listeners();
  };
  auto check_once = [state, supervisor, job, feed, running, drained, reply, answer] {
    if (!reply.needed()) return true;
    if (!supervisor->has_job(job) || (feed != nullptr && feed->retired())) {
      if (state->timer) state->timer->cancel();
      answer(protocol::error_reply("job " + job + " was removed or rebuilt by a reload"));
      return true;
    }
    if (running) {
      for (const auto& id : supervisor->workers_of(job)) {
        if (supervisor->state(id) != State::kRunning) return false;
      }
    }
    if (drained && (feed->dispatcher().queued() > 0 || feed->dispatcher().in_flight() > 0)) {
      return false;
    }
    if (state->timer) state->timer->cancel();
    answer(Json{{"ok", true}});
    return true;
  };
  // Shared by the supervisor's waiter, which owns it, and the feed's
  // listener, which does not: once the supervisor lets it go (answered, or
  // the client has gone) nothing holds the feed or the timer for it.
  auto check = std::make_shared<std::function<bool()>>(std::move(check_once));
  if ((*check)()) return;
  if (auto timeout = request.find("timeout_s"); timeout != request.end() && timeout->is_number()) {
    auto ms = std::chrono::milliseconds(static_cast<int64_t>(timeout->get<double>() * 1000));
    state->timer = host_.make_timer();
    // The timer belongs to the state it would answer for: no cycle.
    state->timer->arm(host_.now() + ms, [answer, describe, ms] {
      answer(protocol::error_reply("timed out after " + config::format_duration(ms) + ": " +
                                   describe()));
    });
  }
  auto gone = unneeded(reply);
  supervisor_.add_waiter([check] { return (*check)(); }, gone);
  if (feed != nullptr) {
    std::weak_ptr<std::function<bool()>> weak = check;
    feed->add_listener(
        [weak] {
          auto check = weak.lock();
          return !check || (*check)();
        },
        [weak, gone] { return weak.expired() || gone(); });
  }
}

void Commands::stats(const Json& request, Reply reply) {
  supervisor_.refresh();
  std::vector<std::string> jobs;
  if (auto it = request.find("job"); it != request.end() && it->is_string()) {
    jobs.push_back(*it);
    if (!supervisor_.has_job(*it)) {
      return reply(protocol::error_reply("no such job: " + it->get<std::string>()));
    }
  } else {
    jobs = supervisor_.job_names();
  }
  auto quantiles = [](const Histogram& h) {
    return Json{{"p50", h.quantile_us(0.5)},
                {"p90", h.quantile_us(0.9)},
                {"p99", h.quantile_us(0.99)},
                {"count", h.count()}};
  };
  Json out = Json::object();
  for (const auto& job : jobs) {
    Json j{{"submitted", 0},   {"queued", 0}, {"in_flight", 0},    {"ok", 0},         {"failed", 0},
           {"redelivered", 0}, {"dead", 0},   {"dead_letters", 0}, {"tasks_per_s", 0}};
    if (std::shared_ptr<JobFeed> feed = supervisor_.feed(job)) {
      const Dispatcher& d = feed->dispatcher();
      const TaskCounts& c = d.counts();
      j = Json{{"submitted", c.submitted},
               {"queued", d.queued()},
               {"in_flight", d.in_flight()},
               {"ok", c.ok},
               {"failed", c.failed},
               {"redelivered", c.redelivered},
               {"dead", c.dead},
               {"dead_letters", d.dead_letters().size()},
               {"tasks_per_s", feed->metrics().tasks_per_s},
               {"latency_us", quantiles(feed->metrics().run_time)},
               {"recent_latency_us", quantiles(feed->metrics().recent)}};
    }
    // The job's workers together.
    std::vector<WorkerId> ids = supervisor_.workers_of(job);
    uint64_t running = 0, restarts = 0, rss = 0;
    double cpu_percent = 0;
    for (const auto& id : ids) {
      WorkerStatus s = supervisor_.status(id);
      running += s.state == State::kRunning ? 1 : 0;
      restarts += s.restarts;
      rss += s.rss_bytes;
      cpu_percent += s.cpu_percent;
    }
    j["workers"] = ids.size();
    j["running"] = running;
    j["restarts"] = restarts;
    j["cpu_percent"] = cpu_percent;
    j["rss_bytes"] = rss;
    out[job] = std::move(j);
  }
  Json daemon{{"pid", getpid()},
              {"version", protocol::kVersion},
              {"metrics", metrics_address_.empty() ? Json(nullptr) : Json(metrics_address_)},
              {"waiters", supervisor_.waiter_count()}};
  if (auto self = read_proc(getpid())) {
    daemon["cpu_s"] = self->cpu_s;
    daemon["rss_bytes"] = self->rss_bytes;
    daemon["threads"] = self->threads;
  }
  reply(Json{{"ok", true}, {"daemon", std::move(daemon)}, {"jobs", std::move(out)}});
}

void Commands::reload(bool apply, Reply reply) {
  if (!load_) return reply(protocol::error_reply("this daemon has no config file to read"));
  if (supervisor_.updating()) {
    return reply(protocol::error_reply("an update is already under way; try again when it ends"));
  }
  config::ParseResult parsed = load_();
  if (!parsed.ok()) {
    Json errors = Json::array();
    for (const auto& diagnostic : parsed.error()) errors.push_back(diagnostic.str());
    std::string first = errors.empty() ? std::string() : errors[0].get<std::string>();
    return reply(Json{{"ok", false},
                      {"error", "the config has " + std::to_string(errors.size()) +
                                    (errors.size() == 1 ? " error" : " errors") +
                                    "; nothing was changed: " + first},
                      {"errors", std::move(errors)}});
  }
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

namespace {

// The reply of a command done to each worker at once: ACT returns an error
// or ""; each worker's message is DONE or "ERROR (error)".
Json each_worker(const std::vector<WorkerId>& ids,
                 const std::function<std::string(const WorkerId&)>& act, const char* done,
                 const char* failed) {
  bool ok = true;
  Json workers = Json::array();
  for (const auto& id : ids) {
    std::string error = act(id);
    ok = ok && error.empty();
    workers.push_back(Json{{"name", id.str()},
                           {"ok", error.empty()},
                           {"message", error.empty() ? done : "ERROR (" + error + ")"}});
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
      *ids, [&](const WorkerId& id) { return message_of(supervisor_.signal(id, *signo)); },
      "signalled", "not every worker could be signalled"));
}

void Commands::clear(const Json& request, Reply reply) {
  auto ids = targets(request, false, reply);
  if (!ids) return;
  reply(each_worker(
      *ids, [&](const WorkerId& id) { return message_of(supervisor_.clear_logs(id)); }, "cleared",
      "not every log could be cleared"));
}

namespace {

constexpr size_t kTailChunk = 64 << 10;
constexpr size_t kTailMaxBacklog = 1 << 20;  // a follower reads no more while this waits unsent
constexpr auto kTailPoll = std::chrono::milliseconds(200);

// Where the last LINES lines of the file open at FD start.
off_t start_of_last_lines(int fd, off_t size, uint64_t lines) {
  if (lines == 0) return size;
  std::array<char, kTailChunk> block;
  off_t end = size;
  uint64_t seen = 0;
  while (end > 0) {
    off_t begin = std::max<off_t>(0, end - static_cast<off_t>(block.size()));
    ssize_t n = ::pread(fd, block.data(), static_cast<size_t>(end - begin), begin);
    if (n <= 0) return 0;
    for (ssize_t i = n - 1; i >= 0; --i) {
      // The newline that ends the file does not start a line.
      if (block[static_cast<size_t>(i)] != '\n' || begin + i == size - 1) continue;
      if (++seen == lines) return begin + i + 1;
    }
    end = begin;
  }
  return 0;
}

// One `tail` exchange: the file's last lines, then (follow) what is appended,
// polled; a file that was rotated or truncated is read again from its start.
// The file is opened and looked at only relative to the log directory held
// open (safe_file.h): a link, FIFO or someone else's file at its name is
// refused, never read.
class TailStream : public std::enable_shared_from_this<TailStream> {
 public:
  TailStream(std::shared_ptr<const SafeDir> dir, std::string name, ConversationPtr conversation,
             std::unique_ptr<Timer> timer, Host& host)
      : dir_(std::move(dir)),
        name_(std::move(name)),
        conv_(conversation),
        timer_(std::move(timer)),
        host_(host) {}

  // Opens the file if there is one; why it is refused, or "". A worker that
  // wrote nothing yet has no file: an empty tail, not an error.
  std::string open_first() {
    open_file();
    return error_;
  }
  void start(uint64_t lines, bool follow) {
    follow_ = follow;
    if (fd_.valid()) offset_ = start_of_last_lines(fd_.get(), size_of(), lines);
    poll();
  }

 private:
  bool open_file() {
    if (fd_.valid()) return true;
    if (!dir_) return false;
    OpenedFile file = dir_->open(name_, FileUse::kRead, "log file");
    if (!file) {
      // Logged once per stream, not at every poll of a follower.
      if (!file.error.empty() && error_.empty()) spdlog::error("tail: {}", file.error);
      error_ = file.error;
      return false;
    }
    error_.clear();
    fd_ = std::move(file.fd);
    inode_ = file.st.st_ino;
    offset_ = file.st.st_size;
    return true;
  }
  off_t size_of() const {
    struct stat st {};
    return fd_.valid() && ::fstat(fd_.get(), &st) == 0 ? st.st_size : 0;
  }
  // The file at the name is not the one we hold any more (rotated), or it shrank.
  void check_replaced() {
    if (!dir_) return;
    auto st = dir_->stat(name_);
    if (!st) return;
    if (!fd_.valid() || st->st_ino != inode_) {
      if (fd_.valid()) {
        send_available();  // what the old file got before the rotation
        fd_.reset();
      }
      if (open_file()) offset_ = 0;
      return;
    }
    if (size_of() < offset_) offset_ = 0;
  }
  // Sends what the file has past offset_, while the client keeps up.
  void send_available() {
    auto conv = conv_.lock();
    if (!conv || !fd_.valid()) return;
    std::array<char, kTailChunk> block;
    while (conv->unsent() < kTailMaxBacklog) {
      ssize_t n = ::pread(fd_.get(), block.data(), block.size(), offset_);
      if (n <= 0) break;
      offset_ += n;
      conv->send_raw(
          protocol::encode_line(Json{{"data", std::string(block.data(), static_cast<size_t>(n))}}));
    }
  }
  void poll() {
    auto conv = conv_.lock();
    if (!conv || conv->closed()) return;
    check_replaced();
    send_available();
    if (!follow_) {
      conv->send(Json{{"end", true}}, true);
      return;
    }
    timer_->arm(host_.now() + kTailPoll, [self = shared_from_this()] { self->poll(); });
  }

  std::shared_ptr<const SafeDir> dir_;
  std::string name_;
  std::weak_ptr<Conversation> conv_;
  std::unique_ptr<Timer> timer_;
  Host& host_;
  UniqueFd fd_;
  ino_t inode_ = 0;
  off_t offset_ = 0;
  bool follow_ = false;
  std::string error_;  // why the file at the name was last refused
};

}  // namespace

void Commands::tail(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  auto target_it = request.find("target");
  std::optional<protocol::Target> target;
  if (target_it != request.end() && target_it->is_string()) {
    if (auto parsed = protocol::parse_target(target_it->get<std::string>())) target = *parsed;
  }
  if (!target || target->all() || !target->index) {
    return reply(protocol::error_reply("tail needs \"target\": one worker, JOB:INDEX"));
  }
  WorkerId id{target->job, *target->index};
  if (auto selected = select_workers(supervisor_, {*target}); !selected) {
    return reply(protocol::error_reply(selected.error().message()));
  }
  uint64_t lines = 10;
  if (auto it = request.find("lines"); it != request.end()) {
    if (!it->is_number_unsigned()) {
      return reply(protocol::error_reply("\"lines\" must be a number of lines, 0 or more"));
    }
    lines = it->get<uint64_t>();
  }
  const bool stderr_log = request.value("stderr", false);
  const bool follow = request.value("follow", false);
  std::string path = supervisor_.log_path(id, stderr_log);
  // The stream lives on its timer while it follows, until the client goes.
  auto stream =
      std::make_shared<TailStream>(supervisor_.log_files(), Supervisor::log_name(id, stderr_log),
                                   conversation, host_.make_timer(), host_);
  if (std::string error = stream->open_first(); !error.empty()) {
    return reply(protocol::error_reply(error));
  }
  conversation->send(Json{{"ok", true}, {"path", path}}, false);
  stream->start(lines, follow);
}

}  // namespace corral::daemon

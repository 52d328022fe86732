// The commands of a job's tasks: submit (the task stream), dead, retry,
// shared, wait and stats. Commands' other members are in commands.cc, the
// log tail in log_tail.cc.
#include <spdlog/spdlog.h>

#include <memory>
#include <utility>
#include <vector>

#include "config/units.h"
#include "daemon/chunker.h"
#include "daemon/commands.h"
#include "protocol/task_lines.h"

namespace corral::daemon {

using protocol::Json;

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

void add_result_line(protocol::ResultLines& lines, const FinishedTask& task, bool timing) {
  lines.add({task.id, task.seq, to_string(task.outcome), task.result, task.attempts,
             timing ? std::optional(task.run_time) : std::nullopt, std::nullopt, task.key});
}

// Sends the result lines of `submit --wait` on CONV, written in place, those
// of tasks that ended together in one piece. TIMING adds run_us: dispatch
// to result, as corrald saw it. With BATCHES, ok results in a row go in
// batches (protocol::ResultBatch): a client unpacks them.
void send_result_lines(Conversation& conv, FinishedTasks tasks, bool timing, bool batches) {
  conv.send_raw_with([&](std::string& out) {
    protocol::ResultLines lines(out, batches);
    for (const FinishedTask& task : tasks) add_result_line(lines, task, timing);
  });
}

}  // namespace

void Commands::submit(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  const std::string job = request["job"];
  const config::QueueSpec& queue = supervisor_.job_spec(job)->queue;
  const uint64_t max_bytes = queue.max_task_bytes;
  bool wait = request.value("wait", false);
  bool timing = request.value("timing", false);
  bool batches = wait && request.value("batches", false);
  // How long each task may wait for a worker: the request's, else the job's.
  std::optional<Duration> deadline = queue.deadline;
  if (auto it = request.find("deadline_s"); it != request.end()) {
    double seconds = it->get<double>();
    if (seconds <= 0) return reply(protocol::error_reply("\"deadline_s\" must be more than 0"));
    deadline = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
    if (deadline->count() == 0) deadline = Duration(1);
  }

  struct State {
    uint64_t submitter = 0;
    uint64_t submit = 0;
    uint64_t seq = 0;
    uint64_t accepted = 0;
    uint64_t refused = 0;
    uint64_t finished = 0;
    uint64_t storing = 0;  // a durable job's tasks (and its id) not yet on disk
    bool input_done = false;
    bool ended = false;
  };
  auto state = std::make_shared<State>();
  // The lines of each batch read go to the queue in chunks.
  auto chunker = std::make_shared<Chunker>(feed->dispatcher(), max_bytes);
  std::weak_ptr<Conversation> weak = conversation;
  // A durable job's submit is acknowledged ("submitted": N in the end line)
  // only once its tasks are on disk.
  auto maybe_end = [state, weak, feed] {
    if (state->ended || !state->input_done || state->storing > 0) return;
    if (state->submitter != 0 && state->finished < state->accepted) return;
    auto conv = weak.lock();
    if (!conv) return;
    state->ended = true;
    if (state->submitter != 0) feed->remove_submitter(state->submitter);
    feed->unwatch_stored(state->submit);
    conv->send(Json{{"end", true}, {"submitted", state->accepted}, {"refused", state->refused}},
               true);
  };
  if (wait) {
    state->submitter =
        feed->add_submitter([state, weak, maybe_end, timing, batches](FinishedTasks tasks) {
          state->finished += tasks.size();
          if (auto conv = weak.lock()) send_result_lines(*conv, tasks, timing, batches);
          maybe_end();
        });
  }
  Dispatcher* dispatcher = &feed->dispatcher();
  state->submit = feed->open_submit();
  conversation->on_close([state, feed, chunker] {
    chunker->flush();  // accepted: they run, their results go to the sink
    state->ended = true;
    if (state->submitter != 0) feed->remove_submitter(state->submitter);
    feed->unwatch_stored(state->submit);
  });
  const bool durable = feed->durable();
  const bool stored = feed->stores_submits();
  if (stored) {
    // A durable job's submit id is on disk before its end line, even if it
    // adds no task.
    if (durable) state->storing = 1;
    feed->watch_stored(state->submit, [state, weak, maybe_end](const Stored& stored) {
      state->storing -= std::min<uint64_t>(
          state->storing, (stored.opened ? 1 : 0) + stored.accepted + stored.refused_seqs.size());
      state->accepted += stored.accepted;
      state->refused += stored.refused_seqs.size();
      if (auto conv = weak.lock()) {
        for (uint64_t seq : stored.refused_seqs) {
          conv->send_raw(protocol::encode_line(
              Json{{"seq", seq}, {"status", "refused"}, {"error", stored.error}}));
        }
      }
      maybe_end();
    });
  }
  conversation->send(Json{{"ok", true}, {"submit", state->submit}, {"durable", durable}}, false);

  Host* host = &host_;
  conversation->take_lines(
      [state, weak, feed, dispatcher, chunker, max_bytes, maybe_end, job, host, deadline,
       stored](std::string_view line) {
        if (line == protocol::kEndOfTasks) {
          state->input_done = true;
          chunker->flush();
          feed->pump();
          maybe_end();
          return Conversation::Verdict::kEnd;
        }
        if (line.empty() || line[0] != protocol::kTaskMark) {
          chunker->flush();  // the lines before were accepted
          state->input_done = true;
          state->ended = true;
          if (state->submitter != 0) feed->remove_submitter(state->submitter);
          if (auto conv = weak.lock()) {
            conv->send(protocol::error_reply("bad line in a submit stream: expected +PAYLOAD or ."),
                       true);
          }
          return Conversation::Verdict::kEnd;
        }
        // (Nothing is gathered then: a reload runs between batches, and the
        // chunker is flushed at the end of each.)
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
        TaskOrigin origin{state->submitter, state->submit, seq, std::nullopt};
        if (deadline) origin.deadline = host->now() + *deadline;
        if (stored) {
          feed->store(std::string(payload), origin);
          ++state->storing;
        } else {
          chunker->add(payload, origin);
          ++state->accepted;
          if (!dispatcher->full(chunker->gathered())) return Conversation::Verdict::kContinue;
          chunker->flush();
        }
        if (!feed->full()) return Conversation::Verdict::kContinue;
        // Back-pressure: read no more until the queue has room.
        feed->pump();
        if (!feed->full()) return Conversation::Verdict::kContinue;
        JobFeed* raw = feed.get();
        feed->add_listener(
            [weak, raw] {
              if (raw->full()) return false;
              if (auto conv = weak.lock()) conv->resume();
              return true;
            },
            [weak] {
              auto conv = weak.lock();
              return !conv || conv->closed();
            });
        return Conversation::Verdict::kPause;
      },
      [feed, chunker] {
        chunker->flush();
        feed->pump();
      });
}

void Commands::dead(const Json& request, Reply reply) {
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  if (request.value("clear", false)) {
    size_t cleared = feed->dispatcher().clear_dead_letters();
    spdlog::info("dead: job {}: dead-letter list cleared ({} letters)",
                 request["job"].get<std::string>(), cleared);
    return reply(Json{{"ok", true}, {"cleared", cleared}});
  }
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

void Commands::cancel(const Json& request, Reply reply) {
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  const std::string job = request["job"];
  CancelSelection selection;
  int chosen = 0;
  if (auto it = request.find("ids"); it != request.end()) {
    for (const Json& id : *it) selection.ids.push_back(id.get<uint64_t>());
    chosen += selection.ids.empty() ? 0 : 1;
    if (selection.ids.empty()) return reply(protocol::error_reply("\"ids\" names no task"));
  }
  if (auto it = request.find("submit"); it != request.end()) {
    selection.submit = it->get<uint64_t>();
    ++chosen;
  }
  if (request.value("queued", false)) {
    selection.all = true;
    ++chosen;
  }
  if (chosen != 1) {
    return reply(protocol::error_reply(
        "a cancel request names exactly one of \"ids\", \"submit\" or \"queued\""));
  }
  const bool running = request.value("running", false);
  CancelReport report = feed->cancel(selection, running);
  if (report.cancelled > 0 || report.stopping > 0) {
    spdlog::info("cancel: job {}: {} tasks cancelled, {} running ones stopping", job,
                 report.cancelled, report.stopping);
  }
  reply(Json{{"ok", true},
             {"cancelled", report.cancelled},
             {"stopping", report.stopping},
             {"running", report.running},
             {"unknown", report.unknown}});
}

namespace {

// The ids of a retry request: none is every letter.
std::vector<uint64_t> retry_ids(const Json& request) {
  std::vector<uint64_t> ids;
  if (auto it = request.find("ids"); it != request.end() && it->is_array()) {
    for (const Json& id : *it) {
      if (id.is_number_unsigned()) ids.push_back(id.get<uint64_t>());
    }
  }
  return ids;
}

// Why a retry of JOB requeued nothing.
Json retry_refused(const std::string& job, const Error& error) {
  return protocol::error_reply("job " + job + ": " + error.message() +
                               " in its dead-letter list (corralctl dead " + job +
                               " lists them); nothing was requeued");
}

}  // namespace

namespace {

// A broker job's letters are entries of its dead stream, for every node: a
// local requeue would run them outside the stream, their results unseen.
std::optional<Json> broker_retry_refused(const std::string& job, const JobFeed& feed) {
  std::optional<BrokerStatus> broker = feed.broker();
  if (!broker) return std::nullopt;
  return protocol::error_reply("job " + job + " takes its tasks from the stream " + broker->stream +
                               " at " + broker->url +
                               ": its dead letters are entries of its dead stream; add one again "
                               "with XADD " +
                               broker->stream + " * payload PAYLOAD (docs/scale-out.md)");
}

}  // namespace

void Commands::retry(const Json& request, Reply reply) {
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  const std::string job = request["job"];
  if (auto refused = broker_retry_refused(job, *feed)) return reply(*refused);
  Result<size_t> requeued = feed->dispatcher().retry_dead_letters(retry_ids(request), 0);
  if (!requeued) return reply(retry_refused(job, requeued.error()));
  spdlog::info("retry: job {}: {} dead letters queued again", job, *requeued);
  feed->pump();
  reply(Json{{"ok", true}, {"requeued", *requeued}});
}

void Commands::retry_and_wait(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  const std::string job = request["job"];
  if (auto refused = broker_retry_refused(job, *feed)) return reply(*refused);
  struct State {
    uint64_t submitter = 0;
    uint64_t requeued = 0;
    uint64_t finished = 0;
    bool ended = false;
  };
  auto state = std::make_shared<State>();
  std::weak_ptr<Conversation> weak = conversation;
  // As a waiting submit ends: after the last result, {"end": true, ...}.
  auto end = [state, weak, feed] {
    if (std::exchange(state->ended, true)) return;
    feed->remove_submitter(state->submitter);
    if (auto conv = weak.lock()) {
      conv->send(Json{{"end", true}, {"submitted", state->requeued}, {"refused", 0}}, true);
    }
  };
  state->submitter = feed->add_submitter([state, weak, end](FinishedTasks tasks) {
    state->finished += tasks.size();
    if (auto conv = weak.lock()) send_result_lines(*conv, tasks, false, false);
    if (state->finished >= state->requeued) end();
  });
  Result<size_t> requeued =
      feed->dispatcher().retry_dead_letters(retry_ids(request), state->submitter);
  if (!requeued) {
    state->ended = true;
    feed->remove_submitter(state->submitter);
    return reply(retry_refused(job, requeued.error()));
  }
  spdlog::info("retry: job {}: {} dead letters queued again; a client waits for them", job,
               *requeued);
  state->requeued = *requeued;
  conversation->on_close([state, feed] {
    state->ended = true;
    feed->remove_submitter(state->submitter);
  });
  conversation->send(Json{{"ok", true}, {"requeued", *requeued}}, false);
  if (*requeued == 0) return end();
  feed->pump();
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
              std::to_string(feed->dispatcher().delayed()) + " waiting to retry, " +
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
    if (drained && (feed->dispatcher().queued() > 0 || feed->dispatcher().delayed() > 0 ||
                    feed->dispatcher().in_flight() > 0 || feed->spooled() > 0)) {
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
  auto gone = reply.unneeded();
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
    Json j{{"submitted", 0},  {"queued", 0},  {"delayed", 0},     {"spooled", 0},
           {"in_flight", 0},  {"ok", 0},      {"failed", 0},      {"dead", 0},
           {"cancelled", 0},  {"expired", 0}, {"redelivered", 0}, {"dead_letters", 0},
           {"tasks_per_s", 0}};
    if (std::shared_ptr<JobFeed> feed = supervisor_.feed(job)) {
      const Dispatcher& d = feed->dispatcher();
      const TaskCounts& c = d.counts();
      j = Json{{"submitted", c.submitted},
               {"queued", d.queued()},
               {"delayed", d.delayed()},
               {"spooled", feed->spooled()},
               {"in_flight", d.in_flight()},
               {"ok", c.ok},
               {"failed", c.failed},
               {"dead", c.dead},
               {"cancelled", c.cancelled},
               {"expired", c.expired},
               {"redelivered", c.redelivered},
               {"dead_letters", d.dead_letters().size()},
               {"tasks_per_s", feed->metrics().tasks_per_s},
               {"latency_us", quantiles(feed->metrics().run_time)},
               {"recent_latency_us", quantiles(feed->metrics().recent)}};
    }
    {
      std::shared_ptr<JobFeed> feed = supervisor_.feed(job);
      std::optional<BrokerStatus> broker = feed ? feed->broker() : std::nullopt;
      j["broker"] = broker ? to_json(*broker) : Json(nullptr);
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

}  // namespace corral::daemon

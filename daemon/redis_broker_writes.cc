// The writer's side of a RedisBroker (redis_broker.h): each turn's results
// in one MULTI, the XCLAIM that counts a local redelivery, the renewal of
// what the node holds, and what serves submits through this corrald: their
// XADDs, the backlog that makes them wait, and the follower of the results
// stream. The connection, the reader's side and the state are in
// redis_broker.cc.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <charconv>
#include <utility>

#include "daemon/redis_broker.h"

namespace corral::daemon {

namespace {

std::optional<TaskOutcome> outcome_of(std::string_view status) {
  for (TaskOutcome o : {TaskOutcome::kOk, TaskOutcome::kFailed, TaskOutcome::kDead,
                        TaskOutcome::kCancelled, TaskOutcome::kExpired}) {
    if (status == to_string(o)) return o;
  }
  return std::nullopt;
}

// "CONSUMER/SUBMIT/SEQ" of a reply field whose consumer is CONSUMER.
std::optional<std::pair<uint64_t, uint64_t>> reply_of(std::string_view reply,
                                                      std::string_view consumer) {
  if (reply.size() <= consumer.size() + 1 || !reply.starts_with(consumer) ||
      reply[consumer.size()] != '/') {
    return std::nullopt;
  }
  std::string_view rest = reply.substr(consumer.size() + 1);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  uint64_t submit = 0, seq = 0;
  auto number = [](std::string_view text, uint64_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
  };
  if (!number(rest.substr(0, slash), submit) || !number(rest.substr(slash + 1), seq)) {
    return std::nullopt;
  }
  return std::pair{submit, seq};
}

}  // namespace

void RedisBroker::make_follower() {
  redis::Connection::Options options{options_.redis.url, options_.redis.timeout};
  const uint64_t generation = generation_;
  follower_ =
      std::make_unique<redis::Connection>(io_, options, [this, generation](const Error& why) {
        if (generation == generation_) lost(why.message());
      });
}

void RedisBroker::follow(bool on) {
  if (on == following_) return;
  following_ = on;
  if (!on) {
    follower_.reset();
    follow_reading_ = false;
    results_after_.clear();
    return;
  }
  if (state_ == State::kReady) start_following();  // else on_ready() starts it
}

void RedisBroker::start_following() {
  if (!follower_) make_follower();
  if (!results_after_.empty()) return read_results();  // a reconnect: on from the last seen
  const uint64_t generation = generation_;
  command({"XREVRANGE", options_.redis.results, "+", "-", "COUNT", "1"},
          [this, generation](Result<redis::Reply> reply) {
            if (generation != generation_ || !following_) return;
            if (!reply) return lost(reply.error().message());
            auto last = redis::entry_list(*reply);
            if (!last) return lost(last.error().message());
            results_after_ = last->empty() ? "0-0" : last->front().id;
            read_results();
          });
}

void RedisBroker::read_results() {
  if (!following_ || follow_reading_ || !follower_ || results_after_.empty()) return;
  follow_reading_ = true;
  const uint64_t generation = generation_;
  follower_->command(
      {"XREAD", "COUNT", std::to_string(kMaxRead), "BLOCK", std::to_string(kBlock.count()),
       "STREAMS", options_.redis.results, results_after_},
      [this, generation](Result<redis::Reply> reply) {
        if (generation != generation_ || !following_) return;
        follow_reading_ = false;
        if (!reply) return lost(reply.error().message());
        auto entries = redis::read_entries(*reply);
        if (!entries) return lost(entries.error().message());
        std::vector<BrokerReply> replies;
        for (const redis::StreamEntry& e : *entries) {
          results_after_ = e.id;
          const std::string* to = e.field("reply");
          if (to == nullptr) continue;
          auto origin = reply_of(*to, options_.redis.consumer);
          if (!origin) continue;
          const std::string* status = e.field("status");
          auto outcome = status != nullptr ? outcome_of(*status) : std::nullopt;
          const std::string* task = e.field("task");
          const std::string* result = e.field("result");
          const std::string* attempts = e.field("attempts");
          uint32_t tries = 0;
          if (attempts != nullptr) {
            std::from_chars(attempts->data(), attempts->data() + attempts->size(), tries);
          }
          replies.push_back(BrokerReply{task != nullptr ? *task : e.id, origin->first,
                                        origin->second, outcome.value_or(TaskOutcome::kFailed),
                                        result != nullptr ? *result : "", tries});
        }
        if (!replies.empty() && events_.replies) events_.replies(std::move(replies));
        read_results();
      },
      kBlock);
}
void RedisBroker::count_attempt(const std::string& key) {
  auto it = held_.find(key);
  if (it == held_.end()) return;
  ++it->second.deliveries;
  attempts_.push_back(key);
  flush_soon();
}

void RedisBroker::finish(BrokerOutcome outcome) {
  finishing_.push_back(std::move(outcome));
  flush_soon();
}

void RedisBroker::flush_soon() {
  if (flush_posted_) return;
  flush_posted_ = true;
  std::weak_ptr<RedisBroker*> weak = self_;
  boost::asio::post(io_, [weak] {
    if (auto self = weak.lock()) {
      (*self)->flush_posted_ = false;
      (*self)->flush();
    }
  });
}

std::vector<std::string> RedisBroker::xadd(const std::string& key,
                                           std::optional<uint64_t> maxlen) const {
  std::vector<std::string> args = {"XADD", key};
  if (maxlen) {
    args.insert(args.end(), {"MAXLEN", "~", std::to_string(*maxlen)});
  }
  args.emplace_back("*");
  return args;
}

void RedisBroker::flush() {
  if (state_ != State::kReady || flushing_ || !writer_) return;
  const auto& r = options_.redis;
  const uint64_t generation = generation_;
  if (!attempts_.empty()) {
    // Counts a delivery of each (XCLAIM without JUSTID), and renews it.
    std::vector<std::string> args = {"XCLAIM", r.stream, r.group, r.consumer, "0"};
    for (std::string& key : attempts_) args.push_back(std::move(key));
    attempts_.clear();
    command(std::move(args), [this, generation](Result<redis::Reply> reply) {
      if (generation != generation_) return;
      if (!reply) return lost(reply.error().message());
      if (reply->is_error()) return lost("XCLAIM: " + reply->text);
    });
  }
  if (finishing_.empty()) return;
  flushing_ = true;
  sending_ = std::move(finishing_);
  finishing_.clear();
  command({"MULTI"}, [](Result<redis::Reply>) {});
  std::vector<std::string> acks = {"XACK", r.stream, r.group};
  std::vector<std::string> dels = {"XDEL", r.stream};
  for (const BrokerOutcome& o : sending_) {
    auto held = held_.find(o.key);
    const std::string* reply_to = held != held_.end() ? &held->second.reply_to : nullptr;
    std::vector<std::string> result = xadd(r.results, r.results_maxlen);
    result.insert(result.end(),
                  {"task", o.key, "status", std::string(to_string(o.outcome)), "result", o.result,
                   "attempts", std::to_string(o.attempts), "node", r.consumer});
    if (reply_to != nullptr && !reply_to->empty())
      result.insert(result.end(), {"reply", *reply_to});
    command(std::move(result), [](Result<redis::Reply>) {});
    if (o.letter) {
      std::vector<std::string> dead = xadd(r.dead, r.dead_maxlen);
      dead.insert(dead.end(),
                  {"task", o.key, "payload", held != held_.end() ? held->second.payload : "",
                   "status", std::string(to_string(o.outcome)), "reason", o.result, "attempts",
                   std::to_string(o.attempts), "node", r.consumer});
      if (reply_to != nullptr && !reply_to->empty()) dead.insert(dead.end(), {"reply", *reply_to});
      command(std::move(dead), [](Result<redis::Reply>) {});
    }
    acks.push_back(o.key);
    dels.push_back(o.key);
  }
  command(std::move(acks), [](Result<redis::Reply>) {});
  command(std::move(dels), [](Result<redis::Reply>) {});
  command({"EXEC"}, [this, generation](Result<redis::Reply> reply) {
    if (generation != generation_) return;
    if (!reply) return lost(reply.error().message());
    if (!reply->is_array()) return lost("EXEC: " + redis::describe(*reply));
    for (const redis::Reply& step : reply->elements) {
      // The keys were checked at connect: a step can fail only if someone
      // changed a key's type since. The entries stay pending; the next
      // connect says what is wrong.
      if (step.is_error()) return lost("a result's transaction: " + step.text);
    }
    for (const BrokerOutcome& o : sending_) {
      held_.erase(o.key);
      ++counts_.acked;
      if (o.letter) ++counts_.dead;
    }
    sending_.clear();
    flushing_ = false;
    flush();
    if (closing_ && !flushing_) return closed();
    read_next();  // their room is free again
  });
}

void RedisBroker::arm_renew() {
  const Duration period = std::max<Duration>(options_.redis.claim_idle / 3, Duration(100));
  renew_timer_->arm(host_.now() + period, [this] {
    renew();
    arm_renew();
  });
}

void RedisBroker::renew() {
  if (state_ != State::kReady || held_.empty()) return;
  const auto& r = options_.redis;
  const uint64_t generation = generation_;
  // Resets each held entry's idle time without counting a delivery.
  std::vector<std::string> args;
  auto send = [&] {
    args.emplace_back("JUSTID");
    command(std::move(args), [this, generation](Result<redis::Reply> reply) {
      if (generation != generation_) return;
      if (!reply) return lost(reply.error().message());
      if (reply->is_error()) return lost("XCLAIM: " + reply->text);
    });
    args.clear();
  };
  for (const auto& [key, held] : held_) {
    if (args.empty()) args = {"XCLAIM", r.stream, r.group, r.consumer, "0"};
    args.push_back(key);
    if (args.size() >= 5 + kMaxRead) send();
  }
  if (!args.empty()) send();
}

void RedisBroker::add(std::vector<BrokerSubmission> tasks,
                      std::function<void(std::vector<std::string> errors)> done) {
  if (state_ == State::kConnecting) {
    // The first connect is on its way: the adds go out once it is ready.
    waiting_adds_.emplace_back(std::move(tasks), std::move(done));
    return;
  }
  if (state_ != State::kReady || !writer_) {
    const std::string why = "redis " + options_.redis.url.url + " is " + state_name(state_) +
                            (error_.empty() ? "" : " (" + error_ + ")");
    return done(std::vector<std::string>(tasks.size(), why));
  }
  if (tasks.empty()) return done({});
  struct Batch {
    std::vector<std::string> errors;
    size_t answered = 0;
    std::function<void(std::vector<std::string>)> done;
  };
  auto batch = std::make_shared<Batch>();
  batch->errors.resize(tasks.size());
  batch->done = std::move(done);
  const size_t total = tasks.size();
  for (size_t i = 0; i < total; ++i) {
    std::vector<std::string> args = {"XADD", options_.redis.stream, "*", "payload",
                                     std::move(tasks[i].payload)};
    if (!tasks[i].reply_to.empty()) args.insert(args.end(), {"reply", tasks[i].reply_to});
    if (tasks[i].deadline_ms > 0) {
      args.insert(args.end(), {"deadline", std::to_string(tasks[i].deadline_ms)});
    }
    ++adds_sent_;
    command(std::move(args), [this, batch, i, total](Result<redis::Reply> reply) {
      if (!reply) {
        batch->errors[i] = reply.error().message();
      } else if (reply->is_error()) {
        batch->errors[i] = reply->text;
      } else {
        ++counts_.added;
      }
      if (++batch->answered == total) batch->done(std::move(batch->errors));
    });
  }
  refresh();
}

void RedisBroker::settle_adds() {
  auto waiting = std::move(waiting_adds_);
  waiting_adds_.clear();
  for (auto& [tasks, done] : waiting) add(std::move(tasks), std::move(done));
}

bool RedisBroker::full(size_t more) const {
  // The group's backlog as last seen, the adds sent since, and those to come.
  const uint64_t seen = group_ ? static_cast<uint64_t>(std::max<int64_t>(group_->pending, 0) +
                                                       std::max<int64_t>(group_->lag, 0))
                               : 0;
  return seen + (adds_sent_ - adds_counted_) + more > options_.redis.high_water;
}

void RedisBroker::refresh() {
  if (state_ != State::kReady || !writer_) return;
  const uint64_t generation = generation_;
  // The reply counts every XADD sent before it on this connection.
  const uint64_t adds_before = adds_sent_;
  command({"XINFO", "GROUPS", options_.redis.stream}, [this, generation,
                                                       adds_before](Result<redis::Reply> reply) {
    if (generation != generation_) return;
    if (!reply) return lost(reply.error().message());
    auto info = redis::group_info(*reply, options_.redis.group);
    if (!info) {
      // The stream or the group was deleted under the broker: make them again.
      return lost(info.error().message());
    }
    const bool was_full = full(0);
    group_ = *info;
    adds_counted_ = adds_before;
    if (was_full && !full(0) && events_.changed) events_.changed();
    // Submits wait while it is full: look again soon, whether or not the
    // sampler runs (a node that only adds tasks has nothing to sample).
    if (full(0)) {
      refresh_timer_->arm(host_.now() + std::chrono::milliseconds(200), [this] { refresh(); });
    }
  });
}

}  // namespace corral::daemon

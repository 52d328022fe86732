#include "daemon/redis_broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <unordered_set>
#include <utility>

namespace corral::daemon {

namespace asio = boost::asio;

namespace {

std::string ms_text(Duration d) { return std::to_string(std::max<int64_t>(d.count(), 0)); }

}  // namespace

const char* RedisBroker::state_name(State state) {
  static constexpr const char* kNames[] = {"connecting", "ready", "down", "closed"};
  return kNames[static_cast<int>(state)];
}

RedisBroker::RedisBroker(asio::io_context& io, Host& host, Options options, BrokerEvents events)
    : io_(io),
      host_(host),
      options_(std::move(options)),
      events_(std::move(events)),
      backoff_(options_.reconnect, std::hash<std::string>()(options_.redis.consumer)),
      reconnect_timer_(host.make_timer()),
      renew_timer_(host.make_timer()),
      refresh_timer_(host.make_timer()) {
  connect();
}

RedisBroker::~RedisBroker() { closed(); }

void RedisBroker::set_state(State state, std::string error) {
  const bool changed = state != state_ || error != error_;
  state_ = state;
  if (!error.empty() || state == State::kReady) error_ = std::move(error);
  if (!changed) return;
  const auto& r = options_.redis;
  if (state == State::kReady) {
    spdlog::info("{}: broker {} ready: stream {}, group {}, consumer {}", options_.job, r.url.url,
                 r.stream, r.group, r.consumer);
  } else if (state == State::kDown) {
    spdlog::warn("{}: broker {} down: {}; tasks held keep running, results wait for it",
                 options_.job, r.url.url, error_);
  }
  if (events_.changed) events_.changed();
}

void RedisBroker::connect() {
  if (state_ == State::kClosed) return;
  ++generation_;
  if (state_ == State::kDown) ++counts_.reconnects;
  state_ = state_ == State::kDown ? State::kDown : State::kConnecting;
  redis::Connection::Options options{options_.redis.url, options_.redis.timeout};
  const uint64_t generation = generation_;
  auto closed = [this, generation](const Error& why) {
    if (generation == generation_) lost(why.message());
  };
  writer_ = std::make_unique<redis::Connection>(io_, options, closed);
  reader_ = std::make_unique<redis::Connection>(io_, options, closed);
  setup();
}

void RedisBroker::lost(const std::string& why) {
  if (state_ == State::kClosed) return;
  if (closing_) {
    spdlog::warn(
        "{}: broker {}: {}; {} results not written (their tasks stay pending and run "
        "again)",
        options_.job, options_.redis.url.url, why, finishing_.size() + sending_.size());
    return closed();
  }
  ++generation_;
  // Destroying a Connection inside its own callback is allowed; its other
  // callbacks are dropped.
  writer_.reset();
  reader_.reset();
  follower_.reset();
  reading_ = false;
  follow_reading_ = false;
  flushing_ = false;
  // What was on its way is sent again once connected: ACK and DEL are
  // idempotent, a result written twice is at least once.
  finishing_.insert(finishing_.begin(), std::make_move_iterator(sending_.begin()),
                    std::make_move_iterator(sending_.end()));
  sending_.clear();
  renew_timer_->cancel();
  set_state(State::kDown, why);
  settle_adds();
  Duration delay = backoff_.delay(++failures_);
  reconnect_timer_->arm(host_.now() + delay, [this] { connect(); });
}

void RedisBroker::command(std::vector<std::string> args, redis::Connection::Done done) {
  if (!writer_) {
    done(Error("redis is not connected"));
    return;
  }
  writer_->command(std::move(args), std::move(done));
}

void RedisBroker::setup() {
  const auto& r = options_.redis;
  const uint64_t generation = generation_;
  // Each of the three keys must be a stream, or nothing yet.
  struct Check {
    std::vector<std::string> wrong;
  };
  auto check = std::make_shared<Check>();
  for (const std::string* key : {&r.stream, &r.results, &r.dead}) {
    command({"TYPE", *key}, [this, generation, check, key = *key](Result<redis::Reply> reply) {
      if (generation != generation_) return;
      if (!reply) return lost(reply.error().message());
      if (reply->text != "stream" && reply->text != "none") {
        check->wrong.push_back("redis key " + key + " is a " + reply->text + ", not a stream");
      }
    });
  }
  // From 0: entries added before the group existed are tasks too.
  command({"XGROUP", "CREATE", r.stream, r.group, "0", "MKSTREAM"},
          [this, generation, check](Result<redis::Reply> reply) {
            if (generation != generation_) return;
            if (!reply) return lost(reply.error().message());
            if (!check->wrong.empty()) return lost(check->wrong.front());
            if (reply->is_error() && !reply->text.starts_with("BUSYGROUP")) {
              return lost("group " + options_.redis.group + " of " + options_.redis.stream +
                          " cannot be created: " + reply->text);
            }
            on_ready();
          });
}

void RedisBroker::on_ready() {
  failures_ = 0;
  own_pending_done_ = false;
  own_pending_after_ = "-";
  next_claim_ = host_.now();
  set_state(State::kReady);
  flush();
  refresh();
  arm_renew();
  read_next();
  if (following_) start_following();
  settle_adds();
}

void RedisBroker::set_credit(size_t credit) {
  credit_ = credit;
  read_next();
}

size_t RedisBroker::room() const {
  // Tasks done but not yet acknowledged are still pending in Redis: while a
  // transaction is slow they count, so that the node never holds more than
  // its workers' room.
  const size_t unacknowledged = finishing_.size() + sending_.size();
  return credit_ > unacknowledged ? credit_ - unacknowledged : 0;
}

void RedisBroker::read_next() {
  if (state_ != State::kReady || reading_ || room() == 0 || !reader_) return;
  if (!own_pending_done_) return read_own_pending();
  if (host_.now() >= next_claim_) return claim_idle_entries();
  read_new();
}

void RedisBroker::read_own_pending() {
  const auto& r = options_.redis;
  const uint64_t generation = generation_;
  reading_ = true;
  const size_t count = std::min(room(), kMaxRead);
  reader_->command(
      {"XPENDING", r.stream, r.group, own_pending_after_, "+", std::to_string(count), r.consumer},
      [this, generation](Result<redis::Reply> reply) {
        if (generation != generation_) return;
        if (!reply) return lost(reply.error().message());
        auto pending = redis::pending_entries(*reply);
        if (!pending) return lost(pending.error().message());
        if (pending->empty()) {
          own_pending_done_ = true;
          reading_ = false;
          return read_next();
        }
        own_pending_after_ = "(" + pending->back().id;
        take_pending(std::move(*pending), 0, false, [this] {
          reading_ = false;
          read_next();
        });
      });
}

void RedisBroker::claim_idle_entries() {
  const auto& r = options_.redis;
  const uint64_t generation = generation_;
  // Four looks per claim_idle (at most one a second): a dead node's tasks
  // move within claim_idle and a quarter of it.
  next_claim_ = host_.now() + std::clamp<Duration>(r.claim_idle / 4, std::chrono::milliseconds(100),
                                                   std::chrono::seconds(1));
  reading_ = true;
  const size_t count = std::min(room(), kMaxRead);
  reader_->command({"XPENDING", r.stream, r.group, "IDLE", ms_text(r.claim_idle), "-", "+",
                    std::to_string(count)},
                   [this, generation](Result<redis::Reply> reply) {
                     if (generation != generation_) return;
                     if (!reply) return lost(reply.error().message());
                     auto pending = redis::pending_entries(*reply);
                     if (!pending) return lost(pending.error().message());
                     take_pending(std::move(*pending), options_.redis.claim_idle.count(), true,
                                  [this] {
                                    reading_ = false;
                                    read_next();
                                  });
                   });
}

void RedisBroker::take_pending(std::vector<redis::PendingEntry> pending, int64_t min_idle,
                               bool claimed, std::function<void()> then) {
  // What this node holds already (a reconnect lists it as its own pending).
  std::erase_if(pending, [&](const redis::PendingEntry& p) { return held_.contains(p.id); });
  if (pending.empty()) return then();
  const auto& r = options_.redis;
  std::vector<std::string> args = {"XCLAIM", r.stream, r.group, r.consumer,
                                   std::to_string(min_idle)};
  std::unordered_map<std::string, uint32_t> deliveries;
  for (const redis::PendingEntry& p : pending) {
    args.push_back(p.id);
    // XCLAIM counts a delivery.
    deliveries[p.id] = static_cast<uint32_t>(std::clamp<int64_t>(p.deliveries, 0, 1 << 30)) + 1;
  }
  const uint64_t generation = generation_;
  reader_->command(std::move(args), [this, generation, claimed, deliveries = std::move(deliveries),
                                     then = std::move(then)](Result<redis::Reply> reply) {
    if (generation != generation_) return;
    if (!reply) return lost(reply.error().message());
    auto entries = redis::entry_list(*reply);
    if (!entries) return lost(entries.error().message());
    // Entries deleted while pending, or taken by another node meanwhile,
    // do not come back.
    std::erase_if(*entries, [](const redis::StreamEntry& e) { return e.deleted; });
    std::vector<uint32_t> counts;
    counts.reserve(entries->size());
    for (const redis::StreamEntry& e : *entries) {
      auto it = deliveries.find(e.id);
      counts.push_back(it == deliveries.end() ? 1 : it->second);
    }
    if (claimed) counts_.claimed += entries->size();
    if (claimed && !entries->empty()) {
      spdlog::info("{}: claimed {} tasks idle for {} ms or more (their node stopped renewing them)",
                   options_.job, entries->size(), options_.redis.claim_idle.count());
    }
    deliver(std::move(*entries), counts);
    then();
  });
}

void RedisBroker::read_new() {
  const auto& r = options_.redis;
  const uint64_t generation = generation_;
  reading_ = true;
  const size_t count = std::min(room(), kMaxRead);
  reader_->command(
      {"XREADGROUP", "GROUP", r.group, r.consumer, "COUNT", std::to_string(count), "BLOCK",
       std::to_string(kBlock.count()), "STREAMS", r.stream, ">"},
      [this, generation](Result<redis::Reply> reply) {
        if (generation != generation_) return;
        if (!reply) return lost(reply.error().message());
        if (reply->is_error()) return lost("XREADGROUP: " + reply->text);
        auto entries = redis::read_entries(*reply);
        if (!entries) return lost(entries.error().message());
        std::vector<uint32_t> first(entries->size(), 1);  // read once each: their first delivery
        deliver(std::move(*entries), first);
        reading_ = false;
        read_next();
      },
      kBlock);
}

void RedisBroker::deliver(std::vector<redis::StreamEntry> entries,
                          const std::vector<uint32_t>& deliveries) {
  std::vector<BrokerTask> tasks;
  tasks.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    redis::StreamEntry& e = entries[i];
    if (e.deleted || held_.contains(e.id)) continue;
    ++counts_.read;
    Held held;
    held.deliveries = deliveries[i];
    if (const std::string* reply_to = e.field("reply")) held.reply_to = *reply_to;
    // What cannot be a task goes to the dead stream, with why.
    std::string refused;
    const std::string* payload = e.field("payload");
    if (payload == nullptr) {
      refused = "the entry has no payload field";
    } else {
      held.payload = *payload;
      if (payload->size() > options_.max_task_bytes) {
        refused = "task of " + std::to_string(payload->size()) +
                  " bytes exceeds queue.max_task_bytes (" +
                  std::to_string(options_.max_task_bytes) + ")";
      }
    }
    int64_t deadline_ms = 0;
    if (const std::string* deadline = e.field("deadline"); deadline && refused.empty()) {
      auto [end, ec] =
          std::from_chars(deadline->data(), deadline->data() + deadline->size(), deadline_ms);
      if (ec != std::errc() || end != deadline->data() + deadline->size() || deadline_ms <= 0) {
        refused = "its deadline \"" + *deadline + "\" is not a Unix time in milliseconds";
      }
    }
    if (!refused.empty()) {
      spdlog::error("{}: entry {} of {}: {}; moved to {}", options_.job, e.id,
                    options_.redis.stream, refused, options_.redis.dead);
      BrokerOutcome dead{e.id, TaskOutcome::kDead, refused, held.deliveries, true};
      held_.emplace(e.id, std::move(held));
      finish(std::move(dead));
      continue;
    }
    tasks.push_back(BrokerTask{e.id, held.payload, held.deliveries, held.reply_to, deadline_ms});
    held_.emplace(std::move(e.id), std::move(held));
  }
  credit_ -= std::min(credit_, tasks.size());
  if (!tasks.empty() && events_.tasks) events_.tasks(std::move(tasks));
}

BrokerStatus RedisBroker::status() const {
  BrokerStatus s = counts_;
  s.state = state_name(state_);
  s.error = error_;
  s.url = options_.redis.url.url;
  s.stream = options_.redis.stream;
  s.consumer = options_.redis.consumer;
  s.held = held_.size();
  if (group_) {
    s.lag = group_->lag;
    s.pending = group_->pending;
  }
  return s;
}

void RedisBroker::close() {
  if (state_ == State::kClosed || closing_) return;
  reader_.reset();
  follower_.reset();
  following_ = false;
  reconnect_timer_->cancel();
  renew_timer_->cancel();
  if (state_ == State::kReady && writer_ && (!finishing_.empty() || !sending_.empty())) {
    closing_ = true;
    flush();
    return;
  }
  closed();
}

void RedisBroker::closed() {
  closing_ = false;
  state_ = State::kClosed;
  settle_adds();
  ++generation_;
  writer_.reset();
  reader_.reset();
  follower_.reset();
  reconnect_timer_->cancel();
  renew_timer_->cancel();
  refresh_timer_->cancel();
}

}  // namespace corral::daemon

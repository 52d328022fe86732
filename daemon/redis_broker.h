// A Broker on Redis Streams (docs/scale-out.md): one stream of tasks, one
// consumer group shared by the corralds of a job, each node a consumer.
//
// Two connections, both on the daemon's loop (redis/connection.h):
// - the reader does one thing at a time: its own pending entries first
//   (XPENDING ... CONSUMER, then XCLAIM of them: a node that restarts takes
//   back what it held), then, as long as the feed gives credit, entries
//   idle for claim_idle under any consumer (XPENDING IDLE, XCLAIM: a dead
//   node's tasks), looked for four times per claim_idle (at most once a
//   second), and new entries (XREADGROUP ...
//   BLOCK 1000 >), never more than the credit;
// - the writer sends the rest, pipelined: once per turn of the loop one
//   MULTI with every result (XADD to the results stream, and to the dead
//   stream for letters), one XACK and one XDEL of their entries, EXEC; the
//   XCLAIM that counts a local redelivery; the XCLAIM ... JUSTID that renews
//   every held entry each claim_idle / 3, so that a long task is never
//   taken from a live node; the XADDs of submits; XINFO GROUPS for the lag.
//
// Faults: a failed or stuck command (each has a deadline) ends both
// connections; the broker is "down" and connects again after the job's
// restart.backoff, and nothing it holds is lost: tasks keep running, their
// results wait in memory (at most the credit's worth) and are written once
// it is back. Results written but not acknowledged when Redis died are
// written again: at least once.
//
// redis_broker.cc holds the connections, the state and the reader's side;
// redis_broker_writes.cc the writer's side (results, renewals, submits).
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/spec.h"
#include "daemon/backoff.h"
#include "daemon/broker.h"
#include "daemon/host.h"
#include "redis/connection.h"
#include "redis/streams.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class RedisBroker : public Broker {
 public:
  struct Options {
    std::string job;
    config::RedisBrokerSpec redis;  // consumer resolved (the host name when left out)
    uint64_t max_task_bytes = 65536;
    config::BackoffSpec reconnect;  // the job's restart.backoff
  };
  // Starts connecting at once.
  RedisBroker(boost::asio::io_context& io, Host& host, Options options, BrokerEvents events);
  ~RedisBroker() override;

  void set_credit(size_t credit) override;
  void count_attempt(const std::string& key) override;
  void finish(BrokerOutcome outcome) override;
  void add(std::vector<BrokerSubmission> tasks,
           std::function<void(std::vector<std::string> errors)> done) override;
  void follow(bool on) override;
  bool full(size_t more) const override;
  void refresh() override;
  BrokerStatus status() const override;
  void close() override;
  bool draining() const override { return closing_; }

  static constexpr size_t kMaxRead = 1000;  // entries per read or claim
  static constexpr std::chrono::milliseconds kBlock{1000};

 private:
  struct Held {
    std::string payload;  // for the dead stream
    std::string reply_to;
    uint32_t deliveries = 1;
  };
  enum class State { kConnecting, kReady, kDown, kClosed };
  static const char* state_name(State state);

  void connect();
  // A connection failed (or a reply made no sense): both are dropped, and
  // connect() runs again after the backoff.
  void lost(const std::string& why);
  void setup();
  void on_ready();
  // The reader's next step, if it is idle and may take tasks.
  void read_next();
  // What the reader may take: the credit less the ends not yet acknowledged.
  size_t room() const;
  void read_own_pending();
  void claim_idle_entries();
  void read_new();
  // XCLAIMs IDS (from XPENDING, with their deliveries so far) with MIN_IDLE
  // and hands what came to the feed; CLAIMED counts them as taken over.
  void take_pending(std::vector<redis::PendingEntry> pending, int64_t min_idle, bool claimed,
                    std::function<void()> then);
  // Entries the reader got, with the deliveries each has now.
  void deliver(std::vector<redis::StreamEntry> entries, const std::vector<uint32_t>& deliveries);
  void flush_soon();
  void flush();
  void renew();
  void arm_renew();
  void set_state(State state, std::string error = {});
  // After close(), once the last results are written or cannot be.
  void closed();
  // Marks where the results stream ends now (on the writer, so before any
  // add given later), then reads results from there on the follower.
  void start_following();
  void read_results();
  void make_follower();
  std::vector<std::string> xadd(const std::string& key, std::optional<uint64_t> maxlen) const;
  void command(std::vector<std::string> args, redis::Connection::Done done);

  boost::asio::io_context& io_;
  Host& host_;
  Options options_;
  BrokerEvents events_;
  Backoff backoff_;
  State state_ = State::kConnecting;
  std::string error_;
  uint32_t failures_ = 0;  // connects in a row that did not get ready
  std::unique_ptr<redis::Connection> writer_;
  std::unique_ptr<redis::Connection> reader_;
  std::unique_ptr<redis::Connection> follower_;  // while following
  std::unique_ptr<Timer> reconnect_timer_;
  std::unique_ptr<Timer> renew_timer_;
  std::unique_ptr<Timer> refresh_timer_;  // while full: the backlog looked at again
  // Bumped at each connect and close: replies of an earlier connection's
  // commands find it changed and do nothing.
  uint64_t generation_ = 0;

  size_t credit_ = 0;
  bool reading_ = false;           // a reader command is out
  bool own_pending_done_ = false;  // this life's own pending entries were taken back
  std::string own_pending_after_;  // where the next XPENDING of them starts
  TimePoint next_claim_{};         // when idle entries are looked for next

  std::unordered_map<std::string, Held> held_;
  std::vector<BrokerOutcome> finishing_;  // ended, not sent
  std::vector<BrokerOutcome> sending_;    // in the MULTI on its way
  std::vector<std::string> attempts_;     // keys whose local redelivery is to be counted
  bool flush_posted_ = false;
  bool closing_ = false;  // close() was called; the last results are on their way
  bool flushing_ = false;

  // Adds given while the first connect was under way, sent once ready (or
  // refused if it fails).
  std::vector<
      std::pair<std::vector<BrokerSubmission>, std::function<void(std::vector<std::string>)>>>
      waiting_adds_;
  // Sends or refuses waiting_adds_ by the state now.
  void settle_adds();
  bool following_ = false;
  bool follow_reading_ = false;
  std::string results_after_;  // the last result seen; empty: not marked yet

  std::optional<redis::GroupInfo> group_;
  // XADDs sent in all, and how many of them the last XINFO counted.
  uint64_t adds_sent_ = 0;
  uint64_t adds_counted_ = 0;
  BrokerStatus counts_;  // read, claimed, acked, dead, added, reconnects
  std::shared_ptr<RedisBroker*> self_ = std::make_shared<RedisBroker*>(this);
};

}  // namespace corral::daemon

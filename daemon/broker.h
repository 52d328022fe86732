// What a job's task feed needs of a broker: an engine people already run
// (Redis Streams today, redis_broker.h) that holds one task stream for the
// corralds of several machines and delivers each task to one of them, at
// least once. The feed asks for as many tasks as its workers have room for
// (credit), runs them with its own dispatcher, and gives each one's end back;
// the broker makes results, acknowledgements and dead letters durable in
// the engine, keeps a long task's claim alive, and takes over the tasks of a
// node that died. Another engine (NATS JetStream, RabbitMQ) would be another
// Broker behind the same calls.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/dispatcher.h"

namespace corral::daemon {

// A task as the broker delivered it.
struct BrokerTask {
  std::string key;      // the broker's id of it ("1700000000000-0")
  std::string payload;  // the task
  // Deliveries so far, this one included: across every node, so that
  // attempts are counted once for the whole group.
  uint32_t deliveries = 1;
  // Set when the entry was added by `corralctl submit` through a corrald:
  // who waits for its result (copied into the result).
  std::string reply_to;
  // Not handed to a worker by then (Unix time in ms): it ends expired. 0: none.
  int64_t deadline_ms = 0;
};

// A task's end, for the broker to record.
struct BrokerOutcome {
  std::string key;
  TaskOutcome outcome = TaskOutcome::kOk;
  std::string result;  // the worker's result, or why the task ended
  uint32_t attempts = 0;
  bool letter = false;  // to the dead stream as well (max_attempts, a final failure)
};

// A task added through this corrald: acknowledged once the broker has it.
struct BrokerSubmission {
  std::string payload;
  std::string reply_to;
  int64_t deadline_ms = 0;  // Unix time in ms; 0: none
};

// A result in the broker of a task added through this corrald, for the
// submit that waits for it (whichever node ran the task).
struct BrokerReply {
  std::string key;  // the task's id
  uint64_t submit = 0;
  uint64_t seq = 0;
  TaskOutcome outcome = TaskOutcome::kOk;
  std::string result;
  uint32_t attempts = 0;
};

// How the broker is, for status, stats and /metrics.
struct BrokerStatus {
  std::string state;  // "connecting", "ready", "down"
  std::string error;  // why it is down, or the last error
  std::string url;
  std::string stream;
  std::string consumer;
  // The group's view, refreshed with the sampler (-1: not known yet).
  int64_t lag = -1;      // entries no consumer of the group has read
  int64_t pending = -1;  // read and not acknowledged, by every consumer
  uint64_t held = 0;     // tasks this node holds (delivered, not acknowledged)
  uint64_t read = 0;     // entries delivered to this node
  uint64_t claimed = 0;  // of them, taken over from a consumer that stopped renewing
  uint64_t acked = 0;    // results recorded and acknowledged
  uint64_t dead = 0;     // entries moved to the dead stream
  uint64_t added = 0;    // entries added through this corrald
  uint64_t reconnects = 0;
};

class Broker {
 public:
  virtual ~Broker() = default;
  // The feed has room for CREDIT more tasks (free worker slots, less what it
  // holds): the broker reads up to that many and hands them to the feed.
  virtual void set_credit(size_t credit) = 0;
  // The task KEY goes out again inside this node (its worker died): the
  // delivery is counted in the broker, so the count stays global.
  virtual void count_attempt(const std::string& key) = 0;
  // The task ended: its result is recorded and it is acknowledged, in one
  // step, batched with the others of this turn of the loop.
  virtual void finish(BrokerOutcome outcome) = 0;
  // Adds tasks to the stream; DONE hears, on the loop, what became of each
  // (in order): an empty string when the broker has it, else why not.
  virtual void add(std::vector<BrokerSubmission> tasks,
                   std::function<void(std::vector<std::string> errors)> done) = 0;
  // While ON, the results of tasks added through this corrald come back as
  // replies (BrokerEvents::replies), from the results of every node, from
  // the moment of the call on: turn it on before the adds it is for.
  virtual void follow(bool on) = 0;
  // Whether adds must wait: the stream's backlog, with MORE tasks on their
  // way to it, would be above its high-water mark.
  virtual bool full(size_t more) const = 0;
  // Refreshes the group's lag and pending count (the sampler's tick).
  virtual void refresh() = 0;
  virtual BrokerStatus status() const = 0;
  // Stops reading; what this node holds stays pending in the broker for its
  // next life (or another node) to take. The results it was given are still
  // written (draining() meanwhile), unless the broker is unreachable.
  virtual void close() = 0;
  virtual bool draining() const = 0;
};

// What a broker tells its feed.
struct BrokerEvents {
  // Tasks delivered (at most the credit given). Entries that cannot be
  // tasks (no payload, one over queue.max_task_bytes) never come here: the
  // broker moves them to its dead letters itself.
  std::function<void(std::vector<BrokerTask>)> tasks;
  // Room to add again, or a state change worth a look (listeners).
  std::function<void()> changed;
  // Results of tasks added here, while following.
  std::function<void(std::vector<BrokerReply>)> replies;
};

}  // namespace corral::daemon

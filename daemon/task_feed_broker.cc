// The broker side of a TaskFeed (broker:): the job's tasks come from a
// broker shared with the corralds of other machines (broker.h,
// redis_broker.h). The feed asks for as many tasks as its ready workers have
// room for, queues each as the broker delivered it (with the deliveries it
// had: attempts count across every node), and tells the broker every end;
// a local redelivery (a worker died) is counted in the broker too. Submits
// through this corrald are added to the broker, acknowledged once it has
// them; they run on whichever node reads them. The rest of the feed is in
// task_feed.cc.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "daemon/redis_broker.h"
#include "daemon/task_feed.h"

namespace corral::daemon {

namespace asio = boost::asio;

// The dispatcher's changes that the broker must hear.
class TaskFeed::BrokerJournal : public TaskJournal {
 public:
  explicit BrokerJournal(TaskFeed& feed) : feed_(feed) {}

  void added(uint64_t, const TaskOrigin&, std::string_view) override {}
  void dispatched(uint64_t id, uint32_t attempts) override {
    auto it = feed_.broker_held_.find(id);
    if (it == feed_.broker_held_.end() || attempts <= it->second.deliveries) return;
    // A redelivery inside this node: the broker counts it.
    it->second.deliveries = attempts;
    feed_.broker_->count_attempt(it->second.key);
  }
  void requeued(uint64_t, uint32_t) override {}
  void delayed(uint64_t, uint32_t, TimePoint) override {}
  void finished(const FinishedTask& task, bool letter) override {
    auto it = feed_.broker_held_.find(task.id);
    if (it == feed_.broker_held_.end()) return;
    feed_.broker_->finish(
        BrokerOutcome{std::move(it->second.key), task.outcome, task.result, task.attempts, letter});
    feed_.broker_held_.erase(it);
  }
  void letters_removed(const std::vector<uint64_t>&) override {}

 private:
  TaskFeed& feed_;
};

void TaskFeed::open_broker(const std::string& host_name, const BrokerFactory& factory) {
  const std::string consumer =
      job_.broker.redis.consumer.empty() ? host_name : job_.broker.redis.consumer;
  std::weak_ptr<TaskFeed*> self = self_;
  BrokerEvents events;
  events.tasks = [self](std::vector<BrokerTask> tasks) {
    if (auto feed = self.lock()) (*feed)->take_broker_tasks(std::move(tasks));
  };
  events.changed = [self] {
    if (auto feed = self.lock()) (*feed)->listeners_.notify();
  };
  events.replies = [self](std::vector<BrokerReply> replies) {
    if (auto feed = self.lock()) (*feed)->take_broker_replies(std::move(replies));
  };
  journal_ = std::make_unique<BrokerJournal>(*this);
  dispatcher_.set_journal(journal_.get());
  if (factory) {
    broker_ = factory(consumer, std::move(events));
    return;
  }
  RedisBroker::Options options;
  options.job = job_.name;
  options.redis = job_.broker.redis;
  options.redis.consumer = consumer;
  options.max_task_bytes = job_.queue.max_task_bytes;
  options.reconnect = job_.restart.backoff;
  broker_ = std::make_unique<RedisBroker>(io_, host_, std::move(options), std::move(events));
}

void TaskFeed::take_broker_tasks(std::vector<BrokerTask> tasks) {
  if (retired_) return;
  const TimePoint now = host_.now();
  const int64_t wall_now = wall_clock_ms();
  for (BrokerTask& task : tasks) {
    // The entry's own deadline (a submit's), else queue.deadline from now.
    TaskOrigin origin;
    if (task.deadline_ms > 0) {
      origin.deadline = now + std::chrono::milliseconds(task.deadline_ms - wall_now);
    } else if (job_.queue.deadline) {
      origin.deadline = now + *job_.queue.deadline;
    }
    const uint64_t id = dispatcher_.reserve_id();
    broker_held_[id] = BrokerHeld{std::move(task.key), task.deliveries};
    // Each delivery was an attempt, this one included: the dispatch that
    // follows charges it, so the dispatcher starts one below.
    const uint32_t attempts = task.deliveries > 0 ? task.deliveries - 1 : 0;
    dispatcher_.restore(id, std::move(task.payload), origin, attempts, std::nullopt,
                        "delivered " + std::to_string(attempts) +
                            " times without a result (its node or its worker died each time)");
  }
  after_results();
}

void TaskFeed::give_credit() {
  if (broker_ == nullptr || retired_) return;
  uint64_t ready = 0;
  for (const auto& [worker, channel] : channels_) ready += channel->ready() ? 1 : 0;
  // What the workers here may hold: a node of long tasks leaves the rest
  // in the stream for the others.
  const uint64_t room = ready * dispatcher_.held_limit();
  const uint64_t held = dispatcher_.queued() + dispatcher_.delayed() + dispatcher_.in_flight();
  broker_->set_credit(room > held ? room - held : 0);
}

void TaskFeed::add_to_broker() {
  add_posted_ = false;
  if (broker_ == nullptr || adding_.empty()) return;
  auto batch = std::make_shared<std::vector<StoredTask>>(std::move(adding_));
  adding_.clear();
  std::vector<BrokerSubmission> submissions;
  submissions.reserve(batch->size());
  const std::string& consumer = broker_->status().consumer;
  for (const StoredTask& task : *batch) {
    BrokerSubmission& s = submissions.emplace_back();
    s.payload = task.payload;
    s.reply_to =
        consumer + "/" + std::to_string(task.origin.submit) + "/" + std::to_string(task.origin.seq);
    // A submit's deadline goes with the task, as a wall-clock time any node can read.
    if (task.origin.deadline) s.deadline_ms = to_wall_ms(*task.origin.deadline);
  }
  std::weak_ptr<TaskFeed*> self = self_;
  broker_->add(std::move(submissions), [self, batch](std::vector<std::string> errors) {
    auto alive = self.lock();
    if (!alive) return;
    TaskFeed& feed = **alive;
    feed.storing_total_ -= std::min(feed.storing_total_, batch->size());
    std::map<uint64_t, Stored> outcomes;
    for (size_t i = 0; i < batch->size(); ++i) {
      const TaskOrigin& origin = (*batch)[i].origin;
      Stored& outcome = outcomes[origin.submit];
      if (i < errors.size() && !errors[i].empty()) {
        outcome.refused_seqs.push_back(origin.seq);
        outcome.error = errors[i];
      } else {
        ++outcome.accepted;
      }
    }
    for (const auto& [submit, outcome] : outcomes) {
      if (auto it = feed.stored_watchers_.find(submit); it != feed.stored_watchers_.end()) {
        auto watcher = it->second;  // it may unwatch itself
        watcher(outcome);
      }
    }
    feed.listeners_.notify();
  });
}

void TaskFeed::take_broker_replies(std::vector<BrokerReply> replies) {
  for (BrokerReply& reply : replies) {
    auto it = waiting_.find(reply.submit);
    if (it == waiting_.end()) continue;  // its submitter has gone
    std::vector<bool>& seen = it->second.seen;
    if (reply.seq >= seen.size()) seen.resize(reply.seq + 1);
    if (seen[reply.seq]) continue;  // a task run twice: its first result counts
    seen[reply.seq] = true;
    FinishedTask task;
    task.submitter = it->second.submitter;
    task.seq = reply.seq;
    task.submit = reply.submit;
    task.outcome = reply.outcome;
    task.result = std::move(reply.result);
    task.attempts = reply.attempts;
    task.key = std::move(reply.key);
    // Straight to its submitter (never the sink: the node that ran it had it).
    if (auto submitter = submitters_.find(task.submitter); submitter != submitters_.end()) {
      finished(FinishedTasks(&task, 1));
    }
  }
}

std::optional<BrokerStatus> TaskFeed::broker() const {
  if (broker_ == nullptr) return std::nullopt;
  return broker_->status();
}

void TaskFeed::close_broker() {
  if (broker_ == nullptr) return;
  const size_t held = broker_held_.size();
  if (held > 0) {
    spdlog::info(
        "{}: {} unfinished {} stay pending in {} for this node's next start or another "
        "node",
        job_.name, held, held == 1 ? "task" : "tasks", job_.broker.redis.stream);
  }
  // What it holds stays pending in the broker: nothing is told of the
  // tasks the dispatcher now abandons.
  dispatcher_.set_journal(nullptr);
  broker_->close();
  broker_held_.clear();
  stored_watchers_.clear();
}

}  // namespace corral::daemon

// The task feed of one job, on the daemon's event loop: its Dispatcher, one
// channel per worker (shm_channel.h: shared-memory rings with eventfd
// wake-ups; pipe_channel.h: a pair of pipes with line or length framing), the
// submitters that wait for results, the source that fills the queue, the sink
// that takes unclaimed results, and the watch over task_timeout and
// heartbeats.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "config/spec.h"
#include "daemon/channel.h"
#include "daemon/clock.h"
#include "daemon/feed.h"
#include "daemon/private_dir.h"
#include "daemon/safe_file.h"
#include "daemon/spool.h"
#include "daemon/task_watch.h"
#include "daemon/waiters.h"
#include "ipc/segment.h"

namespace boost::asio {
class io_context;
}

namespace corral::daemon {

class TaskFeed : public JobFeed {
  struct Key {  // only create() makes a TaskFeed
    explicit Key() = default;
  };

 public:
  // Creates the feed (and, for shm, the job's segment), opening its sink and
  // source through safe_file.h, in directories that PRIVATE_DIRS judges
  // (daemon.private_dirs); an error when that fails. Its time and timers
  // come from HOST; IO runs its channels' reads and writes. Both outlive it.
  // A durable job's spool is at SPOOL_PATH(job name): a StateDir's, opened
  // (and locked) by the caller when the first durable job needs it.
  using SpoolPath = std::function<Result<std::string>(const std::string& job)>;
  // A broker job's broker (broker:), for the consumer name it is given;
  // none given: a RedisBroker on the daemon's loop.
  using BrokerFactory =
      std::function<std::unique_ptr<Broker>(const std::string& consumer, BrokerEvents events)>;
  static Result<std::unique_ptr<TaskFeed>> create(boost::asio::io_context& io, Host& host,
                                                  const config::JobSpec& job, FeedEvents events,
                                                  PrivateDirs& private_dirs,
                                                  const SpoolPath& spool_path = {},
                                                  const BrokerFactory& broker_factory = {});
  TaskFeed(Key, boost::asio::io_context& io, Host& host, const config::JobSpec& job,
           FeedEvents events);
  ~TaskFeed() override;

  Status prepare(uint32_t worker, SpawnRequest& request) override;
  void spawned(uint32_t worker, bool ok) override;
  void send_sentinel(uint32_t worker) override;
  ExitBlame exited(uint32_t worker, const std::string& why) override;
  void paused(uint32_t worker, bool paused) override;

  Dispatcher& dispatcher() override { return dispatcher_; }
  uint64_t add_submitter(OnFinished on_finished) override;
  void remove_submitter(uint64_t id) override;
  void add_listener(std::function<bool()> listener, std::function<bool()> gone) override;
  void prune_listeners() override;
  void pump() override;
  bool full() override;
  bool durable() const override { return spool_ != nullptr; }
  bool stores_submits() const override { return spool_ != nullptr || broker_ != nullptr; }
  std::optional<BrokerStatus> broker() const override;
  uint64_t open_submit() override;
  void store(std::string payload, const TaskOrigin& origin) override;
  void watch_stored(uint64_t submit, std::function<void(const Stored&)> watcher) override;
  void unwatch_stored(uint64_t submit) override;
  void read_results(uint64_t after, std::optional<uint64_t> submit, size_t limit,
                    std::function<void(Result<std::vector<KeptResult>>)> done) override;
  uint64_t results_cursor() const override { return committed_cursor_; }
  uint64_t spooled() const override { return backlog_; }
  bool submit_pending(uint64_t submit) override;
  CancelReport cancel(const CancelSelection& selection, bool running) override;
  std::vector<SharedReading> shared() const override;
  uint32_t capacity() const override;
  bool tick(TimePoint now) override;
  const FeedMetrics& metrics() const override { return metrics_; }
  void retire(const std::string& why) override;
  bool retired() const override { return retired_; }
  bool settling() const override { return broker_ != nullptr && broker_->draining(); }

 private:
  void finished(FinishedTasks tasks);
  void after_results();  // pump, then tell the listeners
  // ---- durable (task_feed_spool.cc) ----
  class Journal;
  Status open_spool(const std::string& path);
  // A commit at the end of this turn of the loop, if none is due yet.
  void commit_soon();
  void commit();
  // Loads unfinished tasks the spool holds beyond the queue while there is room.
  void load_backlog();
  void close_spool(const std::string& why);
  TimePoint from_wall_ms(int64_t ms) const;
  // ---- a broker job's (task_feed_broker.cc) ----
  class BrokerJournal;
  void open_broker(const std::string& consumer, const BrokerFactory& factory);
  // Tasks the broker delivered, into the dispatcher.
  void take_broker_tasks(std::vector<BrokerTask> tasks);
  // Tells the broker how many more tasks the ready workers have room for.
  void give_credit();
  // Sends the submits stored this turn to the broker.
  void add_to_broker();
  // Results of tasks submitted here, from whichever node ran them.
  void take_broker_replies(std::vector<BrokerReply> replies);
  void close_broker();
  int64_t to_wall_ms(TimePoint at) const;
  void arm_wake();     // the wake_ timer, at the dispatcher's next_wakeup
  void feed_source();  // moves source tasks into the queue while there is room
  void write_sink(const FinishedTask& task);
  // queue.task_timeout and health.heartbeat_timeout, on one ticker: arms
  // it for the next look.
  void watch();
  // One look: the workers as they are now, judged by watch_.
  void look();

  boost::asio::io_context& io_;
  Host& host_;
  config::JobSpec job_;
  FeedEvents events_;
  Dispatcher dispatcher_;
  ChannelContext context_;  // what its channels see of the feed
  std::optional<ipc::Segment> segment_;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;
  std::map<uint64_t, OnFinished> submitters_;
  uint64_t next_submitter_ = 1;
  uint64_t calling_submitter_ = 0;  // whose callback runs now
  bool remove_after_call_ = false;
  Waiters listeners_;
  // The source: the next range value, or the open file.
  int64_t source_next_ = 0;
  struct SourceFile;
  std::unique_ptr<SourceFile> source_file_;
  UniqueFd sink_;
  // Sink lines not written yet: written together at the end of each pump()
  // (every batch of results ends with one), at retire() and at the end,
  // or once they reach a batch's size.
  std::string sink_pending_;
  void flush_sink();
  FeedMetrics metrics_;
  Histogram at_last_tick_;
  uint64_t finished_at_last_tick_ = 0;
  bool ticking_ = false;  // tick() last returned true, or FeedEvents::active was called
  TimePoint last_tick_;
  bool retired_ = false;
  // ---- durable ----
  std::unique_ptr<TaskJournal> journal_;  // a Journal
  std::unique_ptr<Spool> spool_;
  struct StoredTask {
    uint64_t id;
    std::string payload;
    TaskOrigin origin;
  };
  std::vector<StoredTask> storing_;  // recorded since the last commit
  std::vector<uint64_t> opening_;    // submits opened since the last commit
  size_t storing_total_ = 0;         // recorded, not yet committed (all commits)
  std::map<uint64_t, std::function<void(const Stored&)>> stored_watchers_;
  bool commit_due_ = false;
  uint64_t recorded_cursor_ = 0;   // of the last result recorded
  uint64_t committed_cursor_ = 0;  // of the last result on disk
  uint64_t backlog_ = 0;           // unfinished tasks in the spool, not loaded yet
  uint64_t loaded_up_to_ = 0;      // the largest id loaded from it
  bool loading_ = false;
  std::string spool_error_;  // the last failed commit's error, until one succeeds
  // ---- broker ----
  std::unique_ptr<Broker> broker_;
  struct BrokerHeld {
    std::string key;
    uint32_t deliveries = 1;  // as the broker counts them
  };
  std::unordered_map<uint64_t, BrokerHeld> broker_held_;  // by the dispatcher's id
  std::vector<StoredTask> adding_;                        // stored this turn, for the broker
  bool add_posted_ = false;
  // Submits here that wait for their results (submit --wait), by submit id.
  struct WaitingSubmit {
    uint64_t submitter = 0;
    std::vector<bool> seen;  // by seq: a result already given (at least once: duplicates)
  };
  std::map<uint64_t, WaitingSubmit> waiting_;
  // Completions posted by the spool's writer find the feed through this.
  std::shared_ptr<TaskFeed*> self_ = std::make_shared<TaskFeed*>(this);
  TaskWatch watch_;
  std::unique_ptr<Timer> ticker_;  // the watch's; null when nothing is watched
  // Workers killed for overrunning queue.task_timeout: their tasks' fault
  // is a timeout (queue.retry's `on`), not a crash.
  std::set<uint32_t> timed_out_;
  // Workers paused (nullopt) or thawed since their spawn (when: a sign of
  // life for the heartbeat watch).
  std::map<uint32_t, std::optional<TimePoint>> paused_;
  // Armed at the dispatcher's next backoff or deadline.
  std::unique_ptr<Timer> wake_;
  std::optional<TimePoint> wake_at_;
};

}  // namespace corral::daemon

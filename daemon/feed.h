// What the supervisor needs of a job's task feed (channel: pipe or shm):
// the fds and environment a worker gets, the sentinel, and word that a
// worker died. The feed tells the supervisor when a worker is READY and when
// it broke the protocol (FeedEvents). The Supervisor gets its feeds from the
// FeedFactory it is built with: corrald's makes real ones (task_feed.h), the
// tests' make fakes (tests/support/fake_feed.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/spec.h"
#include "daemon/broker.h"
#include "daemon/dispatcher.h"
#include "daemon/histogram.h"
#include "daemon/host.h"

namespace corral::daemon {

struct FeedEvents {
  std::function<void(uint32_t worker)> ready;
  // The worker must be killed (it broke the protocol, a task overran
  // queue.task_timeout, it stopped heartbeating); WHY is logged, REASON
  // ("protocol", "task_timeout", "heartbeat") counted. Its tasks are
  // redelivered once its death is confirmed.
  std::function<void(uint32_t worker, const std::string& why, const char* reason)> kill;
  // The worker has done limits.max_tasks tasks: restart it (by sentinel).
  std::function<void(uint32_t worker)> recycle;
  // Tasks arrived after a tick() that returned false: the sampler is wanted.
  std::function<void()> active;
  // The task the worker runs was cancelled: stop it now (stop.signal, then
  // SIGKILL after stop.kill_after), without waiting for the task; WHY is
  // logged. It restarts as after any exit its task is charged with.
  std::function<void(uint32_t worker, const std::string& why)> stop;
};

// How a job's tasks go, for stats, top and /metrics.
struct FeedMetrics {
  Histogram run_time;      // dispatch to result, every task since the feed began
  Histogram recent;        // the same over the last metrics interval
  double tasks_per_s = 0;  // finished tasks over the last metrics interval
};

// What became of a durable job's stored tasks of one submit, once a commit
// of its spool ended: ACCEPTED are on disk and queued; the tasks of
// REFUSED_SEQS are not (ERROR says why: the disk is full, ...). OPENED: the
// commit was the one after open_submit() gave the submit its id.
struct Stored {
  bool opened = false;
  size_t accepted = 0;
  std::vector<uint64_t> refused_seqs;
  std::string error;
};

// A durable job's result, kept in its spool for `corralctl results`.
struct KeptResult {
  uint64_t cursor = 0;
  uint64_t id = 0;
  uint64_t submit = 0;
  uint64_t seq = 0;
  std::string status;
  std::string result;
  uint32_t attempts = 0;
};

// A job's shared value or array as `corralctl shared` shows it.
struct SharedReading {
  std::string name;
  std::string type;  // u64, i64, f64
  bool is_array = false;
  std::vector<double> values;     // u64/i64 beyond 2^53 lose precision only here
  std::vector<std::string> text;  // exact decimal of each element
};

class JobFeed {
 public:
  virtual ~JobFeed() = default;

  // Before spawning WORKER: adds the fds the child must get and its
  // environment; an error when the channel cannot be made.
  virtual Status prepare(uint32_t worker, SpawnRequest& request) = 0;
  // After the spawn attempt of a prepare()d worker.
  virtual void spawned(uint32_t worker, bool ok) = 0;
  // Stop sending tasks to WORKER and ask it to finish and exit 0.
  virtual void send_sentinel(uint32_t worker) = 0;
  // WORKER's process is confirmed dead: its tasks are redelivered. Returns
  // who the death is charged to (Dispatcher::worker_gone).
  virtual ExitBlame exited(uint32_t worker, const std::string& why) = 0;

  virtual Dispatcher& dispatcher() = 0;
  // WORKER was frozen (PAUSED) or thawed: while frozen its tasks are not
  // timed out and its heartbeats are not expected.
  virtual void paused(uint32_t /*worker*/, bool /*paused*/) {}
  // Adds a submitter that gets the finished tasks it submitted, those that
  // end together at once; returns its id.
  virtual uint64_t add_submitter(OnFinished on_finished) = 0;
  // The submitter left: its pending tasks' results go to the sink.
  virtual void remove_submitter(uint64_t id) = 0;
  // LISTENER runs after each batch of results (room in the queue, progress
  // for `wait --drained`) until it returns true. GONE, when given, says that
  // nobody waits for it any more (its client has gone): it is asked first,
  // and prune_listeners() drops every such listener without running it.
  virtual void add_listener(std::function<bool()> listener, std::function<bool()> gone) = 0;
  virtual void prune_listeners() = 0;
  // Hands queued tasks to workers (after a submit).
  virtual void pump() = 0;
  // Whether a submit must wait before it gives another task (back-pressure).
  virtual bool full() { return dispatcher().full(); }

  // A new submit's id (cancel --submit, results --submit). A durable job
  // records it in its spool: the submit's watcher (watch_stored) hears
  // `opened` once it is on disk, and no later life of corrald gives it out.
  virtual uint64_t open_submit() { return dispatcher().new_submit(); }

  // ---- a durable job's (queue.durable), which keeps its tasks in a spool ----
  virtual bool durable() const { return false; }
  // Whether a submitted task is acknowledged only once it is stored (in a
  // spool, or in a broker): submits go through store() and watch_stored().
  virtual bool stores_submits() const { return durable(); }
  // A broker job's (broker:): how its broker is.
  virtual std::optional<BrokerStatus> broker() const { return std::nullopt; }
  // A submitted task of a durable job: recorded now, queued once it is on
  // disk; the submit's watcher (watch_stored) hears which.
  virtual void store(std::string payload, const TaskOrigin& origin) {
    dispatcher().submit(std::move(payload), origin);
  }
  virtual void watch_stored(uint64_t /*submit*/, std::function<void(const Stored&)> /*watcher*/) {}
  virtual void unwatch_stored(uint64_t /*submit*/) {}
  // Up to LIMIT kept results after cursor AFTER (of SUBMIT only, when given),
  // in finish order; DONE runs on the loop.
  virtual void read_results(uint64_t /*after*/, std::optional<uint64_t> /*submit*/,
                            size_t /*limit*/,
                            std::function<void(Result<std::vector<KeptResult>>)> done) {
    done(Error("the job is not durable"));
  }
  // Unfinished tasks in the spool not yet loaded into the queue (they come
  // in as it has room).
  virtual uint64_t spooled() const { return 0; }
  // The cursor of the last result on disk; listeners are told when it grows.
  virtual uint64_t results_cursor() const { return 0; }
  // Tasks of SUBMIT not finished (queued, delayed, in flight, or waiting in
  // the spool to be loaded).
  virtual bool submit_pending(uint64_t submit) {
    return dispatcher().pending_of_submit(submit) > 0;
  }
  // Cancels what SELECTION names (Dispatcher::cancel); with RUNNING, the
  // workers that run a named task are stopped (FeedEvents::stop).
  virtual CancelReport cancel(const CancelSelection& selection, bool running) = 0;
  virtual std::vector<SharedReading> shared() const = 0;

  // Ends a metrics interval (the sampler's tick): tasks/s and the recent
  // histogram cover the time since the last call. False when the feed is
  // idle (nothing queued, in flight or finished in the interval): it calls
  // FeedEvents::active when tasks come again.
  virtual bool tick(TimePoint now) = 0;
  virtual const FeedMetrics& metrics() const = 0;

  // How many workers the feed can serve (shm: its segment's worker slots).
  virtual uint32_t capacity() const = 0;
  // The job is removed or rebuilt by a reload and every worker has exited:
  // queued tasks end dead with WHY (their submitters hear it), no task is
  // taken any more, and no event reaches the supervisor again.
  virtual void retire(const std::string& why) = 0;
  virtual bool retired() const = 0;
  // After retire(): the feed still writes what it owes (a broker's last
  // results); a shutdown waits a few seconds for it.
  virtual bool settling() const { return false; }
};

// Makes the task feed of a job with a channel (pipe or shm), which raises
// EVENTS; an error when it cannot (no fds, no room for the segment, a sink
// it may not open).
using FeedFactory =
    std::function<Result<std::unique_ptr<JobFeed>>(const config::JobSpec& job, FeedEvents events)>;

// Whether A and B need the same task feed: a reload keeps the feed (its
// queue, dead letters and shared values) of a job whose other settings
// changed.
bool same_feed(const config::JobSpec& a, const config::JobSpec& b);

}  // namespace corral::daemon

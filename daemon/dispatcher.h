// The task bookkeeping of one job: the bounded queue, which worker holds
// which task, redelivery when a worker dies, retries after a backoff
// (queue.retry), deadlines, cancels, the dead-letter list, and the counts.
//
// Tasks come alone or in chunks (submit_chunk): tasks of consecutive ids kept
// as one entry and handed to a worker as one frame, so that tiny tasks do
// not each pay the queue's and the channel's work. Each task of a chunk still
// ends on its own, as if it had come alone: its result, its retry, its
// cancel, its dead letter; a chunk is cut where that needs it (the task that
// was running when its worker died, a cancelled one, a worker's budget).
// Every count is of tasks, never of chunks.
//
// Pure: it moves tasks between its own containers and hands them to
// WorkerPorts; it never touches a process, a socket or a clock (the time is
// an argument). Tested with fake ports (tests/unit/dispatcher_test.cc,
// dispatcher_chunk_test.cc). Its work is in dispatcher.cc, and by concern
// in dispatcher_chunks.cc, dispatcher_cancel.cc and dispatcher_letters.cc.
//
// Accounting, true after every call:
//   submitted = ok + failed + dead + cancelled + expired + queued + delayed + in_flight
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/id_map.h"
#include "base/result.h"
#include "config/spec.h"
#include "daemon/backoff.h"
#include "daemon/clock.h"
#include "daemon/exit_status.h"

namespace corral::daemon {

// How a task ended. kCancelled: by `corralctl cancel`; kExpired: its
// deadline passed before a worker took it.
enum class TaskOutcome : uint8_t { kOk, kFailed, kDead, kCancelled, kExpired };
std::string_view to_string(TaskOutcome outcome);

// Why a worker that held tasks is gone, for queue.retry's `on`.
enum class TaskFault : uint8_t { kCrashed, kTimeout };

// Where a task comes from and how long it may wait.
struct TaskOrigin {
  uint64_t submitter = 0;             // who waits for its result; 0: the sink
  uint64_t submit = 0;                // the submit it came in (cancel --submit, results --submit)
  uint64_t seq = 0;                   // its position in that submit
  std::optional<TimePoint> deadline;  // not handed to a worker by then: expired
};

// A task that reached its end, for whoever waits for it.
struct FinishedTask {
  uint64_t id = 0;
  uint64_t submitter = 0;  // 0: nobody waits (the sink gets it)
  uint64_t seq = 0;        // position in its submission
  uint64_t submit = 0;
  TaskOutcome outcome = TaskOutcome::kOk;
  std::string result;  // the worker's result, or why the task is dead
  uint32_t attempts = 0;
  // From its last dispatch to its result; zero for a task that never ran.
  std::chrono::nanoseconds run_time{0};
  // A broker job's task that a submit here waits for: its entry's id (the
  // id above is then 0: it may have run on another node).
  std::string key;
};

// Whoever waits is told of tasks that ended together: the ok results of a
// chunk's run at once, other ends one by one. The receiver may move from
// them.
using FinishedTasks = std::span<FinishedTask>;
using OnFinished = std::function<void(FinishedTasks)>;

struct DeadLetter {
  uint64_t id = 0;
  std::string payload;
  TaskOutcome outcome = TaskOutcome::kDead;  // kFailed or kDead
  std::string reason;
  uint32_t attempts = 0;
};

struct TaskCounts {
  uint64_t submitted = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t dead = 0;
  uint64_t cancelled = 0;
  uint64_t expired = 0;
  // Times a task went out again: after its worker died, or after a retry's
  // backoff.
  uint64_t redelivered = 0;
  uint64_t dead_letters_dropped = 0;  // oldest letters dropped from a full list
};

// What `cancel` names: ids, one submit, or every task not yet running.
struct CancelSelection {
  std::vector<uint64_t> ids;
  std::optional<uint64_t> submit;
  bool all = false;
};

struct CancelReport {
  size_t cancelled = 0;                // queued or delayed: ended cancelled now
  std::vector<uint32_t> stop_workers;  // running cancelled tasks: stop these workers
  size_t stopping = 0;                 // tasks that end cancelled when their worker stops
  std::vector<uint64_t> running;       // named, in flight, left alone (no `running`)
  std::vector<uint64_t> unknown;       // named ids not pending
};

// What a durable job keeps of its tasks: each change the dispatcher makes
// is told here as it happens, in order (the task feed writes it to the
// job's spool, daemon/spool.h). Tasks put in with submit_recorded() or
// restore() were recorded already and are not told again.
class TaskJournal {
 public:
  virtual ~TaskJournal() = default;
  virtual void added(uint64_t id, const TaskOrigin& origin, std::string_view payload) = 0;
  virtual void dispatched(uint64_t id, uint32_t attempts) = 0;
  // Back in the queue after its worker died, at once.
  virtual void requeued(uint64_t id, uint32_t attempts) = 0;
  // Waits for a retry until DUE.
  virtual void delayed(uint64_t id, uint32_t attempts, TimePoint due) = 0;
  // It ended; LETTER: it joined the dead-letter list.
  virtual void finished(const FinishedTask& task, bool letter) = 0;
  // The letters of IDS left the list (retried or cleared); empty: all.
  virtual void letters_removed(const std::vector<uint64_t>& ids) = 0;
};

// The dispatcher's view of a worker's channel.
class WorkerPort {
 public:
  virtual ~WorkerPort() = default;
  // How many more tasks of PAYLOAD_BYTES the channel can take right now
  // (ring or pipe room); the dispatcher also keeps to queue.prefetch.
  virtual bool can_send(size_t payload_bytes) const = 0;
  virtual void send(uint64_t id, std::string_view payload) = 0;
  // Whether the worker takes chunks whole (it said so in READY); others get
  // a chunk's tasks one by one.
  virtual bool takes_chunks() const { return false; }
  // Hands over a chunk of COUNT tasks with ids FIRST_ID.. (ITEMS: each task's
  // u32 length and payload, ipc::append_chunk_item), whole; false (nothing
  // sent) when there is no room for it now. Its tasks are answered in order.
  virtual bool send_chunk(uint64_t /*first_id*/, uint32_t /*count*/, std::string_view /*items*/) {
    return false;
  }
  // Makes everything sent visible to the worker (one wake-up per batch).
  virtual void flush() = 0;
};

class Dispatcher {
 public:
  static constexpr size_t kMaxDeadLetters = 10000;

  // SEED makes the jitter of retry backoffs repeatable in tests.
  Dispatcher(const config::QueueSpec& queue, OnFinished on_finished, uint64_t seed = 1);

  // ---- submitting ----
  // Queued and delayed tasks take room; in-flight ones are bounded by
  // prefetch. MORE: tasks about to come (a Chunker's).
  bool full(size_t more = 0) const {
    return queued_ + delayed_.live + more >= queue_spec_.capacity;
  }
  // A new submit id (cancel --submit, results --submit).
  uint64_t new_submit() { return next_submit_++; }
  // Queues a task (the caller checked !full() and the payload's size).
  uint64_t submit(std::string payload, const TaskOrigin& origin);
  uint64_t submit(std::string payload, uint64_t submitter, uint64_t seq) {
    return submit(std::move(payload), TaskOrigin{submitter, 0, seq, std::nullopt});
  }
  // Queues COUNT tasks (at least one) as a chunk: ITEMS holds them as
  // ipc::append_chunk_item wrote them, their seqs are ORIGIN.seq on, their
  // ids consecutive (the first is returned). The caller checked that COUNT
  // more fit and each task's size. A job with a journal keeps a record per
  // task: there the tasks are queued one by one.
  uint64_t submit_chunk(std::string items, uint32_t count, const TaskOrigin& origin);
  // Whether chunks are worth making: some attached worker takes them, or
  // none is attached yet (a worker that takes none gets a chunk's tasks cut
  // out one by one, which costs more than tasks queued alone).
  bool chunks_welcome() const { return chunks_welcome_; }
  // A durable job's submits: the id is taken first, the task recorded in the
  // spool, and queued with submit_recorded() once that is on disk.
  uint64_t reserve_id() { return next_id_++; }
  void submit_recorded(uint64_t id, std::string payload, const TaskOrigin& origin);
  // A task of the spool, unfinished when corrald last stopped: queued (or,
  // with DUE, delayed) with the attempts it had. One that was running was
  // charged its attempt at its dispatch; with none left it ends dead now.
  // Ids and submit ids never go back: the next are above every restored one.
  // SPENT, when given, is why a task with no attempt left is dead.
  void restore(uint64_t id, std::string payload, const TaskOrigin& origin, uint32_t attempts,
               std::optional<TimePoint> due, std::string spent = {});
  void restore_counters(uint64_t next_id, uint64_t next_submit);
  // JOURNAL (null: none) hears every later change; it outlives the dispatcher.
  void set_journal(TaskJournal* journal) { journal_ = journal; }
  // Puts every dead letter back in the queue as a new submission (for the
  // sink: nobody waits); returns how many.
  size_t retry_dead_letters();
  // Puts the dead letters whose ids are IDS (every letter when IDS is empty)
  // back in the queue as new tasks of SUBMITTER (0: their results go to the
  // sink), in the list's order, each with its position among them as seq.
  // An id not in the list is an error naming it, and then nothing is
  // requeued. Returns how many were.
  Result<size_t> retry_dead_letters(const std::vector<uint64_t>& ids, uint64_t submitter);
  // Drops every dead letter; returns how many there were.
  size_t clear_dead_letters();

  // ---- workers ----
  // Worker W can take tasks through PORT (it said READY); with BUDGET, at
  // most that many more tasks in all (limits.max_tasks: then it is recycled).
  void attach(uint32_t worker, WorkerPort* port, std::optional<uint64_t> budget = std::nullopt);
  // No more tasks for W (its sentinel was sent, or it is about to be
  // stopped); what it holds stays in flight until it answers or dies.
  void detach(uint32_t worker);
  // W's process is confirmed dead: each task it held is redelivered, or is
  // dead once it has had max_attempts. Only the task W was running keeps
  // the attempt: the oldest it held, or, when it had FINISHED tasks it did
  // not answer (results gathered for a RESULTS frame, lost with it), the
  // one after those; the rest get their attempt back (the finished ones
  // run again). FINISHED comes from the worker and is not trusted: more
  // than W held means it was running none. The one it was running becomes
  // a suspect: it is handed out again only alone, to a worker that holds
  // nothing, and that worker gets nothing else meanwhile, so that a poison
  // task cannot take other tasks down with it. Returns who the death is
  // charged to: the task (kTask) when W was running one and had finished
  // tasks since attach(), or the task was already a suspect.
  // A task that ran, was charged its attempt and has attempts left waits
  // for queue.retry's backoff when FAULT is among its causes, else goes
  // out again at once. A task cancelled while it ran ends cancelled (the
  // death is then charged to the task). NOW dates a backoff.
  ExitBlame worker_gone(uint32_t worker, const std::string& why,
                        TaskFault fault = TaskFault::kCrashed, TimePoint now = {},
                        uint64_t finished = 0);
  // W answered task ID. False (and nothing changes) when W does not hold ID:
  // a protocol error the caller punishes. A failed task with attempts left
  // waits for a retry when queue.retry lists `failed`; a task cancelled
  // while it ran ends cancelled, its result dropped.
  bool result(uint32_t worker, uint64_t id, bool ok, std::string_view payload, TimePoint now);
  // W answered COUNT tasks from FIRST, ITEMS as a RESULTS frame holds them
  // (ipc::take_result_item): as many result() calls, with the ok results
  // of a chunk's tasks concluded as one run. Returns how many it took; less
  // than COUNT means the next one is for a task W does not hold (a
  // protocol error, as for result()).
  uint32_t results(uint32_t worker, uint64_t first, uint32_t count, std::string_view items,
                   TimePoint now);
  // The oldest task W holds (line framing answers in order).
  std::optional<uint64_t> oldest(uint32_t worker) const;
  size_t held_by(uint32_t worker) const;
  // How many tasks a worker may hold: queue.prefetch, or fewer when the
  // job's tasks are long (about 2 ms of work each, as results show, and at
  // least two, so that the next task is there when one ends): at the end of
  // a queue no worker then sits idle while another holds a backlog of long
  // tasks (Celery's -O fair, without the setting). `prefetch: auto`, the
  // default: 64 until a result shows how long a task takes, then about
  // 2 ms of work, from 2 up to 4096 tasks of microseconds.
  size_t held_limit() const;
  // The job's tasks' time in a worker, a moving average of what results
  // show; zero until a result came.
  std::chrono::nanoseconds service_time() const { return service_time_; }

  // First moves the delayed tasks whose backoff is over to the front of the
  // queue and ends as expired the waiting tasks whose deadline is past; then
  // hands queued tasks to attached workers with room, round robin, at most
  // held_limit() per worker (a suspect alone, see worker_gone), and
  // flushes each port that got any. The round starts with the worker whose
  // result came last: one task at a time keeps going to the one awake.
  // NOW stamps the tasks for their run_time.
  void pump(TimePoint now);
  // When pump() has something to do without any other event: the earliest
  // end of a backoff or deadline (it may be early, never late).
  std::optional<TimePoint> next_wakeup() const;

  // Cancels what SELECTION names: queued and delayed tasks end cancelled at
  // once; with RUNNING, each in-flight one ends cancelled when its worker
  // (listed in the report, for the caller to stop) answers or dies.
  CancelReport cancel(const CancelSelection& selection, bool running, const std::string& why);

  // ---- looking ----
  const TaskCounts& counts() const { return counts_; }
  // Results of worker W since the daemon started (all its processes).
  uint64_t ok_of(uint32_t worker) const { return worker < slots_.size() ? slots_[worker].ok : 0; }
  uint64_t failed_of(uint32_t worker) const {
    return worker < slots_.size() ? slots_[worker].failed : 0;
  }
  // Whether W had a budget and has used it up (its last task handed out).
  bool budget_spent(uint32_t worker) const {
    return worker < slots_.size() && slots_[worker].budget == 0;
  }
  size_t queued() const { return queued_; }
  size_t delayed() const { return delayed_.live; }
  size_t in_flight() const { return live_ - queued_ - delayed_.live; }
  // The job's worker slots (attached or not).
  size_t worker_count() const { return slots_.size(); }
  // Tasks of SUBMIT not finished yet (queued, delayed or in flight).
  size_t pending_of_submit(uint64_t submit) const;
  const std::deque<DeadLetter>& dead_letters() const { return dead_letters_; }
  // A task ID is waiting for its result somewhere (queued or in flight).
  bool pending(uint64_t id) const {
    uint64_t key = 0;
    return covering(id, key) != nullptr;
  }
  // Ends every queued and delayed task (none may be in flight) as dead with
  // WHY: the job is being removed or rebuilt by a reload.
  void abandon_queued(const std::string& why);
  // Hands the dead-letter list over (to the feed that replaces this one).
  std::deque<DeadLetter> take_dead_letters();
  void adopt_dead_letters(std::deque<DeadLetter> letters);
  // Forgets the submitter of every pending task of SUBMITTER (it left):
  // their results go to the sink.
  void orphan(uint64_t submitter);
  // Gives back the memory of a burst of tasks (the task table's); for a
  // job that went idle.
  void trim() { tasks_.shrink_to_fit(); }
  // The task table's slots (for tests of trim()).
  size_t table_capacity() const { return tasks_.capacity(); }
  // Whether the accounting identity holds (for tests and assertions).
  bool balanced() const;

 private:
  enum class Where : uint8_t { kQueued, kDelayed, kInFlight };
  // An entry of the task table: one task, or a chunk, keyed by its last id
  // (its tasks answer from the first, and a task cut out of it keeps its
  // own id as key). A chunk is never delayed: the tasks that wait for a
  // retry are cut out of it first.
  struct Task {
    // One task: its payload. A chunk: its tasks from OFFSET on, each a u32
    // length and its payload.
    std::string payload;
    TaskOrigin origin;  // a chunk: of its first task (the rest: seq + 1, ...)
    uint32_t attempts = 0;
    uint32_t items = 1;   // tasks in it: ids key - items + 1 .. key
    uint32_t offset = 0;  // a chunk: bytes of PAYLOAD whose tasks left it
    Where where = Where::kQueued;
    bool chunk = false;
    std::optional<uint32_t> worker;  // holder while in flight
    TimePoint dispatched_at{};
    bool suspect = false;    // a worker died running it
    bool cancelled = false;  // cancelled while in flight (a chunk: all of it)
  };
  // (time, id) with the earliest on top. Entries are never removed early:
  // one whose task has moved on is skipped when it comes up.
  using TimeHeap = std::priority_queue<std::pair<TimePoint, uint64_t>,
                                       std::vector<std::pair<TimePoint, uint64_t>>, std::greater<>>;
  struct Delayed {
    TimeHeap heap;
    size_t live = 0;  // tasks waiting in it
  };
  struct Slot {
    WorkerPort* port = nullptr;      // null: takes no tasks
    std::deque<uint64_t> held;       // keys of its entries, in dispatch order
    size_t held_items = 0;           // tasks in them
    std::optional<uint64_t> budget;  // tasks it may still be handed
    uint64_t ok = 0;
    uint64_t failed = 0;
    uint64_t finished_since_attach = 0;  // results of its current process
    bool isolating = false;              // holds a suspect, alone
    bool unflushed = false;              // pump() sent it tasks, not flushed yet
    TimePoint last_result{};             // when its latest result came
  };

  Slot& slot(uint32_t worker);
  // Queues task ID, recorded already if it had to be.
  void enqueue(uint64_t id, std::string&& payload, const TaskOrigin& origin);
  // The entry that holds task ID (a chunk's, or its own), and its KEY.
  const Task* covering(uint64_t id, uint64_t& key) const;
  Task* covering(uint64_t id, uint64_t& key) {
    return const_cast<Task*>(std::as_const(*this).covering(id, key));
  }
  static uint64_t first_of(uint64_t key, const Task& task) { return key - task.items + 1; }
  static std::string_view items_of(const Task& task) {
    return std::string_view(task.payload).substr(task.offset);
  }
  // Cuts chunk KEY before task AT (first < AT <= KEY): its tasks before AT
  // become an entry of their own, keyed AT - 1 and returned, just before
  // KEY in the queue if queued. A piece of one task becomes a plain task.
  uint64_t cut(uint64_t key, uint64_t at);
  // Removes entry KEY from the table (into TAKEN if given).
  void erase(uint64_t key, Task* taken = nullptr);
  // Ends every task of entry KEY (taken out of tasks_ by the caller):
  // conclude(), then deliver(), each.
  void finish(uint64_t key, const Task& task, TaskOutcome outcome, std::string result,
              std::chrono::nanoseconds run_time = {});
  // Counts the end of task ID (of entry TASK, at SEQ, with PAYLOAD) and
  // keeps its dead letter; returns what deliver() tells. TASK may still be
  // in tasks_: nothing here calls out.
  FinishedTask conclude(uint64_t id, uint64_t seq, std::string_view payload, const Task& task,
                        TaskOutcome outcome, std::string result, std::chrono::nanoseconds run_time);
  // Worker S answered a task dispatched at SENT: its counts, the job's
  // service time, and the worker the next hand-out starts with.
  void answered(Slot& s, bool ok, TimePoint sent, TimePoint now);
  // Whether an answered task waits for a retry (failed, not cancelled,
  // queue.retry lists `failed`, attempts left).
  bool retries(bool ok, bool cancelled, const Task& task) const;
  // Concludes task ID of TASK (its payload ITEM) answered with PAYLOAD, or
  // cancelled while it ran (the answer dropped).
  FinishedTask conclude_answer(uint64_t id, std::string_view item, const Task& task, bool ok,
                               bool cancelled, std::string_view payload, TimePoint now);
  // Makes TASK, a chunk down to one task keyed KEY, a plain task.
  void make_plain(uint64_t key, Task& task);
  // The first task of the chunk at the front of worker S's entries answered.
  bool chunk_result(Slot& s, uint64_t key, Task& task, bool ok, std::string_view payload,
                    TimePoint now);
  // Concludes the ok results at the front of ITEMS that answer the chunk
  // at the front of worker S's entries from task ID on (at most MOST, none
  // cancelled), into RUN, and takes them off ITEMS; returns how many (0
  // when the next result needs result()'s care).
  uint32_t conclude_ok_run(Slot& s, uint64_t id, uint32_t most, std::string_view& items,
                           TimePoint now, std::vector<FinishedTask>& run);
  // Sets chunks_welcome() from the attached ports.
  void ports_changed();
  // What a dead worker held, cut: the keys in order, and the task that was
  // running (none when it had finished everything it held).
  struct Held {
    std::vector<uint64_t> entries;
    std::optional<uint64_t> running;
  };
  // Cuts the chunks a dead worker HELD so that the task it was running (the
  // first after the FINISHED ones it did not answer) and each task
  // cancelled while in flight stand alone.
  Held cut_held(const std::deque<uint64_t>& held, uint64_t finished);
  // Tells the journal and whoever waits that a task ended, or that the
  // tasks of a run did.
  void deliver(FinishedTask&& finished);
  void deliver(FinishedTasks run);
  // Hands worker W up to MOST queued tasks while it holds fewer than
  // PREFETCH (a chunk is cut to what fits); true when the queue moved (a
  // task handed out or expired).
  bool hand_out(uint32_t w, size_t most, size_t prefetch, TimePoint now);
  // Ends the not-running entry KEY (queued or delayed), each of its tasks.
  void end_waiting(uint64_t key, TaskOutcome outcome, const std::string& why);
  // An entry that ran and has attempts left: after a backoff, or at once.
  void again(uint64_t key, Task& task, bool backoff, TimePoint now);
  void release_and_expire(TimePoint now);
  // Drops the heaps' top entries whose tasks have moved on, so that
  // next_wakeup() names a time something happens.
  void prune_heaps();
  // Drops the ids of tasks that left the queue early, once they outnumber
  // the live ones.
  void compact_queue();

  config::QueueSpec queue_spec_;
  OnFinished on_finished_;
  std::vector<FinishedTask> run_scratch_;  // results()'s, kept between calls
  TaskJournal* journal_ = nullptr;
  std::optional<Backoff> retry_backoff_;  // queue.retry's
  uint64_t next_id_ = 1;
  uint64_t next_submit_ = 1;
  IdMap<Task> tasks_;          // queued, delayed and in flight
  std::set<uint64_t> chunks_;  // keys of the entries that are chunks
  size_t live_ = 0;            // tasks queued, delayed and in flight
  bool chunks_welcome_ = true;
  // Tasks of chunks in flight cancelled one by one (a chunk in flight cannot be
  // cut): they end cancelled when answered or when their worker dies.
  std::set<uint64_t> cancelled_items_;
  // Ids waiting for a worker, oldest first; may hold ids of tasks that were
  // cancelled or expired while queued (skipped, and dropped by compact_queue).
  std::deque<uint64_t> queue_;
  size_t queued_ = 0;  // live ids in queue_
  Delayed delayed_;
  TimeHeap deadlines_;  // of queued and delayed tasks that have one
  std::vector<Slot> slots_;
  size_t next_worker_ = 0;  // round robin
  // The job's tasks' time in a worker, a moving average of what results
  // show (zero: not known yet); it sets held_limit().
  std::chrono::nanoseconds service_time_{0};
  std::deque<DeadLetter> dead_letters_;
  TaskCounts counts_;
};

}  // namespace corral::daemon

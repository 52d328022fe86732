// The spool of one durable job (`queue: {durable: true}`): its unfinished
// tasks, its recent results and its dead letters in an embedded SQLite
// database (STATE_DIR/spool/JOB.sqlite), so that what corrald acknowledged
// survives a kill -9 of corrald (durability crash: WAL, synchronous=NORMAL),
// or a loss of power too (durability power: synchronous=FULL, an fsync per
// commit).
//
// Threads: the event loop records changes and reads answers; one writer
// thread of the spool's own does all of the disk I/O (the one exception to
// corrald's single thread: it touches nothing but the database). Recording
// appends to an in-memory batch and never waits for the disk; commit() hands
// the batch to the writer under a mutex; the writer applies every batch that
// waits in one transaction (BEGIN ... COMMIT, one prepared statement per
// kind of change) and hands each batch's status back through Post, on the
// loop. Reads are answered the same way. So a busy loop commits once per turn
// and the disk sees one transaction per writer round, however many turns
// waited for it.
//
// What a crash keeps: every batch whose done() was called with an ok status
// (those are what corrald may acknowledge), each batch whole or not at all.
//
// Every call comes from one thread, the loop's (stats() from any);
// completions run through POST, on that thread too. Not copyable, not
// movable.
#pragma once

#include <stdint.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/result.h"

namespace corral::daemon {

// The wall clock in milliseconds since the epoch: the spool outlives the
// daemon, so its times (results' ages, delays, deadlines) are wall-clock.
int64_t wall_clock_ms();

struct SpoolOptions {
  std::string path;         // the database file (StateDir::spool_path)
  bool power_safe = false;  // durability power: synchronous=FULL, else NORMAL
  // How long a finished task's result is kept for `corralctl results`;
  // zero keeps none.
  std::chrono::milliseconds keep_results{600000};
  size_t load_limit = 65536;  // unfinished tasks read at open; the rest is backlog
  // The wall clock, for the results' ages (tests move it by hand).
  std::function<int64_t()> now_ms = wall_clock_ms;
};

enum class SpooledState : uint8_t { kQueued = 0, kRunning = 1, kDelayed = 2 };

// An unfinished task.
struct SpooledTask {
  uint64_t id = 0;
  uint64_t submit = 0;  // its submission; 0: nobody waits (the sink gets it)
  uint64_t seq = 0;     // its place in that submission
  std::string payload;
  uint32_t attempts = 0;
  SpooledState state = SpooledState::kQueued;
  int64_t due_ms = 0;       // kDelayed: wall-clock ms when it may run again
  int64_t deadline_ms = 0;  // wall-clock ms by which it must start; 0: none
  bool operator==(const SpooledTask&) const = default;
};

// A dead letter: a task that ended failed or dead, kept until retried or cleared.
struct SpooledLetter {
  uint64_t id = 0;
  std::string payload;
  std::string status;  // failed or dead
  std::string reason;
  uint32_t attempts = 0;
  bool operator==(const SpooledLetter&) const = default;
};

// A finished task, kept for keep_results.
struct SpooledResult {
  uint64_t cursor = 0;  // finish order: grows, never repeats
  uint64_t id = 0;
  uint64_t submit = 0;
  uint64_t seq = 0;
  std::string status;  // ok, failed, dead, cancelled or expired
  std::string result;
  uint32_t attempts = 0;
  int64_t finished_ms = 0;
  bool operator==(const SpooledResult&) const = default;
};

// What open() found.
struct SpoolContents {
  // One past the largest task id and submission the spool ever held (its
  // results and letters included), so that ids never repeat across restarts;
  // the cursor of the last result ever recorded.
  uint64_t next_id = 1;
  uint64_t next_submit = 1;
  uint64_t last_cursor = 0;
  std::vector<SpooledTask> tasks;      // unfinished, by id, at most load_limit
  uint64_t backlog = 0;                // unfinished tasks beyond them (load_more)
  std::vector<SpooledLetter> letters;  // in the order they became letters
};

// Counts of the writer's work, for tests and measurements.
struct SpoolStats {
  uint64_t transactions = 0;  // commit transactions (each holds one or more batches)
  uint64_t batches = 0;       // batches written (ok or not)
};

// Runs a completion on the event loop (asio::post to corrald's io_context).
// Called from the spool's writer thread, so it must be safe from any thread.
using Post = std::function<void(std::function<void()>)>;

class Spool {
 public:
  // The format this corrald writes and reads (PRAGMA user_version).
  static constexpr int kFormat = 1;

  // Opens or creates the spool (mode 0600, never through a symbolic link;
  // WAL, synchronous NORMAL or FULL), reads what is unfinished into
  // CONTENTS, and starts the writer. Synchronous: called once when a durable
  // job's feed is made. A damaged file, or one of a newer format, is an
  // error that says so and leaves the file as it is.
  static Result<std::unique_ptr<Spool>> open(const SpoolOptions& options, Post post,
                                             SpoolContents* contents);
  // Commits what was recorded since the last commit (without a completion),
  // lets the writer finish what waits (completions are still posted), then
  // joins it.
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // ---- recording: from the loop, applied in call order by the next commit ----
  void add(const SpooledTask& task);
  void dispatched(uint64_t id, uint32_t attempts);               // now kRunning
  void requeued(uint64_t id, uint32_t attempts);                 // back to kQueued (worker died)
  void delayed(uint64_t id, uint32_t attempts, int64_t due_ms);  // a retry waits until DUE_MS
  // Task DONE.id ended (DONE.status: ok, failed, dead, cancelled,
  // expired): it leaves the tasks, and DONE is kept for keep_results; with
  // LETTER (failed or dead) it also joins the dead letters, with DONE.result
  // as the reason. DONE.cursor is given here: returned, it grows with each
  // call whether or not the batch is later committed.
  uint64_t finished(SpooledResult done, bool letter);
  // Letters retried or cleared; an empty IDS: every letter.
  void letters_removed(const std::vector<uint64_t>& ids);
  // A submit took id SUBMIT: no later life of the spool gives it out again,
  // even if the submit never adds a task.
  void submit_opened(uint64_t submit);

  // Ends the batch recorded since the last commit. The writer commits it
  // (with whatever other batches wait, in one transaction) and DONE runs
  // through POST with the outcome. A failed transaction (disk full, a file
  // past RLIMIT_FSIZE, an I/O error) is rolled back whole and every batch in
  // it gets the error, which names the spool and the cause; later batches
  // apply to what is on disk (a change to a task whose add was rolled back
  // changes nothing; its finish still keeps the result, without submission).
  // DONE may be empty; an empty batch is committed too (its DONE says when
  // every earlier batch is on disk).
  void commit(std::function<void(Status)> done);

  // ---- reading: on the writer thread, after what was committed before; answered through POST ----
  // Up to LIMIT unfinished tasks with ids above AFTER_ID, by id (the backlog,
  // page by page).
  void load_more(uint64_t after_id, size_t limit,
                 std::function<void(Result<std::vector<SpooledTask>>)> done);
  // Up to LIMIT results with cursors above AFTER_CURSOR, in finish order,
  // only those of SUBMIT when given; none older than keep_results.
  void results(uint64_t after_cursor, std::optional<uint64_t> submit, size_t limit,
               std::function<void(Result<std::vector<SpooledResult>>)> done);

  const std::string& path() const { return options_.path; }
  SpoolStats stats() const;

 private:
  struct Database;  // the connection and its statements; the writer's alone after open()
  struct Private {  // only open() makes a Spool
    explicit Private() = default;
  };

 public:
  Spool(Private, SpoolOptions options, Post post, std::unique_ptr<Database> db,
        uint64_t last_cursor);

 private:
  struct Add {
    SpooledTask task;
  };
  struct SetState {
    uint64_t id;
    uint32_t attempts;
    SpooledState state;
    int64_t due_ms;
  };
  struct Finish {
    SpooledResult done;
    bool letter;
  };
  struct RemoveLetters {
    std::vector<uint64_t> ids;  // empty: all
  };
  struct OpenSubmit {
    uint64_t submit;
  };
  // std::monostate: a change made moot by a later one of the same batch.
  using Change = std::variant<std::monostate, Add, SetState, Finish, RemoveLetters, OpenSubmit>;
  struct Batch {
    std::vector<Change> changes;
    std::function<void(Status)> done;
  };

  void set_state(uint64_t id, uint32_t attempts, SpooledState state, int64_t due_ms);
  void run_writer();
  // Applies BATCHES in one transaction (and expires old results when due).
  Status write(std::vector<Batch>& batches);
  void expire_alone();

  SpoolOptions options_;
  Post post_;
  std::unique_ptr<Database> db_;  // the writer thread's

  // The loop's.
  std::vector<Change> recording_;
  // Where in recording_ each task's last state change is: a task that
  // finishes in the same batch needs none (its row goes), which spares the
  // writer an UPDATE for most tasks of a busy job.
  std::unordered_map<uint64_t, size_t> state_changes_;
  uint64_t next_cursor_;

  // Shared between the loop and the writer, under mu_.
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Batch> waiting_;
  std::vector<std::function<void()>> reads_;  // each runs on the writer and posts its answer
  bool stopping_ = false;

  std::atomic<uint64_t> transactions_{0};
  std::atomic<uint64_t> batches_{0};
  std::thread writer_;  // last: started when everything above is ready
};

}  // namespace corral::daemon

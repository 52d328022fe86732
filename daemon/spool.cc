// One durable job's spool (spool.h): the schema, opening and checking the
// file, recording changes on the loop, the writer's loop and the reads. A
// batch's transaction is in spool_write.cc; the SQLite handles, row helpers
// and the prepared statements (Spool::Database) in spool_database.h.
#include "daemon/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "base/unique_fd.h"
#include "daemon/safe_file.h"
#include "daemon/spool_database.h"

namespace corral::daemon {

using namespace spool_sqlite;  // NOLINT(google-build-using-namespace): spool_database.h's helpers

namespace {

// PRAGMA application_id of a corral spool ("corl"): a SQLite file of
// something else is never taken for one.
constexpr int32_t kApplicationId = 0x636f726c;

// The schema of format 1. Ids, submissions and cursors are stored as SQLite's
// signed 64-bit integers; corrald's never reach 2^63.
constexpr const char* kSchema = R"sql(
CREATE TABLE counters(
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  next_id INTEGER NOT NULL, next_submit INTEGER NOT NULL, last_cursor INTEGER NOT NULL);
INSERT INTO counters VALUES (1, 1, 1, 0);
CREATE TABLE tasks(
  id INTEGER PRIMARY KEY, submit INTEGER NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
  attempts INTEGER NOT NULL, state INTEGER NOT NULL, due_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL);
CREATE TABLE results(
  cursor INTEGER PRIMARY KEY, id INTEGER NOT NULL, submit INTEGER NOT NULL, seq INTEGER NOT NULL,
  status TEXT NOT NULL, result BLOB NOT NULL, attempts INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL);
CREATE INDEX results_by_submit ON results(submit, cursor);
CREATE TABLE letters(
  place INTEGER PRIMARY KEY, id INTEGER NOT NULL, payload BLOB NOT NULL, status TEXT NOT NULL,
  reason BLOB NOT NULL, attempts INTEGER NOT NULL);
CREATE INDEX letters_by_id ON letters(id);
PRAGMA application_id = 1668248172;
PRAGMA user_version = 1;
)sql";
static_assert(kApplicationId == 1668248172);
static_assert(Spool::kFormat == 1, "kSchema writes user_version 1");

// Creates PATH 0600 if missing and checks that it is a regular file of
// root's or corrald's with one link, never following a symbolic link; SQLite
// then opens the file that is there (its -wal file gets the same mode).
Result<UniqueFd> open_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == ELOOP) {
      return Error("spool " + path +
                   " is a symbolic link: refused (corrald opens a spool only as a regular file)");
    }
    return errno_error("spool " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("spool " + path);
  if (auto refusal = file_refusal(st, ::geteuid())) {
    return Error("spool " + path + " " + *refusal + ": refused");
  }
  return fd;
}

}  // namespace

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Spool>> Spool::open(const SpoolOptions& options, Post post,
                                           SpoolContents* contents) {
  // SQLite counts every allocation under a global mutex for its memory
  // statistics, which corrald never reads: off, once, before SQLite starts
  // (it refuses later, harmlessly).
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  const std::string& path = options.path;
  auto file = open_file(path);
  if (!file) return file.error();

  auto database = std::make_unique<Database>();
  Database& d = *database;
  d.path = path;
  sqlite3* raw = nullptr;
  const int opened = sqlite3_open_v2(
      path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  d.connection.reset(raw);
  if (opened != SQLITE_OK) return d.error("cannot open", opened);
  // Until the file is known to be ours, closing it must not write it either
  // (the last connection to a WAL database checkpoints it).
  sqlite3_db_config(d.db(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);

  // corrald is the spool's only user (the state_dir's lock says so), so it
  // holds the file's lock for good: no shared-memory index beside the WAL,
  // no lock taken per transaction. Set before the first read, which then
  // also recovers a WAL left by a crash.
  if (Status s = d.exec("PRAGMA locking_mode=EXCLUSIVE", "cannot lock"); !s) return s.error();
  // Read before anything is written: a file that is not ours, or of a newer
  // format, is left exactly as it is.
  auto application = d.integer("PRAGMA application_id", "cannot read the header");
  if (!application) return application.error();
  auto format = d.integer("PRAGMA user_version", "cannot read the header");
  if (!format) return format.error();
  auto tables = d.integer("SELECT count(*) FROM sqlite_schema", "cannot read the schema");
  if (!tables) return tables.error();
  const bool fresh = *application == 0 && *format == 0 && *tables == 0;
  if (!fresh && *application != kApplicationId) {
    return Error("spool " + path +
                 " is not a corral spool (another program's SQLite database); corrald leaves it "
                 "as it is: move it away to start the job with an empty spool");
  }
  if (*format > kFormat) {
    return Error("spool " + path + " was written by a newer corrald (format " +
                 std::to_string(*format) + ", this one reads " + std::to_string(kFormat) +
                 "); corrald leaves it as it is: run that corrald, or move the file away to start "
                 "the job with an empty spool");
  }
  if (!fresh && *format < 1) return damaged_error(path, "no format version");
  sqlite3_db_config(d.db(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  // A spool holds tasks' payloads and results: root's (or corrald's) alone.
  struct stat st {};
  if (::fstat(file->get(), &st) != 0) return errno_error("spool " + path);
  if ((st.st_mode & 077) != 0 && ::fchmod(file->get(), 0600) != 0) {
    return errno_error("spool " + path + ": chmod 0600");
  }
  file->reset();

  if (Status s = d.exec("PRAGMA journal_mode=WAL", "cannot use a write-ahead log"); !s) {
    return s.error();
  }
  const char* synchronous =
      options.power_safe ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  if (Status s = d.exec(synchronous, "cannot set synchronous"); !s) return s.error();
  // The WAL is truncated back to this after each checkpoint, so a burst does
  // not leave a large file behind.
  if (Status s = d.exec("PRAGMA journal_size_limit=67108864", "cannot set the WAL's limit"); !s) {
    return s.error();
  }
  if (fresh) {
    if (Status s = d.exec("BEGIN", "cannot begin"); !s) return s.error();
    if (Status s = d.exec(kSchema, "cannot create the tables"); !s) {
      (void)d.exec("ROLLBACK", "");
      return s.error();
    }
    if (Status s = d.exec("COMMIT", "cannot create the tables"); !s) return s.error();
  }

  struct Prepared {
    Statement* statement;
    const char* sql;
  };
  const std::string insert_tasks =
      insert_rows("tasks(id, submit, seq, payload, attempts, state, due_ms, deadline_ms)", 8,
                  kRowsPerStatement);
  const std::string insert_results =
      insert_rows("results(cursor, id, submit, seq, status, result, attempts, finished_ms)", 8,
                  kRowsPerStatement);
  std::string delete_tasks = "DELETE FROM tasks WHERE id IN (?1";
  for (int i = 2; i <= kRowsPerStatement; ++i) delete_tasks += ", ?" + std::to_string(i);
  delete_tasks += ")";
  const std::string load_tasks =
      std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE id > ?1 ORDER BY id LIMIT ?2";
  const Prepared statements[] = {
      {&d.begin, "BEGIN"},
      {&d.commit, "COMMIT"},
      {&d.rollback, "ROLLBACK"},
      {&d.insert_task,
       "INSERT INTO tasks(id, submit, seq, payload, attempts, state, due_ms, deadline_ms) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&d.set_state, "UPDATE tasks SET state = ?2, attempts = ?3, due_ms = ?4 WHERE id = ?1"},
      {&d.delete_task, "DELETE FROM tasks WHERE id = ?1"},
      {&d.insert_tasks, insert_tasks.c_str()},
      {&d.insert_results, insert_results.c_str()},
      {&d.delete_tasks, delete_tasks.c_str()},
      {&d.insert_result,
       "INSERT INTO results(cursor, id, submit, seq, status, result, attempts, finished_ms) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&d.insert_letter,
       "INSERT INTO letters(id, payload, status, reason, attempts) "
       "VALUES (?1, coalesce((SELECT payload FROM tasks WHERE id = ?1), x''), ?2, ?3, ?4)"},
      {&d.delete_letter, "DELETE FROM letters WHERE id = ?1"},
      {&d.delete_letters, "DELETE FROM letters"},
      {&d.update_counters,
       "UPDATE counters SET next_id = max(next_id, ?1), next_submit = max(next_submit, ?2), "
       "last_cursor = max(last_cursor, ?3)"},
      {&d.expire_results, "DELETE FROM results WHERE cursor <= ?1"},
      {&d.newest_result, "SELECT cursor, finished_ms FROM results ORDER BY cursor DESC LIMIT 1"},
      {&d.load_tasks, load_tasks.c_str()},
      {&d.results_after,
       "SELECT cursor, id, submit, seq, status, result, attempts, finished_ms FROM results "
       "WHERE cursor > ?1 AND finished_ms >= ?2 ORDER BY cursor LIMIT ?3"},
      {&d.results_of_submit,
       "SELECT cursor, id, submit, seq, status, result, attempts, finished_ms FROM results "
       "WHERE submit = ?4 AND cursor > ?1 AND finished_ms >= ?2 ORDER BY cursor LIMIT ?3"},
  };
  for (const Prepared& p : statements) {
    auto statement = d.prepare(p.sql);
    if (!statement) return statement.error();
    *p.statement = std::move(*statement);
  }

  // What is there. No PRAGMA quick_check: it reads and checks every page of
  // the file, three to four times what this open costs (a spool of
  // 1,000,000 unfinished 16-byte tasks, 33 MiB: 110-230 ms against 38-60 ms,
  // bench/micro/spool_bench.cc), and it grows with the payloads and results
  // kept, while the open runs on the event loop. The reads below touch the
  // header, the schema, the counters, the first load_limit tasks and every
  // page of the tasks' b-tree (the count); damage elsewhere shows when a
  // commit or read reaches it, as that commit's error ("spool ... is
  // damaged: ...").
  SpoolContents found;
  {
    auto counters =
        d.prepare("SELECT next_id, next_submit, last_cursor FROM counters WHERE singleton = 1");
    if (!counters) return counters.error();
    const int rc = sqlite3_step(counters->get());
    if (rc != SQLITE_ROW) {
      return rc == SQLITE_DONE ? damaged_error(path, "its counters are missing")
                               : d.error("cannot read the counters", rc);
    }
    found.next_id = column_u64(counters->get(), 0);
    found.next_submit = column_u64(counters->get(), 1);
    found.last_cursor = column_u64(counters->get(), 2);
  }
  auto tasks = d.tasks_after(0, options.load_limit);
  if (!tasks) return tasks.error();
  found.tasks = std::move(*tasks);
  {
    // The whole count is SQLite's quick one (it counts a b-tree's cells
    // without reading rows); what was loaded is the first by id.
    auto count = d.integer("SELECT count(*) FROM tasks", "cannot count the tasks");
    if (!count) return count.error();
    found.backlog = static_cast<uint64_t>(*count) - found.tasks.size();
  }
  {
    auto letters =
        d.prepare("SELECT id, payload, status, reason, attempts FROM letters ORDER BY place");
    if (!letters) return letters.error();
    sqlite3_stmt* s = letters->get();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      found.letters.push_back(SpooledLetter{column_u64(s, 0), column_bytes(s, 1),
                                            column_bytes(s, 2), column_bytes(s, 3),
                                            static_cast<uint32_t>(sqlite3_column_int64(s, 4))});
    }
    if (rc != SQLITE_DONE) return d.error("cannot read the dead letters", rc);
  }
  {
    sqlite3_stmt* s = d.newest_result.get();
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      const int64_t newest_ms = sqlite3_column_int64(s, 1);
      d.ages.push_back(Database::Age{newest_ms, newest_ms, column_u64(s, 0)});
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return d.error("cannot read the results", rc);
  }

  const uint64_t last_cursor = found.last_cursor;
  *contents = std::move(found);
  return std::make_unique<Spool>(Private{}, options, std::move(post), std::move(database),
                                 last_cursor);
}

Spool::Spool(Private, SpoolOptions options, Post post, std::unique_ptr<Database> db,
             uint64_t last_cursor)
    : options_(std::move(options)),
      post_(std::move(post)),
      db_(std::move(db)),
      next_cursor_(last_cursor + 1) {
  writer_ = std::thread([this] { run_writer(); });
}

Spool::~Spool() {
  {
    std::lock_guard lock(mu_);
    if (!recording_.empty()) waiting_.push_back(Batch{std::move(recording_), nullptr});
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void Spool::add(const SpooledTask& task) { recording_.emplace_back(Add{task}); }

void Spool::set_state(uint64_t id, uint32_t attempts, SpooledState state, int64_t due_ms) {
  state_changes_[id] = recording_.size();
  recording_.emplace_back(SetState{id, attempts, state, due_ms});
}

void Spool::dispatched(uint64_t id, uint32_t attempts) {
  set_state(id, attempts, SpooledState::kRunning, 0);
}

void Spool::requeued(uint64_t id, uint32_t attempts) {
  set_state(id, attempts, SpooledState::kQueued, 0);
}

void Spool::delayed(uint64_t id, uint32_t attempts, int64_t due_ms) {
  set_state(id, attempts, SpooledState::kDelayed, due_ms);
}

uint64_t Spool::finished(SpooledResult done, bool letter) {
  done.cursor = next_cursor_++;
  // Its row goes in this batch: the state it last got in it is moot.
  if (auto it = state_changes_.find(done.id); it != state_changes_.end()) {
    recording_[it->second] = std::monostate{};
    state_changes_.erase(it);
  }
  const uint64_t cursor = done.cursor;
  recording_.emplace_back(Finish{std::move(done), letter});
  return cursor;
}

void Spool::letters_removed(const std::vector<uint64_t>& ids) {
  recording_.emplace_back(RemoveLetters{ids});
}

void Spool::submit_opened(uint64_t submit) { recording_.emplace_back(OpenSubmit{submit}); }

void Spool::commit(std::function<void(Status)> done) {
  const size_t recorded = recording_.size();
  {
    std::lock_guard lock(mu_);
    waiting_.push_back(Batch{std::move(recording_), std::move(done)});
  }
  // Room for a batch like this one: growing a vector of changes step by
  // step moved each change about twice.
  recording_ = std::vector<Change>();
  recording_.reserve(recorded);
  state_changes_.clear();
  wake_.notify_one();
}

void Spool::load_more(uint64_t after_id, size_t limit,
                      std::function<void(Result<std::vector<SpooledTask>>)> done) {
  auto read = [this, after_id, limit, done = std::move(done)]() mutable {
    auto tasks = db_->tasks_after(after_id, limit);
    post_([done = std::move(done), tasks = std::move(tasks)]() mutable { done(std::move(tasks)); });
  };
  {
    std::lock_guard lock(mu_);
    reads_.push_back(std::move(read));
  }
  wake_.notify_one();
}

void Spool::results(uint64_t after_cursor, std::optional<uint64_t> submit, size_t limit,
                    std::function<void(Result<std::vector<SpooledResult>>)> done) {
  auto read = [this, after_cursor, submit, limit, done = std::move(done)]() mutable {
    const Database& d = *db_;
    sqlite3_stmt* s = submit ? d.results_of_submit.get() : d.results_after.get();
    bind_u64(s, 1, after_cursor);
    sqlite3_bind_int64(s, 2, options_.now_ms() - options_.keep_results.count());
    sqlite3_bind_int64(
        s, 3,
        static_cast<sqlite3_int64>(std::min<size_t>(limit, std::numeric_limits<int32_t>::max())));
    if (submit) bind_u64(s, 4, *submit);
    std::vector<SpooledResult> found;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) found.push_back(result_of_row(s));
    sqlite3_reset(s);
    Result<std::vector<SpooledResult>> answer =
        rc == SQLITE_DONE ? Result<std::vector<SpooledResult>>(std::move(found))
                          : Result<std::vector<SpooledResult>>(d.error("cannot read results", rc));
    post_([done = std::move(done), answer = std::move(answer)]() mutable {
      done(std::move(answer));
    });
  };
  {
    std::lock_guard lock(mu_);
    reads_.push_back(std::move(read));
  }
  wake_.notify_one();
}

SpoolStats Spool::stats() const {
  return SpoolStats{transactions_.load(std::memory_order_relaxed),
                    batches_.load(std::memory_order_relaxed)};
}

void Spool::run_writer() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (waiting_.empty() && reads_.empty()) {
      if (stopping_) return;
      if (!db_->ages.empty() && options_.keep_results.count() > 0) {
        // Old results go even while nothing is committed.
        if (!wake_.wait_for(lock, std::chrono::seconds(1),
                            [&] { return stopping_ || !waiting_.empty() || !reads_.empty(); })) {
          lock.unlock();
          expire_alone();
          lock.lock();
        }
      } else {
        wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !reads_.empty(); });
      }
      continue;
    }
    std::vector<Batch> batches = std::move(waiting_);
    waiting_.clear();
    std::vector<std::function<void()>> reads = std::move(reads_);
    reads_.clear();
    lock.unlock();
    if (!batches.empty()) {
      const Status status = write(batches);
      for (Batch& batch : batches) {
        if (batch.done) {
          post_([done = std::move(batch.done), status] { done(status); });
        }
      }
    }
    for (auto& read : reads) read();
    // A commit expires results in its own transaction; a round of reads
    // alone must not keep them from going.
    if (batches.empty()) expire_alone();
    lock.lock();
  }
}

}  // namespace corral::daemon

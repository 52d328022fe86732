// One durable job's spool (spool.h). Longer than the tree's rooms usually
// are, for a reason: the schema, the opening checks, the prepared
// statements that write a batch and the reads are one concern, the SQLite
// file's format, and each half is read against the other (a statement
// against its table, a check against what open writes).
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

namespace corral::daemon {

// Owners of SQLite's handles. Outside the anonymous namespace: Spool::Database
// holds them, and a class with linkage may not hold a type without.
namespace spool_sqlite {
struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;
}  // namespace spool_sqlite

namespace {

using spool_sqlite::Connection;
using spool_sqlite::Statement;

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

// The errno of the last failed write: SQLite keeps it per file, and the
// connection's own (sqlite3_system_errno) is read after the failed commit
// has already made other calls. The WAL first, where commits write.
int last_errno(sqlite3* db) {
  int error = 0;
  sqlite3_file* journal = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &journal) == SQLITE_OK &&
      journal != nullptr && journal->pMethods != nullptr) {
    journal->pMethods->xFileControl(journal, SQLITE_FCNTL_LAST_ERRNO, &error);
  }
  if (error == 0) sqlite3_file_control(db, "main", SQLITE_FCNTL_LAST_ERRNO, &error);
  if (error == 0) error = sqlite3_system_errno(db);
  return error;
}

// SQLite's message for RC on DB, with the system's reason where it has one:
// "disk I/O error (File too large)".
std::string sqlite_message(sqlite3* db, int rc) {
  // The connection's message is the more precise, when it is of this error.
  const bool current = db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff);
  std::string message = current ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  if (db != nullptr && (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN)) {
    if (const int error = last_errno(db); error != 0) {
      message += std::string(" (") + ::strerror(error) + ")";
    }
  }
  return message;
}

bool damaged(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

Error damaged_error(const std::string& path, std::string_view what) {
  return Error("spool " + path + " is damaged: " + std::string(what) +
               "; corrald leaves it as it is: move it away to start the job with an empty spool");
}

// Binds as a blob: an empty one too (a null pointer would bind NULL).
void bind_bytes(sqlite3_stmt* statement, int index, std::string_view bytes) {
  sqlite3_bind_blob(statement, index, bytes.empty() ? "" : bytes.data(),
                    static_cast<int>(bytes.size()), SQLITE_STATIC);
}
void bind_text(sqlite3_stmt* statement, int index, std::string_view text) {
  sqlite3_bind_text(statement, index, text.empty() ? "" : text.data(),
                    static_cast<int>(text.size()), SQLITE_STATIC);
}
void bind_u64(sqlite3_stmt* statement, int index, uint64_t value) {
  sqlite3_bind_int64(statement, index, static_cast<sqlite3_int64>(value));
}

// A task's 8 columns (tasks' order) from parameter FIRST on.
void bind_task(sqlite3_stmt* s, int first, const SpooledTask& t) {
  bind_u64(s, first, t.id);
  bind_u64(s, first + 1, t.submit);
  bind_u64(s, first + 2, t.seq);
  bind_bytes(s, first + 3, t.payload);
  sqlite3_bind_int64(s, first + 4, t.attempts);
  sqlite3_bind_int(s, first + 5, static_cast<int>(t.state));
  sqlite3_bind_int64(s, first + 6, t.due_ms);
  sqlite3_bind_int64(s, first + 7, t.deadline_ms);
}
// A result's 8 columns (results' order) from parameter FIRST on.
void bind_result(sqlite3_stmt* s, int first, const SpooledResult& r) {
  bind_u64(s, first, r.cursor);
  bind_u64(s, first + 1, r.id);
  bind_u64(s, first + 2, r.submit);
  bind_u64(s, first + 3, r.seq);
  bind_text(s, first + 4, r.status);
  bind_bytes(s, first + 5, r.result);
  sqlite3_bind_int64(s, first + 6, r.attempts);
  sqlite3_bind_int64(s, first + 7, r.finished_ms);
}

// Rows go kRowsPerStatement at a time through one statement where a batch
// has that many alike in a row (a submit's tasks, a burst of results): a
// statement's fixed cost (starting its program, opening and closing a
// b-tree cursor, resetting) is then paid once per 16 rows, not per row.
constexpr int kRowsPerStatement = 16;

// "INSERT INTO TABLE(COLUMNS) VALUES (?1, ..., ?N), ...": ROWS rows of N.
std::string insert_rows(const char* table_and_columns, int columns, int rows) {
  std::string sql = std::string("INSERT INTO ") + table_and_columns + " VALUES ";
  int parameter = 1;
  for (int row = 0; row < rows; ++row) {
    sql += row == 0 ? "(" : ", (";
    for (int column = 0; column < columns; ++column) {
      sql += (column == 0 ? "?" : ", ?") + std::to_string(parameter++);
    }
    sql += ")";
  }
  return sql;
}

std::string column_bytes(sqlite3_stmt* statement, int index) {
  const void* data = sqlite3_column_blob(statement, index);
  const int size = sqlite3_column_bytes(statement, index);
  return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
}
uint64_t column_u64(sqlite3_stmt* statement, int index) {
  return static_cast<uint64_t>(sqlite3_column_int64(statement, index));
}

SpooledTask task_of_row(sqlite3_stmt* row) {
  SpooledTask task;
  task.id = column_u64(row, 0);
  task.submit = column_u64(row, 1);
  task.seq = column_u64(row, 2);
  task.payload = column_bytes(row, 3);
  task.attempts = static_cast<uint32_t>(sqlite3_column_int64(row, 4));
  const int64_t state = sqlite3_column_int64(row, 5);
  task.state = state == 1   ? SpooledState::kRunning
               : state == 2 ? SpooledState::kDelayed
                            : SpooledState::kQueued;
  task.due_ms = sqlite3_column_int64(row, 6);
  task.deadline_ms = sqlite3_column_int64(row, 7);
  return task;
}

SpooledResult result_of_row(sqlite3_stmt* row) {
  SpooledResult result;
  result.cursor = column_u64(row, 0);
  result.id = column_u64(row, 1);
  result.submit = column_u64(row, 2);
  result.seq = column_u64(row, 3);
  result.status = column_bytes(row, 4);
  result.result = column_bytes(row, 5);
  result.attempts = static_cast<uint32_t>(sqlite3_column_int64(row, 6));
  result.finished_ms = sqlite3_column_int64(row, 7);
  return result;
}

constexpr const char* kTaskColumns =
    "id, submit, seq, payload, attempts, state, due_ms, deadline_ms";

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

// The connection and one prepared statement per operation. Used by open()
// on the caller's thread, then only by the writer thread.
struct Spool::Database {
  std::string path;
  Connection connection;  // first: closed after the statements
  Statement begin, commit, rollback;
  Statement insert_task, set_state, delete_task;
  Statement insert_tasks, insert_results, delete_tasks;  // kRowsPerStatement rows each
  Statement insert_result, insert_letter, delete_letter, delete_letters;
  Statement update_counters, expire_results, newest_result;
  Statement load_tasks, results_after, results_of_submit;
  // The kept results by age, oldest first: those with cursors up to CURSOR
  // finished by NEWEST_MS (wall ms). One entry per second of commits: old
  // results go by cursor, the table's key, so that they need no index by
  // age (one b-tree less to write per task). A spool opened with results
  // in it starts with one entry for all of them, as old as the newest.
  struct Age {
    int64_t since_ms;
    int64_t newest_ms;
    uint64_t cursor;
  };
  std::deque<Age> ages;
  std::optional<int64_t> last_expiry_ms;

  bool expiry_due(int64_t now) const {
    return !ages.empty() && (!last_expiry_ms || now - *last_expiry_ms >= 1000);
  }
  // Results up to CURSOR were committed at NOW.
  void kept(uint64_t cursor, int64_t now) {
    if (!ages.empty() && now - ages.back().since_ms < 1000 && now >= ages.back().newest_ms) {
      ages.back().newest_ms = now;
      ages.back().cursor = std::max(ages.back().cursor, cursor);
    } else {
      ages.push_back(Age{now, now, cursor});
    }
  }
  // The cursor up to which every result finished before CUTOFF_MS, if any.
  std::optional<uint64_t> expired_through(int64_t cutoff_ms) const {
    std::optional<uint64_t> through;
    for (const Age& age : ages) {
      if (age.newest_ms >= cutoff_ms) break;
      through = age.cursor;
    }
    return through;
  }
  void forget_through(uint64_t cursor) {
    while (!ages.empty() && ages.front().cursor <= cursor) ages.pop_front();
  }

  sqlite3* db() const { return connection.get(); }

  // "spool PATH: WHAT: SQLite's reason".
  Error error(std::string_view what, int rc) const {
    if (damaged(rc)) return damaged_error(path, sqlite_message(db(), rc));
    return Error("spool " + path + ": " + std::string(what) + ": " + sqlite_message(db(), rc));
  }

  Result<Statement> prepare(const char* sql) const {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    Statement statement(raw);
    if (rc != SQLITE_OK) return error(std::string("cannot prepare ") + sql, rc);
    return statement;
  }

  // Runs STATEMENT to its end (no rows wanted); SQLITE_DONE when it went well.
  int run(const Statement& statement) const {
    int rc;
    while ((rc = sqlite3_step(statement.get())) == SQLITE_ROW) {
    }
    sqlite3_reset(statement.get());
    sqlite3_clear_bindings(statement.get());
    return rc;
  }

  // Runs SQL (no bindings, no rows wanted), for pragmas and the schema.
  Status exec(const char* sql, std::string_view what) const {
    const int rc = sqlite3_exec(db(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return error(what, rc);
    return {};
  }

  // The one integer a pragma or query answers.
  Result<int64_t> integer(const char* sql, std::string_view what) const {
    auto statement = prepare(sql);
    if (!statement) return statement.error();
    const int rc = sqlite3_step(statement->get());
    if (rc != SQLITE_ROW) return error(what, rc);
    return static_cast<int64_t>(sqlite3_column_int64(statement->get(), 0));
  }

  // Ends a failed transaction, if SQLite has not already.
  void roll_back() const {
    if (sqlite3_get_autocommit(db()) == 0) run(rollback);
  }

  // Up to LIMIT tasks after AFTER_ID.
  Result<std::vector<SpooledTask>> tasks_after(uint64_t after_id, size_t limit) const {
    sqlite3_stmt* s = load_tasks.get();
    bind_u64(s, 1, after_id);
    sqlite3_bind_int64(
        s, 2,
        static_cast<sqlite3_int64>(std::min<size_t>(limit, std::numeric_limits<int32_t>::max())));
    std::vector<SpooledTask> tasks;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) tasks.push_back(task_of_row(s));
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return error("cannot read tasks", rc);
    return tasks;
  }
};

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

Status Spool::write(std::vector<Batch>& batches) {
  Database& d = *db_;
  batches_.fetch_add(batches.size(), std::memory_order_relaxed);
  int rc = d.run(d.begin);
  if (rc != SQLITE_DONE) return d.error("cannot begin a transaction", rc);
  uint64_t next_id = 0, next_submit = 0, last_cursor = 0;
  bool results_written = false;
  uint64_t newest_result = 0;
  auto fail = [&](std::string_view what, int code) {
    Error error = d.error(what, code);
    d.roll_back();
    return error;
  };
  // Runs of alike changes wait here until a change of another kind (or a
  // full run) writes them, so that changes of one task keep their order.
  std::vector<const SpooledTask*> adds;
  std::vector<const SpooledResult*> finishes;  // without a letter
  auto write_adds = [&]() -> int {
    size_t i = 0;
    for (; i + kRowsPerStatement <= adds.size(); i += kRowsPerStatement) {
      for (int row = 0; row < kRowsPerStatement; ++row) {
        bind_task(d.insert_tasks.get(), 1 + 8 * row, *adds[i + row]);
      }
      if (int rc = d.run(d.insert_tasks); rc != SQLITE_DONE) return rc;
    }
    for (; i < adds.size(); ++i) {
      bind_task(d.insert_task.get(), 1, *adds[i]);
      if (int rc = d.run(d.insert_task); rc != SQLITE_DONE) return rc;
    }
    adds.clear();
    return SQLITE_DONE;
  };
  const bool keep_results = options_.keep_results.count() > 0;
  auto write_finishes = [&]() -> std::pair<int, const char*> {
    size_t i = 0;
    for (; i + kRowsPerStatement <= finishes.size(); i += kRowsPerStatement) {
      if (keep_results) {
        for (int row = 0; row < kRowsPerStatement; ++row) {
          bind_result(d.insert_results.get(), 1 + 8 * row, *finishes[i + row]);
        }
        if (int rc = d.run(d.insert_results); rc != SQLITE_DONE) {
          return {rc, "cannot keep a result"};
        }
      }
      for (int row = 0; row < kRowsPerStatement; ++row) {
        bind_u64(d.delete_tasks.get(), 1 + row, finishes[i + row]->id);
      }
      if (int rc = d.run(d.delete_tasks); rc != SQLITE_DONE) return {rc, "cannot remove a task"};
    }
    for (; i < finishes.size(); ++i) {
      if (keep_results) {
        bind_result(d.insert_result.get(), 1, *finishes[i]);
        if (int rc = d.run(d.insert_result); rc != SQLITE_DONE) {
          return {rc, "cannot keep a result"};
        }
      }
      bind_u64(d.delete_task.get(), 1, finishes[i]->id);
      if (int rc = d.run(d.delete_task); rc != SQLITE_DONE) return {rc, "cannot remove a task"};
    }
    finishes.clear();
    return {SQLITE_DONE, nullptr};
  };
  // Writes the waiting run; SQLITE_DONE, or the failure and FAILED_STEP.
  const char* failed_step = nullptr;
  auto write_runs = [&]() -> int {
    if (!adds.empty()) {
      failed_step = "cannot add a task";
      return write_adds();
    }
    if (!finishes.empty()) {
      auto [code, step] = write_finishes();
      failed_step = step;
      return code;
    }
    return SQLITE_DONE;
  };
  for (Batch& batch : batches) {
    for (const Change& change : batch.changes) {
      if (const Add* add = std::get_if<Add>(&change)) {
        if (!finishes.empty() || adds.size() == kRowsPerStatement) {
          if ((rc = write_runs()) != SQLITE_DONE) return fail(failed_step, rc);
        }
        adds.push_back(&add->task);
        next_id = std::max(next_id, add->task.id + 1);
        next_submit = std::max(next_submit, add->task.submit + 1);
        continue;
      }
      const Finish* finish = std::get_if<Finish>(&change);
      if (finish != nullptr && !finish->letter) {
        if (!adds.empty() || finishes.size() == kRowsPerStatement) {
          if ((rc = write_runs()) != SQLITE_DONE) return fail(failed_step, rc);
        }
        finishes.push_back(&finish->done);
        if (keep_results) {
          results_written = true;
          newest_result = std::max(newest_result, finish->done.cursor);
        }
        next_id = std::max(next_id, finish->done.id + 1);
        last_cursor = std::max(last_cursor, finish->done.cursor);
        continue;
      }
      if ((rc = write_runs()) != SQLITE_DONE) return fail(failed_step, rc);
      if (const SetState* set = std::get_if<SetState>(&change)) {
        sqlite3_stmt* s = d.set_state.get();
        bind_u64(s, 1, set->id);
        sqlite3_bind_int(s, 2, static_cast<int>(set->state));
        sqlite3_bind_int64(s, 3, set->attempts);
        sqlite3_bind_int64(s, 4, set->due_ms);
        if ((rc = d.run(d.set_state)) != SQLITE_DONE) return fail("cannot update a task", rc);
      } else if (finish != nullptr) {
        // With a letter: alone.
        const SpooledResult& done = finish->done;
        if (keep_results) {
          bind_result(d.insert_result.get(), 1, done);
          if ((rc = d.run(d.insert_result)) != SQLITE_DONE) return fail("cannot keep a result", rc);
          results_written = true;
          newest_result = std::max(newest_result, done.cursor);
        }
        // A task is one letter at most, however often it was retried.
        bind_u64(d.delete_letter.get(), 1, done.id);
        if ((rc = d.run(d.delete_letter)) != SQLITE_DONE) {
          return fail("cannot keep a dead letter", rc);
        }
        sqlite3_stmt* s = d.insert_letter.get();
        bind_u64(s, 1, done.id);
        bind_text(s, 2, done.status);
        bind_bytes(s, 3, done.result);
        sqlite3_bind_int64(s, 4, done.attempts);
        if ((rc = d.run(d.insert_letter)) != SQLITE_DONE) {
          return fail("cannot keep a dead letter", rc);
        }
        bind_u64(d.delete_task.get(), 1, done.id);
        if ((rc = d.run(d.delete_task)) != SQLITE_DONE) return fail("cannot remove a task", rc);
        next_id = std::max(next_id, done.id + 1);
        last_cursor = std::max(last_cursor, done.cursor);
      } else if (const RemoveLetters* remove = std::get_if<RemoveLetters>(&change)) {
        if (remove->ids.empty()) {
          rc = d.run(d.delete_letters);
        } else {
          for (uint64_t id : remove->ids) {
            bind_u64(d.delete_letter.get(), 1, id);
            if ((rc = d.run(d.delete_letter)) != SQLITE_DONE) break;
          }
        }
        if (rc != SQLITE_DONE) return fail("cannot remove dead letters", rc);
      } else if (const OpenSubmit* open = std::get_if<OpenSubmit>(&change)) {
        next_submit = std::max(next_submit, open->submit + 1);
      }
    }
  }
  if ((rc = write_runs()) != SQLITE_DONE) return fail(failed_step, rc);
  const int64_t now = options_.now_ms();
  std::optional<uint64_t> expired;
  if (options_.keep_results.count() > 0 && d.expiry_due(now)) {
    d.last_expiry_ms = now;
    expired = d.expired_through(now - options_.keep_results.count());
    if (expired) {
      bind_u64(d.expire_results.get(), 1, *expired);
      if ((rc = d.run(d.expire_results)) != SQLITE_DONE) return fail("cannot expire results", rc);
    }
  }
  if (next_id != 0 || next_submit != 0 || last_cursor != 0) {
    sqlite3_stmt* s = d.update_counters.get();
    bind_u64(s, 1, next_id);
    bind_u64(s, 2, next_submit);
    bind_u64(s, 3, last_cursor);
    if ((rc = d.run(d.update_counters)) != SQLITE_DONE) return fail("cannot count", rc);
  }
  if ((rc = d.run(d.commit)) != SQLITE_DONE) return fail("cannot commit", rc);
  if (expired) d.forget_through(*expired);
  if (results_written) d.kept(newest_result, now);
  transactions_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void Spool::expire_alone() {
  Database& d = *db_;
  if (options_.keep_results.count() <= 0) return;
  const int64_t now = options_.now_ms();
  if (!d.expiry_due(now)) return;
  d.last_expiry_ms = now;
  const std::optional<uint64_t> expired = d.expired_through(now - options_.keep_results.count());
  if (!expired || d.run(d.begin) != SQLITE_DONE) return;
  bind_u64(d.expire_results.get(), 1, *expired);
  if (d.run(d.expire_results) != SQLITE_DONE || d.run(d.commit) != SQLITE_DONE) {
    // Tried again a second later; commits report what is wrong with the disk.
    d.roll_back();
    return;
  }
  d.forget_through(*expired);
}

}  // namespace corral::daemon

// The SQLite side of a durable job's spool, shared by spool.cc (the
// schema, open, recording, reads, the writer's loop) and spool_write.cc
// (a batch's transaction): the handles, binding and reading rows, and
// Spool::Database, the connection with its prepared statements. Private to
// those two files.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "daemon/spool.h"

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

// The errno of the last failed write: SQLite keeps it per file, and the
// connection's own (sqlite3_system_errno) is read after the failed commit
// has already made other calls. The WAL first, where commits write.
inline int last_errno(sqlite3* db) {
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
inline std::string sqlite_message(sqlite3* db, int rc) {
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

inline bool damaged(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

inline Error damaged_error(const std::string& path, std::string_view what) {
  return Error("spool " + path + " is damaged: " + std::string(what) +
               "; corrald leaves it as it is: move it away to start the job with an empty spool");
}

// Binds as a blob: an empty one too (a null pointer would bind NULL).
inline void bind_bytes(sqlite3_stmt* statement, int index, std::string_view bytes) {
  sqlite3_bind_blob(statement, index, bytes.empty() ? "" : bytes.data(),
                    static_cast<int>(bytes.size()), SQLITE_STATIC);
}
inline void bind_text(sqlite3_stmt* statement, int index, std::string_view text) {
  sqlite3_bind_text(statement, index, text.empty() ? "" : text.data(),
                    static_cast<int>(text.size()), SQLITE_STATIC);
}
void bind_u64(sqlite3_stmt* statement, int index, uint64_t value) {
  sqlite3_bind_int64(statement, index, static_cast<sqlite3_int64>(value));
}

// A task's 8 columns (tasks' order) from parameter FIRST on.
inline void bind_task(sqlite3_stmt* s, int first, const SpooledTask& t) {
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
inline void bind_result(sqlite3_stmt* s, int first, const SpooledResult& r) {
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
inline std::string insert_rows(const char* table_and_columns, int columns, int rows) {
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

inline std::string column_bytes(sqlite3_stmt* statement, int index) {
  const void* data = sqlite3_column_blob(statement, index);
  const int size = sqlite3_column_bytes(statement, index);
  return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
}
uint64_t column_u64(sqlite3_stmt* statement, int index) {
  return static_cast<uint64_t>(sqlite3_column_int64(statement, index));
}

inline SpooledTask task_of_row(sqlite3_stmt* row) {
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

inline SpooledResult result_of_row(sqlite3_stmt* row) {
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

}  // namespace spool_sqlite

// The connection and one prepared statement per operation. Used by open()
// on the caller's thread, then only by the writer thread.
struct Spool::Database {
  std::string path;
  spool_sqlite::Connection connection;  // first: closed after the statements
  spool_sqlite::Statement begin, commit, rollback;
  spool_sqlite::Statement insert_task, set_state, delete_task;
  spool_sqlite::Statement insert_tasks, insert_results,
      delete_tasks;  // kRowsPerStatement rows each
  spool_sqlite::Statement insert_result, insert_letter, delete_letter, delete_letters;
  spool_sqlite::Statement update_counters, expire_results, newest_result;
  spool_sqlite::Statement load_tasks, results_after, results_of_submit;
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
    if (spool_sqlite::damaged(rc))
      return spool_sqlite::damaged_error(path, spool_sqlite::sqlite_message(db(), rc));
    return Error("spool " + path + ": " + std::string(what) + ": " +
                 spool_sqlite::sqlite_message(db(), rc));
  }

  Result<spool_sqlite::Statement> prepare(const char* sql) const {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    spool_sqlite::Statement statement(raw);
    if (rc != SQLITE_OK) return error(std::string("cannot prepare ") + sql, rc);
    return statement;
  }

  // Runs STATEMENT to its end (no rows wanted); SQLITE_DONE when it went well.
  int run(const spool_sqlite::Statement& statement) const {
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
    spool_sqlite::bind_u64(s, 1, after_id);
    sqlite3_bind_int64(
        s, 2,
        static_cast<sqlite3_int64>(std::min<size_t>(limit, std::numeric_limits<int32_t>::max())));
    std::vector<SpooledTask> tasks;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) tasks.push_back(spool_sqlite::task_of_row(s));
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return error("cannot read tasks", rc);
    return tasks;
  }
};

}  // namespace corral::daemon

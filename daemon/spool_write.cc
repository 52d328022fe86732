// A durable job's spool: one transaction of waiting batches (spool.h),
// and the expiry of old results. The rest of the spool is in spool.cc.
#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "daemon/spool.h"
#include "daemon/spool_database.h"

namespace corral::daemon {

using namespace spool_sqlite;  // NOLINT(google-build-using-namespace): this file's own helpers

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

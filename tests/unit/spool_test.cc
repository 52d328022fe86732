// Tests of daemon/spool.h on real SQLite files in a temp dir: every change
// read back after closing and opening again, paging, results and their
// expiry, commits that coalesce, a commit that fails for a file-size limit,
// damaged and foreign files, and a writer SIGKILLed at a random moment.
// Completions go through a queue that the test thread runs, as corrald's
// loop would.
#include "daemon/spool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/io.h"
#include "tests/support/file_io.h"
#include "tests/support/forked_child.h"
#include "tests/support/poll.h"
#include "tests/support/temp_dir.h"

namespace corral::daemon::spool_test {

using namespace std::chrono_literals;
using corral::testing::ForkedChild;
using corral::testing::read_file;
using corral::testing::scaled;
using corral::testing::TempDir;
using corral::testing::write_file;

// The test's event loop: what the writer posts waits here until the test
// thread runs it.
class PostedQueue {
 public:
  Post post() {
    return [this](std::function<void()> completion) {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(completion));
      ready_.notify_all();
    };
  }
  // Runs completions until DONE holds; false if it does not within 10 s.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + scaled(10s);
    while (!done()) {
      std::unique_lock lock(mu_);
      if (!ready_.wait_until(lock, deadline, [&] { return !queue_.empty(); })) return false;
      auto completion = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      completion();
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
};

SpooledTask make_task(uint64_t id, std::string payload, uint64_t submit = 1, uint64_t seq = 0) {
  SpooledTask task;
  task.id = id;
  task.submit = submit;
  task.seq = seq;
  task.payload = std::move(payload);
  return task;
}

// Task ID of SUBMIT at SEQ ended with STATUS and RESULT at MS.
SpooledResult ended(uint64_t id, uint64_t submit, uint64_t seq, std::string status,
                    std::string result, uint32_t attempts, int64_t ms) {
  return SpooledResult{0, id, submit, seq, std::move(status), std::move(result), attempts, ms};
}

// Runs completions inline, on the writer thread (for forked children, which
// have no loop of their own).
void run_inline(std::function<void()> completion) { completion(); }

class SpoolTest : public ::testing::Test {
 protected:
  SpoolOptions options() const {
    SpoolOptions o;
    o.path = path_;
    o.now_ms = [this] { return clock_ms_.load(); };
    return o;
  }
  std::unique_ptr<Spool> open(const SpoolOptions& o, SpoolContents* contents) {
    auto spool = Spool::open(o, loop_.post(), contents);
    EXPECT_TRUE(spool.ok()) << spool.error().message();
    return spool.ok() ? std::move(*spool) : nullptr;
  }
  std::unique_ptr<Spool> open(SpoolContents* contents) { return open(options(), contents); }
  Status commit(Spool& spool) {
    std::optional<Status> outcome;
    spool.commit([&](Status status) { outcome = std::move(status); });
    EXPECT_TRUE(loop_.run_until([&] { return outcome.has_value(); }));
    return outcome.value_or(Status(Error("no answer")));
  }
  std::vector<SpooledResult> results(Spool& spool, uint64_t after, std::optional<uint64_t> submit,
                                     size_t limit = 1000) {
    std::optional<Result<std::vector<SpooledResult>>> answer;
    spool.results(after, submit, limit,
                  [&](Result<std::vector<SpooledResult>> found) { answer = std::move(found); });
    EXPECT_TRUE(loop_.run_until([&] { return answer.has_value(); }));
    if (!answer || !answer->ok()) {
      ADD_FAILURE() << (answer ? answer->error().message() : "no answer");
      return {};
    }
    return std::move(**answer);
  }
  std::vector<SpooledTask> load_more(Spool& spool, uint64_t after, size_t limit) {
    std::optional<Result<std::vector<SpooledTask>>> answer;
    spool.load_more(after, limit,
                    [&](Result<std::vector<SpooledTask>> found) { answer = std::move(found); });
    EXPECT_TRUE(loop_.run_until([&] { return answer.has_value(); }));
    if (!answer || !answer->ok()) {
      ADD_FAILURE() << (answer ? answer->error().message() : "no answer");
      return {};
    }
    return std::move(**answer);
  }
  std::string open_error(const SpoolOptions& o) {
    SpoolContents contents;
    auto spool = Spool::open(o, loop_.post(), &contents);
    return spool.ok() ? std::string("opened") : spool.error().message();
  }

  TempDir dir_{"corral-spool"};
  std::string path_ = dir_.file("job.sqlite");
  std::atomic<int64_t> clock_ms_{1'700'000'000'000};
  PostedQueue loop_;
};

std::vector<uint64_t> ids_of(const std::vector<SpooledTask>& tasks) {
  std::vector<uint64_t> ids;
  for (const auto& task : tasks) ids.push_back(task.id);
  return ids;
}

std::vector<uint64_t> ids_of(const std::vector<SpooledResult>& results) {
  std::vector<uint64_t> ids;
  for (const auto& result : results) ids.push_back(result.id);
  return ids;
}

TEST_F(SpoolTest, AFreshSpoolIsEmptyAndOnlyRootsToRead) {
  SpoolContents contents;
  auto spool = open(&contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(contents.next_id, 1u);
  EXPECT_EQ(contents.next_submit, 1u);
  EXPECT_EQ(contents.last_cursor, 0u);
  EXPECT_TRUE(contents.tasks.empty());
  EXPECT_EQ(contents.backlog, 0u);
  EXPECT_TRUE(contents.letters.empty());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(SpoolTest, EveryChangeSurvivesClosingAndOpening) {
  const int64_t now = clock_ms_.load();
  const std::string binary("a\0b\n\xff", 5);
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    for (uint64_t id = 1; id <= 6; ++id) {
      SpooledTask task = make_task(id, "task " + std::to_string(id), id <= 3 ? 7 : 8, id);
      if (id == 6) task.deadline_ms = now + 5000;
      spool->add(task);
    }
    spool->add(make_task(7, binary, 9, 0));
    ASSERT_TRUE(commit(*spool).ok());
    spool->dispatched(1, 1);  // still running at the "crash"
    spool->dispatched(2, 1);
    spool->requeued(2, 1);  // its worker died
    spool->dispatched(3, 1);
    spool->delayed(3, 1, now + 60000);  // a retry waits
    spool->dispatched(4, 1);
    EXPECT_EQ(spool->finished(ended(4, 8, 4, "ok", "four", 1, now), false), 1u);
    spool->dispatched(5, 3);
    EXPECT_EQ(spool->finished(ended(5, 8, 5, "dead", "worker died 3 times", 3, now), true), 2u);
    EXPECT_EQ(spool->finished(ended(7, 9, 0, "failed", binary, 1, now), true), 3u);
    ASSERT_TRUE(commit(*spool).ok());
  }
  SpoolContents contents;
  auto spool = open(&contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(contents.next_id, 8u);
  EXPECT_EQ(contents.next_submit, 10u);
  EXPECT_EQ(contents.last_cursor, 3u);
  EXPECT_EQ(contents.backlog, 0u);
  ASSERT_EQ(ids_of(contents.tasks), (std::vector<uint64_t>{1, 2, 3, 6}));
  SpooledTask running = make_task(1, "task 1", 7, 1);
  running.state = SpooledState::kRunning;
  running.attempts = 1;
  EXPECT_EQ(contents.tasks[0], running);
  SpooledTask requeued = make_task(2, "task 2", 7, 2);
  requeued.attempts = 1;
  EXPECT_EQ(contents.tasks[1], requeued);
  SpooledTask delayed = make_task(3, "task 3", 7, 3);
  delayed.state = SpooledState::kDelayed;
  delayed.attempts = 1;
  delayed.due_ms = now + 60000;
  EXPECT_EQ(contents.tasks[2], delayed);
  SpooledTask with_deadline = make_task(6, "task 6", 8, 6);
  with_deadline.deadline_ms = now + 5000;
  EXPECT_EQ(contents.tasks[3], with_deadline);
  EXPECT_EQ(contents.letters,
            (std::vector<SpooledLetter>{{5, "task 5", "dead", "worker died 3 times", 3},
                                        {7, binary, "failed", binary, 1}}));
  EXPECT_EQ(results(*spool, 0, std::nullopt),
            (std::vector<SpooledResult>{{1, 4, 8, 4, "ok", "four", 1, now},
                                        {2, 5, 8, 5, "dead", "worker died 3 times", 3, now},
                                        {3, 7, 9, 0, "failed", binary, 1, now}}));
  // Cursors go on after the last one, across the restart.
  spool->add(make_task(8, "task 8"));
  EXPECT_EQ(spool->finished(ended(8, 1, 0, "ok", "", 0, now), false), 4u);
  spool->letters_removed({5});
  ASSERT_TRUE(commit(*spool).ok());
  spool.reset();

  spool = open(&contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(contents.letters, (std::vector<SpooledLetter>{{7, binary, "failed", binary, 1}}));
  EXPECT_EQ(contents.last_cursor, 4u);
  spool->letters_removed({});
  ASSERT_TRUE(commit(*spool).ok());
  spool.reset();
  spool = open(&contents);
  EXPECT_TRUE(contents.letters.empty());
}

TEST_F(SpoolTest, IdsNeverRepeatOnceTheirTasksAreGone) {
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    spool->add(make_task(41, "x", 12));
    spool->finished(ended(41, 12, 0, "ok", "y", 1, clock_ms_.load()), false);
    ASSERT_TRUE(commit(*spool).ok());
  }
  SpoolContents contents;
  auto spool = open(&contents);
  ASSERT_TRUE(spool);
  EXPECT_TRUE(contents.tasks.empty());
  EXPECT_EQ(contents.next_id, 42u);
  EXPECT_EQ(contents.next_submit, 13u);
  EXPECT_EQ(contents.last_cursor, 1u);
}

TEST_F(SpoolTest, ASubmitWithoutTasksKeepsItsIdToo) {
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    spool->submit_opened(7);
    spool->submit_opened(5);
    ASSERT_TRUE(commit(*spool).ok());
  }
  SpoolContents contents;
  auto spool = open(&contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(contents.next_submit, 8u);
  EXPECT_EQ(contents.next_id, 1u);
}

TEST_F(SpoolTest, WhatWasRecordedIsCommittedWhenTheSpoolGoes) {
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    spool->add(make_task(1, "kept"));
  }
  SpoolContents contents;
  auto spool = open(&contents);
  EXPECT_EQ(ids_of(contents.tasks), std::vector<uint64_t>{1});
}

TEST_F(SpoolTest, TasksBeyondTheLoadLimitAreABacklogReadPageByPage) {
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    for (uint64_t id = 1; id <= 10; ++id) spool->add(make_task(id, "t"));
    ASSERT_TRUE(commit(*spool).ok());
  }
  SpoolOptions o = options();
  o.load_limit = 4;
  SpoolContents contents;
  auto spool = open(o, &contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(ids_of(contents.tasks), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(contents.backlog, 6u);
  EXPECT_EQ(ids_of(load_more(*spool, 4, 4)), (std::vector<uint64_t>{5, 6, 7, 8}));
  EXPECT_EQ(ids_of(load_more(*spool, 8, 4)), (std::vector<uint64_t>{9, 10}));
  EXPECT_TRUE(load_more(*spool, 10, 4).empty());
  // A page reads what was committed before it was asked for.
  spool->add(make_task(11, "t"));
  spool->commit(nullptr);
  EXPECT_EQ(ids_of(load_more(*spool, 10, 4)), (std::vector<uint64_t>{11}));
}

TEST_F(SpoolTest, ResultsAfterACursorAndOfOneSubmission) {
  SpoolContents contents;
  auto spool = open(&contents);
  ASSERT_TRUE(spool);
  const int64_t now = clock_ms_.load();
  for (uint64_t id = 1; id <= 6; ++id) spool->add(make_task(id, "t", id % 2 ? 1 : 2, id));
  for (uint64_t id : {3, 1, 2, 6, 5, 4})
    spool->finished(ended(id, id % 2 ? 1 : 2, id, "ok", std::to_string(id), 1, now), false);
  ASSERT_TRUE(commit(*spool).ok());
  EXPECT_EQ(ids_of(results(*spool, 0, std::nullopt)), (std::vector<uint64_t>{3, 1, 2, 6, 5, 4}));
  EXPECT_EQ(ids_of(results(*spool, 2, std::nullopt)), (std::vector<uint64_t>{2, 6, 5, 4}));
  EXPECT_EQ(ids_of(results(*spool, 2, std::nullopt, 2)), (std::vector<uint64_t>{2, 6}));
  EXPECT_EQ(ids_of(results(*spool, 0, 1)), (std::vector<uint64_t>{3, 1, 5}));
  EXPECT_EQ(ids_of(results(*spool, 2, 2)), (std::vector<uint64_t>{2, 6, 4}));
  auto of_two = results(*spool, 4, 2);
  ASSERT_EQ(of_two.size(), 1u);
  EXPECT_EQ(of_two[0].cursor, 6u);
  EXPECT_EQ(of_two[0].result, "4");
  EXPECT_TRUE(results(*spool, 0, 3).empty());
}

TEST_F(SpoolTest, ResultsOlderThanKeepResultsAreDeleted) {
  SpoolOptions o = options();
  o.keep_results = 60s;
  const int64_t start = clock_ms_.load();
  {
    SpoolContents contents;
    auto spool = open(o, &contents);
    ASSERT_TRUE(spool);
    spool->add(make_task(1, "old"));
    spool->finished(ended(1, 1, 0, "ok", "old", 1, start), false);
    ASSERT_TRUE(commit(*spool).ok());
    clock_ms_ = start + 30'000;
    spool->add(make_task(2, "new"));
    spool->finished(ended(2, 1, 0, "ok", "new", 1, start + 30'000), false);
    ASSERT_TRUE(commit(*spool).ok());
    EXPECT_EQ(ids_of(results(*spool, 0, std::nullopt)), (std::vector<uint64_t>{1, 2}));
    // A minute after the first: the next commit deletes it.
    clock_ms_ = start + 60'001;
    ASSERT_TRUE(commit(*spool).ok());
    EXPECT_EQ(ids_of(results(*spool, 0, std::nullopt)), (std::vector<uint64_t>{2}));
  }
  // Deleted, not only hidden: with the clock back, it is still gone.
  clock_ms_ = start;
  SpoolContents contents;
  auto spool = open(o, &contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(ids_of(results(*spool, 0, std::nullopt)), (std::vector<uint64_t>{2}));
  EXPECT_EQ(contents.last_cursor, 2u);
}

// After a restart the spool knows only how old its newest result is: the
// results it holds go together, keep_results after that one.
TEST_F(SpoolTest, AReopenedSpoolKeepsItsResultsUntilTheNewestIsOld) {
  SpoolOptions o = options();
  o.keep_results = 60s;
  const int64_t start = clock_ms_.load();
  {
    SpoolContents contents;
    auto spool = open(o, &contents);
    ASSERT_TRUE(spool);
    spool->add(make_task(1, "old"));
    spool->finished(ended(1, 1, 0, "ok", "old", 1, start), false);
    ASSERT_TRUE(commit(*spool).ok());
    clock_ms_ = start + 30'000;
    spool->add(make_task(2, "new"));
    spool->finished(ended(2, 1, 0, "ok", "new", 1, start + 30'000), false);
    ASSERT_TRUE(commit(*spool).ok());
  }
  clock_ms_ = start + 60'001;
  SpoolContents contents;
  auto spool = open(o, &contents);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(commit(*spool).ok());
  // Hidden from readers all the same: it is past keep_results.
  EXPECT_EQ(ids_of(results(*spool, 0, std::nullopt)), (std::vector<uint64_t>{2}));
  clock_ms_ = start + 90'001;
  ASSERT_TRUE(commit(*spool).ok());
  EXPECT_TRUE(results(*spool, 0, std::nullopt).empty());
  spool.reset();
  clock_ms_ = start;
  spool = open(o, &contents);
  ASSERT_TRUE(spool);
  EXPECT_TRUE(results(*spool, 0, std::nullopt).empty()) << "deleted, not only hidden";
}

TEST_F(SpoolTest, OldResultsGoWhileNothingIsCommitted) {
  SpoolOptions o = options();
  o.keep_results = 60s;
  const int64_t start = clock_ms_.load();
  {
    SpoolContents contents;
    auto spool = open(o, &contents);
    ASSERT_TRUE(spool);
    spool->add(make_task(1, "old"));
    spool->finished(ended(1, 1, 0, "ok", "old", 1, start), false);
    ASSERT_TRUE(commit(*spool).ok());
    clock_ms_ = start + 120'000;
    // The writer looks again after a second with nothing to do. Each look
    // of the test's turns the clock back (so that only a deletion hides
    // it), and is something to do: it restarts the writer's second, and the
    // writer's look right after a read may see the clock still back. So
    // the test looks only every 1.5 s, leaving the writer a whole second
    // with the clock forward each time.
    ASSERT_TRUE(corral::testing::wait_until(
        [&] {
          std::this_thread::sleep_for(1500ms);
          clock_ms_ = start;
          auto found = results(*spool, 0, std::nullopt);
          clock_ms_ = start + 120'000;
          return found.empty();
        },
        30s));
  }
}

TEST_F(SpoolTest, BatchesWaitingForTheWriterShareOneTransaction) {
  std::mutex mu;
  std::condition_variable changed;
  bool holding = false, released = false;
  Post queued = loop_.post();
  // The first completion holds the writer, so that the next batches wait.
  Post holding_post = [&](std::function<void()> completion) {
    {
      std::unique_lock lock(mu);
      if (!holding) {
        holding = true;
        changed.notify_all();
        changed.wait(lock, [&] { return released; });
      }
    }
    queued(std::move(completion));
  };
  SpoolContents contents;
  auto opened = Spool::open(options(), holding_post, &contents);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  Spool& spool = **opened;
  int acknowledged = 0;
  spool.add(make_task(1, "first"));
  spool.commit([&](Status status) { acknowledged += status.ok(); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(changed.wait_for(lock, scaled(10s), [&] { return holding; }));
  }
  for (uint64_t id = 2; id <= 101; ++id) {
    spool.add(make_task(id, "waiting"));
    spool.commit([&](Status status) { acknowledged += status.ok(); });
  }
  {
    std::lock_guard lock(mu);
    released = true;
  }
  changed.notify_all();
  ASSERT_TRUE(loop_.run_until([&] { return acknowledged == 101; }));
  EXPECT_EQ(spool.stats().batches, 101u);
  EXPECT_EQ(spool.stats().transactions, 2u);
  opened->reset();
  auto reopened = open(&contents);
  EXPECT_EQ(contents.tasks.size(), 101u);
}

// A garbage file, a file cut short, another program's database, a newer
// format, a link: each refused with what and where, and left as it was.
TEST_F(SpoolTest, AFileThatIsNotADatabaseIsDamaged) {
  write_file(path_, std::string(8192, 'x'));
  const std::string error = open_error(options());
  EXPECT_EQ(error, "spool " + path_ +
                       " is damaged: file is not a database; corrald leaves it as it is: move it "
                       "away to start the job with an empty spool");
  EXPECT_EQ(read_file(path_), std::string(8192, 'x'));
}

TEST_F(SpoolTest, ATruncatedFileIsDamaged) {
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    for (uint64_t id = 1; id <= 2000; ++id) spool->add(make_task(id, std::string(200, 'p')));
    ASSERT_TRUE(commit(*spool).ok());
  }
  const std::string whole = read_file(path_);
  ASSERT_GT(whole.size(), 100'000u);
  ASSERT_EQ(::truncate(path_.c_str(), static_cast<off_t>(whole.size() / 2)), 0);
  const std::string error = open_error(options());
  EXPECT_EQ(error, "spool " + path_ +
                       " is damaged: database disk image is malformed; corrald leaves it as it "
                       "is: move it away to start the job with an empty spool");
  EXPECT_EQ(read_file(path_), whole.substr(0, whole.size() / 2));
}

TEST_F(SpoolTest, AnotherProgramsDatabaseIsRefused) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE mine(x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(open_error(options()),
            "spool " + path_ +
                " is not a corral spool (another program's SQLite database); corrald leaves it as "
                "it is: move it away to start the job with an empty spool");
}

TEST_F(SpoolTest, ASpoolOfANewerFormatIsRefusedUntouched) {
  {
    SpoolContents contents;
    auto spool = open(&contents);
    ASSERT_TRUE(spool);
    spool->add(make_task(1, "t"));
    ASSERT_TRUE(commit(*spool).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 3", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  const std::string before = read_file(path_);
  EXPECT_EQ(open_error(options()),
            "spool " + path_ +
                " was written by a newer corrald (format 3, this one reads 1); corrald leaves it "
                "as it is: run that corrald, or move the file away to start the job with an empty "
                "spool");
  EXPECT_EQ(read_file(path_), before);
}

TEST_F(SpoolTest, ASymbolicLinkAtThePathIsRefused) {
  const std::string victim = dir_.file("victim");
  ASSERT_EQ(::symlink(victim.c_str(), path_.c_str()), 0);
  EXPECT_EQ(open_error(options()),
            "spool " + path_ +
                " is a symbolic link: refused (corrald opens a spool only as a regular file)");
  EXPECT_FALSE(corral::testing::path_exists(victim));
}

// RLIMIT_FSIZE stops the WAL from growing: the commit fails whole, says why,
// and both the spool and the file keep everything committed before.
TEST_F(SpoolTest, ACommitPastTheFileSizeLimitIsRolledBackWhole) {
  const std::string path = path_;
  ForkedChild child([&path] {
    ::signal(SIGXFSZ, SIG_IGN);  // as corrald does: EFBIG instead of death
    SpoolOptions o;
    o.path = path;
    SpoolContents contents;
    auto spool = Spool::open(o, run_inline, &contents);
    if (!spool) return 10;
    auto commit_now = [&] {
      std::promise<Status> outcome;
      (*spool)->commit([&](Status status) { outcome.set_value(std::move(status)); });
      return outcome.get_future().get();
    };
    for (uint64_t id = 1; id <= 10; ++id) (*spool)->add(make_task(id, "before"));
    if (!commit_now().ok()) return 11;
    rlimit limit{};
    ::getrlimit(RLIMIT_FSIZE, &limit);
    const rlim_t unlimited = limit.rlim_max;
    limit.rlim_cur = 256 * 1024;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 12;
    for (uint64_t id = 11; id <= 1010; ++id) (*spool)->add(make_task(id, std::string(1024, 'b')));
    (*spool)->finished(ended(1, 1, 0, "ok", "lost", 1, 0), false);
    Status failed = commit_now();
    if (failed.ok()) return 13;
    fprintf(stderr, "the failed commit: %s\n", failed.error().message().c_str());
    if (failed.error().message().find("File too large") == std::string::npos) return 14;
    if (failed.error().message().find(path) == std::string::npos) return 15;
    limit.rlim_cur = unlimited;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 16;
    (*spool)->add(make_task(2000, "after"));
    if (!commit_now().ok()) return 17;
    return 0;
  });
  ASSERT_TRUE(child.started());
  ASSERT_EQ(child.wait(), 0);
  SpoolContents contents;
  auto spool = open(&contents);
  ASSERT_TRUE(spool);
  EXPECT_EQ(ids_of(contents.tasks), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2000}));
  EXPECT_TRUE(results(*spool, 0, std::nullopt).empty());
  EXPECT_EQ(contents.next_id, 2001u);
}

// A child adds batches of 1000 tasks and finishes the batch before last in
// each (big enough that the writer is busy most of the time, so that a kill
// lands in a commit more often than not), telling the parent through a pipe which batches were
// acknowledged, until it is SIGKILLed at a random moment. Every acknowledged batch is there after
// opening again, and every batch is there whole or not at all.
TEST_F(SpoolTest, EveryAcknowledgedBatchSurvivesAKill) {
  constexpr uint64_t kBatch = 1000;
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe.ok());
  const std::string path = path_;
  const int ack_fd = pipe->write.get();
  ForkedChild child([&path, ack_fd] {
    SpoolOptions o;
    o.path = path;
    SpoolContents contents;
    auto spool = Spool::open(o, run_inline, &contents);
    if (!spool) return 10;
    std::atomic<uint64_t> acknowledged{0};
    const std::string payload(512, 'p');
    for (uint64_t batch = 1;; ++batch) {
      for (uint64_t i = 0; i < kBatch; ++i) {
        (*spool)->add(make_task((batch - 1) * kBatch + i + 1, payload, batch, i));
      }
      if (batch > 2) {
        for (uint64_t i = 0; i < kBatch; ++i) {
          (*spool)->finished(
              ended((batch - 3) * kBatch + i + 1, batch - 2, i, "ok", "done", 1, wall_clock_ms()),
              false);
        }
      }
      (*spool)->commit([&acknowledged, ack_fd, batch](Status status) {
        if (!status.ok()) ::_exit(20);
        (void)write_all(ack_fd, std::string_view(reinterpret_cast<const char*>(&batch), 8));
        acknowledged = batch;
      });
      while (batch - acknowledged.load() > 8) ::usleep(100);
    }
  });
  ASSERT_TRUE(child.started());
  pipe->write.reset();
  std::mt19937 random(std::random_device{}());
  const auto kill_after = std::chrono::milliseconds(50 + random() % 400);
  std::set<uint64_t> acknowledged;
  auto read_acks = [&](bool until_end) {
    uint64_t batch;
    for (;;) {
      if (!until_end) {
        pollfd p{pipe->read.get(), POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) return;
      }
      const ssize_t n = ::read(pipe->read.get(), &batch, sizeof batch);
      if (n != sizeof batch) return;
      acknowledged.insert(batch);
    }
  };
  const auto first_deadline = std::chrono::steady_clock::now() + scaled(10s);
  while (acknowledged.empty() && std::chrono::steady_clock::now() < first_deadline)
    read_acks(false);
  ASSERT_FALSE(acknowledged.empty()) << "the child acknowledged nothing";
  const auto kill_at = std::chrono::steady_clock::now() + kill_after;
  while (std::chrono::steady_clock::now() < kill_at) read_acks(false);
  ASSERT_EQ(::kill(child.pid(), SIGKILL), 0);
  EXPECT_EQ(child.wait(), -1) << "the child ended before the kill";
  read_acks(true);
  const uint64_t last_acknowledged = *acknowledged.rbegin();

  SpoolOptions o = options();
  o.load_limit = 1 << 30;
  o.now_ms = wall_clock_ms;
  SpoolContents contents;
  auto spool = open(o, &contents);
  ASSERT_TRUE(spool);
  std::map<uint64_t, uint64_t> present;  // batch -> tasks of it found
  for (const auto& task : contents.tasks) ++present[(task.id - 1) / kBatch + 1];
  auto kept = results(*spool, 0, std::nullopt, 1 << 30);
  for (const auto& result : kept) ++present[(result.id - 1) / kBatch + 1];
  std::set<uint64_t> tasks;
  for (const auto& task : contents.tasks) tasks.insert(task.id);
  for (const auto& result : kept) {
    EXPECT_FALSE(tasks.contains(result.id)) << "task " << result.id << " is both";
  }
  for (uint64_t batch = 1; batch <= last_acknowledged; ++batch) {
    EXPECT_EQ(present[batch], kBatch) << "batch " << batch << " of " << last_acknowledged;
  }
  for (const auto& [batch, count] : present) {
    EXPECT_EQ(count, kBatch) << "batch " << batch << " is there only in part";
  }
  // The finishes of an acknowledged batch are there too: batch - 2 is all results.
  if (last_acknowledged > 2) {
    for (uint64_t id = (last_acknowledged - 3) * kBatch + 1; id <= (last_acknowledged - 2) * kBatch;
         ++id) {
      EXPECT_FALSE(tasks.contains(id)) << "task " << id << " was finished";
    }
  }
  EXPECT_GE(contents.next_id, last_acknowledged * kBatch + 1);
  printf("spool crash: killed after %lld ms, %llu batches acknowledged\n",
         static_cast<long long>(kill_after.count()),
         static_cast<unsigned long long>(last_acknowledged));
}

}  // namespace corral::daemon::spool_test

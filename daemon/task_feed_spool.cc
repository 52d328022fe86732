// The durable side of a TaskFeed (queue.durable): the spool that keeps the
// job's tasks, results and dead letters on disk, what is loaded from it at
// start, and the commits that acknowledge submits. The rest of the feed is in
// task_feed.cc.
//
// A submitted task is recorded in the spool and queued only once the commit
// that holds it has ended well: nothing is in the dispatcher that is not on
// disk, and a submitter hears "accepted" only for tasks a crash keeps. Every
// later change (dispatch, retry, result, letter) is recorded as it happens and
// committed at the end of the loop's turn; the writer thread does the disk
// I/O, so the loop never waits for it.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "daemon/task_feed.h"

namespace corral::daemon {

namespace asio = boost::asio;

// The dispatcher's changes, into the spool.
class TaskFeed::Journal : public TaskJournal {
 public:
  explicit Journal(TaskFeed& feed) : feed_(feed) {}

  void added(uint64_t id, const TaskOrigin& origin, std::string_view payload) override {
    SpooledTask task;
    task.id = id;
    task.submit = origin.submit;
    task.seq = origin.seq;
    task.payload = std::string(payload);
    if (origin.deadline) task.deadline_ms = feed_.to_wall_ms(*origin.deadline);
    spool().add(task);
    feed_.commit_soon();
  }
  void dispatched(uint64_t id, uint32_t attempts) override {
    spool().dispatched(id, attempts);
    feed_.commit_soon();
  }
  void requeued(uint64_t id, uint32_t attempts) override {
    spool().requeued(id, attempts);
    feed_.commit_soon();
  }
  void delayed(uint64_t id, uint32_t attempts, TimePoint due) override {
    spool().delayed(id, attempts, feed_.to_wall_ms(due));
    feed_.commit_soon();
  }
  void finished(const FinishedTask& task, bool letter) override {
    SpooledResult done;
    done.id = task.id;
    done.submit = task.submit;
    done.seq = task.seq;
    done.status = to_string(task.outcome);
    done.result = task.result;
    done.attempts = task.attempts;
    done.finished_ms = wall_clock_ms();
    feed_.recorded_cursor_ = spool().finished(std::move(done), letter);
    feed_.commit_soon();
  }
  void letters_removed(const std::vector<uint64_t>& ids) override {
    spool().letters_removed(ids);
    feed_.commit_soon();
  }

 private:
  Spool& spool() { return *feed_.spool_; }
  TaskFeed& feed_;
};

TimePoint TaskFeed::from_wall_ms(int64_t ms) const {
  return host_.now() + std::chrono::milliseconds(ms - wall_clock_ms());
}

int64_t TaskFeed::to_wall_ms(TimePoint at) const {
  return wall_clock_ms() +
         std::chrono::duration_cast<std::chrono::milliseconds>(at - host_.now()).count();
}

Status TaskFeed::open_spool(const std::string& path) {
  SpoolOptions options;
  options.path = path;
  options.power_safe = job_.queue.durability == config::Durability::kPower;
  options.keep_results = job_.queue.keep_results;
  options.load_limit = job_.queue.capacity;
  asio::io_context* io = &io_;
  Post post = [io](std::function<void()> done) { asio::post(*io, std::move(done)); };
  SpoolContents contents;
  Result<std::unique_ptr<Spool>> spool = Spool::open(options, post, &contents);
  if (!spool) return std::move(spool).error();
  spool_ = std::move(*spool);
  journal_ = std::make_unique<Journal>(*this);
  // Set first: a task whose last attempt was running when corrald stopped
  // ends dead as it is restored, and that is recorded too.
  dispatcher_.set_journal(journal_.get());
  dispatcher_.restore_counters(contents.next_id, contents.next_submit);
  committed_cursor_ = recorded_cursor_ = contents.last_cursor;
  for (SpooledTask& task : contents.tasks) {
    TaskOrigin origin{0, task.submit, task.seq, std::nullopt};
    if (task.deadline_ms != 0) origin.deadline = from_wall_ms(task.deadline_ms);
    std::optional<TimePoint> due;
    if (task.state == SpooledState::kDelayed) due = from_wall_ms(task.due_ms);
    loaded_up_to_ = std::max(loaded_up_to_, task.id);
    dispatcher_.restore(task.id, std::move(task.payload), origin, task.attempts, due);
  }
  backlog_ = contents.backlog;
  std::deque<DeadLetter> letters;
  for (SpooledLetter& letter : contents.letters) {
    letters.push_back(
        DeadLetter{letter.id, std::move(letter.payload),
                   letter.status == "failed" ? TaskOutcome::kFailed : TaskOutcome::kDead,
                   std::move(letter.reason), letter.attempts});
  }
  dispatcher_.adopt_dead_letters(std::move(letters));
  const size_t loaded = contents.tasks.size();
  if (loaded > 0 || backlog_ > 0) {
    spdlog::info("{}: {} unfinished tasks queued again from spool {}", job_.name, loaded + backlog_,
                 path);
  }
  return {};
}

void TaskFeed::commit_soon() {
  if (commit_due_ || spool_ == nullptr) return;
  commit_due_ = true;
  std::weak_ptr<TaskFeed*> self = self_;
  asio::post(io_, [self] {
    if (auto feed = self.lock()) (*feed)->commit();
  });
}

void TaskFeed::commit() {
  commit_due_ = false;
  if (spool_ == nullptr) return;
  std::weak_ptr<TaskFeed*> self = self_;
  auto stored = std::make_shared<std::vector<StoredTask>>(std::move(storing_));
  storing_.clear();
  auto opened = std::make_shared<std::vector<uint64_t>>(std::move(opening_));
  opening_.clear();
  const uint64_t cursor = recorded_cursor_;
  spool_->commit([self, stored, opened, cursor](Status status) {
    auto alive = self.lock();
    if (!alive) return;
    TaskFeed& feed = **alive;
    feed.storing_total_ -= stored->size();
    // What each submit hears, in one call per submit.
    std::map<uint64_t, Stored> outcomes;
    // Opened either way: a failed commit leaves the id unused on disk, and
    // the submit's tasks are refused below.
    for (uint64_t submit : *opened) outcomes[submit].opened = true;
    if (status) {
      if (!feed.spool_error_.empty()) {
        spdlog::info("{}: spool {} takes commits again", feed.job_.name, feed.spool_->path());
        feed.spool_error_.clear();
      }
      feed.committed_cursor_ = std::max(feed.committed_cursor_, cursor);
      for (StoredTask& task : *stored) {
        ++outcomes[task.origin.submit].accepted;
        if (!feed.retired_) {
          feed.dispatcher_.submit_recorded(task.id, std::move(task.payload), task.origin);
        }
      }
    } else {
      if (feed.spool_error_.empty()) {
        spdlog::error("{}: {}; submitted tasks are refused until a commit succeeds", feed.job_.name,
                      status.error().message());
      }
      feed.spool_error_ = status.error().message();
      for (const StoredTask& task : *stored) {
        Stored& outcome = outcomes[task.origin.submit];
        outcome.refused_seqs.push_back(task.origin.seq);
        outcome.error = feed.spool_error_;
      }
    }
    for (const auto& [submit, outcome] : outcomes) {
      if (auto it = feed.stored_watchers_.find(submit); it != feed.stored_watchers_.end()) {
        auto watcher = it->second;  // it may unwatch itself
        watcher(outcome);
      }
    }
    feed.after_results();
  });
}

bool TaskFeed::full() {
  if (broker_ != nullptr) {
    return broker_->full(storing_total_) || storing_total_ >= job_.queue.capacity;
  }
  if (spool_ == nullptr) return dispatcher_.full();
  // Tasks waiting in the spool go first: a submit waits until they are in.
  return backlog_ > 0 ||
         dispatcher_.queued() + dispatcher_.delayed() + storing_total_ >= job_.queue.capacity;
}

uint64_t TaskFeed::open_submit() {
  uint64_t submit = dispatcher_.new_submit();
  if (spool_ != nullptr) {
    spool_->submit_opened(submit);
    opening_.push_back(submit);
    commit_soon();
  }
  return submit;
}

void TaskFeed::store(std::string payload, const TaskOrigin& origin) {
  if (broker_ != nullptr) {
    if (origin.submitter != 0 && !waiting_.contains(origin.submit)) {
      // Following starts before the first add of the submit goes out.
      waiting_[origin.submit].submitter = origin.submitter;
      broker_->follow(true);
    }
    // To the broker, in one batch per turn of the loop.
    adding_.push_back(StoredTask{0, std::move(payload), origin});
    ++storing_total_;
    if (!add_posted_) {
      add_posted_ = true;
      std::weak_ptr<TaskFeed*> self = self_;
      asio::post(io_, [self] {
        if (auto feed = self.lock()) (*feed)->add_to_broker();
      });
    }
    return;
  }
  if (spool_ == nullptr) {
    dispatcher_.submit(std::move(payload), origin);
    return;
  }
  SpooledTask task;
  task.id = dispatcher_.reserve_id();
  task.submit = origin.submit;
  task.seq = origin.seq;
  task.payload = payload;
  if (origin.deadline) task.deadline_ms = to_wall_ms(*origin.deadline);
  spool_->add(task);
  storing_.push_back(StoredTask{task.id, std::move(payload), origin});
  ++storing_total_;
  commit_soon();
}

void TaskFeed::watch_stored(uint64_t submit, std::function<void(const Stored&)> watcher) {
  stored_watchers_[submit] = std::move(watcher);
}

void TaskFeed::unwatch_stored(uint64_t submit) { stored_watchers_.erase(submit); }

void TaskFeed::read_results(uint64_t after, std::optional<uint64_t> submit, size_t limit,
                            std::function<void(Result<std::vector<KeptResult>>)> done) {
  if (spool_ == nullptr) {
    done(Error("job " + job_.name + " is not durable (queue.durable: false): its results go to " +
               "its sink and to waiting submitters only"));
    return;
  }
  std::weak_ptr<TaskFeed*> self = self_;
  spool_->results(
      after, submit, limit,
      [self, done = std::move(done)](Result<std::vector<SpooledResult>> read) {
        if (self.expired()) return;
        if (!read) return done(std::move(read).error());
        std::vector<KeptResult> results;
        results.reserve(read->size());
        for (SpooledResult& r : *read) {
          results.push_back(KeptResult{r.cursor, r.id, r.submit, r.seq, std::move(r.status),
                                       std::move(r.result), r.attempts});
        }
        done(std::move(results));
      });
}

bool TaskFeed::submit_pending(uint64_t submit) {
  if (dispatcher_.pending_of_submit(submit) > 0) return true;
  // Finished, but the results are not all on disk yet.
  if (recorded_cursor_ > committed_cursor_) return true;
  for (const StoredTask& task : storing_) {
    if (task.origin.submit == submit) return true;
  }
  // Stored, not yet committed (storing_ holds only what this turn recorded),
  // or still in the spool beyond the queue: not known to be done.
  return storing_total_ > storing_.size() || backlog_ > 0;
}

void TaskFeed::load_backlog() {
  if (spool_ == nullptr || backlog_ == 0 || loading_ || retired_) return;
  const uint64_t waiting = dispatcher_.queued() + dispatcher_.delayed() + storing_total_;
  if (waiting >= job_.queue.capacity) return;
  loading_ = true;
  std::weak_ptr<TaskFeed*> self = self_;
  spool_->load_more(
      loaded_up_to_, job_.queue.capacity - waiting, [self](Result<std::vector<SpooledTask>> tasks) {
        auto alive = self.lock();
        if (!alive) return;
        TaskFeed& feed = **alive;
        feed.loading_ = false;
        if (feed.retired_) return;
        if (!tasks) {
          spdlog::error(
              "{}: {}; {} tasks stay in the spool until corrald starts "
              "again",
              feed.job_.name, tasks.error().message(), feed.backlog_);
          feed.backlog_ = 0;
          return;
        }
        for (SpooledTask& task : *tasks) {
          TaskOrigin origin{0, task.submit, task.seq, std::nullopt};
          if (task.deadline_ms != 0) origin.deadline = feed.from_wall_ms(task.deadline_ms);
          std::optional<TimePoint> due;
          if (task.state == SpooledState::kDelayed) {
            due = feed.from_wall_ms(task.due_ms);
          }
          feed.loaded_up_to_ = std::max(feed.loaded_up_to_, task.id);
          feed.dispatcher_.restore(task.id, std::move(task.payload), origin, task.attempts, due);
        }
        feed.backlog_ =
            tasks->empty() ? 0 : feed.backlog_ - std::min<uint64_t>(feed.backlog_, tasks->size());
        feed.after_results();
      });
}

void TaskFeed::close_spool(const std::string& why) {
  if (spool_ == nullptr) return;
  const size_t kept = dispatcher_.queued() + dispatcher_.delayed() + backlog_;
  if (kept > 0) {
    spdlog::info("{}: {} unfinished {} stay in spool {} ({})", job_.name, kept,
                 kept == 1 ? "task" : "tasks", spool_->path(), why);
  }
  // The spool commits what was recorded and ends its writer; the tasks in
  // memory are on disk and come back with the next feed of the job.
  dispatcher_.set_journal(nullptr);
  spool_.reset();
  stored_watchers_.clear();
  dispatcher_.clear_dead_letters();
}

}  // namespace corral::daemon

// A task feed for tests: it records what the Supervisor asks of it
// (prepare, spawned, sentinel, exited, retire) and lets the test raise the
// events a real feed raises (a worker READY, a kill request, a recycle after
// max_tasks, tasks arriving). FakeFeeds is the FeedFactory that makes them.
//
// Not thread-safe; used on the test's thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/feed.h"

namespace corral::daemon::testing {

class FakeFeed : public JobFeed {
 public:
  FakeFeed(const config::JobSpec& job, FeedEvents events)
      : events_(std::move(events)), dispatcher_(job.queue, [](FinishedTasks) {}) {}

  // What the supervisor asked, in order: "prepare 0", "spawned 0 ok",
  // "spawned 0 failed", "sentinel 0", "exited 0 SIGTERM", "retire".
  std::vector<std::string> calls;
  // The error the next prepare() returns (once).
  std::optional<std::string> next_prepare_error;
  uint32_t capacity_slots = 1024;
  // Who exited() charges a death to.
  ExitBlame blame = ExitBlame::kWorker;

  // The events of a real feed, raised by the test.
  void ready(uint32_t worker) { events_.ready(worker); }
  void kill(uint32_t worker, const std::string& why, const char* reason) {
    events_.kill(worker, why, reason);
  }
  void recycle(uint32_t worker) { events_.recycle(worker); }
  void stop(uint32_t worker, const std::string& why) { events_.stop(worker, why); }
  void active() { events_.active(); }

  Status prepare(uint32_t worker, SpawnRequest& request) override {
    calls.push_back("prepare " + std::to_string(worker));
    if (next_prepare_error) {
      std::string error = std::move(*next_prepare_error);
      next_prepare_error.reset();
      return Error(error);
    }
    request.env.push_back("FAKE_FEED_WORKER=" + std::to_string(worker));
    return {};
  }
  void spawned(uint32_t worker, bool ok) override {
    calls.push_back("spawned " + std::to_string(worker) + (ok ? " ok" : " failed"));
  }
  void send_sentinel(uint32_t worker) override {
    calls.push_back("sentinel " + std::to_string(worker));
  }
  ExitBlame exited(uint32_t worker, const std::string& why) override {
    calls.push_back("exited " + std::to_string(worker) + " " + why);
    return blame;
  }

  Dispatcher& dispatcher() override { return dispatcher_; }
  uint64_t add_submitter(OnFinished) override { return ++submitters_; }
  void remove_submitter(uint64_t) override {}
  void add_listener(std::function<bool()>, std::function<bool()>) override {}
  void prune_listeners() override {}
  void pump() override {}
  CancelReport cancel(const CancelSelection& selection, bool running) override {
    calls.push_back("cancel");
    return dispatcher_.cancel(selection, running, "cancelled");
  }
  std::vector<SharedReading> shared() const override { return {}; }
  bool tick(TimePoint) override { return false; }
  const FeedMetrics& metrics() const override { return metrics_; }
  uint32_t capacity() const override { return capacity_slots; }
  void retire(const std::string&) override {
    calls.push_back("retire");
    retired_ = true;
  }
  bool retired() const override { return retired_; }

 private:
  FeedEvents events_;
  Dispatcher dispatcher_;
  FeedMetrics metrics_;
  uint64_t submitters_ = 0;
  bool retired_ = false;
};

// The FeedFactory of the tests: a FakeFeed for every job with a channel.
class FakeFeeds {
 public:
  FeedFactory factory() {
    return
        [this](const config::JobSpec& job, FeedEvents events) -> Result<std::unique_ptr<JobFeed>> {
          ++made;
          if (error) return Error(*error);
          return std::unique_ptr<JobFeed>(std::make_unique<FakeFeed>(job, std::move(events)));
        };
  }

  int made = 0;                      // feeds asked for, failed ones included
  std::optional<std::string> error;  // while set, every feed fails with it
};

}  // namespace corral::daemon::testing

// A broker job's side of the TaskFeed on a fake broker and the fake host:
// the credit it gives (ready workers' room, less what it holds), tasks
// queued with the deliveries they had (one with none left ends dead at
// once), a local redelivery counted in the broker, every end told once,
// submits added and acknowledged by the broker's answer, replies given to
// the waiting submit once per task, and a retire that tells the broker
// nothing of the tasks it leaves pending. The test plays the worker: a
// line-framed pipe channel whose child ends it holds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "daemon/task_feed.h"
#include "tests/support/fake_host.h"

namespace corral::daemon {
namespace {

class FakeBroker : public Broker {
 public:
  void set_credit(size_t credit) override { this->credit = credit; }
  void count_attempt(const std::string& key) override { attempts.push_back(key); }
  void finish(BrokerOutcome outcome) override { ends.push_back(std::move(outcome)); }
  void add(std::vector<BrokerSubmission> tasks,
           std::function<void(std::vector<std::string>)> done) override {
    for (auto& t : tasks) added.push_back(std::move(t));
    pending_add = std::move(done);
  }
  void follow(bool on) override { following = on; }
  bool full(size_t more) const override { return is_full || more > 100; }
  void refresh() override {}
  BrokerStatus status() const override {
    BrokerStatus s;
    s.state = "ready";
    s.consumer = "node-a";
    return s;
  }
  void close() override { closed = true; }
  bool draining() const override { return false; }

  size_t credit = 0;
  std::vector<std::string> attempts;
  std::vector<BrokerOutcome> ends;
  std::vector<BrokerSubmission> added;
  std::function<void(std::vector<std::string>)> pending_add;
  bool following = false;
  bool is_full = false;
  bool closed = false;
};

class TaskFeedBrokerTest : public ::testing::Test {
 protected:
  TaskFeedBrokerTest() {
    job.name = "sums";
    job.channel = config::Channel::kPipe;
    job.pipe.framing = config::Framing::kLines;
    job.queue.prefetch = 4;
    job.queue.max_attempts = 3;
    job.broker.kind = config::BrokerSpec::Kind::kRedis;
    job.broker.redis.consumer = "node-a";
  }

  void SetUp() override {
    FeedEvents events;
    events.ready = [](uint32_t) {};
    events.kill = [](uint32_t, const std::string&, const char*) {};
    events.recycle = [](uint32_t) {};
    events.active = [] {};
    auto made = TaskFeed::create(io, host, job, std::move(events), private_dirs, {},
                                 [this](const std::string& consumer, BrokerEvents e) {
                                   EXPECT_EQ(consumer, "node-a");
                                   broker_events = std::move(e);
                                   auto fake = std::make_unique<FakeBroker>();
                                   broker = fake.get();
                                   return fake;
                                 });
    ASSERT_TRUE(made.ok()) << made.error().message();
    feed = std::move(*made);
    ASSERT_NE(broker, nullptr);
  }

  // Starts worker 0 (a line worker takes tasks at once).
  void start_worker() {
    SpawnRequest request;
    ASSERT_TRUE(feed->prepare(0, request).ok());
    ASSERT_EQ(request.fds.size(), 2u);
    child_in = UniqueFd(::dup(request.fds[0].source));   // the worker reads tasks here
    child_out = UniqueFd(::dup(request.fds[1].source));  // and writes results here
    feed->spawned(0, true);
    feed->pump();
  }

  // What the worker has been sent so far, line by line.
  std::vector<std::string> tasks_sent() {
    io.poll();
    io.restart();
    char buffer[4096];
    ssize_t n = ::read(child_in.get(), buffer, sizeof buffer);
    std::vector<std::string> lines;
    std::string text(buffer, n > 0 ? static_cast<size_t>(n) : 0);
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') {
        lines.push_back(text.substr(start, i - start));
        start = i + 1;
      }
    }
    return lines;
  }

  void answer(const std::string& line) {
    ASSERT_EQ(::write(child_out.get(), (line + "\n").data(), line.size() + 1),
              static_cast<ssize_t>(line.size() + 1));
    for (int i = 0; i < 20; ++i) {
      io.poll();
      io.restart();
    }
  }

  boost::asio::io_context io;
  testing::FakeHost host;
  PrivateDirs private_dirs{true};
  config::JobSpec job;
  FakeBroker* broker = nullptr;
  BrokerEvents broker_events;
  std::unique_ptr<TaskFeed> feed;
  UniqueFd child_in, child_out;
};

TEST_F(TaskFeedBrokerTest, CreditIsTheReadyWorkersRoomLessWhatTheFeedHolds) {
  EXPECT_EQ(broker->credit, 0u);  // no worker ready: nothing is read
  ASSERT_NO_FATAL_FAILURE(start_worker());
  EXPECT_EQ(broker->credit, 4u);  // one worker, prefetch 4
  broker_events.tasks({{"1-0", "a", 1, ""}, {"2-0", "b", 1, ""}, {"3-0", "c", 1, ""}});
  EXPECT_EQ(broker->credit, 1u);
  EXPECT_EQ(tasks_sent(), (std::vector<std::string>{"a", "b", "c"}));
  answer("A");
  EXPECT_EQ(broker->credit, 2u);
  ASSERT_EQ(broker->ends.size(), 1u);
  EXPECT_EQ(broker->ends[0].key, "1-0");
  EXPECT_EQ(broker->ends[0].outcome, TaskOutcome::kOk);
  EXPECT_EQ(broker->ends[0].result, "A");
  EXPECT_EQ(broker->ends[0].attempts, 1u);
  EXPECT_FALSE(broker->ends[0].letter);
}

TEST_F(TaskFeedBrokerTest, DeliveriesAreAttemptsAndATaskWithNoneLeftEndsDeadUnrun) {
  ASSERT_NO_FATAL_FAILURE(start_worker());
  // Delivered twice before (another node died holding it): its last attempt.
  broker_events.tasks({{"5-0", "late", 3, ""}, {"6-0", "spent", 4, ""}});
  ASSERT_EQ(broker->ends.size(), 1u);
  EXPECT_EQ(broker->ends[0].key, "6-0");
  EXPECT_EQ(broker->ends[0].outcome, TaskOutcome::kDead);
  EXPECT_TRUE(broker->ends[0].letter);
  EXPECT_EQ(broker->ends[0].result,
            "delivered 3 times without a result (its node or its worker died each time)");
  EXPECT_EQ(tasks_sent(), (std::vector<std::string>{"late"}));
  answer("done");
  ASSERT_EQ(broker->ends.size(), 2u);
  EXPECT_EQ(broker->ends[1].attempts, 3u);
  EXPECT_TRUE(broker->attempts.empty());  // its dispatch was the broker's delivery
}

TEST_F(TaskFeedBrokerTest, ALocalRedeliveryIsCountedInTheBroker) {
  ASSERT_NO_FATAL_FAILURE(start_worker());
  broker_events.tasks({{"7-0", "crashy", 1, ""}, {"8-0", "next", 1, ""}});
  EXPECT_EQ(tasks_sent().size(), 2u);
  // The worker dies running the first: it goes out again (a second
  // attempt, counted in the broker); the second had not started.
  feed->exited(0, "killed by SIGSEGV");
  ASSERT_NO_FATAL_FAILURE(start_worker());
  EXPECT_EQ(tasks_sent(), (std::vector<std::string>{"crashy"}));  // a suspect goes alone
  EXPECT_EQ(broker->attempts, (std::vector<std::string>{"7-0"}));
  answer("ok now");
  EXPECT_EQ(tasks_sent(), (std::vector<std::string>{"next"}));
  answer("fine");
  ASSERT_EQ(broker->ends.size(), 2u);
  EXPECT_EQ(broker->ends[0].key, "7-0");
  EXPECT_EQ(broker->ends[0].attempts, 2u);
  EXPECT_EQ(broker->ends[1].key, "8-0");
  EXPECT_EQ(broker->ends[1].attempts, 1u);
  EXPECT_EQ(broker->attempts.size(), 1u);  // "next" was not charged twice
}

TEST_F(TaskFeedBrokerTest, SubmitsAreAddedAndAcknowledgedByTheBrokersAnswer) {
  uint64_t submit = feed->open_submit();
  EXPECT_TRUE(feed->stores_submits());
  std::vector<Stored> heard;
  feed->watch_stored(submit, [&](const Stored& s) { heard.push_back(s); });
  std::vector<FinishedTask> finished;
  uint64_t submitter = feed->add_submitter(
      [&](FinishedTasks run) { finished.insert(finished.end(), run.begin(), run.end()); });
  for (uint64_t seq = 0; seq < 3; ++seq) {
    feed->store("p" + std::to_string(seq), TaskOrigin{submitter, submit, seq, std::nullopt});
  }
  EXPECT_TRUE(broker->following);  // before the adds go out
  io.poll();
  ASSERT_EQ(broker->added.size(), 3u);
  EXPECT_EQ(broker->added[1].payload, "p1");
  EXPECT_EQ(broker->added[1].reply_to, "node-a/" + std::to_string(submit) + "/1");
  broker->pending_add({"", "OOM command not allowed", ""});
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].accepted, 2u);
  EXPECT_EQ(heard[0].refused_seqs, (std::vector<uint64_t>{1}));
  EXPECT_EQ(heard[0].error, "OOM command not allowed");

  // Results from whichever node ran them; a task run twice is given once.
  broker_events.replies({{"1-0", submit, 0, TaskOutcome::kOk, "r0", 1},
                         {"1-0", submit, 0, TaskOutcome::kOk, "r0 again", 2},
                         {"3-0", submit, 2, TaskOutcome::kFailed, "no", 1},
                         {"9-0", submit + 1, 0, TaskOutcome::kOk, "not ours", 1}});
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].seq, 0u);
  EXPECT_EQ(finished[0].result, "r0");
  EXPECT_EQ(finished[0].key, "1-0");
  EXPECT_EQ(finished[0].id, 0u);
  EXPECT_EQ(finished[1].outcome, TaskOutcome::kFailed);
  feed->remove_submitter(submitter);
  EXPECT_FALSE(broker->following);
}

TEST_F(TaskFeedBrokerTest, AnEntrysDeadlineIsWallClockAndAPassedOneEndsItExpiredUnrun) {
  ASSERT_NO_FATAL_FAILURE(start_worker());
  const int64_t now = wall_clock_ms();
  broker_events.tasks({{"1-0", "stale", 1, "", now - 1000}, {"2-0", "fresh", 1, "", now + 60000}});
  EXPECT_EQ(tasks_sent(), (std::vector<std::string>{"fresh"}));
  ASSERT_EQ(broker->ends.size(), 1u);
  EXPECT_EQ(broker->ends[0].key, "1-0");
  EXPECT_EQ(broker->ends[0].outcome, TaskOutcome::kExpired);

  // A submit's deadline goes into the entry as a wall-clock time.
  uint64_t submit = feed->open_submit();
  TaskOrigin origin{0, submit, 0, host.now() + std::chrono::seconds(30)};
  feed->store("p", origin);
  io.poll();
  ASSERT_EQ(broker->added.size(), 1u);
  EXPECT_NEAR(static_cast<double>(broker->added[0].deadline_ms),
              static_cast<double>(wall_clock_ms() + 30000), 1000.0);
}

TEST_F(TaskFeedBrokerTest, SubmitsWaitWhileTheBrokerIsFull) {
  EXPECT_FALSE(feed->full());
  broker->is_full = true;
  EXPECT_TRUE(feed->full());
  broker->is_full = false;
  // The tasks stored this turn count, before they reach the broker (the
  // fake's mark is 100).
  uint64_t submit = feed->open_submit();
  for (uint64_t seq = 0; seq < 101; ++seq) {
    feed->store("p", TaskOrigin{0, submit, seq, std::nullopt});
  }
  EXPECT_TRUE(feed->full());
  io.poll();  // sent
  broker->pending_add(std::vector<std::string>(101));
  EXPECT_FALSE(feed->full());
}

TEST_F(TaskFeedBrokerTest, RetireLeavesWhatTheNodeHeldToTheBroker) {
  ASSERT_NO_FATAL_FAILURE(start_worker());
  broker_events.tasks({{"1-0", "a", 1, ""}});
  feed->exited(0, "stopped");
  feed->retire("corrald shut down");
  EXPECT_TRUE(broker->closed);
  EXPECT_TRUE(broker->ends.empty());  // pending in the broker, not ended
  EXPECT_EQ(feed->dispatcher().queued(), 0u);
}

}  // namespace
}  // namespace corral::daemon

// The Supervisor with a task feed, on the fake host, a fake clock and fake
// feeds: when a channel worker is RUNNING, how it is stopped and recycled,
// what a feed's kill request and a failed prepare lead to, and what a reload
// does with the feed. No processes, no channels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "daemon/supervisor.h"
#include "tests/support/fake_feed.h"
#include "tests/support/fake_host.h"

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::FakeFeed;
using testing::FakeFeeds;
using testing::FakeHost;
using ::testing::Not;

config::JobSpec channel_job(const std::string& name, uint32_t workers) {
  config::JobSpec spec;
  spec.name = name;
  spec.command = {"/usr/bin/worker"};
  spec.workers = workers;
  spec.channel = config::Channel::kShm;
  spec.start.settle = seconds(1);
  spec.stop.timeout = seconds(10);
  spec.stop.kill_after = seconds(5);
  spec.restart.backoff.initial = milliseconds(100);
  spec.restart.backoff.jitter = 0;
  return spec;
}

class SupervisorFeedTest : public ::testing::Test {
 protected:
  SupervisorFeedTest() : supervisor(host, SupervisorOptions{}, feeds.factory()) {}

  FakeFeed& feed(const std::string& job) {
    auto* fake = dynamic_cast<FakeFeed*>(supervisor.feed(job).get());
    if (fake == nullptr) throw std::logic_error("job " + job + " has no fake feed");
    return *fake;
  }
  State state(const std::string& job, uint32_t index) {
    return *supervisor.state(WorkerId{job, index});
  }
  pid_t pid(const std::string& job, uint32_t index) {
    return supervisor.status(WorkerId{job, index}).pid;
  }

  FakeHost host;
  FakeFeeds feeds;
  Supervisor supervisor;
};

TEST_F(SupervisorFeedTest, AChannelWorkerIsRunningAtReadyNotAfterSettle) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  ASSERT_EQ(host.spawns.size(), 1u);
  // The feed prepared the spawn: its env reached the request.
  EXPECT_THAT(host.spawns[0].env, Contains("FAKE_FEED_WORKER=0"));
  EXPECT_THAT(feed("tasks").calls, ElementsAre("prepare 0", "spawned 0 ok"));
  host.advance(seconds(5));  // well past start.settle
  EXPECT_EQ(state("tasks", 0), State::kStarting);
  feed("tasks").ready(0);
  EXPECT_EQ(state("tasks", 0), State::kRunning);
}

TEST_F(SupervisorFeedTest, StopSendsTheSentinelThenTheSignalThenSigkill) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  const pid_t worker = pid("tasks", 0);
  supervisor.stop(WorkerId{"tasks", 0});
  EXPECT_EQ(state("tasks", 0), State::kStopping);
  EXPECT_THAT(feed("tasks").calls, Contains("sentinel 0"));
  EXPECT_TRUE(host.processes.at(worker).signals.empty());
  host.advance(seconds(10) - milliseconds(1));
  EXPECT_TRUE(host.processes.at(worker).signals.empty());
  host.advance(milliseconds(1));  // stop.timeout
  EXPECT_EQ(host.processes.at(worker).signals, std::vector<int>{SIGTERM});
  host.advance(seconds(5) - milliseconds(1));
  EXPECT_EQ(host.processes.at(worker).signals, std::vector<int>{SIGTERM});
  host.advance(milliseconds(1));  // stop.kill_after
  EXPECT_EQ(host.processes.at(worker).signals, (std::vector<int>{SIGTERM, SIGKILL}));
  host.exit(worker, ExitStatus::killed(SIGKILL));
  EXPECT_EQ(state("tasks", 0), State::kStopped);
  EXPECT_EQ(feed("tasks").calls.back(), "exited 0 killed by SIGKILL");
}

// At shutdown the queues go once the last worker is gone (and not before:
// a stopping worker may hand tasks back): each feed is retired.
TEST_F(SupervisorFeedTest, ShutdownRetiresEveryFeedOnceTheLastWorkerHasExited) {
  supervisor.add_job(channel_job("tasks", 2));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  feed("tasks").ready(1);
  const pid_t first = pid("tasks", 0);
  const pid_t second = pid("tasks", 1);
  bool done = false;
  supervisor.shutdown([&] { done = true; });
  host.exit(first, ExitStatus::exited(0));
  EXPECT_THAT(feed("tasks").calls, Not(Contains("retire")));
  EXPECT_FALSE(done);
  host.exit(second, ExitStatus::exited(0));
  EXPECT_EQ(feed("tasks").calls.back(), "retire");
  EXPECT_TRUE(done);
}

TEST_F(SupervisorFeedTest, RecyclingAfterMaxTasksRestartsBySentinelWithoutAFailure) {
  config::JobSpec spec = channel_job("tasks", 1);
  spec.limits.max_tasks = 100;
  supervisor.add_job(spec);
  supervisor.start_autostart();
  feed("tasks").ready(0);
  const pid_t first = pid("tasks", 0);
  feed("tasks").recycle(0);
  EXPECT_EQ(state("tasks", 0), State::kStopping);
  EXPECT_EQ(feed("tasks").calls.back(), "sentinel 0");
  EXPECT_TRUE(host.processes.at(first).signals.empty());
  host.exit(first, ExitStatus::exited(0));  // it finished its tasks and left
  // A new process at once: no backoff.
  ASSERT_EQ(host.spawns.size(), 2u);
  EXPECT_EQ(state("tasks", 0), State::kStarting);
  feed("tasks").ready(0);
  const WorkerStatus status = supervisor.status(WorkerId{"tasks", 0});
  EXPECT_EQ(status.state, State::kRunning);
  EXPECT_NE(status.pid, first);
  EXPECT_EQ(status.restarts, 0u);  // not a failure
  EXPECT_EQ(status.enforced.at("max_tasks"), 1u);
}

// The feed says who a death is charged to; the supervisor acts on it.
TEST_F(SupervisorFeedTest, ADeathChargedToItsTaskRestartsTheWorkerAtOnce) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  feed("tasks").blame = ExitBlame::kTask;
  host.exit(pid("tasks", 0), ExitStatus::killed(SIGABRT));
  ASSERT_EQ(host.spawns.size(), 2u);  // no backoff
  EXPECT_EQ(state("tasks", 0), State::kStarting);
  EXPECT_EQ(feed("tasks").calls.back(), "spawned 0 ok");
  feed("tasks").ready(0);
  // The worker's own death still backs off.
  feed("tasks").blame = ExitBlame::kWorker;
  host.exit(pid("tasks", 0), ExitStatus::killed(SIGABRT));
  EXPECT_EQ(state("tasks", 0), State::kBackoff);
  EXPECT_EQ(host.spawns.size(), 2u);
  host.advance(milliseconds(100));
  EXPECT_EQ(host.spawns.size(), 3u);
}

TEST_F(SupervisorFeedTest, AKillRequestKillsCountsItsReasonAndRestartsAfterBackoff) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  const pid_t worker = pid("tasks", 0);
  feed("tasks").kill(0, "no heartbeat for 3s", "heartbeat");
  EXPECT_EQ(host.processes.at(worker).signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(supervisor.status(WorkerId{"tasks", 0}).enforced.at("heartbeat"), 1u);
  host.exit(worker, ExitStatus::killed(SIGKILL));
  EXPECT_EQ(feed("tasks").calls.back(), "exited 0 killed by SIGKILL");
  EXPECT_EQ(state("tasks", 0), State::kBackoff);
  EXPECT_EQ(host.spawns.size(), 1u);
  host.advance(milliseconds(99));
  EXPECT_EQ(host.spawns.size(), 1u);
  host.advance(milliseconds(1));  // restart.backoff.initial
  EXPECT_EQ(host.spawns.size(), 2u);
  EXPECT_EQ(supervisor.status(WorkerId{"tasks", 0}).restarts, 1u);
}

TEST_F(SupervisorFeedTest, AStopRequestSignalsAtOnceThenKillsAfterKillAfter) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  const pid_t worker = pid("tasks", 0);
  // A cancel --running: stop.signal now, no sentinel (the worker would
  // finish the cancelled task first).
  feed("tasks").stop(0, "its task was cancelled");
  EXPECT_EQ(host.processes.at(worker).signals, std::vector<int>{SIGTERM});
  EXPECT_THAT(feed("tasks").calls, Not(Contains("sentinel 0")));
  host.advance(seconds(5) - milliseconds(1));
  EXPECT_EQ(host.processes.at(worker).signals, std::vector<int>{SIGTERM});
  host.advance(milliseconds(1));  // stop.kill_after
  EXPECT_EQ(host.processes.at(worker).signals, (std::vector<int>{SIGTERM, SIGKILL}));
  // Charged to the cancelled task: restarted at once.
  feed("tasks").blame = ExitBlame::kTask;
  host.exit(worker, ExitStatus::killed(SIGKILL));
  EXPECT_EQ(host.spawns.size(), 2u);
}

TEST_F(SupervisorFeedTest, AStopRequestDoesNotKillTheNextProcessOfTheSlot) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  const pid_t first = pid("tasks", 0);
  feed("tasks").stop(0, "its task was cancelled");
  feed("tasks").blame = ExitBlame::kTask;
  host.exit(first, ExitStatus::killed(SIGTERM));  // it obeyed
  ASSERT_EQ(host.spawns.size(), 2u);
  const pid_t second = pid("tasks", 0);
  ASSERT_NE(second, first);
  host.advance(seconds(10));
  EXPECT_TRUE(host.processes.at(second).signals.empty());
}

TEST_F(SupervisorFeedTest, AFailedPrepareIsASpawnFailure) {
  supervisor.add_job(channel_job("tasks", 1));
  feed("tasks").next_prepare_error = "no room for an eventfd";
  supervisor.start(WorkerId{"tasks", 0});
  EXPECT_TRUE(host.spawns.empty());  // nothing was started without its channel
  EXPECT_THAT(feed("tasks").calls, ElementsAre("prepare 0"));
  WorkerStatus status = supervisor.status(WorkerId{"tasks", 0});
  EXPECT_EQ(status.state, State::kBackoff);
  EXPECT_EQ(status.spawn_error, "channel: no room for an eventfd");
  host.advance(milliseconds(100));
  EXPECT_EQ(host.spawns.size(), 1u);
  EXPECT_EQ(state("tasks", 0), State::kStarting);
  EXPECT_THAT(feed("tasks").calls, ElementsAre("prepare 0", "prepare 0", "spawned 0 ok"));
}

TEST_F(SupervisorFeedTest, AFeedThatCannotBeMadeIsASpawnFailureTriedAgainAtEachSpawn) {
  feeds.error = "cannot map the segment";
  supervisor.add_job(channel_job("tasks", 1));
  EXPECT_EQ(supervisor.feed("tasks"), nullptr);
  EXPECT_EQ(supervisor.feed_error("tasks"), "cannot map the segment");
  supervisor.start(WorkerId{"tasks", 0});
  EXPECT_EQ(feeds.made, 2);
  EXPECT_TRUE(host.spawns.empty());
  EXPECT_EQ(state("tasks", 0), State::kBackoff);
  EXPECT_EQ(supervisor.status(WorkerId{"tasks", 0}).spawn_error, "cannot map the segment");
  feeds.error.reset();  // the cause is gone
  host.advance(milliseconds(100));
  EXPECT_EQ(feeds.made, 3);
  ASSERT_NE(supervisor.feed("tasks"), nullptr);
  EXPECT_EQ(host.spawns.size(), 1u);
  EXPECT_EQ(supervisor.feed_error("tasks"), "");
}

TEST_F(SupervisorFeedTest, AReloadThatKeepsTheChannelKeepsTheFeedAndItsQueue) {
  supervisor.add_job(channel_job("tasks", 1));
  supervisor.start_autostart();
  feed("tasks").ready(0);
  std::shared_ptr<JobFeed> before = supervisor.feed("tasks");
  before->dispatcher().submit("payload", 0, 0);
  config::JobSpec edited = channel_job("tasks", 1);
  edited.command = {"/usr/bin/worker", "--new"};
  bool done = false;
  ASSERT_TRUE(supervisor.update({edited}, [&] { done = true; }));
  host.exit(host.last_pid(), ExitStatus::exited(0));
  host.advance(milliseconds(0));
  EXPECT_TRUE(done);
  EXPECT_EQ(supervisor.feed("tasks"), before);
  EXPECT_EQ(feeds.made, 1);
  EXPECT_FALSE(before->retired());
  EXPECT_EQ(before->dispatcher().queued(), 1u);
  EXPECT_EQ(host.spawns.back().argv, edited.command);
}

TEST_F(SupervisorFeedTest, AReloadThatRebuildsTheFeedRetiresTheOldOneOnlyAfterItsWorkersExited) {
  supervisor.add_job(channel_job("tasks", 2));
  supervisor.start_autostart();
  std::shared_ptr<JobFeed> before = supervisor.feed("tasks");
  auto& old_feed = dynamic_cast<FakeFeed&>(*before);
  config::JobSpec edited = channel_job("tasks", 2);
  edited.queue.capacity = 10;  // another queue: another feed
  const pid_t first = pid("tasks", 0), second = pid("tasks", 1);
  ASSERT_TRUE(supervisor.update({edited}, {}));
  host.exit(first, ExitStatus::exited(0));
  host.advance(milliseconds(0));
  EXPECT_FALSE(before->retired());  // worker 1 still holds its channel
  EXPECT_EQ(supervisor.feed("tasks"), before);
  EXPECT_THAT(old_feed.calls, Not(Contains("retire")));
  host.exit(second, ExitStatus::exited(0));
  host.advance(milliseconds(0));
  EXPECT_TRUE(before->retired());
  EXPECT_EQ(old_feed.calls.back(), "retire");
  EXPECT_EQ(feeds.made, 2);
  EXPECT_NE(supervisor.feed("tasks"), before);
  EXPECT_THAT(feed("tasks").calls,
              ElementsAre("prepare 0", "spawned 0 ok", "prepare 1", "spawned 1 ok"));
}

}  // namespace
}  // namespace corral::daemon

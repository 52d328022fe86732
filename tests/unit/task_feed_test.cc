// TaskFeed on the fake host: its watch ticks on the host's timers and judges
// by the host's clock, so a task_timeout or heartbeat overrun is reported
// exactly when the fake clock passes it (no real time, no worker process:
// a line-framed pipe channel whose child ends the test holds).
#include "daemon/task_feed.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>

#include "protocol/task_lines.h"
#include "tests/support/fake_host.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;

struct Kill {
  uint32_t worker;
  std::string why;
  std::string reason;
};

class TaskFeedTest : public ::testing::Test {
 protected:
  TaskFeedTest() {
    job.name = "naps";
    job.channel = config::Channel::kPipe;
    job.pipe.framing = config::Framing::kLines;
  }

  void make_feed() {
    FeedEvents events;
    events.ready = [](uint32_t) {};
    events.kill = [this](uint32_t worker, const std::string& why, const char* reason) {
      kills.push_back({worker, why, reason});
    };
    events.recycle = [](uint32_t) {};
    events.active = [] {};
    auto made = TaskFeed::create(io, host, job, std::move(events), private_dirs);
    ASSERT_TRUE(made.ok()) << made.error().message();
    feed = std::move(*made);
  }

  // Makes the feed and starts worker 0 on it (a line worker takes tasks at
  // once); keeps the child's ends open, as a live child would.
  void start() {
    ASSERT_NO_FATAL_FAILURE(make_feed());
    SpawnRequest request;
    Status prepared = feed->prepare(0, request);
    ASSERT_TRUE(prepared.ok()) << prepared.error().message();
    for (const FdMapping& m : request.fds) child_ends.emplace_back(::dup(m.source));
    feed->spawned(0, true);
  }

  boost::asio::io_context io;
  testing::FakeHost host;
  PrivateDirs private_dirs{true};
  config::JobSpec job;
  std::vector<UniqueFd> child_ends;
  std::unique_ptr<TaskFeed> feed;
  std::vector<Kill> kills;
};

TEST_F(TaskFeedTest, ATaskPastTaskTimeoutIsReportedWhenTheHostsClockPassesIt) {
  job.queue.task_timeout = milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(start());
  feed->dispatcher().submit("sleep", 0, 0);
  feed->pump();
  ASSERT_EQ(feed->dispatcher().in_flight(), 1u);
  // Ticks every 50 ms; the task is first seen running at +50 ms.
  host.advance(milliseconds(250));
  EXPECT_TRUE(kills.empty());  // at exactly task_timeout since it was seen
  host.advance(milliseconds(50));
  ASSERT_EQ(kills.size(), 1u);
  EXPECT_EQ(kills[0].worker, 0u);
  EXPECT_EQ(kills[0].reason, "task_timeout");
  EXPECT_EQ(kills[0].why, "task 1 ran longer than queue.task_timeout (200ms)");
}

TEST_F(TaskFeedTest, AnIdleWorkerIsNeverChargedForTaskTimeout) {
  job.queue.task_timeout = milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(start());
  host.advance(std::chrono::seconds(10));
  EXPECT_TRUE(kills.empty());
}

TEST_F(TaskFeedTest, AReadyWorkerSilentPastHeartbeatTimeoutIsReportedOnce) {
  job.health.heartbeat_timeout = milliseconds(800);
  ASSERT_NO_FATAL_FAILURE(start());
  host.advance(milliseconds(800));
  EXPECT_TRUE(kills.empty());
  host.advance(milliseconds(200));
  ASSERT_EQ(kills.size(), 1u);
  EXPECT_EQ(kills[0].reason, "heartbeat");
  host.advance(std::chrono::seconds(10));
  EXPECT_EQ(kills.size(), 1u);
}

TEST_F(TaskFeedTest, WithoutTimeoutsNoTimerIsArmed) {
  ASSERT_NO_FATAL_FAILURE(start());
  EXPECT_EQ(host.armed_timers(), 0u);
}

TEST_F(TaskFeedTest, ARetiredFeedStopsWatching) {
  job.queue.task_timeout = milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(start());
  EXPECT_EQ(host.armed_timers(), 1u);
  feed->retire("removed");
  EXPECT_EQ(host.armed_timers(), 0u);
}

TEST_F(TaskFeedTest, AFeedIdleForATickGivesBackItsTaskTable) {
  ASSERT_NO_FATAL_FAILURE(make_feed());
  Dispatcher& dispatcher = feed->dispatcher();
  for (uint64_t i = 0; i < 5000; ++i) dispatcher.submit("t", 0, i);
  const size_t grown = dispatcher.table_capacity();
  ASSERT_GE(grown, 10000u);
  CancelSelection all;
  all.all = true;
  ASSERT_EQ(dispatcher.cancel(all, false, "test").cancelled, 5000u);
  // The tick that sees the cancels still counts as active; the next, idle,
  // trims.
  EXPECT_TRUE(feed->tick(host.now()));
  EXPECT_EQ(dispatcher.table_capacity(), grown);
  EXPECT_FALSE(feed->tick(host.now()));
  EXPECT_LE(dispatcher.table_capacity(), 16u);
}

TEST_F(TaskFeedTest, SinkLinesAreWrittenTogetherWhenTheBatchEndsInTheirDocumentedShape) {
  corral::testing::TempDir dir;
  job.sink.kind = config::SinkSpec::Kind::kFile;
  job.sink.file = dir.file("results.jsonl");
  ASSERT_NO_FATAL_FAILURE(make_feed());
  Dispatcher& dispatcher = feed->dispatcher();
  dispatcher.submit("a", 0, 0);
  dispatcher.submit("b\"", 0, 1);
  // Ended by the dispatcher alone: nothing is written until the feed's
  // batch ends...
  CancelSelection all;
  all.all = true;
  ASSERT_EQ(dispatcher.cancel(all, false, "by \"test\"").cancelled, 2u);
  EXPECT_EQ(corral::testing::read_file(job.sink.file), "");
  // ... at its pump, one write for both lines.
  feed->pump();
  EXPECT_EQ(corral::testing::read_file(job.sink.file),
            R"({"attempts":0,"id":1,"result":"by \"test\"","status":"cancelled"})"
            "\n"
            R"({"attempts":0,"id":2,"result":"by \"test\"","status":"cancelled"})"
            "\n");
  // The same shape as the JSON library's, keys sorted.
  std::string line;
  protocol::append_sink_line(line, 7, "ok", "x\ny\xff", 2);
  EXPECT_EQ(line, protocol::encode_line(protocol::Json{
                      {"id", 7}, {"status", "ok"}, {"result", "x\ny\xff"}, {"attempts", 2}}));
}

TEST_F(TaskFeedTest, AWorkerWithoutASlotInTheSegmentGetsAnError) {
  job.channel = config::Channel::kShm;
  ASSERT_NO_FATAL_FAILURE(make_feed());
  const uint32_t slots = feed->capacity();
  SpawnRequest request;
  Status prepared = feed->prepare(slots, request);
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().message(), "worker " + std::to_string(slots) +
                                            " has no slot in the job's segment (" +
                                            std::to_string(slots) + " slots)");
  EXPECT_TRUE(request.fds.empty());
  EXPECT_TRUE(feed->prepare(slots - 1, request).ok());
  EXPECT_EQ(request.fds.size(), 3u);  // the segment and two eventfds
}

size_t open_fds() {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                           std::filesystem::directory_iterator()));
}

TEST_F(TaskFeedTest, AFailedSpawnLeavesNoPipeEndOpen) {
  ASSERT_NO_FATAL_FAILURE(make_feed());
  SpawnRequest request;
  // The first channel also starts the event loop's reactor, whose fds stay.
  ASSERT_TRUE(feed->prepare(0, request).ok());
  feed->spawned(0, false);
  const size_t before = open_fds();
  request = SpawnRequest();
  ASSERT_TRUE(feed->prepare(0, request).ok());
  EXPECT_EQ(open_fds(), before + 4);  // two pipes
  feed->spawned(0, false);
  EXPECT_EQ(open_fds(), before);
}

}  // namespace
}  // namespace corral::daemon

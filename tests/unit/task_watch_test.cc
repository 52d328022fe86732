// The watch's decisions on plain values and a clock the test sets: a task
// at exactly task_timeout lives, just over it is killed, once per overrun;
// a new task restarts the count; a worker without tasks is never charged;
// a READY worker silent for the heartbeat window is killed once, one that
// showed a sign within it or never said READY is not.
#include "daemon/task_watch.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const TimePoint kStart = TimePoint(std::chrono::hours(1000));

WatchedWorker running(uint32_t worker, uint64_t task) {
  WatchedWorker w;
  w.worker = worker;
  w.running = task;
  return w;
}

WatchedWorker idle(uint32_t worker) {
  WatchedWorker w;
  w.worker = worker;
  return w;
}

WatchedWorker ready(uint32_t worker, TimePoint last_sign) {
  WatchedWorker w;
  w.worker = worker;
  w.ready = true;
  w.last_sign = last_sign;
  return w;
}

TEST(TaskWatchTest, PeriodIsAQuarterOfTheShortestTimeoutWithinBounds) {
  EXPECT_EQ(TaskWatch({}).period(), std::nullopt);
  EXPECT_EQ(TaskWatch({seconds(2), std::nullopt}).period(), milliseconds(500));
  EXPECT_EQ(TaskWatch({std::nullopt, milliseconds(800)}).period(), milliseconds(200));
  EXPECT_EQ(TaskWatch({seconds(2), milliseconds(800)}).period(), milliseconds(200));
  EXPECT_EQ(TaskWatch({milliseconds(20), std::nullopt}).period(), milliseconds(10));
  EXPECT_EQ(TaskWatch({seconds(60), std::nullopt}).period(), seconds(1));
}

TEST(TaskWatchTest, ATaskAtExactlyTheTimeoutLivesAndJustOverItIsKilled) {
  TaskWatch watch({milliseconds(200), std::nullopt});
  EXPECT_TRUE(watch.check(kStart, {running(0, 7)}).empty());  // first seen now
  EXPECT_TRUE(watch.check(kStart + milliseconds(200), {running(0, 7)}).empty());
  auto killed = watch.check(kStart + milliseconds(201), {running(0, 7)});
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_EQ(killed[0].worker, 0u);
  EXPECT_STREQ(killed[0].reason, "task_timeout");
  EXPECT_EQ(killed[0].task, 7u);
  EXPECT_EQ(killed[0].why, "task 7 ran longer than queue.task_timeout (200ms)");
}

TEST(TaskWatchTest, AnOverrunIsKilledOncePerTimeout) {
  TaskWatch watch({milliseconds(200), std::nullopt});
  (void)watch.check(kStart, {running(3, 1)});
  EXPECT_EQ(watch.check(kStart + milliseconds(250), {running(3, 1)}).size(), 1u);
  // Still running it (its kill takes a moment): not asked again at once...
  EXPECT_TRUE(watch.check(kStart + milliseconds(300), {running(3, 1)}).empty());
  EXPECT_TRUE(watch.check(kStart + milliseconds(450), {running(3, 1)}).empty());
  // ...but again after another whole timeout.
  EXPECT_EQ(watch.check(kStart + milliseconds(451), {running(3, 1)}).size(), 1u);
}

TEST(TaskWatchTest, ANewTaskRestartsTheCount) {
  TaskWatch watch({milliseconds(200), std::nullopt});
  (void)watch.check(kStart, {running(0, 1)});
  EXPECT_TRUE(watch.check(kStart + milliseconds(150), {running(0, 2)}).empty());
  EXPECT_TRUE(watch.check(kStart + milliseconds(300), {running(0, 2)}).empty());
  EXPECT_EQ(watch.check(kStart + milliseconds(351), {running(0, 2)}).size(), 1u);
}

TEST(TaskWatchTest, AWorkerWithoutTasksIsNeverChargedAndStartsAfreshWithItsNext) {
  TaskWatch watch({milliseconds(200), std::nullopt});
  (void)watch.check(kStart, {running(0, 1)});
  EXPECT_TRUE(watch.check(kStart + milliseconds(100), {idle(0)}).empty());
  EXPECT_TRUE(watch.check(kStart + seconds(10), {idle(0)}).empty());
  // The same task id again after a pause counts from when it is seen.
  EXPECT_TRUE(watch.check(kStart + seconds(11), {running(0, 1)}).empty());
  EXPECT_TRUE(watch.check(kStart + seconds(11) + milliseconds(200), {running(0, 1)}).empty());
}

TEST(TaskWatchTest, OnlyTheWorkerThatOverranIsKilled) {
  TaskWatch watch({milliseconds(200), std::nullopt});
  (void)watch.check(kStart, {running(0, 1), running(1, 2)});
  auto killed = watch.check(kStart + milliseconds(300), {running(0, 1), running(1, 3), idle(2)});
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_EQ(killed[0].worker, 0u);
}

TEST(TaskWatchTest, ForgetMakesANewProcessStartAfresh) {
  TaskWatch watch({milliseconds(200), std::nullopt});
  (void)watch.check(kStart, {running(0, 1)});
  watch.forget(0);
  EXPECT_TRUE(watch.check(kStart + milliseconds(300), {running(0, 1)}).empty());
}

TEST(TaskWatchTest, WithoutATaskTimeoutNoTaskIsCharged) {
  TaskWatch watch({std::nullopt, seconds(10)});
  (void)watch.check(kStart, {running(0, 1)});
  EXPECT_TRUE(watch.check(kStart + seconds(5), {running(0, 1)}).empty());
}

TEST(TaskWatchTest, AReadyWorkerSilentForLongerThanTheHeartbeatTimeoutIsKilledOnce) {
  TaskWatch watch({std::nullopt, milliseconds(800)});
  EXPECT_TRUE(watch.check(kStart + milliseconds(800), {ready(0, kStart)}).empty());
  auto killed = watch.check(kStart + milliseconds(801), {ready(0, kStart)});
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_STREQ(killed[0].reason, "heartbeat");
  EXPECT_EQ(killed[0].task, std::nullopt);
  EXPECT_EQ(killed[0].why, "no sign of life for more than health.heartbeat_timeout (800ms)");
  EXPECT_TRUE(watch.check(kStart + seconds(5), {ready(0, kStart)}).empty());
}

TEST(TaskWatchTest, ASignWithinTheWindowKeepsAWorkerAlive) {
  TaskWatch watch({std::nullopt, milliseconds(800)});
  // Its heartbeat cell changed at +500 ms: silent for 501 ms only.
  EXPECT_TRUE(
      watch.check(kStart + milliseconds(1001), {ready(0, kStart + milliseconds(500))}).empty());
  // Unchanged since: past the window.
  EXPECT_EQ(watch.check(kStart + milliseconds(1301), {ready(0, kStart + milliseconds(500))}).size(),
            1u);
}

TEST(TaskWatchTest, AWorkerThatNeverSaidReadyIsNotChargedForSilence) {
  TaskWatch watch({std::nullopt, milliseconds(800)});
  WatchedWorker starting = ready(0, kStart);
  starting.ready = false;
  EXPECT_TRUE(watch.check(kStart + seconds(60), {starting}).empty());
}

TEST(TaskWatchTest, ASilentWorkerIsKilledForItsSilenceNotAlsoForItsTask) {
  TaskWatch watch({milliseconds(200), milliseconds(800)});
  WatchedWorker w = ready(0, kStart);
  w.running = 9;
  (void)watch.check(kStart, {w});
  auto killed = watch.check(kStart + seconds(1), {w});
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_STREQ(killed[0].reason, "heartbeat");
  // Once its heartbeat kill was asked for, the task's overrun still counts.
  killed = watch.check(kStart + seconds(2), {w});
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_STREQ(killed[0].reason, "task_timeout");
}

TEST(TaskWatchTest, APausedWorkerIsNotJudgedAndItsTaskIsTimedAfreshOnceThawed) {
  TaskWatch watch({seconds(5), seconds(2)});
  EXPECT_TRUE(watch.check(kStart, {running(1, 7)}).empty());
  WatchedWorker paused = ready(1, kStart);
  paused.running = 7;
  paused.paused = true;
  // Far past both timeouts while paused: nothing.
  EXPECT_TRUE(watch.check(kStart + seconds(60), {paused}).empty());
  // Thawed at 60 s, with a sign of life then: task 7 counts from now on.
  WatchedWorker thawed = ready(1, kStart + seconds(60));
  thawed.running = 7;
  EXPECT_TRUE(watch.check(kStart + seconds(61), {thawed}).empty());
  thawed.last_sign = kStart + seconds(66);
  EXPECT_TRUE(watch.check(kStart + seconds(66), {thawed}).empty());  // 5 s: not over
  std::vector<Overrun> out = watch.check(kStart + seconds(67), {thawed});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason, std::string_view("task_timeout"));
}

}  // namespace
}  // namespace corral::daemon

// The C++ worker SDK's shm channel (worker/shm_channel.cc) against a test
// that plays corrald: each test forks a child that calls corral::serve()
// with one of the handlers of worker_sdk_handlers.h over a real job segment
// and two eventfds, then reads and writes the rings as the daemon would, and
// checks what the child sends, what it counts in its slot, and how it exits.
#include <signal.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/frame.h"
#include "ipc/segment.h"
#include "ipc/spsc_ring.h"
#include "ipc/wake.h"
#include "tests/unit/frame_assertions.h"
#include "tests/unit/worker_sdk_fixtures.h"

namespace corral {
namespace {

using namespace std::chrono_literals;
using namespace sdk_test;
using ::testing::HasSubstr;

// Plays the daemon's side of one worker's rings.
class ShmDaemon {
 public:
  static constexpr uint32_t kWorker = 1;  // not 0, to check the index is used

  explicit ShmDaemon(uint64_t ring_capacity = 64 * 1024) {
    ipc::SegmentSpec spec;
    spec.job = "shmtest";
    spec.workers = 2;
    spec.ring_capacity = ring_capacity;
    spec.shared = {{"processed", ipc::SharedElement::kU64, false, 1},
                   {"total", ipc::SharedElement::kF64, false, 1},
                   {"histogram", ipc::SharedElement::kI64, true, 8}};
    segment.emplace(*ipc::Segment::create(spec));
    task_wake.emplace(*ipc::EventFd::create());
    result_wake.emplace(*ipc::EventFd::create());
    tasks = segment->task_ring(kWorker);
    results = segment->result_ring(kWorker);
  }
  ~ShmDaemon() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  void start(const std::string& handler, Env extra = {}) {
    Env env = {
        {"CORRAL_JOB", "shmtest"},
        {"CORRAL_WORKER", std::to_string(kWorker)},
        {"CORRAL_CHANNEL", "shm"},
        {"CORRAL_SHM", "fd:" + std::to_string(segment->fd())},
        {"CORRAL_FDS", std::to_string(task_wake->fd()) + "," + std::to_string(result_wake->fd())},
        {"CORRAL_MAX_TASK_BYTES", "4096"}};
    env.insert(env.end(), extra.begin(), extra.end());
    pid = fork_worker(env, handler);
  }

  bool push_task(uint64_t id, std::string_view payload) {
    size_t size = ipc::kTaskHeaderBytes + payload.size();
    char* dest = tasks.reserve(size);
    if (dest == nullptr) return false;
    tasks.commit(ipc::write_task_body(dest, id, payload));
    return true;
  }
  bool push_chunk(uint64_t first_id, const std::vector<std::string>& payloads) {
    std::string items;
    for (const std::string& p : payloads) ipc::append_chunk_item(items, p);
    char* dest = tasks.reserve(ipc::kTasksHeaderBytes + items.size());
    if (dest == nullptr) return false;
    tasks.commit(
        ipc::write_tasks_body(dest, first_id, static_cast<uint32_t>(payloads.size()), items));
    return true;
  }
  void push_shutdown() {
    char* dest = tasks.reserve(1);
    ASSERT_NE(dest, nullptr);
    dest[0] = static_cast<char>(ipc::FrameType::kShutdown);
    tasks.commit(1);
    publish();
  }
  void publish() {
    if (tasks.publish()) task_wake->signal();
  }

  // Takes every visible result record; false on a bad record.
  bool drain_results(std::vector<OwnedFrame>& out) {
    for (;;) {
      std::string_view record = results.peek();
      if (record.data() == nullptr) break;
      ipc::Frame frame;
      if (::testing::AssertionResult parsed = ipc::parses(record, frame); !parsed) {
        ADD_FAILURE() << parsed.message();
        return false;
      }
      if (frame.type == ipc::FrameType::kResults) {
        // One entry per result, each under its own id.
        std::string_view items = frame.payload;
        for (uint32_t i = 0; i < frame.count; ++i) {
          const ipc::ResultItem item = ipc::take_result_item(items);
          out.push_back({frame.type, frame.id + i, item.status, std::string(item.payload), 0});
        }
      } else {
        out.push_back(
            {frame.type, frame.id, frame.status, std::string(frame.payload), frame.features});
      }
      results.consume();
    }
    if (results.release()) task_wake->signal();
    return true;
  }

  // Sleeps on the result eventfd as the daemon would, if nothing is visible.
  void sleep_for_results(std::chrono::milliseconds timeout) {
    if (results.consumer_prepare_sleep()) result_wake->wait(timeout);
  }

  // Waits for the READY record (its features into FEATURES if given).
  bool wait_ready(uint32_t* features = nullptr) {
    auto deadline = Clock::now() + 10s;
    std::vector<OwnedFrame> got;
    while (Clock::now() < deadline) {
      if (!drain_results(got)) return false;
      if (!got.empty() && features != nullptr) *features = got[0].features;
      if (!got.empty()) return got.size() == 1 && got[0].type == ipc::FrameType::kReady;
      sleep_for_results(100ms);
    }
    return false;
  }

  // Sends N tasks (payload PAYLOAD(i), id 1000 + i) and collects their N
  // results, keeping both rings moving; SLOW_READER makes the worker fill
  // its result ring and sleep for space.
  std::vector<OwnedFrame> exchange(int n, const std::function<std::string(int)>& payload,
                                   bool slow_reader = false) {
    std::vector<OwnedFrame> got;
    int sent = 0;
    auto deadline = Clock::now() + 30s;
    while (static_cast<int>(got.size()) < n && Clock::now() < deadline) {
      bool progress = false;
      while (sent < n && push_task(1000 + sent, payload(sent))) {
        ++sent;
        progress = true;
      }
      publish();
      if (slow_reader) std::this_thread::sleep_for(1ms);
      size_t before = got.size();
      if (!drain_results(got)) break;
      progress = progress || got.size() != before;
      if (progress) continue;
      bool sleep = results.consumer_prepare_sleep();
      if (sent < n) {
        size_t size = ipc::kTaskHeaderBytes + payload(sent).size();
        sleep = tasks.producer_prepare_sleep(size) && sleep;
      }
      if (sleep) result_wake->wait(200ms);
    }
    return got;
  }

  std::optional<ipc::Segment> segment;
  std::optional<ipc::EventFd> task_wake, result_wake;
  ipc::SpscRing tasks, results;
  pid_t pid = -1;
};

TEST(WorkerSdkShm, ManyTasksThenSentinel) {
  ShmDaemon daemon;
  daemon.start("shm");
  ASSERT_TRUE(daemon.wait_ready());
  const ipc::WorkerSlot& slot = daemon.segment->slot(ShmDaemon::kWorker);
  EXPECT_EQ(slot.pid.load(), static_cast<uint32_t>(daemon.pid));
  EXPECT_GT(slot.heartbeat_ns.load(), 0u);

  const int n = 5000;  // several laps of the 64 KiB rings
  std::vector<OwnedFrame> results =
      daemon.exchange(n, [](int i) { return "task-" + std::to_string(i); });
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(results[i].type, ipc::FrameType::kResult);
    ASSERT_EQ(results[i].id, 1000u + i);  // one worker: in order
    ASSERT_EQ(results[i].status, ipc::ResultStatus::kOk);
    ASSERT_EQ(results[i].payload, "<task-" + std::to_string(i) + ">");
  }
  EXPECT_EQ(slot.tasks_done.load(), static_cast<uint64_t>(n));
  EXPECT_EQ(daemon.segment->find_shared("processed")->cells[0].load(), static_cast<uint64_t>(n));
  EXPECT_EQ(std::bit_cast<double>(daemon.segment->find_shared("total")->cells[0].load()), n * 0.5);

  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, FailuresAndTypeErrorsAreFailedResults) {
  ShmDaemon daemon;
  daemon.start("shm");
  ASSERT_TRUE(daemon.wait_ready());
  std::vector<std::string> payloads = {"boom", "wrong type", "ok"};
  std::vector<OwnedFrame> results =
      daemon.exchange(3, [&](int i) { return payloads[static_cast<size_t>(i)]; });
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].status, ipc::ResultStatus::kFailed);
  EXPECT_EQ(results[0].payload, "it went boom");
  EXPECT_EQ(results[1].status, ipc::ResultStatus::kFailed);
  EXPECT_THAT(results[1].payload, HasSubstr("'processed' is u64, not f64"));
  EXPECT_EQ(results[2].status, ipc::ResultStatus::kOk);
  EXPECT_EQ(results[2].payload, "<ok>");
  EXPECT_EQ(daemon.segment->find_shared("processed")->cells[0].load(), 3u);
  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, ResultsBeforeACrashAreVisible) {
  // The daemon blames the oldest task a dead worker held: every finished
  // result must be in the ring before the next task runs.
  ShmDaemon daemon;
  daemon.start("echo_or_crash");
  ASSERT_TRUE(daemon.wait_ready());
  ASSERT_TRUE(daemon.push_task(1, "a"));
  ASSERT_TRUE(daemon.push_task(2, "b"));
  ASSERT_TRUE(daemon.push_task(3, "crash"));
  ASSERT_TRUE(daemon.push_task(4, "never"));
  daemon.publish();
  EXPECT_EQ(wait_exit(daemon.pid), 128 + SIGABRT);
  daemon.pid = -1;
  std::vector<OwnedFrame> results;
  ASSERT_TRUE(daemon.drain_results(results));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].id, 1u);
  EXPECT_EQ(results[1].id, 2u);
}

TEST(WorkerSdkShm, AChunksResultsGoAsResultsFramesAndTheSlotCountsWhatACrashLost) {
  ShmDaemon daemon;
  daemon.start("echo_or_crash", {{"CORRAL_CHUNKS", "1"}});
  uint32_t features = 0;
  ASSERT_TRUE(daemon.wait_ready(&features));
  EXPECT_EQ(features, ipc::kReadyTakesChunks);
  ASSERT_TRUE(daemon.push_chunk(50, {"a", "b", "c"}));
  ASSERT_TRUE(daemon.push_chunk(60, {"d", "crash", "never"}));
  daemon.publish();
  EXPECT_EQ(wait_exit(daemon.pid), 128 + SIGABRT);
  daemon.pid = -1;
  // The first chunk's results went as one RESULTS frame when the next task
  // was not the one after them; "d" was gathered and lost with the worker
  // (unless the gathering window ended before "crash" ran, as under a slow
  // sanitizer: then it went too), but counted either way: four tasks
  // finished, so the fifth held ("crash") was running.
  std::vector<OwnedFrame> results;
  ASSERT_TRUE(daemon.drain_results(results));
  std::vector<std::pair<uint64_t, std::string>> expected = {{50, "a"}, {51, "b"}, {52, "c"}};
  if (results.size() == 4) expected.emplace_back(60, "d");
  ASSERT_EQ(results.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(results[i].type, ipc::FrameType::kResults);
    EXPECT_EQ(results[i].id, expected[i].first);
    EXPECT_EQ(results[i].payload, expected[i].second);
  }
  EXPECT_EQ(daemon.segment->slot(ShmDaemon::kWorker).tasks_done.load(), 4u);
}

TEST(WorkerSdkShm, SingleTasksAreAnsweredAtOnceAfterTheResultsGatheredBeforeThem) {
  ShmDaemon daemon;
  daemon.start("echo_or_crash", {{"CORRAL_CHUNKS", "1"}});
  ASSERT_TRUE(daemon.wait_ready());
  ASSERT_TRUE(daemon.push_chunk(10, {"a", "b"}));
  ASSERT_TRUE(daemon.push_task(12, "c"));
  ASSERT_TRUE(daemon.push_task(13, "crash"));
  daemon.publish();
  EXPECT_EQ(wait_exit(daemon.pid), 128 + SIGABRT);
  daemon.pid = -1;
  std::vector<OwnedFrame> results;
  ASSERT_TRUE(daemon.drain_results(results));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].type, ipc::FrameType::kResults);
  EXPECT_EQ(results[0].id, 10u);
  EXPECT_EQ(results[1].type, ipc::FrameType::kResults);
  EXPECT_EQ(results[1].id, 11u);
  EXPECT_EQ(results[2].type, ipc::FrameType::kResult);
  EXPECT_EQ(results[2].id, 12u);
  EXPECT_EQ(results[2].payload, "c");
  EXPECT_EQ(daemon.segment->slot(ShmDaemon::kWorker).tasks_done.load(), 3u);
}

TEST(WorkerSdkShm, ReadyHasNoBodyUnlessTheDaemonOffersChunks) {
  ShmDaemon daemon;
  daemon.start("shm");
  // The record itself: one byte, READY's type.
  auto deadline = Clock::now() + 10s;
  std::string_view record;
  while ((record = daemon.results.peek()).data() == nullptr && Clock::now() < deadline) {
    daemon.sleep_for_results(100ms);
  }
  EXPECT_EQ(record, std::string(1, static_cast<char>(ipc::FrameType::kReady)));
}

TEST(WorkerSdkShm, FullResultRingMakesTheWorkerWait) {
  ShmDaemon daemon(4096);  // room for three 1000-byte results
  daemon.start("shm");
  ASSERT_TRUE(daemon.wait_ready());
  const int n = 300;
  std::vector<OwnedFrame> results = daemon.exchange(
      n, [](int i) { return "big" + std::to_string(i); }, /*slow_reader=*/true);
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(results[i].id, 1000u + i);
    ASSERT_EQ(results[i].payload, std::string(1000, 'b'));
  }
  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, HeartbeatCellMovesDuringALongTask) {
  ShmDaemon daemon;
  daemon.start("shm", {{"CORRAL_HEARTBEAT_MS", "20"}});
  ASSERT_TRUE(daemon.wait_ready());
  const ipc::WorkerSlot& slot = daemon.segment->slot(ShmDaemon::kWorker);
  ASSERT_TRUE(daemon.push_task(1, "slow"));  // 300 ms
  daemon.publish();
  std::this_thread::sleep_for(100ms);
  uint64_t early = slot.heartbeat_ns.load();
  std::this_thread::sleep_for(100ms);
  uint64_t later = slot.heartbeat_ns.load();
  EXPECT_GT(later, early);
  std::vector<OwnedFrame> results;
  auto deadline = Clock::now() + 10s;
  while (results.empty() && Clock::now() < deadline) {
    daemon.drain_results(results);
    if (results.empty()) daemon.sleep_for_results(100ms);
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].payload, "<slow>");
  daemon.push_shutdown();
  EXPECT_EQ(wait_exit(daemon.pid), 0);
  daemon.pid = -1;
}

TEST(WorkerSdkShm, WorkerIndexBeyondTheSegmentIsABadEnvironment) {
  ShmDaemon daemon;
  TestPipe err;
  Env env = {{"CORRAL_CHANNEL", "shm"},
             {"CORRAL_WORKER", "7"},
             {"CORRAL_SHM", "fd:" + std::to_string(daemon.segment->fd())},
             {"CORRAL_FDS", std::to_string(daemon.task_wake->fd()) + "," +
                                std::to_string(daemon.result_wake->fd())}};
  pid_t pid = fork_worker(env, "shm", {err.read}, err.write);
  err.close_write();
  EXPECT_EQ(wait_exit(pid), 2);
  EXPECT_THAT(read_to_eof(err.read), HasSubstr("the segment has 2 workers"));
}

}  // namespace
}  // namespace corral

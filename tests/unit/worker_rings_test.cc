#include "ipc/worker_rings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "tests/unit/frame_assertions.h"

namespace corral::ipc {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using Take = WorkerRings::Take;
using TimePoint = WorkerRings::TimePoint;

// A job's segment, the daemon's end of worker 1, and that worker's own view
// (an attach of the same memfd, as a worker process makes).
class WorkerRingsTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kWorker = 1;

  void SetUp() override {
    SegmentSpec spec;
    spec.job = "rings";
    spec.workers = 3;
    spec.ring_capacity = 4096;
    Result<Segment> segment = Segment::create(spec);
    ASSERT_TRUE(segment) << message_of(segment);
    daemon_.emplace(std::move(*segment));
    rings_.emplace(*daemon_, kWorker);
    attach_worker();
  }

  void attach_worker() {
    Result<Segment> worker = Segment::attach(UniqueFd(::dup(daemon_->fd())));
    ASSERT_TRUE(worker) << message_of(worker);
    worker_.emplace(std::move(*worker));
    tasks_ = worker_->task_ring(kWorker);
    results_ = worker_->result_ring(kWorker);
    ASSERT_TRUE(tasks_.valid() && results_.valid());
  }

  // The worker publishes one result record of BODY (type byte included).
  void worker_publishes(std::string_view body) {
    ASSERT_TRUE(results_.try_push(body));
    results_.publish();
  }

  RingHeader* header_of(const SpscRing& ring) {
    return reinterpret_cast<RingHeader*>(const_cast<char*>(ring.data()) - sizeof(RingHeader));
  }

  std::optional<Segment> daemon_;
  std::optional<WorkerRings> rings_;
  std::optional<Segment> worker_;
  SpscRing tasks_;    // the worker's end
  SpscRing results_;  // the worker's end
};

TEST_F(WorkerRingsTest, TasksResultsAndTheSentinelGoThrough) {
  ASSERT_TRUE(rings_->can_send(5));
  rings_->send(42, "hello");
  ASSERT_TRUE(rings_->can_send(0));
  rings_->send(43, "");
  EXPECT_FALSE(rings_->publish());  // the worker does not sleep
  Frame frame;
  ASSERT_TRUE(parses(tasks_.peek(), frame));
  EXPECT_EQ(frame.type, FrameType::kTask);
  EXPECT_EQ(frame.id, 42u);
  EXPECT_EQ(frame.payload, "hello");
  tasks_.consume();
  ASSERT_TRUE(parses(tasks_.peek(), frame));
  EXPECT_EQ(frame.id, 43u);
  tasks_.consume();
  tasks_.release();

  std::string body(kResultHeaderBytes + 2, '\0');
  body.resize(write_result_body(body.data(), 42, ResultStatus::kFailed, "no"));
  worker_publishes(std::string(1, static_cast<char>(FrameType::kReady)));
  worker_publishes(body);
  std::string why;
  ASSERT_EQ(rings_->next(frame, why), Take::kFrame) << why;
  EXPECT_EQ(frame.type, FrameType::kReady);
  rings_->consume();
  ASSERT_EQ(rings_->next(frame, why), Take::kFrame) << why;
  EXPECT_EQ(frame.type, FrameType::kResult);
  EXPECT_EQ(frame.id, 42u);
  EXPECT_EQ(frame.status, ResultStatus::kFailed);
  EXPECT_EQ(frame.payload, "no");
  rings_->consume();
  EXPECT_EQ(rings_->next(frame, why), Take::kNone);
  EXPECT_FALSE(rings_->release());
  EXPECT_TRUE(rings_->prepare_sleep());  // nothing more: the daemon may wait

  ASSERT_TRUE(rings_->push_shutdown());
  rings_->publish();
  ASSERT_TRUE(parses(tasks_.peek(), frame));
  EXPECT_EQ(frame.type, FrameType::kShutdown);
}

TEST_F(WorkerRingsTest, AMalformedResultIsTheWorkersProtocolError) {
  worker_publishes("\x09garbage");
  Frame frame;
  std::string why;
  EXPECT_EQ(rings_->next(frame, why), Take::kBroken);
  EXPECT_THAT(why, HasSubstr("malformed record in the result ring"));
  EXPECT_EQ(rings_->next(frame, why), Take::kBroken);  // and stays so
}

TEST_F(WorkerRingsTest, ScribbledResultIndexesAreTheWorkersProtocolError) {
  header_of(results_)->head.store(uint64_t{1} << 40);
  Frame frame;
  std::string why;
  EXPECT_EQ(rings_->next(frame, why), Take::kBroken);
  EXPECT_EQ(why, "the worker corrupted its result ring's indexes");
}

TEST_F(WorkerRingsTest, ScribbledTaskIndexesAreTheWorkersProtocolError) {
  while (rings_->can_send(100)) rings_->send(1, std::string(100, 't'));
  header_of(tasks_)->tail.store(uint64_t{1} << 40);
  EXPECT_FALSE(rings_->can_send(100));  // no room made up from a tail out of range
  Frame frame;
  std::string why;
  EXPECT_EQ(rings_->next(frame, why), Take::kBroken);
  EXPECT_EQ(why, "the worker corrupted its task ring's indexes");
}

TEST_F(WorkerRingsTest, ANewWorkerStartsCleanAfterOneThatScribbledEverywhere) {
  ASSERT_TRUE(rings_->can_send(3));
  rings_->send(1, "old");
  rings_->publish();
  std::memset(daemon_->base(), 0xff, daemon_->size());
  rings_.reset();
  rings_.emplace(*daemon_, kWorker);  // the next process in this slot
  EXPECT_EQ(rings_->tasks().used_bytes(), 0u);
  EXPECT_EQ(rings_->results().used_bytes(), 0u);
  Frame frame;
  std::string why;
  EXPECT_EQ(rings_->next(frame, why), Take::kNone) << why;
  attach_worker();
  EXPECT_EQ(worker_->slot(kWorker).pid.load(), 0u);
  EXPECT_FALSE(tasks_.peek().data() != nullptr);
  ASSERT_TRUE(rings_->can_send(3));
  rings_->send(2, "new");
  rings_->publish();
  ASSERT_TRUE(parses(tasks_.peek(), frame));
  EXPECT_EQ(frame.id, 2u);
  EXPECT_EQ(frame.payload, "new");
}

TEST_F(WorkerRingsTest, AHeartbeatCountsWhenTheCellChangesAtTheDaemonsTime) {
  const TimePoint t0 = TimePoint{} + seconds(1000);
  WorkerSlot& slot = worker_->slot(kWorker);
  EXPECT_EQ(rings_->heartbeat_seen(t0), TimePoint::min());  // nothing seen yet
  // A time far in the future counts once, as seen now.
  slot.heartbeat_ns.store(uint64_t{1} << 62);
  EXPECT_EQ(rings_->heartbeat_seen(t0 + seconds(1)), t0 + seconds(1));
  EXPECT_EQ(rings_->heartbeat_seen(t0 + seconds(60)), t0 + seconds(1));
  // The same value written again is no sign either.
  slot.heartbeat_ns.store(uint64_t{1} << 62);
  EXPECT_EQ(rings_->heartbeat_seen(t0 + seconds(61)), t0 + seconds(1));
  // Any other value is, whatever it says.
  slot.heartbeat_ns.store(5);
  EXPECT_EQ(rings_->heartbeat_seen(t0 + seconds(62)), t0 + seconds(62));
  // A new process in the slot starts from nothing seen.
  rings_.reset();
  rings_.emplace(*daemon_, kWorker);
  EXPECT_EQ(rings_->heartbeat_seen(t0 + seconds(63)), TimePoint::min());
}

}  // namespace
}  // namespace corral::ipc

#include "worker/shm_channel.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "ipc/frame.h"
#include "ipc/spsc_ring.h"
#include "ipc/wake.h"
#include "worker/heartbeat.h"
#include "worker/wake_batch.h"

namespace corral::sdk {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The longest sleep on the task eventfd: the heartbeat cell is refreshed and
// the daemon's presence checked this often even when nothing happens.
constexpr auto kIdleWait = 1000ms;

uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

class ShmWorker {
 public:
  // SPIN: how long an empty task ring is polled before sleeping (the job's
  // shm.spin): a task often follows soon, and a wake-up costs tens of
  // microseconds.
  ShmWorker(const TaskHandler& handler, const ipc::Segment& segment, uint32_t index,
            ipc::EventFd wake_me, ipc::EventFd wake_daemon, const Limits& limits,
            std::chrono::microseconds spin)
      : handler_(handler),
        spin_(spin),
        chunks_(limits.chunks),
        index_(index),
        slot_(segment.slot(index)),
        tasks_(segment.task_ring(index)),
        results_(segment.result_ring(index)),
        wake_me_(std::move(wake_me)),
        wake_daemon_(std::move(wake_daemon)),
        daemon_pid_(::getppid()) {
    if (!results_.valid()) return;
    ring_max_ = ipc::SpscRing::max_record(results_.capacity());
    size_t ring_max_result =
        ring_max_ > ipc::kResultHeaderBytes ? ring_max_ - ipc::kResultHeaderBytes : 0;
    max_result_bytes_ = std::min<size_t>(limits.max_task_bytes, ring_max_result);
  }

  int run() {
    if (!tasks_.valid() || !results_.valid()) {
      complain("the job's segment holds no valid rings for worker " + std::to_string(index_));
      return kExitBroken;
    }
    slot_.pid.store(static_cast<uint32_t>(::getpid()), std::memory_order_relaxed);
    beat();
    // With its features when the daemon reads them: it takes chunks.
    char* ready = reserve(ipc::kReadyFeaturesBytes);
    if (ready == nullptr) return kExitBroken;
    if (chunks_) {
      results_.commit(ipc::write_ready_body(ready, ipc::kReadyTakesChunks));
    } else {
      ready[0] = static_cast<char>(ipc::FrameType::kReady);  // what every daemon reads
      results_.commit(1);
    }
    results_.publish();
    wake_daemon_.signal();  // the daemon may not sleep yet; READY is rare, always say it

    for (;;) {
      std::string_view record = tasks_.peek();
      if (record.data() == nullptr) {  // no task visible
        if (!flush() || !idle()) return kExitBroken;
        continue;
      }
      Result<ipc::Frame> parsed = ipc::parse_frame_body(record);
      if (!parsed) {
        complain(parsed.error().context("a bad record in the task ring").message());
        flush();
        return kExitBroken;
      }
      const ipc::Frame& frame = *parsed;
      if (frame.type == ipc::FrameType::kShutdown) {
        tasks_.consume();
        return flush() ? kExitDone : kExitBroken;
      }
      if (frame.type == ipc::FrameType::kTask) {
        if (!answer(frame.id, frame.payload, true, false)) return kExitBroken;
      } else if (frame.type == ipc::FrameType::kTasks) {
        // A chunk: its tasks in order, each counted as finished before the
        // next starts; the record is consumed with the last (the payloads
        // live in it).
        std::string_view items = frame.payload;
        for (uint32_t i = 0; i < frame.count; ++i) {
          const bool last = i + 1 == frame.count;
          if (!answer(frame.id + i, ipc::take_chunk_item(items), last, true)) return kExitBroken;
          if (!last && stop_requested()) break;
        }
      } else {
        tasks_.consume();  // nothing else is meant for a worker; skip it
        continue;
      }
      if (stop_requested()) return flush() ? kExitDone : kExitBroken;
    }
  }

  void beat() { slot_.heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed); }

 private:
  // Runs task ID and sends its result: at once for a task that came alone,
  // gathered for a RESULTS frame for a task of a chunk (IN_CHUNK), sent with
  // the wake-up batch (WakeBatch: at most 64 results, or the window) or
  // when the worker runs out of tasks. Either way the task is counted in the
  // slot before the next one starts, so that if the next kills the worker
  // the daemon knows which was running. LAST: the task record is not needed
  // after the handler. False when the daemon is gone.
  bool answer(uint64_t id, std::string_view payload, bool last, bool in_chunk) {
    batch_.task_starting(Clock::now);
    Answer answer = call_handler(handler_, payload, max_result_bytes_);
    if (last) tasks_.consume();  // the payload is not needed any more
    const auto status = answer.ok ? ipc::ResultStatus::kOk : ipc::ResultStatus::kFailed;
    const size_t item = ipc::kResultItemHeaderBytes + answer.payload.size();
    const bool gather = in_chunk && ipc::kResultsHeaderBytes + item <= ring_max_;
    // A RESULTS frame holds consecutive tasks and fits a ring record.
    if (gathered_ > 0 && (!gather || id != gathered_first_ + gathered_ ||
                          ipc::kResultsHeaderBytes + gathered_items_.size() + item > ring_max_)) {
      if (!send_gathered()) return false;
    }
    if (gather) {
      if (gathered_ == 0) gathered_first_ = id;
      ipc::append_result_item(gathered_items_, status, answer.payload);
      ++gathered_;
    } else {
      size_t size = ipc::kResultHeaderBytes + answer.payload.size();
      char* dest = reserve(size);
      if (dest == nullptr) return false;
      ipc::write_result_body(dest, id, status, answer.payload);
      results_.commit(size);
      // Visible at once; the daemon, if it sleeps, is woken with the batch.
      wake_owed_ = results_.publish() || wake_owed_;
    }
    // Only this thread writes the cell: a store, not a locked add.
    slot_.tasks_done.store(++tasks_done_, std::memory_order_relaxed);
    if (batch_.result_added(Clock::now)) return flush();
    return true;
  }

  // The gathered results as one RESULTS record, published.
  bool send_gathered() {
    if (gathered_ == 0) return true;
    const size_t size = ipc::kResultsHeaderBytes + gathered_items_.size();
    char* dest = reserve(size);
    if (dest == nullptr) return false;
    ipc::write_results_body(dest, gathered_first_, gathered_, gathered_items_);
    results_.commit(size);
    wake_owed_ = results_.publish() || wake_owed_;
    gathered_items_.clear();
    gathered_ = 0;
    return true;
  }

  // Room for a result record of SIZE bytes, sleeping while the result ring
  // is full; nullptr when the daemon is gone.
  char* reserve(size_t size) {
    for (;;) {
      if (char* dest = results_.reserve(size)) return dest;
      publish();  // also publishes the padding reserve() may have written
      if (results_.corrupted()) {
        complain("the result ring is corrupted (the daemon's side wrote impossible indexes)");
        return nullptr;
      }
      if (results_.producer_prepare_sleep(size)) {
        if (!wait()) return nullptr;
      }
    }
  }

  // Sends the gathered results and publishes; false when the daemon is gone.
  bool flush() {
    if (!send_gathered()) return false;
    publish();
    return true;
  }

  // Returns consumed task space and publishes what is written, waking the
  // daemon if it sleeps on either ring (or slept when a result was published).
  void publish() {
    bool wake = tasks_.release();
    wake = results_.publish() || wake;
    wake = wake || wake_owed_;
    wake_owed_ = false;
    batch_.sent();
    if (wake) wake_daemon_.signal();
    beat();
  }

  // Nothing to do: spin a little, then sleep on the task eventfd.
  bool idle() {
    auto until = Clock::now() + spin_;
    do {
      for (int i = 0; i < 64; ++i) {
        if (tasks_.peek().data() != nullptr) return true;
        ipc::cpu_relax();
      }
      ipc::spin_yield();
    } while (Clock::now() < until);
    if (tasks_.corrupted()) {
      complain("the task ring is corrupted (the daemon's side wrote impossible indexes)");
      return false;
    }
    if (!tasks_.consumer_prepare_sleep()) return true;
    return wait();
  }

  // Sleeps on the task eventfd for at most kIdleWait; false when the daemon
  // is gone (this process was re-parented).
  bool wait() {
    bool signalled = wake_me_.wait(kIdleWait);
    beat();
    if (!signalled && ::getppid() != daemon_pid_) {
      complain("the daemon is gone (parent pid changed); exiting");
      return false;
    }
    return true;
  }

  const TaskHandler& handler_;
  std::chrono::microseconds spin_;
  bool chunks_;  // CORRAL_CHUNKS: READY says the worker takes chunks
  uint32_t index_;
  ipc::WorkerSlot& slot_;
  ipc::SpscRing tasks_;
  ipc::SpscRing results_;
  ipc::EventFd wake_me_;
  ipc::EventFd wake_daemon_;
  pid_t daemon_pid_;
  size_t ring_max_ = 0;      // the longest record the result ring takes
  uint64_t tasks_done_ = 0;  // what slot_.tasks_done says
  size_t max_result_bytes_ = 0;
  WakeBatch batch_;
  // Results of a chunk's tasks waiting for their RESULTS frame: tasks
  // GATHERED_FIRST_.. (consecutive), each status, length and payload.
  std::string gathered_items_;
  uint64_t gathered_first_ = 0;
  uint32_t gathered_ = 0;
  bool wake_owed_ = false;  // publish() found the daemon asleep; it is not woken yet
};

}  // namespace

int serve_shm(const TaskHandler& handler, const ipc::Segment& segment, uint32_t worker,
              const ShmSettings& settings) {
  ShmWorker shm(handler, segment, worker, ipc::EventFd::adopt(UniqueFd(settings.wake_me)),
                ipc::EventFd::adopt(UniqueFd(settings.wake_daemon)), settings.limits,
                settings.spin);
  Heartbeat heartbeat(settings.limits.heartbeat, [&shm] { shm.beat(); });
  return shm.run();
}

}  // namespace corral::sdk

// The daemon's end of one worker's place in a job's shared-memory segment:
// the task ring it fills, the result ring it drains, and the heartbeat cell
// of the worker's slot.
//
// Any worker of the job can write any byte of the segment at any time, so
// nothing here is taken from shared memory: the rings are laid out afresh
// from the daemon's own copy of the layout when the object is made
// (Segment::renew()), and each value read back (indexes, record lengths,
// record bodies, the heartbeat) is checked before it is used. The worst a
// worker can do is make next() say that it broke the protocol: it cannot make
// the daemon read or write outside its rings, take more than one ring of
// records per release(), or believe a heartbeat it did not see change.
//
// One object per worker process, made just before the process is spawned.
// Not thread-safe: it lives on the daemon's event loop (ShmChannel in
// daemon/task_feed.cc; the segment fuzz target drives it too).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ipc/frame.h"
#include "ipc/segment.h"
#include "ipc/spsc_ring.h"

namespace corral::ipc {

class WorkerRings {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Renews slot WORKER of SEGMENT (the daemon's, from Segment::create) for a
  // new worker process: a clean slot and empty rings, whatever was written
  // there before. WORKER < segment.worker_count() (throws std::out_of_range).
  // SEGMENT must outlive this object.
  WorkerRings(Segment& segment, uint32_t worker);

  WorkerRings(const WorkerRings&) = delete;
  WorkerRings& operator=(const WorkerRings&) = delete;

  uint32_t worker() const { return worker_; }

  // ---- tasks: daemon -> worker ----
  // Finds room for a task of PAYLOAD_BYTES; false while the task ring is
  // full (or its indexes are impossible: next() then says so).
  bool can_send(size_t payload_bytes) {
    reserved_ = tasks_.reserve(kTaskHeaderBytes + payload_bytes);
    return reserved_ != nullptr;
  }
  // Writes a task into the room the last successful can_send() found.
  void send(uint64_t id, std::string_view payload) {
    tasks_.commit(write_task_body(reserved_, id, payload));
    reserved_ = nullptr;
  }
  // Writes a chunk of COUNT tasks with ids FIRST_ID.. (ITEMS as
  // append_chunk_item made them) as one TASKS record; false, and nothing
  // written, while the task ring has no room for it.
  bool send_chunk(uint64_t first_id, uint32_t count, std::string_view items) {
    char* at = tasks_.reserve(kTasksHeaderBytes + items.size());
    if (at == nullptr) return false;
    tasks_.commit(write_tasks_body(at, first_id, count, items));
    return true;
  }
  // Writes the sentinel; false while the task ring is full.
  bool push_shutdown();
  // Makes the tasks written visible; true when the worker sleeps and must
  // be woken.
  bool publish() { return tasks_.publish(); }

  // ---- results: worker -> daemon ----
  enum class Take {
    kFrame,   // FRAME holds the next record
    kNone,    // nothing (more) to take now
    kBroken,  // the worker broke the protocol; WHY says how
  };
  // The next result record, parsed into FRAME; its payload lies in shared
  // memory and stays valid until release() (copy it before: the worker can
  // rewrite it). kBroken for a malformed record or impossible indexes in
  // either ring; after that, nothing more comes from this worker.
  // An enum and an out-parameter rather than a Result: three outcomes, FRAME
  // reused on the hot path, and WHY written only once, when it breaks.
  Take next(Frame& frame, std::string& why);
  // Moves past the frame next() returned.
  void consume() { results_.consume(); }
  // Gives the space of the consumed records back; true when the worker
  // waits for that space and must be woken.
  bool release() { return results_.release(); }
  // Before waiting for the worker's eventfd: false when a record came
  // meanwhile (take it first).
  bool prepare_sleep() { return results_.consumer_prepare_sleep(); }
  // While the daemon polls instead of sleeping: the worker need not wake it
  // (prepare_sleep() again before the daemon sleeps).
  void stay_awake() { results_.consumer_stay_awake(); }
  // Whether a result record is published past what was taken.
  bool results_waiting() { return results_.readable(); }

  // ---- liveness ----
  // When the daemon last saw the worker's heartbeat cell change, by the
  // daemon's own clock: NOW when the cell holds another value than at the
  // previous call, else what the previous call returned (TimePoint::min()
  // until the first change). The value itself is not trusted: a worker that
  // writes a time far in the future, or the same value forever, buys nothing.
  TimePoint heartbeat_seen(TimePoint now);
  // The tasks the worker says it finished since its slot was renewed (its
  // results sent or not; RESULTS frames gather several): untrusted, the
  // caller bounds it.
  uint64_t tasks_done() const { return slot_.tasks_done.load(std::memory_order_relaxed); }

  // For tests and the fuzz target: the daemon's own ring objects.
  const SpscRing& tasks() const { return tasks_; }
  const SpscRing& results() const { return results_; }

 private:
  uint32_t worker_;
  WorkerSlot& slot_;
  SpscRing tasks_;
  SpscRing results_;
  char* reserved_ = nullptr;
  uint64_t last_beat_ = 0;  // the cell as last seen (renew() writes 0)
  TimePoint beat_seen_ = TimePoint::min();
  bool broken_ = false;
};

// ---- implementation (inline: once per result on the daemon's hot path) ----

inline WorkerRings::Take WorkerRings::next(Frame& frame, std::string& why) {
  if (broken_) return Take::kBroken;
  std::string_view record = results_.peek();
  if (record.data() != nullptr) {
    Result<Frame> parsed = parse_frame_body(record);
    if (parsed) {
      frame = *parsed;
      return Take::kFrame;
    }
    why = parsed.error().context("malformed record in the result ring").message();
    broken_ = true;
    return Take::kBroken;
  }
  if (results_.corrupted() || tasks_.corrupted()) {
    why = std::string("the worker corrupted its ") + (results_.corrupted() ? "result" : "task") +
          " ring's indexes";
    broken_ = true;
    return Take::kBroken;
  }
  return Take::kNone;
}

}  // namespace corral::ipc

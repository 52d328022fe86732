// The shared-memory segment of one job of the shm channel: a memfd that the
// daemon creates, sizes, seals and lays out before it spawns any worker, and
// that each worker inherits as an fd and maps. Nothing of it has a name, so
// nothing is ever left in /dev/shm, even after `kill -9` of the daemon.
//
// Layout (offsets fixed at creation, no pointers):
//   SegmentHeader | WorkerSlot[workers] | SharedEntry[shared] | shared cells |
//   per worker: task ring (daemon -> worker), result ring (worker -> daemon)
// Workers never allocate in the segment and no lock lives in it: a worker
// killed at any instruction cannot leave it unusable.
//
// Every byte of the mapping can be written by any worker of the job, at any
// time. The daemon's side therefore never takes the layout from the shared
// bytes: a Segment keeps its own copy of the header, the shared table and
// the offsets, and renew() writes them back, with a clean slot and empty
// rings, before each new worker process. A worker attaches and checks what
// it is given.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "ipc/spsc_ring.h"

namespace corral::ipc {

inline constexpr uint64_t kSegmentMagic = 0x636f7272'616c5347ULL;  // "corralSG"
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr size_t kMaxSharedName = 47;

enum class SharedElement : uint32_t { kU64 = 0, kI64 = 1, kF64 = 2 };

struct SegmentHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t worker_count;
  uint64_t total_bytes;
  uint64_t ring_capacity;  // data bytes of each ring
  uint32_t shared_count;
  uint32_t reserved;
  uint64_t slots_offset;
  uint64_t shared_offset;  // the SharedEntry table
  char job[64];            // NUL-terminated
};

// One worker's row: what the worker says of itself, read by the daemon.
struct alignas(64) WorkerSlot {
  std::atomic<uint64_t> heartbeat_ns;  // CLOCK_MONOTONIC of the worker's last heartbeat
  std::atomic<uint32_t> pid;           // the worker's pid once attached
  std::atomic<uint32_t> reserved;
  std::atomic<uint64_t> tasks_done;  // results the worker has pushed
  uint64_t task_ring_offset;
  uint64_t result_ring_offset;
};

struct SharedEntry {
  char name[kMaxSharedName + 1];  // NUL-terminated
  SharedElement type;
  uint32_t is_array;
  uint64_t length;  // 1 for a value
  uint64_t offset;  // of the first cell (8 bytes each)
};

// A job's shared value or array: `length` cells of 8 bytes, each an
// atomic u64 holding a u64, an i64 or an f64's bits.
struct SharedView {
  std::string_view name;
  SharedElement type;
  bool is_array;
  uint64_t length;
  std::atomic<uint64_t>* cells;
};

struct SharedDecl {
  std::string name;
  SharedElement type = SharedElement::kU64;
  bool is_array = false;
  uint64_t length = 1;
};

struct SegmentSpec {
  std::string job;
  uint32_t workers = 0;
  uint64_t ring_capacity = 0;  // rounded up to a power of two, at least 4 KiB
  std::vector<SharedDecl> shared;
};

class Segment {
 public:
  // Daemon side: a new memfd, sized, sealed against resizing, laid out, every
  // ring empty and every shared cell zero. The error starts with the job's
  // name ("segment of job \"x\": ...").
  static Result<Segment> create(const SegmentSpec& spec);
  // Worker side: maps an inherited segment fd (closed on failure, marked
  // close-on-exec) and checks its header
  // (magic, version, sizes), the shared table, and that every offset lies
  // inside the mapping. A worker's slot and rings are checked when it takes
  // them (task_ring(), result_ring()): another slot's state is none of its
  // business, and may be damaged by the worker that has it. The error
  // starts with the fd ("segment fd 3: ...").
  static Result<Segment> attach(UniqueFd fd);

  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  int fd() const { return fd_.get(); }
  size_t size() const { return size_; }
  // The header as checked at create()/attach(): a copy, so that a process
  // scribbling on the shared one cannot change the layout under this one.
  const SegmentHeader& header() const { return header_; }
  uint32_t worker_count() const { return header_.worker_count; }
  std::string_view job() const { return header_.job; }

  // The start of the mapping (size() bytes).
  char* base() const { return base_; }

  // WORKER < worker_count() (checked: throws std::out_of_range). The place
  // is this object's own; the fields are shared, written by the worker.
  WorkerSlot& slot(uint32_t worker) const;
  // Worker side: a ring object attached to one of WORKER's rings; it keeps
  // that side's local state, so each side keeps its own object for as long
  // as it uses the ring. WORKER < worker_count() (checked: throws
  // std::out_of_range); a ring whose header, or whose offset in the slot,
  // another process has damaged gives an invalid ring.
  SpscRing task_ring(uint32_t worker) const;
  SpscRing result_ring(uint32_t worker) const;

  // The daemon's ends of one worker's rings, made from the daemon's layout.
  struct Rings {
    SpscRing tasks;    // the daemon produces
    SpscRing results;  // the daemon consumes
  };
  // Daemon side, before each new worker process in slot WORKER (<
  // worker_count(), checked: throws std::out_of_range): writes the segment
  // header and the shared table back from this object's copy, clears the
  // slot (pid, heartbeat, counters; its ring offsets written back) and lays
  // both rings out empty with this object's capacity (SpscRing::create, not
  // attach). Whatever any worker wrote there before, the new worker attaches
  // a sound segment, and the rings returned are valid and empty. The shared
  // cells are the job's state and stay as they are.
  Rings renew(uint32_t worker);

  // Names and offsets as checked at create()/attach(); the cells are shared.
  std::optional<SharedView> find_shared(std::string_view name) const;
  std::vector<SharedView> shared() const;

 private:
  Segment() = default;
  char* ring(uint32_t worker, int which) const;
  SpscRing attach_ring(uint32_t worker, int which) const;

  UniqueFd fd_;
  size_t size_ = 0;
  char* base_ = nullptr;
  SegmentHeader header_{};
  uint64_t rings_offset_ = 0;  // the first task ring
  uint64_t ring_bytes_ = 0;    // SpscRing::bytes_for(ring_capacity)
  std::vector<std::string> shared_names_;
  std::vector<SharedView> shared_;    // names point into shared_names_
  std::vector<SharedEntry> entries_;  // the shared table as laid out, for renew()
};

}  // namespace corral::ipc

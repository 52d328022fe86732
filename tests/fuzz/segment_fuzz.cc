// Fuzzes the daemon's side of a job's shared-memory segment
// (ipc/worker_rings.h, ipc/segment.h) against workers that write anything
// anywhere. The input is a program of operations on a segment of three
// worker slots: the daemon's (renew a slot for a new worker, push and
// publish tasks, take and release results, look at the heartbeat, read the
// shared values), a well-behaved worker's (take a task, answer it, beat),
// and scribbles (bytes, fills, or a u64 at a field of a slot or ring) over
// any part of the segment, also between two takes of one drain.
//
// What must hold, besides no crash, no sanitizer report and no hang:
// - the daemon writes nothing outside its own places: an operation on
//   worker W's rings changes bytes only in W's two rings; a renew only the
//   segment header, the shared table, W's slot and W's rings;
// - every result taken lies whole inside W's result ring, which lies inside
//   the mapping; one drain takes at most one ring of records;
// - a renewed slot has empty, sound rings and nothing seen of its heartbeat,
//   and a worker attaching after it succeeds and finds its rings valid;
// - while nobody scribbled on W's rings since its renew, every task and
//   result goes through whole and in order, and nothing is "broken";
// - the heartbeat counts only a change of the cell, at the daemon's time,
//   never later than now.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/frame.h"
#include "ipc/segment.h"
#include "ipc/spsc_ring.h"
#include "ipc/worker_rings.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using corral::fuzz::check;

using corral::ipc::Frame;
using corral::ipc::FrameType;
using corral::ipc::RingHeader;
using corral::ipc::Segment;
using corral::ipc::SegmentHeader;
using corral::ipc::SharedElement;
using corral::ipc::SharedEntry;
using corral::ipc::SpscRing;
using corral::ipc::WorkerRings;
using corral::ipc::WorkerSlot;
using Take = WorkerRings::Take;
using TimePoint = WorkerRings::TimePoint;

constexpr uint32_t kWorkers = 3;
constexpr uint64_t kCapacity = 4096;

// The program: bytes read in order, zeros once it runs out.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool more() const { return at_ < size_; }
  uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  uint64_t number(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }
  std::string_view bytes(size_t n) {
    n = std::min(n, size_ - at_);
    std::string_view out(reinterpret_cast<const char*>(data_) + at_, n);
    at_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

struct Range {
  const char* begin;
  const char* end;
  bool holds(const char* p) const { return p >= begin && p < end; }
};

// A well-behaved worker process: its own attach of the segment and its
// ends of its rings.
struct Worker {
  std::optional<Segment> segment;
  SpscRing tasks;
  SpscRing results;
};

struct Sent {
  uint64_t id;
  std::string payload;
};

class Run {
 public:
  explicit Run(Segment& segment) : seg_(segment), before_(segment.size(), '\0') {
    for (uint32_t w = 0; w < kWorkers; ++w) {
      // Where each slot's rings lie, from a renew while nothing is damaged.
      WorkerRings probe(seg_, w);
      task_ring_[w] = {probe.tasks().data() - sizeof(RingHeader),
                       probe.tasks().data() + probe.tasks().capacity()};
      result_ring_[w] = {probe.results().data() - sizeof(RingHeader),
                         probe.results().data() + probe.results().capacity()};
    }
    // Slots 0 and 1 have workers; slot 2 has none until a renew.
    renew(0);
    renew(1);
  }

  void step(Input& in) {
    const uint8_t op = in.byte();
    const uint32_t w = in.byte() % kWorkers;
    switch (op % 12) {
      case 0:
      case 1:
      case 2:
        return scribble(op % 12, in);
      case 3:
        return renew(w);
      case 4:
        return push_tasks(w, in);
      case 5:
        return publish(w);
      case 6:
        return worker_answers(w, in);
      case 7:
        return take_results(w, in);
      case 8:
        return heartbeat(w, in);
      case 9:
        return worker_beats(w);
      case 10:
        return read_shared();
      case 11:
        return push_shutdown(w);
    }
  }

 private:
  // ---- scribbles: anything, anywhere ----
  void scribble(int kind, Input& in) {
    char* base = seg_.base();
    const size_t size = seg_.size();
    if (kind == 0) {  // bytes at any offset
      const size_t at = in.number(3) % size;
      const std::string_view bytes = in.bytes(std::min<size_t>(in.byte() + 1, size - at));
      std::memcpy(base + at, bytes.data(), bytes.size());
      touched(base + at, bytes.size());
    } else if (kind == 1) {  // a fill of up to a ring and a half
      const size_t at = in.number(3) % size;
      const size_t n = std::min<size_t>(in.number(2) % (kCapacity * 3 / 2) + 1, size - at);
      std::memset(base + at, in.byte(), n);
      touched(base + at, n);
    } else {  // a u64 at a field of a place that matters, often near its value
      const uint8_t where = in.byte();
      const uint32_t w = where / 6 % kWorkers;
      char* region;
      size_t region_size;
      switch (where % 6) {
        case 0:
          region = base;
          region_size = sizeof(SegmentHeader);
          break;
        case 1:
          region = reinterpret_cast<char*>(&seg_.slot(w));
          region_size = sizeof(WorkerSlot);
          break;
        case 2:
        case 3: {
          const Range& r = where % 6 == 2 ? task_ring_[w] : result_ring_[w];
          region = const_cast<char*>(r.begin);
          region_size = sizeof(RingHeader);
          break;
        }
        default: {
          const Range& r = where % 6 == 4 ? task_ring_[w] : result_ring_[w];
          region = const_cast<char*>(r.begin) + sizeof(RingHeader);
          region_size = kCapacity;
        }
      }
      char* at = region + (in.byte() * 8) % region_size;
      uint64_t value;
      std::memcpy(&value, at, sizeof value);
      const uint8_t how = in.byte();
      if (how % 4 == 0) {
        value = in.number(8);
      } else {
        value += static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(in.byte())) *
                                       (how % 4 == 1   ? 1
                                        : how % 4 == 2 ? 8
                                                       : 4096));
      }
      std::memcpy(at, &value, sizeof value);
      touched(at, sizeof value);
    }
  }

  // A scribble over [AT, AT+N): the exchange of any worker whose rings it
  // hits is no longer expected to go through intact.
  void touched(const char* at, size_t n) {
    for (uint32_t w = 0; w < kWorkers; ++w) {
      const Range rings[2] = {task_ring_[w], result_ring_[w]};
      for (const Range& r : rings) {
        if (at < r.end && at + n > r.begin) clean_[w] = false;
      }
    }
  }

  // ---- the daemon ----
  void renew(uint32_t w) {
    snapshot();
    rings_[w].reset();
    rings_[w].emplace(seg_, w);
    // Only the header, the shared table, the slot and the rings changed.
    const SegmentHeader& h = seg_.header();
    const char* base = seg_.base();
    const char* slot = reinterpret_cast<const char*>(&seg_.slot(w));
    expect_changes_only_in(
        {{base, base + sizeof(SegmentHeader)},
         {base + h.shared_offset, base + h.shared_offset + h.shared_count * sizeof(SharedEntry)},
         {slot, slot + sizeof(WorkerSlot)},
         task_ring_[w],
         result_ring_[w]});
    WorkerRings& r = *rings_[w];
    check(r.tasks().valid() && r.results().valid());
    check(r.tasks().capacity() == kCapacity && r.results().capacity() == kCapacity);
    check(r.tasks().used_bytes() == 0 && r.results().used_bytes() == 0);
    check(!r.tasks().corrupted() && !r.results().corrupted());
    check(r.heartbeat_seen(now_) == TimePoint::min());
    Frame frame;
    std::string why;
    check(r.next(frame, why) == Take::kNone);
    last_beat_[w] = 0;
    last_seen_[w] = TimePoint::min();

    // A new worker process attaches and finds its rings sound.
    Worker& worker = workers_[w];
    worker = Worker{};
    corral::Result<Segment> attached = Segment::attach(corral::UniqueFd(::dup(seg_.fd())));
    check(attached.ok());
    worker.segment.emplace(std::move(*attached));
    worker.tasks = worker.segment->task_ring(w);
    worker.results = worker.segment->result_ring(w);
    check(worker.tasks.valid() && worker.results.valid());
    check(worker.tasks.capacity() == kCapacity);
    clean_[w] = true;
    sent_[w].clear();
    published_[w] = 0;
    answered_[w].clear();
  }

  void push_tasks(uint32_t w, Input& in) {
    if (!rings_[w]) return;
    const int n = in.byte() % 8 + 1;
    snapshot();
    for (int i = 0; i < n; ++i) {
      const size_t size = in.number(2) % (kCapacity / 2);
      if (!rings_[w]->can_send(size)) break;
      std::string payload(size, static_cast<char>('a' + next_id_ % 26));
      rings_[w]->send(next_id_, payload);
      sent_[w].push_back({next_id_++, std::move(payload)});
    }
    expect_changes_only_in({task_ring_[w], result_ring_[w]});
  }

  void publish(uint32_t w) {
    if (!rings_[w]) return;
    snapshot();
    rings_[w]->publish();
    published_[w] = sent_[w].size();
    expect_changes_only_in({task_ring_[w], result_ring_[w]});
  }

  void push_shutdown(uint32_t w) {
    if (!rings_[w]) return;
    snapshot();
    if (rings_[w]->push_shutdown()) {
      rings_[w]->publish();
      sent_[w].push_back({0, ""});  // the sentinel: id 0 is never a task's
      published_[w] = sent_[w].size();
    }
    expect_changes_only_in({task_ring_[w], result_ring_[w]});
  }

  // One drain: takes results until nothing is left (at most a ring of them),
  // with scribbles between takes when the input asks, then releases.
  void take_results(uint32_t w, Input& in) {
    if (!rings_[w]) return;
    WorkerRings& r = *rings_[w];
    const bool meddle = in.byte() % 2 == 1;
    const Range data{r.results().data(), r.results().data() + r.results().capacity()};
    check(data.begin >= seg_.base() && data.end <= seg_.base() + seg_.size());
    size_t taken = 0;
    Frame frame;
    std::string why;
    snapshot();
    for (;;) {
      const Take take = r.next(frame, why);
      if (take == Take::kNone) break;
      if (take == Take::kBroken) {
        check(!clean_[w]);  // a well-behaved worker never breaks the protocol
        break;
      }
      // The record (type byte and body) lies inside the ring.
      if (frame.type == FrameType::kResult || frame.type == FrameType::kTask) {
        const size_t header = frame.type == FrameType::kResult ? corral::ipc::kResultHeaderBytes
                                                               : corral::ipc::kTaskHeaderBytes;
        check(data.holds(frame.payload.data() - header));
        check(frame.payload.data() + frame.payload.size() <= data.end);
      }
      ++taken;
      check(taken <= kCapacity / SpscRing::record_bytes(1));  // one ring at most
      if (clean_[w]) {
        check(frame.type == FrameType::kResult);
        check(!answered_[w].empty());
        check(frame.id == answered_[w].front().id && frame.payload == answered_[w].front().payload);
        answered_[w].pop_front();
      }
      r.consume();
      if (meddle && in.more()) {
        // Taking writes nothing; then the worker moves things under it.
        expect_changes_only_in({});
        scribble(in.byte() % 3, in);
        snapshot();
      }
    }
    expect_changes_only_in({});
    r.release();
    expect_changes_only_in({task_ring_[w], result_ring_[w]});
    // What a well-behaved worker published was all there (it cannot publish
    // more than a ring ahead of what was released).
    if (clean_[w]) check(answered_[w].empty());
  }

  void heartbeat(uint32_t w, Input& in) {
    if (!rings_[w]) return;
    now_ += std::chrono::milliseconds(in.byte());
    const uint64_t cell = seg_.slot(w).heartbeat_ns.load();
    snapshot();
    const TimePoint seen = rings_[w]->heartbeat_seen(now_);
    expect_changes_only_in({});
    check(seen <= now_);
    check(seen == (cell != last_beat_[w] ? now_ : last_seen_[w]));
    last_beat_[w] = cell;
    last_seen_[w] = seen;
  }

  void read_shared() {
    snapshot();
    const std::vector<corral::ipc::SharedView> views = seg_.shared();
    check(views.size() == 2);
    check(views[0].name == "processed" && views[0].length == 1 && !views[0].is_array);
    check(views[1].name == "histogram" && views[1].length == 16 && views[1].is_array);
    uint64_t sum = 0;
    for (const auto& v : views) {
      const char* cells = reinterpret_cast<const char*>(v.cells);
      check(cells >= seg_.base() && cells + v.length * 8 <= seg_.base() + seg_.size());
      for (uint64_t i = 0; i < v.length; ++i) sum += v.cells[i].load();
    }
    (void)sum;
    expect_changes_only_in({});
  }

  // ---- a well-behaved worker ----
  // Takes up to N tasks and answers each at once, as the SDK does.
  void worker_answers(uint32_t w, Input& in) {
    if (!rings_[w] || !workers_[w].segment) return;
    Worker& worker = workers_[w];
    const int n = in.byte() % 8 + 1;
    for (int i = 0; i < n; ++i) {
      std::string_view record = worker.tasks.peek();
      if (record.data() == nullptr) break;
      const corral::Result<Frame> read = corral::ipc::parse_frame_body(record);
      const bool parsed = read.ok();
      const Frame task = read.value_or(Frame{});
      if (clean_[w]) {
        check(parsed);
        check(!sent_[w].empty() && published_[w] > 0);
        const Sent& expected = sent_[w].front();
        if (expected.id == 0) {
          check(task.type == FrameType::kShutdown);
        } else {
          check(task.type == FrameType::kTask && task.id == expected.id &&
                task.payload == expected.payload);
        }
      }
      if (parsed && task.type == FrameType::kTask) {
        char* at = worker.results.reserve(corral::ipc::kResultHeaderBytes + task.payload.size());
        if (at == nullptr) break;  // full: the daemon must take results first
        const size_t size = corral::ipc::write_result_body(
            at, task.id, corral::ipc::ResultStatus::kOk, task.payload);
        worker.results.commit(size);
        worker.results.publish();
        if (clean_[w]) answered_[w].push_back({task.id, std::string(task.payload)});
      }
      worker.tasks.consume();
      if (clean_[w]) {
        sent_[w].pop_front();
        --published_[w];
      }
    }
    worker.tasks.release();
  }

  void worker_beats(uint32_t w) {
    if (!workers_[w].segment) return;
    workers_[w].segment->slot(w).heartbeat_ns.fetch_add(1);
  }

  // ---- what the daemon may write ----
  void snapshot() { std::memcpy(before_.data(), seg_.base(), seg_.size()); }

  // Bytes outside ALLOWED are as snapshot() saw them (compared a stretch at
  // a time: this runs after every operation).
  void expect_changes_only_in(std::initializer_list<Range> allowed) {
    std::vector<Range> sorted(allowed);
    std::sort(sorted.begin(), sorted.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    const char* base = seg_.base();
    const char* at = base;
    auto same = [&](const char* end) {
      if (end > at) check(std::memcmp(at, before_.data() + (at - base), end - at) == 0);
    };
    for (const Range& r : sorted) {
      same(r.begin);
      at = std::max(at, r.end);
    }
    same(base + seg_.size());
  }

  Segment& seg_;
  std::string before_;
  Range task_ring_[kWorkers];
  Range result_ring_[kWorkers];
  std::optional<WorkerRings> rings_[kWorkers];
  Worker workers_[kWorkers];
  bool clean_[kWorkers] = {};
  std::deque<Sent> sent_[kWorkers];      // tasks written, oldest first, until the worker takes them
  size_t published_[kWorkers] = {};      // how many of sent_ are published
  std::deque<Sent> answered_[kWorkers];  // results published by the worker, not yet taken
  uint64_t next_id_ = 1;
  uint64_t last_beat_[kWorkers] = {};
  TimePoint last_seen_[kWorkers];
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::ipc::SegmentSpec spec;
  spec.job = "fuzz";
  spec.workers = kWorkers;
  spec.ring_capacity = kCapacity;
  spec.shared = {{"processed", SharedElement::kU64, false, 1},
                 {"histogram", SharedElement::kF64, true, 16}};
  corral::Result<Segment> segment = Segment::create(spec);
  check(segment.ok());
  Run run(*segment);
  Input in(data, size);
  for (int steps = 0; in.more() && steps < 4096; ++steps) run.step(in);
  return 0;
}

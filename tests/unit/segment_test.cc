#include "ipc/segment.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <functional>
#include <string>

#include "ipc/frame.h"
#include "tests/support/forked_child.h"
#include "tests/unit/frame_assertions.h"

namespace corral::ipc {
namespace {

using ::testing::HasSubstr;

using corral::testing::ForkedChild;

SegmentSpec primes_spec() {
  SegmentSpec spec;
  spec.job = "primes";
  spec.workers = 3;
  spec.ring_capacity = 5000;
  spec.shared = {{"processed", SharedElement::kU64, false, 1},
                 {"best", SharedElement::kF64, false, 1},
                 {"histogram", SharedElement::kU64, true, 64},
                 {"delta", SharedElement::kI64, true, 3}};
  return spec;
}

Segment make(const SegmentSpec& spec) {
  Result<Segment> seg = Segment::create(spec);
  if (!seg) ADD_FAILURE() << seg.error().message();
  return std::move(*seg);
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0 || errno != EBADF; }

TEST(SegmentTest, CreateLaysOutHeaderSlotsSharedAndRings) {
  Segment seg = make(primes_spec());
  EXPECT_EQ(seg.job(), "primes");
  EXPECT_EQ(seg.worker_count(), 3u);
  const SegmentHeader& h = seg.header();
  EXPECT_EQ(h.magic, kSegmentMagic);
  EXPECT_EQ(h.version, kSegmentVersion);
  EXPECT_EQ(h.ring_capacity, 8192u);  // 5000 rounded up
  EXPECT_EQ(h.shared_count, 4u);
  EXPECT_EQ(h.total_bytes, seg.size());

  struct stat st {};
  ASSERT_EQ(::fstat(seg.fd(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), seg.size());
  EXPECT_EQ(seg.size() % 4096, 0u);
  EXPECT_TRUE(::fcntl(seg.fd(), F_GETFD) & FD_CLOEXEC);
  // Sealed: it can be neither shrunk nor grown, and the seals stay.
  EXPECT_NE(::ftruncate(seg.fd(), 4096), 0);
  EXPECT_NE(::ftruncate(seg.fd(), static_cast<off_t>(seg.size() * 2)), 0);
  EXPECT_NE(::fcntl(seg.fd(), F_ADD_SEALS, F_SEAL_WRITE), 0);
  char link[64], target[256] = {};
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", seg.fd());
  ASSERT_GT(::readlink(link, target, sizeof target - 1), 0);
  EXPECT_THAT(target, HasSubstr("memfd:corral-primes"));

  std::vector<SharedView> all = seg.shared();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].name, "processed");
  EXPECT_EQ(all[2].name, "histogram");
  for (const SharedView& v : all) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.cells) % 64, 0u) << v.name;
    for (uint64_t i = 0; i < v.length; ++i) EXPECT_EQ(v.cells[i].load(), 0u);
  }
  std::optional<SharedView> hist = seg.find_shared("histogram");
  ASSERT_TRUE(hist);
  EXPECT_TRUE(hist->is_array);
  EXPECT_EQ(hist->length, 64u);
  EXPECT_EQ(hist->type, SharedElement::kU64);
  std::optional<SharedView> best = seg.find_shared("best");
  ASSERT_TRUE(best);
  EXPECT_FALSE(best->is_array);
  EXPECT_EQ(best->type, SharedElement::kF64);
  EXPECT_FALSE(seg.find_shared("nope"));
  EXPECT_FALSE(seg.find_shared("best2"));

  for (uint32_t w = 0; w < 3; ++w) {
    EXPECT_EQ(seg.slot(w).pid.load(), 0u);
    SpscRing t = seg.task_ring(w);
    SpscRing r = seg.result_ring(w);
    ASSERT_TRUE(t.valid() && r.valid());
    EXPECT_EQ(t.capacity(), 8192u);
    EXPECT_EQ(t.used_bytes(), 0u);
    EXPECT_NE(seg.slot(w).task_ring_offset, seg.slot(w).result_ring_offset);
  }
  EXPECT_THROW(seg.slot(3), std::out_of_range);
  EXPECT_THROW(seg.task_ring(3), std::out_of_range);
}

TEST(SegmentTest, SmallestRingAndNoWorkersOrShared) {
  SegmentSpec spec;
  spec.job = "empty";
  Segment seg = make(spec);
  EXPECT_EQ(seg.header().ring_capacity, 4096u);
  EXPECT_EQ(seg.worker_count(), 0u);
  EXPECT_TRUE(seg.shared().empty());
  Result<Segment> again = Segment::attach(UniqueFd(::dup(seg.fd())));
  ASSERT_TRUE(again) << message_of(again);
  EXPECT_EQ(again->job(), "empty");
}

TEST(SegmentTest, LongJobNameIsTruncatedInTheHeader) {
  SegmentSpec spec;
  spec.job = std::string(100, 'j');
  spec.workers = 1;
  Segment seg = make(spec);
  EXPECT_EQ(seg.job(), std::string(63, 'j'));
}

TEST(SegmentTest, CreateRefusesBadSpecs) {
  auto error_of = [](const SegmentSpec& spec) {
    Result<Segment> seg = Segment::create(spec);
    EXPECT_FALSE(seg);
    return message_of(seg);
  };
  SegmentSpec spec = primes_spec();
  spec.shared.push_back({std::string(48, 'n'), SharedElement::kU64, false, 1});
  EXPECT_THAT(error_of(spec), HasSubstr("has a name longer than 47 bytes"));

  spec = primes_spec();
  spec.shared.push_back({"best", SharedElement::kU64, true, 2});
  EXPECT_EQ(error_of(spec), "segment of job \"primes\": shared \"best\" is declared twice");

  spec = primes_spec();
  spec.shared.push_back({"v", SharedElement::kU64, false, 3});
  EXPECT_THAT(error_of(spec), HasSubstr("is a value of length 3"));

  spec = primes_spec();
  spec.shared.push_back({"a", SharedElement::kU64, true, 0});
  EXPECT_THAT(error_of(spec), HasSubstr("shared \"a\" has length 0"));

  spec = primes_spec();
  spec.shared.push_back({"", SharedElement::kU64, false, 1});
  EXPECT_THAT(error_of(spec), HasSubstr("empty name"));

  spec = primes_spec();
  spec.workers = 1'000'000;
  EXPECT_THAT(error_of(spec), HasSubstr("1000000 workers, more than the limit"));

  spec = primes_spec();
  spec.ring_capacity = uint64_t{1} << 40;
  EXPECT_THAT(error_of(spec), HasSubstr("ring capacity of 1099511627776 bytes exceeds the limit"));

  spec = primes_spec();
  spec.workers = 65536;
  spec.ring_capacity = uint64_t{1} << 30;
  EXPECT_THAT(error_of(spec), HasSubstr("bytes exceed the limit of"));
}

TEST(SegmentTest, AttachInTheSameProcessSharesEverything) {
  Segment daemon = make(primes_spec());
  const int fd = ::dup(daemon.fd());
  Result<Segment> worker = Segment::attach(UniqueFd(fd));
  ASSERT_TRUE(worker) << message_of(worker);
  EXPECT_EQ(worker->fd(), fd);
  EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
  EXPECT_EQ(worker->job(), "primes");
  EXPECT_EQ(worker->size(), daemon.size());
  EXPECT_EQ(worker->header().ring_capacity, 8192u);
  EXPECT_EQ(worker->header().slots_offset, daemon.header().slots_offset);
  ASSERT_EQ(worker->shared().size(), 4u);

  // Shared values: written on one side, read on the other.
  daemon.find_shared("processed")->cells[0].fetch_add(5);
  EXPECT_EQ(worker->find_shared("processed")->cells[0].load(), 5u);
  worker->find_shared("histogram")->cells[63].store(7);
  EXPECT_EQ(daemon.find_shared("histogram")->cells[63].load(), 7u);
  EXPECT_EQ(daemon.find_shared("histogram")->cells[62].load(), 0u);
  worker->find_shared("delta")->cells[2].store(static_cast<uint64_t>(-3));
  EXPECT_EQ(static_cast<int64_t>(daemon.find_shared("delta")->cells[2].load()), -3);
  EXPECT_EQ(daemon.find_shared("best")->cells[0].load(), 0u);  // untouched neighbour

  // Every ring of every worker carries records both ways.
  for (uint32_t w = 0; w < 3; ++w) {
    worker->slot(w).pid.store(1000 + w);
    EXPECT_EQ(daemon.slot(w).pid.load(), 1000 + w);
    SpscRing tasks_out = daemon.task_ring(w);
    SpscRing tasks_in = worker->task_ring(w);
    SpscRing results_out = worker->result_ring(w);
    SpscRing results_in = daemon.result_ring(w);
    for (uint64_t id = 0; id < 1000; ++id) {  // enough to wrap the ring several times
      const std::string payload = "task " + std::to_string(w) + "/" + std::to_string(id);
      char* at = tasks_out.reserve(kTaskHeaderBytes + payload.size());
      ASSERT_NE(at, nullptr);
      tasks_out.commit(write_task_body(at, id, payload));
      tasks_out.publish();
      Frame task;
      ASSERT_TRUE(parses(tasks_in.peek(), task));
      EXPECT_EQ(task.id, id);
      EXPECT_EQ(task.payload, payload);
      const std::string result = "done " + std::string(task.payload);
      at = results_out.reserve(kResultHeaderBytes + result.size());
      ASSERT_NE(at, nullptr);
      results_out.commit(write_result_body(at, task.id, ResultStatus::kOk, result));
      tasks_in.consume();
      tasks_in.release();
      results_out.publish();
      Frame got;
      ASSERT_TRUE(parses(results_in.peek(), got));
      EXPECT_EQ(got.type, FrameType::kResult);
      EXPECT_EQ(got.id, id);
      EXPECT_EQ(got.payload, result);
      results_in.consume();
      results_in.release();
    }
  }
}

TEST(SegmentTest, AttachInAForkedChild) {
  Segment daemon = make(primes_spec());
  const uint32_t worker = 1;
  SpscRing tasks = daemon.task_ring(worker);
  SpscRing results = daemon.result_ring(worker);
  const uint64_t n = 2000;
  // The worker: attaches the inherited fd, answers every task, counts.
  ForkedChild child([&] {
    Result<Segment> seg = Segment::attach(UniqueFd(daemon.fd()));
    if (!seg) return 2;
    seg->slot(worker).pid.store(static_cast<uint32_t>(::getpid()));
    auto processed = seg->find_shared("processed");
    auto histogram = seg->find_shared("histogram");
    if (!processed || !histogram) return 3;
    SpscRing in = seg->task_ring(worker);
    SpscRing out = seg->result_ring(worker);
    for (uint64_t done = 0; done < n;) {
      std::string_view rec = in.peek();
      if (rec.data() == nullptr) {
        in.release();
        continue;
      }
      Result<Frame> task = parse_frame_body(rec);
      if (!task) return 4;
      std::string result = std::to_string(task->payload.size());
      char* at;
      while ((at = out.reserve(kResultHeaderBytes + result.size())) == nullptr) out.publish();
      out.commit(write_result_body(at, task->id, ResultStatus::kOk, result));
      out.publish();
      in.consume();
      processed->cells[0].fetch_add(1);
      histogram->cells[task->id % 64].fetch_add(1);
      seg->slot(worker).tasks_done.fetch_add(1);
      ++done;
    }
    in.release();
    return 0;
  });
  ASSERT_TRUE(child.started());
  uint64_t sent = 0, received = 0, idle = 0;
  while (received < n) {
    if (sent < n) {
      const std::string payload(sent % 50, 'x');
      if (char* at = tasks.reserve(kTaskHeaderBytes + payload.size())) {
        tasks.commit(write_task_body(at, sent, payload));
        tasks.publish();
        ++sent;
      }
    }
    std::string_view rec = results.peek();
    if (rec.data() == nullptr) {
      if (++idle % (1 << 20) == 0) {
        ASSERT_TRUE(child.running()) << "the worker exited early";
      }
      continue;
    }
    Frame result;
    ASSERT_TRUE(parses(rec, result));
    ASSERT_EQ(result.id, received);
    ASSERT_EQ(result.payload, std::to_string(received % 50));
    results.consume();
    results.release();
    ++received;
  }
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(daemon.slot(worker).pid.load(), static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(daemon.slot(worker).tasks_done.load(), n);
  EXPECT_EQ(daemon.find_shared("processed")->cells[0].load(), n);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < 64; ++i) sum += daemon.find_shared("histogram")->cells[i].load();
  EXPECT_EQ(sum, n);
  EXPECT_EQ(daemon.slot(0).tasks_done.load(), 0u);
}

// A copy of SEG's bytes in a new memfd, edited by EDIT, sealed like the
// daemon's unless SEAL is false.
int edited_copy(const Segment& seg, const std::function<void(char*)>& edit, bool seal = true) {
  std::string bytes(seg.size(), '\0');
  EXPECT_EQ(::pread(seg.fd(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  edit(bytes.data());
  const int fd = ::memfd_create("test-copy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  if (seal) {
    EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  }
  return fd;
}

std::string attach_error(int fd) {
  Result<Segment> seg = Segment::attach(UniqueFd(fd));
  EXPECT_FALSE(seg);
  if (fd >= 0) {
    EXPECT_FALSE(fd_is_open(fd)) << "attach must close the fd it was given";
  }
  return message_of(seg);
}

TEST(SegmentTest, AttachRefusesWhatIsNotASegment) {
  EXPECT_EQ(attach_error(-1), "segment fd -1: not a file descriptor");
  {
    const int fd = ::dup(0);
    ::close(fd);
    EXPECT_THAT(attach_error(fd), HasSubstr("Bad file descriptor"));
  }
  {
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    EXPECT_THAT(attach_error(pipe_fds[0]), HasSubstr("not a corral segment (not a file)"));
    ::close(pipe_fds[1]);
  }
  EXPECT_THAT(attach_error(::open("/dev/null", O_RDONLY)), HasSubstr("not a corral segment"));
  {
    const int fd = ::memfd_create("tiny", MFD_ALLOW_SEALING);
    ASSERT_EQ(::ftruncate(fd, 10), 0);
    EXPECT_THAT(attach_error(fd), HasSubstr("not a corral segment (10 bytes)"));
  }
  {
    const int fd = ::memfd_create("garbage", MFD_ALLOW_SEALING);
    std::string junk(8192, '\x5a');
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), 8192);
    ASSERT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    EXPECT_THAT(attach_error(fd), HasSubstr("not a corral segment (bad magic)"));
  }
  {  // a file outside a memfd cannot be sealed
    char path[] = "/tmp/corral-segment-test-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    ASSERT_EQ(::ftruncate(fd, 8192), 0);
    EXPECT_THAT(attach_error(fd), HasSubstr("F_GET_SEALS"));
  }
}

TEST(SegmentTest, AttachRefusesDamagedSegments) {
  Segment seg = make(primes_spec());
  auto header_edit = [](const std::function<void(SegmentHeader&)>& f) {
    return [f](char* base) {
      SegmentHeader h;
      std::memcpy(&h, base, sizeof h);
      f(h);
      std::memcpy(base, &h, sizeof h);
    };
  };
  // The unedited copy attaches: the edits below are what is refused.
  {
    Result<Segment> copy = Segment::attach(UniqueFd(edited_copy(seg, [](char*) {})));
    ASSERT_TRUE(copy) << message_of(copy);
    EXPECT_EQ(copy->shared().size(), 4u);
  }
  EXPECT_THAT(attach_error(edited_copy(
                  seg, [](char*) {}, false)),
              HasSubstr("not sealed against resizing"));
  EXPECT_THAT(attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.version = 2; }))),
              HasSubstr("segment layout version 2, this program reads version 1"));
  EXPECT_THAT(attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.magic++; }))),
              HasSubstr("bad magic"));
  EXPECT_THAT(
      attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.total_bytes += 4096; }))),
      HasSubstr("the header says"));
  EXPECT_THAT(
      attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.worker_count = 4; }))),
      HasSubstr("slot or shared table offset out of place"));
  EXPECT_THAT(
      attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.ring_capacity = 5000; }))),
      HasSubstr("ring capacity 5000 is not a power of two"));
  EXPECT_THAT(
      attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.shared_count = 60000; }))),
      HasSubstr("the shared table lies outside the segment"));
  EXPECT_THAT(
      attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) { h.shared_offset += 64; }))),
      HasSubstr("offset out of place"));
  EXPECT_THAT(attach_error(edited_copy(seg, header_edit([](SegmentHeader& h) {
                                         std::memset(h.job, 'x', sizeof h.job);
                                       }))),
              HasSubstr("job name not terminated"));
  const SegmentHeader h = seg.header();
  auto entry_edit = [&](size_t i, const std::function<void(SharedEntry&)>& f) {
    return [&h, i, f](char* base) {
      SharedEntry e;
      char* at = base + h.shared_offset + i * sizeof(SharedEntry);
      std::memcpy(&e, at, sizeof e);
      f(e);
      std::memcpy(at, &e, sizeof e);
    };
  };
  EXPECT_THAT(attach_error(edited_copy(seg, entry_edit(2, [](SharedEntry& e) { e.offset = 8; }))),
              HasSubstr("shared \"histogram\" lies at offset 8"));
  EXPECT_THAT(
      attach_error(edited_copy(seg, entry_edit(2, [](SharedEntry& e) { e.length = 1 << 20; }))),
      HasSubstr("the layout needs"));
  EXPECT_THAT(
      attach_error(edited_copy(
          seg, entry_edit(0, [](SharedEntry& e) { e.type = static_cast<SharedElement>(9); }))),
      HasSubstr("unknown element type 9"));
  EXPECT_THAT(
      attach_error(edited_copy(
          seg, entry_edit(1, [](SharedEntry& e) { std::memset(e.name, 'n', sizeof e.name); }))),
      HasSubstr("name is not terminated"));
  EXPECT_THAT(attach_error(edited_copy(seg, entry_edit(3, [](SharedEntry& e) { e.is_array = 2; }))),
              HasSubstr("shared \"delta\" is neither a value nor an array (kind 2)"));
}

TEST(SegmentTest, AWorkerChecksItsOwnSlotAndRingsWhenItTakesThem) {
  // A damaged slot or ring is refused by the worker that would use it; the
  // others attach and take theirs: a slot's state belongs to its worker.
  Segment seg = make(primes_spec());
  const SegmentHeader h = seg.header();
  const uint64_t task_ring_1 = seg.slot(1).task_ring_offset;
  const uint64_t result_ring_2 = seg.slot(2).result_ring_offset;
  Result<Segment> copy = Segment::attach(UniqueFd(edited_copy(seg, [&](char* base) {
    auto* slots = reinterpret_cast<WorkerSlot*>(base + h.slots_offset);
    slots[0].task_ring_offset += 64;
    reinterpret_cast<RingHeader*>(base + task_ring_1)->magic = 0;
    reinterpret_cast<RingHeader*>(base + result_ring_2)->head.store(1 << 30);
  })));
  ASSERT_TRUE(copy) << message_of(copy);
  EXPECT_FALSE(copy->task_ring(0).valid());  // its slot says the ring is elsewhere
  EXPECT_TRUE(copy->result_ring(0).valid());
  EXPECT_FALSE(copy->task_ring(1).valid());  // bad magic
  EXPECT_TRUE(copy->result_ring(1).valid());
  EXPECT_TRUE(copy->task_ring(2).valid());
  EXPECT_FALSE(copy->result_ring(2).valid());  // indexes a gigabyte apart
}

// ---- a worker scribbling on the segment ----

// One way of damaging the segment, done through the shared mapping as a
// worker would: BASE is the mapping, W the worker whose slot and rings are
// hit (the one renewed next).
struct Scribble {
  std::string name;
  std::function<void(char* base, const Segment& seg, uint32_t w)> apply;
};

template <class T>
void put(char* at, T value) {
  std::memcpy(at, &value, sizeof value);
}

// Where worker W's rings lie in a segment of primes_spec(): read from a
// segment nobody writes to, since the slots of the one under test may have
// been scribbled on.
RingHeader* ring_header(char* base, const Segment&, uint32_t w, int which) {
  static const Segment pristine = make(primes_spec());
  const WorkerSlot& slot = pristine.slot(w);
  return reinterpret_cast<RingHeader*>(
      base + (which == 0 ? slot.task_ring_offset : slot.result_ring_offset));
}

std::vector<Scribble> scribbles() {
  std::vector<Scribble> all;
  // Every field of the segment header, zeroed and all ones.
  struct Field {
    const char* name;
    size_t offset, size;
  };
  const Field header_fields[] = {{"magic", offsetof(SegmentHeader, magic), 8},
                                 {"version", offsetof(SegmentHeader, version), 4},
                                 {"worker_count", offsetof(SegmentHeader, worker_count), 4},
                                 {"total_bytes", offsetof(SegmentHeader, total_bytes), 8},
                                 {"ring_capacity", offsetof(SegmentHeader, ring_capacity), 8},
                                 {"shared_count", offsetof(SegmentHeader, shared_count), 4},
                                 {"reserved", offsetof(SegmentHeader, reserved), 4},
                                 {"slots_offset", offsetof(SegmentHeader, slots_offset), 8},
                                 {"shared_offset", offsetof(SegmentHeader, shared_offset), 8},
                                 {"job", offsetof(SegmentHeader, job), sizeof(SegmentHeader::job)}};
  for (const Field& f : header_fields) {
    for (int byte : {0x00, 0xff}) {
      all.push_back({std::string("segment header ") + f.name + (byte ? " all ones" : " zeroed"),
                     [f, byte](char* base, const Segment&, uint32_t) {
                       std::memset(base + f.offset, byte, f.size);
                     }});
    }
  }
  all.push_back({"segment header ring_capacity 2^31", [](char* base, const Segment&, uint32_t) {
                   put<uint64_t>(base + offsetof(SegmentHeader, ring_capacity), uint64_t{1} << 31);
                 }});
  for (int byte : {0x00, 0xff}) {
    all.push_back({std::string("shared table ") + (byte ? "all ones" : "zeroed"),
                   [byte](char* base, const Segment& seg, uint32_t) {
                     std::memset(base + seg.header().shared_offset, byte,
                                 seg.header().shared_count * sizeof(SharedEntry));
                   }});
  }
  // Every field of the worker's slot.
  const Field slot_fields[] = {{"heartbeat_ns", offsetof(WorkerSlot, heartbeat_ns), 8},
                               {"pid", offsetof(WorkerSlot, pid), 4},
                               {"reserved", offsetof(WorkerSlot, reserved), 4},
                               {"tasks_done", offsetof(WorkerSlot, tasks_done), 8},
                               {"task_ring_offset", offsetof(WorkerSlot, task_ring_offset), 8},
                               {"result_ring_offset", offsetof(WorkerSlot, result_ring_offset), 8}};
  for (const Field& f : slot_fields) {
    for (int byte : {0x00, 0xff}) {
      all.push_back({std::string("slot ") + f.name + (byte ? " all ones" : " zeroed"),
                     [f, byte](char* base, const Segment& seg, uint32_t w) {
                       char* slot = base + seg.header().slots_offset + w * sizeof(WorkerSlot);
                       std::memset(slot + f.offset, byte, f.size);
                     }});
    }
  }
  // Every field of both ring headers, and impossible combinations.
  const Field ring_fields[] = {{"head", offsetof(RingHeader, head), 8},
                               {"tail", offsetof(RingHeader, tail), 8},
                               {"producer_waiting", offsetof(RingHeader, producer_waiting), 4},
                               {"consumer_waiting", offsetof(RingHeader, consumer_waiting), 4},
                               {"capacity", offsetof(RingHeader, capacity), 8},
                               {"magic", offsetof(RingHeader, magic), 8},
                               {"whole header", 0, sizeof(RingHeader)}};
  for (int which : {0, 1}) {
    const std::string ring = which == 0 ? "task ring " : "result ring ";
    for (const Field& f : ring_fields) {
      for (int byte : {0x00, 0xff}) {
        all.push_back({ring + f.name + (byte ? " all ones" : " zeroed"),
                       [f, byte, which](char* base, const Segment& seg, uint32_t w) {
                         std::memset(
                             reinterpret_cast<char*>(ring_header(base, seg, w, which)) + f.offset,
                             byte, f.size);
                       }});
      }
    }
    all.push_back({ring + "capacity 2^31", [which](char* base, const Segment& seg, uint32_t w) {
                     ring_header(base, seg, w, which)->capacity = uint64_t{1} << 31;
                   }});
    all.push_back(
        {ring + "capacity 2^31, magic wrong", [which](char* base, const Segment& seg, uint32_t w) {
           RingHeader* r = ring_header(base, seg, w, which);
           r->capacity = uint64_t{1} << 31;
           r->magic = SpscRing::kMagic + 1;
         }});
    all.push_back(
        {ring + "head and tail far apart", [which](char* base, const Segment& seg, uint32_t w) {
           RingHeader* r = ring_header(base, seg, w, which);
           r->tail.store(8);
           r->head.store(uint64_t{1} << 40);
         }});
    all.push_back(
        {ring + "tail ahead of head", [which](char* base, const Segment& seg, uint32_t w) {
           RingHeader* r = ring_header(base, seg, w, which);
           r->head.store(64);
           r->tail.store(4096);
         }});
    all.push_back({ring + "head and tail between records",
                   [which](char* base, const Segment& seg, uint32_t w) {
                     RingHeader* r = ring_header(base, seg, w, which);
                     r->head.store(13);
                     r->tail.store(5);
                   }});
    // Record lengths that cannot be: past the end, past the head, padding
    // records everywhere; with a head that says a whole ring is published.
    for (uint32_t length : {0xffffffffu, 0xfffffff0u, 0x7fffffffu, 0u}) {
      all.push_back({ring + "record lengths " + std::to_string(length),
                     [which, length](char* base, const Segment& seg, uint32_t w) {
                       RingHeader* r = ring_header(base, seg, w, which);
                       char* data = reinterpret_cast<char*>(r) + sizeof(RingHeader);
                       const uint64_t capacity = seg.header().ring_capacity;
                       for (uint64_t at = 0; at < capacity; at += 8) put(data + at, length);
                       r->head.store(r->tail.load() + capacity);
                     }});
    }
  }
  for (int byte : {0x00, 0xff}) {
    all.push_back({std::string("whole segment ") + (byte ? "all ones" : "zeroed"),
                   [byte](char* base, const Segment& seg, uint32_t) {
                     std::memset(base, byte, seg.size());
                   }});
  }
  return all;
}

// True when RECORD lies inside RING's data, and the data inside SEG.
bool inside(std::string_view record, const SpscRing& ring, const Segment& seg) {
  const char* begin = record.data();
  const char* end = begin + record.size();
  return ring.data() >= seg.base() && ring.data() + ring.capacity() <= seg.base() + seg.size() &&
         begin >= ring.data() && end <= ring.data() + ring.capacity();
}

// The daemon's rings and a worker that attached after renew() carry N
// tasks and their results both ways; false (with a failure) if not.
void exchange(Segment& daemon, uint32_t w, Segment::Rings& rings, uint64_t n) {
  Result<Segment> worker = Segment::attach(UniqueFd(::dup(daemon.fd())));
  ASSERT_TRUE(worker) << message_of(worker);
  SpscRing in = worker->task_ring(w);
  SpscRing out = worker->result_ring(w);
  ASSERT_TRUE(in.valid() && out.valid());
  EXPECT_EQ(worker->slot(w).pid.load(), 0u);
  EXPECT_EQ(worker->slot(w).heartbeat_ns.load(), 0u);
  EXPECT_EQ(worker->slot(w).tasks_done.load(), 0u);
  for (uint64_t id = 0; id < n; ++id) {
    const std::string payload(id % 300, static_cast<char>('a' + id % 26));
    char* at = rings.tasks.reserve(kTaskHeaderBytes + payload.size());
    ASSERT_NE(at, nullptr) << id;
    rings.tasks.commit(write_task_body(at, id, payload));
    rings.tasks.publish();
    std::string_view record = in.peek();
    Frame task;
    ASSERT_TRUE(parses(record, task));
    ASSERT_EQ(task.id, id);
    ASSERT_EQ(task.payload, payload);
    at = out.reserve(kResultHeaderBytes + payload.size());
    ASSERT_NE(at, nullptr);
    out.commit(write_result_body(at, id, ResultStatus::kOk, task.payload));
    in.consume();
    in.release();
    out.publish();
    record = rings.results.peek();
    ASSERT_TRUE(inside(record, rings.results, daemon));
    Frame result;
    ASSERT_TRUE(parses(record, result));
    ASSERT_EQ(result.id, id);
    ASSERT_EQ(result.payload, payload);
    rings.results.consume();
    rings.results.release();
  }
  EXPECT_FALSE(rings.tasks.corrupted() || rings.results.corrupted());
}

TEST(SegmentTest, RenewGivesANewWorkerACleanSlotAndRingsWhateverTheLastOneWrote) {
  for (const Scribble& scribble : scribbles()) {
    SCOPED_TRACE(scribble.name);
    Segment seg = make(primes_spec());
    const uint32_t w = 1;
    Segment::Rings zero = seg.renew(0);  // a neighbour, running
    ASSERT_TRUE(zero.tasks.try_push("for worker 0"));
    zero.tasks.publish();
    // A worker ran: its rings have moved and hold records both ways.
    Segment::Rings first = seg.renew(w);
    exchange(seg, w, first, 40);
    ASSERT_TRUE(first.tasks.try_push("left behind"));
    first.tasks.publish();
    seg.slot(w).pid.store(1234);
    seg.slot(w).heartbeat_ns.store(99);
    // It scribbles, and dies.
    scribble.apply(seg.base(), seg, w);
    // What the daemon keeps is untouched by that.
    EXPECT_EQ(seg.worker_count(), 3u);
    EXPECT_EQ(seg.header().ring_capacity, 8192u);
    ASSERT_EQ(seg.shared().size(), 4u);
    EXPECT_EQ(seg.find_shared("histogram")->length, 64u);

    Segment::Rings fresh = seg.renew(w);
    ASSERT_TRUE(fresh.tasks.valid() && fresh.results.valid());
    EXPECT_EQ(fresh.tasks.capacity(), 8192u);
    EXPECT_EQ(fresh.results.capacity(), 8192u);
    EXPECT_EQ(fresh.tasks.used_bytes(), 0u);
    EXPECT_EQ(fresh.results.used_bytes(), 0u);
    EXPECT_FALSE(has_record(fresh.results.peek()));
    EXPECT_FALSE(fresh.results.corrupted());
    EXPECT_EQ(seg.slot(w).pid.load(), 0u);
    EXPECT_EQ(seg.slot(w).heartbeat_ns.load(), 0u);
    // And the next worker attaches and works.
    exchange(seg, w, fresh, 200);  // wraps the rings several times
    EXPECT_THROW(seg.renew(3), std::out_of_range);
  }
  // A renew rewrites what a new worker reads, and nothing of the job's
  // state or of the other workers.
  Segment seg = make(primes_spec());
  Segment::Rings zero = seg.renew(0);
  ASSERT_TRUE(zero.tasks.try_push("for worker 0"));
  zero.tasks.publish();
  seg.slot(0).pid.store(77);
  seg.find_shared("processed")->cells[0].store(5);
  Segment::Rings one = seg.renew(1);
  EXPECT_TRUE(one.tasks.valid());
  EXPECT_EQ(seg.find_shared("processed")->cells[0].load(), 5u);
  EXPECT_EQ(seg.slot(0).pid.load(), 77u);
  Result<Segment> worker = Segment::attach(UniqueFd(::dup(seg.fd())));
  ASSERT_TRUE(worker) << message_of(worker);
  SpscRing in = worker->task_ring(0);
  ASSERT_TRUE(in.valid());
  EXPECT_EQ(in.peek(), "for worker 0");
}

TEST(SegmentTest, AWorkerScribblingOnOtherSlotsHarmsNoOneElse) {
  // Worker 1 scribbles on worker 0's slot and rings, worker 2's (a slot
  // with no worker) and the header: worker 1 itself and a new worker 0 still
  // attach and work, and so does the first worker spawned into slot 2.
  Segment seg = make(primes_spec());
  Segment::Rings one = seg.renew(1);
  for (const Scribble& scribble : scribbles()) {
    if (scribble.name.starts_with("whole segment")) continue;  // that hits worker 1 too
    scribble.apply(seg.base(), seg, 0);
    scribble.apply(seg.base(), seg, 2);
  }
  std::memset(seg.base(), 0xff, sizeof(SegmentHeader));
  Segment::Rings zero = seg.renew(0);  // rewrites the header too
  exchange(seg, 1, one, 50);
  exchange(seg, 0, zero, 50);
  Segment::Rings two = seg.renew(2);
  exchange(seg, 2, two, 50);
}

TEST(SegmentTest, ScribbledSharedHeaderDoesNotMoveTheLayout) {
  // The daemon keeps what it laid out: a worker writing over the shared
  // header changes nothing the daemon reads.
  Segment seg = make(primes_spec());
  Result<Segment> worker = Segment::attach(UniqueFd(::dup(seg.fd())));
  ASSERT_TRUE(worker) << message_of(worker);
  void* base = ::mmap(nullptr, seg.size(), PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd(), 0);
  ASSERT_NE(base, MAP_FAILED);
  std::memset(base, 0xff, sizeof(SegmentHeader));
  EXPECT_EQ(seg.worker_count(), 3u);
  EXPECT_EQ(seg.job(), "primes");
  EXPECT_EQ(seg.find_shared("histogram")->length, 64u);
  // A ring whose header was damaged comes back invalid rather than wrong.
  auto* ring =
      reinterpret_cast<RingHeader*>(static_cast<char*>(base) + seg.slot(0).task_ring_offset);
  ring->capacity = 1 << 20;
  ring->magic = SpscRing::kMagic;
  EXPECT_FALSE(seg.task_ring(0).valid());
  ::munmap(base, seg.size());
}

TEST(SegmentTest, MoveKeepsOneOwner) {
  Segment a = make(primes_spec());
  const int fd = a.fd();
  a.find_shared("processed")->cells[0].store(42);
  Segment b(std::move(a));
  EXPECT_EQ(b.fd(), fd);
  EXPECT_EQ(a.fd(), -1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.find_shared("processed")->cells[0].load(), 42u);
  Segment c = make(primes_spec());
  const int other_fd = c.fd();
  c = std::move(b);
  EXPECT_EQ(c.fd(), fd);
  EXPECT_FALSE(fd_is_open(other_fd));  // the segment c held before is gone
  EXPECT_EQ(c.find_shared("processed")->cells[0].load(), 42u);
  EXPECT_EQ(c.job(), "primes");
}

}  // namespace
}  // namespace corral::ipc

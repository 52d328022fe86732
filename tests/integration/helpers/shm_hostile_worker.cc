// A hostile worker of the shm channel, for tests/integration/shm_hostile_test.cc.
// It maps the job's segment from CORRAL_SHM=fd:N as a worker does, says
// READY, waits until it holds a task, and then does harm:
//
//   --scribble --neighbour N --unused U --end exit|killed|hang
//       writes over every field of the segment header and the shared table,
//       its own slot and rings (capacity 2^31, magic wrong, indexes far
//       apart, impossible record lengths), worker N's slot and ring headers
//       (then SIGKILLs worker N, so that a new one is spawned into them),
//       and worker U's slot and rings (a slot with no worker); wakes the
//       daemon; then exits 3, SIGKILLs itself, or hangs.
//   --future-heartbeat
//       writes a heartbeat one hour in the future and hangs.
//
// --marker PATH: done once. When PATH exists the program is an ordinary
// echo worker (the SDK's serve()); otherwise it creates PATH and does harm,
// so the worker spawned after it in the same slot behaves.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "ipc/frame.h"
#include "ipc/segment.h"
#include "ipc/spsc_ring.h"

// shm_hostile_echo.cc: serve() with an echo handler; its exit code.
int serve_echo();

namespace {

using corral::ipc::RingHeader;
using corral::ipc::Segment;
using corral::ipc::SegmentHeader;
using corral::ipc::SharedEntry;
using corral::ipc::SpscRing;
using corral::ipc::WorkerSlot;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "shm_hostile_worker: %s\n", why.c_str());
  std::exit(2);
}

uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

int env_int(const char* name, std::string_view skip = {}) {
  const char* value = std::getenv(name);
  if (value == nullptr) fail(std::string(name) + " is not set");
  std::string_view text(value);
  if (text.starts_with(skip)) text.remove_prefix(skip.size());
  return std::atoi(std::string(text).c_str());
}

void wake(int fd) {
  const uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

[[noreturn]] void hang() {
  for (;;) ::pause();
}

RingHeader* ring_at(char* base, uint64_t offset) {
  return reinterpret_cast<RingHeader*>(base + offset);
}

// Every byte of worker W's slot and rings (headers and data) set to BYTE.
void flatten(char* base, Segment& seg, uint32_t w, int byte) {
  const uint64_t rings[2] = {seg.slot(w).task_ring_offset, seg.slot(w).result_ring_offset};
  for (uint64_t offset : rings) {
    std::memset(base + offset, byte, SpscRing::bytes_for(seg.header().ring_capacity));
  }
  std::memset(static_cast<void*>(&seg.slot(w)), byte, sizeof(WorkerSlot));
}

}  // namespace

int main(int argc, char** argv) {
  std::string marker, end = "exit";
  bool scribble = false, future_heartbeat = false;
  std::optional<uint32_t> neighbour, unused;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--marker") {
      marker = value();
    } else if (arg == "--scribble") {
      scribble = true;
    } else if (arg == "--future-heartbeat") {
      future_heartbeat = true;
    } else if (arg == "--neighbour") {
      neighbour = static_cast<uint32_t>(std::stoul(value()));
    } else if (arg == "--unused") {
      unused = static_cast<uint32_t>(std::stoul(value()));
    } else if (arg == "--end") {
      end = value();
    } else {
      fail("unknown argument " + std::string(arg));
    }
  }
  if (marker.empty() || scribble == future_heartbeat) {
    fail(
        "usage: --marker PATH (--scribble [--neighbour N] [--unused U] [--end E] | "
        "--future-heartbeat)");
  }
  const int made = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (made < 0) {
    if (errno != EEXIST) fail(marker + ": " + std::strerror(errno));
    return serve_echo();
  }
  ::close(made);

  // As a worker attaches: the segment from CORRAL_SHM, its wake-up fds.
  const uint32_t me = static_cast<uint32_t>(env_int("CORRAL_WORKER"));
  const int fd = env_int("CORRAL_SHM", "fd:");
  const char* fds = std::getenv("CORRAL_FDS");
  int wake_me = -1, wake_daemon = -1;
  if (fds == nullptr || std::sscanf(fds, "%d,%d", &wake_me, &wake_daemon) != 2) {
    fail("CORRAL_FDS is not T,R");
  }
  corral::Result<Segment> seg = Segment::attach(corral::UniqueFd(fd));
  if (!seg) fail(seg.error().message());
  SpscRing tasks = seg->task_ring(me);
  SpscRing results = seg->result_ring(me);
  if (!tasks.valid() || !results.valid()) fail("no valid rings");
  seg->slot(me).pid.store(static_cast<uint32_t>(::getpid()));
  seg->slot(me).heartbeat_ns.store(monotonic_ns());
  const char ready = static_cast<char>(corral::ipc::FrameType::kReady);
  if (!results.try_push(std::string_view(&ready, 1))) fail("no room for READY");
  results.publish();
  wake(wake_daemon);

  // Harm done while holding tasks, so that they must be redelivered; alive
  // and beating until then.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (tasks.peek().data() == nullptr) {
    if (std::chrono::steady_clock::now() > deadline) fail("no task came");
    seg->slot(me).heartbeat_ns.store(monotonic_ns());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  if (future_heartbeat) {
    seg->slot(me).heartbeat_ns.store(monotonic_ns() + 3600ULL * 1'000'000'000ULL);
    hang();
  }

  // A mapping of its own, as any process holding the fd can make.
  void* mapped = ::mmap(nullptr, seg->size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) fail(std::string("mmap: ") + std::strerror(errno));
  char* base = static_cast<char*>(mapped);
  const SegmentHeader header = seg->header();  // this process's checked copy
  pid_t neighbour_pid = 0;
  if (neighbour) {
    neighbour_pid = static_cast<pid_t>(seg->slot(*neighbour).pid.load());
    // The neighbour's slot, and its ring headers: a capacity of 2^31, the
    // magic gone. It keeps running on its own copy until it is killed below.
    WorkerSlot& slot = seg->slot(*neighbour);
    RingHeader* ring_headers[2] = {ring_at(base, slot.task_ring_offset),
                                   ring_at(base, slot.result_ring_offset)};
    for (RingHeader* r : ring_headers) {
      r->capacity = uint64_t{1} << 31;
      r->magic = 0;
    }
    slot.heartbeat_ns.store(~uint64_t{0});
    slot.tasks_done.store(~uint64_t{0});
    slot.task_ring_offset = ~uint64_t{0};
    slot.result_ring_offset = 0;
  }
  if (unused) flatten(base, *seg, *unused, 0xff);
  // Its own rings: impossible geometry, indexes and record lengths.
  {
    WorkerSlot& slot = seg->slot(me);
    RingHeader* task_ring = ring_at(base, slot.task_ring_offset);
    RingHeader* result_ring = ring_at(base, slot.result_ring_offset);
    task_ring->capacity = uint64_t{1} << 31;
    task_ring->magic = 0;
    task_ring->tail.store(task_ring->head.load() + (uint64_t{1} << 40));
    char* data = reinterpret_cast<char*>(result_ring) + sizeof(RingHeader);
    std::memset(data, 0xff, header.ring_capacity);
    result_ring->capacity = uint64_t{1} << 31;
    result_ring->magic = 0x1234;
    result_ring->head.store(result_ring->tail.load() + (uint64_t{1} << 40));
    std::memset(static_cast<void*>(&slot), 0xff, sizeof slot);
  }
  // The shared table and every field of the header.
  std::memset(base + header.shared_offset, 0xff, header.shared_count * sizeof(SharedEntry));
  std::memset(base, 0xff, sizeof(SegmentHeader));

  if (neighbour_pid > 0 && neighbour_pid != ::getpid()) ::kill(neighbour_pid, SIGKILL);
  wake(wake_daemon);  // look at what I did

  if (end == "exit") return 3;
  if (end == "killed") ::raise(SIGKILL);
  hang();
}

// The raw limits of this machine that corral's channels are measured
// against, with no corral code in the way: a bare single-producer
// single-consumer ring of fixed 64-byte slots in shared memory (one process
// each side, on two CPUs), the eventfd wake-up round trip between two
// processes, and one-way pipe throughput of 64-byte writes.
//
//   limits_bench
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace {

constexpr size_t kSlot = 64;
constexpr uint64_t kSlots = 1024;  // 64 KiB of data, as corral's smallest ring

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))), &set);
  sched_setaffinity(0, sizeof set, &set);
}

struct alignas(64) Bare {
  alignas(64) std::atomic<uint64_t> head;
  alignas(64) std::atomic<uint64_t> tail;
  alignas(64) char data[kSlots][kSlot];
};

// Fixed slots, acquire/release indexes, each side reading the other's index
// only when its last copy says full or empty, the consumer spinning: about
// the fastest a one-way 64-byte message stream between two processes goes
// here, publishing every message.
void BM_BareSpscTwoProcesses(benchmark::State& state) {
  auto* ring = static_cast<Bare*>(
      mmap(nullptr, sizeof(Bare), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (ring) Bare{};
  constexpr uint64_t kStop = ~uint64_t{0};
  pid_t child = fork();
  if (child == 0) {
    pin_to(1);
    uint64_t tail = 0, head_seen = 0;
    for (;;) {
      while (head_seen == tail) head_seen = ring->head.load(std::memory_order_acquire);
      uint64_t value;
      std::memcpy(&value, ring->data[tail % kSlots], 8);
      ring->tail.store(++tail, std::memory_order_release);
      if (value == kStop) _exit(0);
    }
  }
  pin_to(0);
  uint64_t head = 0, tail_seen = 0;
  char record[kSlot] = {};
  for (auto _ : state) {
    while (head - tail_seen >= kSlots) tail_seen = ring->tail.load(std::memory_order_acquire);
    std::memcpy(record, &head, 8);
    std::memcpy(ring->data[head % kSlots], record, kSlot);
    ring->head.store(++head, std::memory_order_release);
  }
  while (head - ring->tail.load(std::memory_order_acquire) >= kSlots) {
  }
  std::memcpy(ring->data[head % kSlots], &kStop, 8);
  ring->head.store(++head, std::memory_order_release);
  waitpid(child, nullptr, 0);
  munmap(ring, sizeof(Bare));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_BareSpscTwoProcesses)->UseRealTime()->MinTime(1.0);

// A wake-up and its answer through two eventfds, the other side blocked in
// read(): twice the one-way wake-up latency.
void BM_EventfdRoundTrip(benchmark::State& state) {
  int ping = eventfd(0, EFD_CLOEXEC), pong = eventfd(0, EFD_CLOEXEC);
  pid_t child = fork();
  uint64_t one = 1, got = 0;
  if (child == 0) {
    pin_to(1);
    for (;;) {
      if (read(ping, &got, 8) != 8) _exit(1);
      if (got > 1) _exit(0);  // the stop value
      if (write(pong, &one, 8) != 8) _exit(1);
    }
  }
  pin_to(0);
  for (auto _ : state) {
    if (write(ping, &one, 8) != 8 || read(pong, &got, 8) != 8) state.SkipWithError("eventfd");
  }
  uint64_t stop = 2;
  (void)!write(ping, &stop, 8);
  waitpid(child, nullptr, 0);
  close(ping);
  close(pong);
}
BENCHMARK(BM_EventfdRoundTrip)->UseRealTime();

// 64-byte writes into a pipe, a reader process taking them in large reads.
void BM_PipeThroughput64(benchmark::State& state) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return state.SkipWithError("pipe");
  pid_t child = fork();
  if (child == 0) {
    pin_to(1);
    close(fds[1]);
    char buffer[65536];
    while (read(fds[0], buffer, sizeof buffer) > 0) {
    }
    _exit(0);
  }
  pin_to(0);
  close(fds[0]);
  char record[kSlot] = {};
  for (auto _ : state) {
    if (write(fds[1], record, kSlot) != static_cast<ssize_t>(kSlot)) state.SkipWithError("write");
  }
  close(fds[1]);
  waitpid(child, nullptr, 0);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSlot));
}
BENCHMARK(BM_PipeThroughput64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

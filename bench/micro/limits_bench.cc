// The raw limits of this machine that corral's channels are measured
// against, with no corral code in the way: a bare single-producer
// single-consumer ring of fixed 64-byte slots in shared memory (one process
// each side, on two CPUs), the eventfd wake-up round trip between two
// processes, one-way pipe throughput of 64-byte writes, and how fast one
// process can start `sleep` processes (posix_spawn, which returns once the
// child has exec'd): the floor under starting N workers.
//
//   limits_bench
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

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

// posix_spawn of RANGE(0) `sleep 100000` processes from RANGE(1) threads at
// once, each starting its share one after the other, as a supervisor with
// nothing else to do would; each iteration is the whole batch, its children
// killed and reaped outside the timing.
void BM_SpawnSleepers(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  const auto threads = static_cast<size_t>(state.range(1));
  std::vector<std::vector<pid_t>> children(threads);
  std::atomic<bool> failed{false};
  auto spawn = [&](std::vector<pid_t>& mine, size_t share) {
    char sleep[] = "sleep", forever[] = "100000";
    char* argv[] = {sleep, forever, nullptr};
    for (size_t i = 0; i < share; ++i) {
      pid_t pid;
      if (posix_spawnp(&pid, "sleep", nullptr, nullptr, argv, environ) != 0) {
        failed = true;
        return;
      }
      mine.push_back(pid);
    }
  };
  for (auto _ : state) {
    std::vector<std::thread> running;
    for (size_t t = 1; t < threads; ++t)
      running.emplace_back(spawn, std::ref(children[t]), count / threads);
    spawn(children[0], count - (threads - 1) * (count / threads));
    for (auto& thread : running) thread.join();
    state.PauseTiming();
    for (auto& mine : children) {
      for (pid_t pid : mine) kill(pid, SIGKILL);
      for (pid_t pid : mine) waitpid(pid, nullptr, 0);
      mine.clear();
    }
    state.ResumeTiming();
    if (failed) {
      state.SkipWithError("posix_spawnp");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * count));
}
BENCHMARK(BM_SpawnSleepers)
    ->ArgNames({"sleepers", "threads"})
    ->Args({1000, 1})
    ->Args({1000, 2})
    ->Iterations(1)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

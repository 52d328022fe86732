// One-way throughput of the shared-memory SPSC ring: 64-byte records from a
// producer process to a consumer process, pinned to two different CPUs (the
// daemon and a worker). Compare with BASELINES.md: a bare SPSC ring of 64 B
// messages moves ~95 M/s publishing every message and ~215 M/s publishing
// every 32.
//
//   ring_bench --benchmark_filter=TwoProcesses
//
// Arguments: publish batch (records per publish() on the producer, and per
// release() on the consumer), ring capacity in bytes.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "ipc/spsc_ring.h"

namespace corral::ipc {
namespace {

constexpr size_t kRecordBytes = 64;
constexpr uint64_t kStop = ~uint64_t{0};

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The consumer: reads records until the stop record, checking that the
// sequence numbers at both ends of each record follow on. Exit code 0 if so.
int consume(void* memory, uint64_t batch) {
  SpscRing ring = SpscRing::attach(memory);
  if (!ring.valid()) return 2;
  uint64_t expected = 0, since_release = 0;
  for (;;) {
    std::string_view r = ring.peek();
    if (r.data() == nullptr) {
      ring.release();
      since_release = 0;
      cpu_relax();
      continue;
    }
    uint64_t first, last;
    std::memcpy(&first, r.data(), 8);
    std::memcpy(&last, r.data() + r.size() - 8, 8);
    ring.consume();
    if (first == kStop) break;
    if (first != expected || last != expected || r.size() != kRecordBytes) return 1;
    ++expected;
    if (++since_release == batch) {
      ring.release();
      since_release = 0;
    }
  }
  ring.release();
  return 0;
}

void BM_RingTwoProcesses(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const auto capacity = static_cast<size_t>(state.range(1));
  const size_t bytes = SpscRing::bytes_for(capacity);
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  SpscRing ring = SpscRing::create(memory, capacity);
  cpu_set_t old_affinity;
  ::sched_getaffinity(0, sizeof old_affinity, &old_affinity);
  const bool two_cpus = CPU_COUNT(&old_affinity) >= 2;
  const pid_t child = ::fork();
  if (child < 0) {
    state.SkipWithError("fork failed");
    ::munmap(memory, bytes);
    return;
  }
  if (child == 0) {
    if (two_cpus) pin_to(1);
    ::_exit(consume(memory, batch));
  }
  if (two_cpus) pin_to(0);

  char record[kRecordBytes];
  std::memset(record, 'r', sizeof record);
  uint64_t seq = 0, since_publish = 0;
  for (auto _ : state) {
    char* at;
    while ((at = ring.reserve(kRecordBytes)) == nullptr) {
      ring.publish();
      since_publish = 0;
      cpu_relax();
    }
    // Straight into the ring (building it on the stack first and copying
    // would stall on store forwarding, and measure that).
    std::memcpy(at, record, kRecordBytes);
    std::memcpy(at, &seq, 8);
    std::memcpy(at + kRecordBytes - 8, &seq, 8);
    ring.commit(kRecordBytes);
    ++seq;
    if (++since_publish == batch) {
      ring.publish();
      since_publish = 0;
    }
  }
  std::memcpy(record, &kStop, 8);
  while (!ring.try_push({record, kRecordBytes})) {
    ring.publish();
    cpu_relax();
  }
  ring.publish();
  int status = 0;
  ::waitpid(child, &status, 0);
  ::sched_setaffinity(0, sizeof old_affinity, &old_affinity);
  ::munmap(memory, bytes);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    state.SkipWithError("the consumer saw records out of order or damaged");
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
  state.counters["cpus"] = two_cpus ? 2 : 1;
}

BENCHMARK(BM_RingTwoProcesses)
    ->ArgNames({"batch", "capacity"})
    ->Args({1, 64 << 10})
    ->Args({32, 64 << 10})
    ->Args({1, 1 << 20})
    ->Args({32, 1 << 20})
    ->MinTime(1.0)
    ->UseRealTime();

// The same pair on one thread: push a batch, drain it. The cost of the ring's
// own bookkeeping and copies, without any cache line crossing CPUs.
void BM_RingOneThread(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const size_t capacity = 64 << 10;
  void* memory = ::mmap(nullptr, SpscRing::bytes_for(capacity), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  SpscRing producer = SpscRing::create(memory, capacity);
  SpscRing consumer = SpscRing::attach(memory);
  char record[kRecordBytes] = {};
  uint64_t sum = 0;
  for (auto _ : state) {
    for (uint64_t i = 0; i < batch; ++i) {
      char* at = producer.reserve(kRecordBytes);
      std::memcpy(at, record, kRecordBytes);
      std::memcpy(at, &i, 8);
      producer.commit(kRecordBytes);
    }
    producer.publish();
    for (std::string_view r = consumer.peek(); r.data() != nullptr; r = consumer.peek()) {
      sum += static_cast<unsigned char>(r[0]);
      consumer.consume();
    }
    consumer.release();
  }
  benchmark::DoNotOptimize(sum);
  ::munmap(memory, SpscRing::bytes_for(capacity));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}

BENCHMARK(BM_RingOneThread)->Arg(1)->Arg(32);

}  // namespace
}  // namespace corral::ipc

BENCHMARK_MAIN();

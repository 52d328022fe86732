// A durable job's spool (daemon/spool.h) on a real disk: batches of 1000
// tasks of 16 bytes, each added, dispatched and finished (its result kept),
// with synchronous NORMAL (durability crash) and FULL (power), the loop
// waiting for each commit or keeping up to 8 in flight (the writer then
// commits what waits in one transaction). As in corrald, a task is
// dispatched only in a batch after the one that added it (its add must be on
// disk first): with lag 1 its dispatch and finish share the next batch, with
// lag 2 they come in two (the UPDATE to running is written too); lag 0 puts
// all three in one batch. And opening a spool of 1,000,000
// unfinished tasks (loading 65536, counting the rest), next to what
// PRAGMA quick_check of that file would add.
//
//   CORRAL_SPOOL_BENCH_DIR=/var/lib/corral spool_bench   # default /var/tmp
//
// The directory's disk decides the figures: say which it was (df, findmnt)
// with them. tmpfs makes fsync free.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>

#include "daemon/spool.h"

namespace corral::daemon {
namespace {

std::string bench_dir() {
  const char* dir = ::getenv("CORRAL_SPOOL_BENCH_DIR");
  std::string pattern = std::string(dir != nullptr ? dir : "/var/tmp") + "/corral-spool-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    fprintf(stderr, "spool_bench: mkdtemp %s failed\n", pattern.c_str());
    ::exit(1);
  }
  return pattern;
}

// A directory removed at exit.
struct BenchFiles {
  std::string dir = bench_dir();
  ~BenchFiles() { std::filesystem::remove_all(dir); }
};

// Counts acknowledged commits; the bench thread waits on it as the loop
// would wait on its posted completions.
class Acks {
 public:
  Post post() {
    return [this](std::function<void()> completion) {
      completion();
      std::lock_guard lock(mu_);
      ++done_;
      changed_.notify_all();
    };
  }
  void wait_until_at_most(uint64_t sent, uint64_t in_flight) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return sent - done_ <= in_flight; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t done_ = 0;
};

constexpr uint64_t kBatch = 1000;
constexpr int64_t kBatches = 300;

// Args: power_safe (0 NORMAL, 1 FULL), commits in flight (0: wait for each).
void BM_SpoolBatches(benchmark::State& state) {
  const BenchFiles files;
  SpoolOptions options;
  options.path = files.dir + "/job.sqlite";
  options.power_safe = state.range(0) != 0;
  const auto in_flight = static_cast<uint64_t>(state.range(1));
  Acks acks;
  SpoolContents contents;
  auto spool = Spool::open(options, acks.post(), &contents);
  if (!spool) {
    state.SkipWithError(spool.error().message().c_str());
    return;
  }
  const auto lag = static_cast<uint64_t>(state.range(2));
  const std::string payload(16, 'p');
  uint64_t next_id = 1;
  uint64_t sent = 0;
  int64_t iteration = 0;
  bool failed = false;
  for (auto _ : state) {
    // This batch's tasks come; those of the batch before (or, with lag 0,
    // these) go out; those of LAG batches ago finish, as short tasks do
    // within a few turns of the loop.
    const uint64_t first = next_id;
    for (uint64_t i = 0; i < kBatch; ++i) {
      SpooledTask task;
      task.id = next_id++;
      task.submit = 1;
      task.seq = task.id;
      task.payload = payload;
      (*spool)->add(task);
    }
    const uint64_t dispatch_lag = std::min<uint64_t>(lag, 1);
    if (first > dispatch_lag * kBatch) {
      const uint64_t wave = first - dispatch_lag * kBatch;
      for (uint64_t id = wave; id < wave + kBatch; ++id) (*spool)->dispatched(id, 1);
    }
    if (first > lag * kBatch) {
      const uint64_t wave = first - lag * kBatch;
      const int64_t now = wall_clock_ms();
      for (uint64_t id = wave; id < wave + kBatch; ++id) {
        (*spool)->finished(SpooledResult{0, id, 1, id, "ok", "4950", 1, now}, false);
      }
    }
    (*spool)->commit([&failed](Status status) { failed |= !status.ok(); });
    ++sent;
    // The last iteration waits for everything, so the time is the disk's.
    acks.wait_until_at_most(sent, ++iteration == kBatches ? 0 : in_flight);
  }
  const SpoolStats stats = (*spool)->stats();
  if (failed) state.SkipWithError("a commit failed");
  state.counters["tasks/s"] =
      benchmark::Counter(static_cast<double>(sent * kBatch), benchmark::Counter::kIsRate);
  state.counters["transactions/s"] =
      benchmark::Counter(static_cast<double>(stats.transactions), benchmark::Counter::kIsRate);
  state.counters["batches/transaction"] =
      static_cast<double>(stats.batches) /
      static_cast<double>(std::max<uint64_t>(1, stats.transactions));
  spool->reset();
}
BENCHMARK(BM_SpoolBatches)
    ->ArgNames({"full", "in_flight", "lag"})
    ->Args({0, 0, 0})
    ->Args({0, 8, 0})
    ->Args({0, 8, 1})
    ->Args({0, 8, 2})
    ->Args({1, 0, 1})
    ->Args({1, 8, 1})
    ->Iterations(kBatches)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// One spool of 1,000,000 unfinished tasks, made once.
const std::string& million_spool() {
  static const BenchFiles files;
  static const std::string path = [] {
    SpoolOptions options;
    options.path = files.dir + "/million.sqlite";
    Acks acks;
    SpoolContents contents;
    auto spool = Spool::open(options, acks.post(), &contents);
    if (!spool) {
      fprintf(stderr, "spool_bench: %s\n", spool.error().message().c_str());
      ::exit(1);
    }
    const std::string payload(16, 'p');
    uint64_t sent = 0;
    for (uint64_t id = 1; id <= 1'000'000; ++id) {
      SpooledTask task;
      task.id = id;
      task.submit = 1 + id / 10000;
      task.seq = id % 10000;
      task.payload = payload;
      (*spool)->add(task);
      if (id % 10000 == 0) {
        (*spool)->commit([](Status) {});  // counted by Acks
        acks.wait_until_at_most(++sent, 4);
      }
    }
    return options.path;
  }();
  return path;
}

void BM_SpoolOpenMillion(benchmark::State& state) {
  const std::string& path = million_spool();
  SpoolOptions options;
  options.path = path;
  uint64_t backlog = 0;
  for (auto _ : state) {
    SpoolContents contents;
    auto spool = Spool::open(
        options, [](std::function<void()> f) { f(); }, &contents);
    if (!spool) {
      state.SkipWithError(spool.error().message().c_str());
      return;
    }
    backlog = contents.backlog;
    benchmark::DoNotOptimize(contents.tasks.data());
  }
  state.counters["backlog"] = static_cast<double>(backlog);
  state.counters["file_MiB"] =
      static_cast<double>(std::filesystem::file_size(path)) / (1024.0 * 1024.0);
}
BENCHMARK(BM_SpoolOpenMillion)->UseRealTime()->Unit(benchmark::kMillisecond);

// What PRAGMA quick_check at open would add on the same file.
void BM_SpoolQuickCheckMillion(benchmark::State& state) {
  const std::string& path = million_spool();
  for (auto _ : state) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    const int rc = sqlite3_exec(db, "PRAGMA quick_check", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    if (rc != SQLITE_OK) state.SkipWithError("quick_check failed");
  }
}
BENCHMARK(BM_SpoolQuickCheckMillion)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace corral::daemon

BENCHMARK_MAIN();

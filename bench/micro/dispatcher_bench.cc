// The dispatcher's bookkeeping per task, without channels: submit, pump to
// two workers, their results, the finished-task callback. What corrald's
// event loop spends on a task besides I/O and encoding.
//
//   dispatcher_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "daemon/dispatcher.h"

namespace corral::daemon {
namespace {

// A worker port that takes whatever fits in its prefetch and remembers the ids.
class CountingPort : public WorkerPort {
 public:
  bool can_send(size_t) const override { return true; }
  void send(uint64_t id, std::string_view) override { sent.push_back(id); }
  void flush() override {}
  std::vector<uint64_t> sent;
};

// BATCH tasks submitted, pumped to two workers, answered, per iteration.
void BM_SubmitDispatchAnswer(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  config::QueueSpec queue;
  queue.capacity = 1 << 20;
  queue.prefetch = 64;
  uint64_t finished = 0;
  Dispatcher d(queue, [&](FinishedTasks run) { finished += run.size(); });
  CountingPort a, b;
  d.attach(0, &a);
  d.attach(1, &b);
  const std::string payload = "42";
  const TimePoint now{};
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) d.submit(payload, 0, i);
    while (d.queued() > 0 || d.in_flight() > 0) {
      d.pump(now);
      for (auto [port, worker] : {std::pair{&a, 0u}, std::pair{&b, 1u}}) {
        for (uint64_t id : port->sent) d.result(worker, id, true, "4950", now);
        port->sent.clear();
      }
    }
  }
  benchmark::DoNotOptimize(finished);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_SubmitDispatchAnswer)->Arg(64)->Arg(4096);

}  // namespace
}  // namespace corral::daemon

BENCHMARK_MAIN();

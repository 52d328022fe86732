// The fixture of the dispatcher's tests of chunks (dispatcher_chunk_test.cc,
// dispatcher_results_test.cc): a dispatcher whose finished tasks are kept,
// chunks of a submit made as a Chunker makes them, a RESULTS frame's items.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "daemon/dispatcher.h"
#include "ipc/frame.h"
#include "tests/unit/chunk_port.h"

namespace corral::daemon::testing {

class DispatcherChunkTest : public ::testing::Test {
 protected:
  static constexpr TimePoint kNow{};

  // Failed tasks retried after a backoff of 1 s, crashed ones not.
  static config::QueueSpec retrying_failures() {
    config::QueueSpec q = chunk_queue();
    config::TaskRetrySpec retry;
    retry.on_failed = true;
    retry.on_crashed = false;
    retry.backoff = {std::chrono::seconds(1), std::chrono::seconds(60), 2.0, 0.0};
    q.retry = retry;
    return q;
  }

  void make(const config::QueueSpec& q) {
    d = std::make_unique<Dispatcher>(q, [this](FinishedTasks run) {
      told.push_back(run.size());
      std::move(run.begin(), run.end(), std::back_inserter(finished));
    });
  }
  // A chunk of N tasks "P0".."P(N-1)" of submit 5, seqs from SEQ.
  uint64_t chunk(int n, uint64_t seq = 0, std::string prefix = "p") {
    std::string items;
    for (int i = 0; i < n; ++i) ipc::append_chunk_item(items, prefix + std::to_string(i));
    return d->submit_chunk(std::move(items), static_cast<uint32_t>(n),
                           TaskOrigin{7, 5, seq, std::nullopt});
  }
  // A default chunk queue whose one chunk of N tasks is handed to worker 0
  // through PORT; the chunk's first id.
  uint64_t dispatched_chunk(int n, ChunkPort& port) {
    make(chunk_queue());
    const uint64_t first = chunk(n);
    d->attach(0, &port);
    d->pump(kNow);
    return first;
  }
  // A RESULTS frame's items: "ok:TEXT" or "failed:TEXT" each.
  static std::string result_items(const std::vector<std::string>& results) {
    std::string items;
    for (const std::string& r : results) {
      const bool ok = r.starts_with("ok:");
      ipc::append_result_item(items, ok ? ipc::ResultStatus::kOk : ipc::ResultStatus::kFailed,
                              r.substr(r.find(':') + 1));
    }
    return items;
  }
  const FinishedTask* ended(uint64_t id) const {
    auto it = std::find_if(finished.begin(), finished.end(),
                           [id](const FinishedTask& t) { return t.id == id; });
    return it == finished.end() ? nullptr : &*it;
  }
  std::unique_ptr<Dispatcher> d;
  std::vector<FinishedTask> finished;
  std::vector<size_t> told;  // how many tasks each call told of
};

}  // namespace corral::daemon::testing

// A fake worker port for tests of chunks (dispatcher_chunk_test.cc,
// chunker_test.cc): it records what the dispatcher hands it, single tasks
// and chunks, and takes chunks or not as told; and a queue spec for them.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "daemon/dispatcher.h"
#include "ipc/frame.h"

namespace corral::daemon::testing {

// A worker's channel; with CHUNKS it takes chunks whole (TASKS frames).
struct ChunkPort : WorkerPort {
  explicit ChunkPort(bool chunks = true) : chunks(chunks) {}
  bool can_send(size_t) const override { return open; }
  void send(uint64_t id, std::string_view payload) override {
    sent.push_back({id, 1, {std::string(payload)}});
  }
  bool takes_chunks() const override { return chunks; }
  bool send_chunk(uint64_t first_id, uint32_t count, std::string_view items) override {
    if (!open) return false;
    Frame frame{first_id, count, {}};
    for (uint32_t i = 0; i < count; ++i) {
      frame.payloads.emplace_back(ipc::take_chunk_item(items));
    }
    EXPECT_TRUE(items.empty()) << "bytes after the chunk's last task";
    sent.push_back(std::move(frame));
    return true;
  }
  void flush() override {}

  struct Frame {
    uint64_t first = 0;
    uint32_t count = 0;
    std::vector<std::string> payloads;
  };
  // Every task sent, in order, as (id, payload).
  std::vector<std::pair<uint64_t, std::string>> tasks() const {
    std::vector<std::pair<uint64_t, std::string>> all;
    for (const Frame& f : sent) {
      for (uint32_t i = 0; i < f.count; ++i) all.emplace_back(f.first + i, f.payloads[i]);
    }
    return all;
  }
  bool chunks;
  bool open = true;
  std::vector<Frame> sent;
};

// A queue of room for 1,000 tasks, PREFETCH a worker and MAX_ATTEMPTS.
inline config::QueueSpec chunk_queue(size_t prefetch = 64, uint32_t max_attempts = 3) {
  config::QueueSpec q;
  q.capacity = 1000;
  q.prefetch = prefetch;
  q.max_attempts = max_attempts;
  return q;
}

}  // namespace corral::daemon::testing

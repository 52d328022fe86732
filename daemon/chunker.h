// Gathers the tasks a producer queues one after another (the lines of a
// submit, a source's refill) into chunks for Dispatcher::submit_chunk, so
// that tiny tasks are queued, handed out and sent as one entry and one
// frame per chunk. A chunk holds tasks of one submitter and submit with
// consecutive seqs, at most kMaxTasks of them and ipc::max_chunk_bytes()
// of the job's queue.max_task_bytes; its tasks take the deadline of its
// first (they came within one batch of the producer's). A task that breaks
// a rule closes the chunk and starts the next; one too large for any chunk
// is queued alone, and so is every task while the job's workers take no
// chunks (Dispatcher::chunks_welcome).
//
// Nothing waits in here for another event: the producer flushes at the end
// of each batch it reads, and before it asks whether the queue is full.
// Whether a chunk goes to a worker whole or cut is the dispatcher's to say.
//
// Not thread-safe; lives on the daemon's event loop with its dispatcher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/dispatcher.h"

namespace corral::daemon {

class Chunker {
 public:
  // As many tasks as Python's pools put in a chunk by default for a long
  // iterable (about 1,000): the queue's work then is per chunk.
  static constexpr uint32_t kMaxTasks = 1024;

  // DISPATCHER outlives the chunker.
  Chunker(Dispatcher& dispatcher, size_t max_task_bytes);

  // Adds a task (the caller checked its size against queue.max_task_bytes).
  void add(std::string_view payload, const TaskOrigin& origin);
  // Queues what is gathered.
  void flush();
  // Tasks gathered and not queued yet.
  uint32_t gathered() const { return count_; }

 private:
  Dispatcher& dispatcher_;
  size_t max_bytes_;  // a chunk's items, lengths included
  std::string items_;
  size_t last_bytes_ = 0;  // the last chunk's items
  uint32_t count_ = 0;
  TaskOrigin origin_;  // the first task's
};

}  // namespace corral::daemon

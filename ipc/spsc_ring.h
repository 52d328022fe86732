// A single-producer single-consumer ring of variable-length records in
// shared memory: the daemon -> worker task ring and the worker -> daemon
// result ring of the shm channel.
//
// Layout (at a fixed offset in the job's segment, no pointers inside):
// RingHeader, then `capacity` data bytes (a power of two). Each record is a
// u32 length then the bytes, padded to 8; a record never wraps: when it does
// not fit before the end, a padding record (length kPadding) sends the reader
// to the start. The producer owns `head`, the consumer `tail`, both byte
// counters that only grow; each side caches the other's counter and reads it
// only when the cache says full/empty, so a steady stream costs no shared
// cache-line traffic per record. Records become visible in batches: the
// producer writes any number, then publish()es them with one release store.
//
// Sleeping: a side that finds nothing to do sets its waiting flag, checks
// once more, and only then waits on its eventfd; the other side, after
// publishing, writes the eventfd only if the flag was set (see wake.h).
//
// Only std::atomic indexes that are always lock-free: a process killed at any
// instruction leaves the ring consistent for the survivor to reset().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace corral::ipc {

struct alignas(64) RingHeader {
  alignas(64) std::atomic<uint64_t> head;  // bytes ever published by the producer
  std::atomic<uint32_t> producer_waiting;  // the producer sleeps until space frees
  alignas(64) std::atomic<uint64_t> tail;  // bytes ever released by the consumer
  std::atomic<uint32_t> consumer_waiting;  // the consumer sleeps until records come
  alignas(64) uint64_t capacity;           // data bytes, a power of two
  uint64_t magic;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

class SpscRing {
 public:
  static constexpr uint64_t kMagic = 0x72696e67'636f7231ULL;  // "ringcor1"
  static constexpr uint32_t kPadding = 0xffffffffu;
  static constexpr size_t kAlign = 8;

  // Bytes of shared memory a ring of CAPACITY data bytes needs (header included).
  static size_t bytes_for(size_t capacity);
  // The largest record a ring of CAPACITY can hold.
  static size_t max_record(size_t capacity);

  // Lays out a new, empty ring at MEMORY (bytes_for(capacity) bytes, 64-aligned).
  static SpscRing create(void* memory, size_t capacity);
  // Uses a ring another process created; an invalid ring (bad magic or
  // capacity) gives a ring whose valid() is false.
  static SpscRing attach(void* memory);

  SpscRing() = default;
  bool valid() const { return header_ != nullptr; }
  size_t capacity() const { return capacity_; }

  // ---- producer side ----
  // Space for a record of N bytes, or nullptr when the ring is full (for
  // now). Write the record there, then commit(N). Nothing is visible to the
  // consumer before publish().
  char* reserve(size_t n);
  void commit(size_t n);
  // Makes every committed record visible. Returns true when the consumer
  // was waiting and must be woken (its flag is cleared).
  bool publish();
  // Copies RECORD in: reserve + memcpy + commit; false when full.
  bool try_push(std::string_view record);
  // Before sleeping for space: sets producer_waiting, then returns false if
  // room for N bytes appeared meanwhile (the flag is cleared: don't sleep).
  bool producer_prepare_sleep(size_t n);

  // ---- consumer side ----
  // The next record, or an empty view when none is published. The view
  // stays valid until release().
  std::string_view peek();
  // Moves past the record peek() returned.
  void consume();
  // Returns the space of every consumed record to the producer. Returns true
  // when the producer was waiting for space and must be woken.
  bool release();
  // Before sleeping: sets consumer_waiting, then returns false if a record
  // was published meanwhile (the flag is cleared: don't sleep).
  bool consumer_prepare_sleep();

  // ---- either side, when the other is known dead ----
  // Empties the ring and clears the flags.
  void reset();
  // Records published and not yet released, in bytes (for stats).
  uint64_t used_bytes() const;

 private:
  RingHeader* header_ = nullptr;
  char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  // Producer-local state.
  uint64_t write_ = 0;         // bytes committed (>= header_->head)
  uint64_t cached_tail_ = 0;   // last tail seen
  // Consumer-local state.
  uint64_t read_ = 0;          // bytes consumed (>= header_->tail)
  uint64_t cached_head_ = 0;   // last head seen
  uint64_t peeked_ = 0;        // size of the record peek() returned, padding included
};

}  // namespace corral::ipc

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
// producer writes any number, then publish()es them with one store of head.
//
// Sleeping: a side that finds nothing to do sets its waiting flag, checks
// once more, and only then waits on its eventfd; the other side, after
// publishing, writes the eventfd only if the flag was set (see wake.h).
// Both orders are "store mine, then load theirs", the store and the load
// seq_cst, so at least one side sees the other: no wake-up is lost. (seq_cst
// operations rather than seq_cst fences: the same guarantee, one xchg on
// x86, and ThreadSanitizer understands them; GCC's rejects fences.) A side
// does not sleep while it holds what the other may be waiting for
// (unpublished records, unreleased space). The producer's loop:
//
//   while ((p = ring.reserve(n)) == nullptr) {
//     if (ring.publish()) consumer_wake.signal();  // reserve may have padded
//     if (ring.producer_prepare_sleep(n)) producer_wake.wait(timeout);
//   }
//
// and the consumer's:
//
//   for (;;) {
//     std::string_view r = ring.peek();
//     if (r.data() != nullptr) { use(r); ring.consume(); continue; }
//     if (ring.release()) producer_wake.signal();
//     if (ring.consumer_prepare_sleep()) consumer_wake.wait(timeout);
//   }
//
// Only std::atomic indexes that are always lock-free: a process killed at any
// instruction leaves the ring consistent for the survivor to reset().
//
// The other side may be a broken process that scribbles on the shared
// memory at any time: every index and record length read from it is read
// once and checked against the capacity before use, so a side never reads or
// writes outside its ring, and a consumer never takes more than one ring of
// bytes between two release()s, however the producer moves its head. A side
// that finds an impossible value stops (the ring looks empty or full) and
// says corrupted(). The capacity and the data's place are the side's own
// copy, taken at create() or attach(): the shared header's copy is never read
// again. Record bytes seen through peek() live in shared memory: copy what
// must not change under you.
//
// An SpscRing object is one side's handle (it keeps that side's cached
// indexes); it is not thread-safe, and each ring has one producer object and
// one consumer object at a time. Every member but valid() needs a valid ring.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace corral::ipc {

// Each index has a cache line of its own, and the waiting flags share a
// third: they are read at every publish()/release() but written only around
// sleeps, so that line stays cached on both sides. (With a flag beside the
// other side's index, every publish() missed on the line the consumer had
// just written by release(), and the other way round: half the rate when
// publishing every record.)
struct alignas(64) RingHeader {
  alignas(64) std::atomic<uint64_t> head;              // bytes ever published by the producer
  alignas(64) std::atomic<uint64_t> tail;              // bytes ever released by the consumer
  alignas(64) std::atomic<uint32_t> producer_waiting;  // the producer sleeps until space frees
  std::atomic<uint32_t> consumer_waiting;              // the consumer sleeps until records come
  alignas(64) uint64_t capacity;                       // data bytes, a power of two
  uint64_t magic;
};
static_assert(sizeof(RingHeader) == 256);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// A polite busy-wait step (PAUSE / YIELD), for whoever polls a ring.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Between rounds of a busy-wait: the CPU goes to whatever else is runnable
// on it, if anything. With more busy processes than cores (two workers
// spinning for tasks and corrald spinning for a result, on two cores), a
// spinner would otherwise hold the core that the process it waits for
// needs until the scheduler's slice ends: a millisecond, not a microsecond.
inline void spin_yield() { ::sched_yield(); }

class SpscRing {
 public:
  static constexpr uint64_t kMagic = 0x72696e67'636f7231ULL;  // "ringcor1"
  static constexpr uint32_t kPadding = 0xffffffffu;
  static constexpr size_t kAlign = 8;
  static constexpr size_t kLengthBytes = 4;  // the u32 before each record
  // Capacities create() accepts: powers of two in [kMinCapacity, kMaxCapacity].
  static constexpr size_t kMinCapacity = 64;
  static constexpr size_t kMaxCapacity = size_t{1} << 31;

  // Bytes of shared memory a ring of CAPACITY data bytes needs (header included).
  static size_t bytes_for(size_t capacity);
  // The largest record a ring of CAPACITY can hold (capacity - 4; 0 for a
  // capacity create() refuses).
  static size_t max_record(size_t capacity);
  // The ring bytes a record of N bytes takes: its length, itself, padding to 8.
  static constexpr uint64_t record_bytes(size_t n) {
    return (kLengthBytes + n + kAlign - 1) & ~uint64_t{kAlign - 1};
  }
  static constexpr bool valid_capacity(uint64_t capacity) {
    return capacity >= kMinCapacity && capacity <= kMaxCapacity && (capacity & (capacity - 1)) == 0;
  }

  // Lays out a new, empty ring at MEMORY (bytes_for(capacity) bytes, 64-aligned),
  // whatever was there before. A capacity valid_capacity() refuses, or
  // misaligned memory, gives a ring whose valid() is false. This is how the
  // side that owns the layout (the daemon) takes a ring: from the capacity
  // and place it chose, never from what the shared header says.
  static SpscRing create(void* memory, size_t capacity);
  // Uses a ring another process created; an invalid ring (bad magic or
  // capacity, indexes further apart than the capacity) gives a ring whose
  // valid() is false. Each shared field is read once.
  static SpscRing attach(void* memory);

  SpscRing() = default;
  bool valid() const { return header_ != nullptr; }
  size_t capacity() const { return capacity_; }
  // The ring's data bytes (capacity() of them): every record peek() returns
  // lies inside.
  const char* data() const { return data_; }
  // True once this side found the other side's index or a record length
  // impossible (the other process scribbled on the ring); until reset(),
  // reserve()/peek() may then keep failing. Never true between two sane
  // processes.
  bool corrupted() const { return corrupted_; }

  // ---- producer side ----
  // Space for a record of N bytes, or nullptr when the ring is full (for
  // now) or N > max_record(capacity()). Write the record there, then
  // commit(N), or commit(M) with M <= N to keep only M bytes. Nothing is
  // visible to the consumer before publish(). When the record does not fit
  // before the end of the ring, reserve() commits a padding record first,
  // even if it then returns nullptr: publish() before sleeping for space.
  char* reserve(size_t n);
  void commit(size_t n);
  // Makes every committed record visible. Returns true when the consumer
  // was waiting and must be woken (its flag is cleared).
  bool publish();
  // Copies RECORD in: reserve + memcpy + commit; false when full.
  bool try_push(std::string_view record);
  // Before sleeping for space: sets producer_waiting, then returns false if
  // room for N bytes appeared meanwhile (the flag is cleared: don't sleep).
  // Also false, without the flag, while committed records are unpublished:
  // the consumer cannot free space it does not see, so publish() first.
  bool producer_prepare_sleep(size_t n);

  // ---- consumer side ----
  // The next record, or a view with data() == nullptr when none is
  // published (a record of 0 bytes is an empty view with a non-null data()).
  // The view stays valid until release().
  std::string_view peek();
  // Moves past the record peek() returned.
  void consume();
  // Returns the space of every consumed record to the producer. Returns true
  // when the producer was waiting for space and must be woken.
  bool release();
  // Before sleeping: sets consumer_waiting, then returns false if a record
  // was published meanwhile (the flag is cleared: don't sleep). Also false,
  // without the flag, while consumed space is unreleased (peek() passing a
  // padding record consumes it too): the producer may be waiting for that
  // space, so release() first.
  bool consumer_prepare_sleep();
  // Whether records were written since the last publish().
  bool has_unpublished() const { return write_ != published_; }
  // The consumer polls instead of sleeping: clears consumer_waiting, so that
  // publish() asks for no wake-up meanwhile.
  void consumer_stay_awake() { header_->consumer_waiting.store(0, std::memory_order_relaxed); }
  // Whether the producer published a record past the consumer's position
  // (a cheap look for a consumer that polls).
  bool readable() {
    if (read_ != cached_head_) return true;
    refresh_head();
    return read_ != cached_head_;
  }

  // ---- either side, when the other is known dead ----
  // Empties the ring and clears the flags (and rewrites the capacity and
  // magic from this side's own copy, in case the dead side scribbled on
  // them). Does nothing to an invalid ring.
  void reset();
  // Records published and not yet released, in bytes (for stats).
  uint64_t used_bytes() const;

 private:
  // A side at HEAD and TAIL of a ring of CAPACITY at HEADER (all its own).
  SpscRing(RingHeader* header, uint64_t capacity, uint64_t head, uint64_t tail);
  static void store_u32(char* at, uint32_t value) { std::memcpy(at, &value, sizeof value); }
  // One load the compiler may not repeat: the other side can change the
  // bytes between two reads, and a length must be checked and used as the
  // same value. (Lengths sit at multiples of 8: aligned.)
  static uint32_t load_u32(const char* at) {
    return __atomic_load_n(reinterpret_cast<const uint32_t*>(at), __ATOMIC_RELAXED);
  }
  // Whether BYTES more fit after write_, reading the consumer's tail only
  // when the cached one says no.
  bool has_room(uint64_t bytes);
  void refresh_tail();
  void refresh_head();

  RingHeader* header_ = nullptr;
  char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  // Producer-local state.
  uint64_t write_ = 0;        // bytes committed (>= header_->head)
  uint64_t published_ = 0;    // header_->head as this side last stored it
  uint64_t cached_tail_ = 0;  // last tail seen
  // Consumer-local state.
  uint64_t read_ = 0;         // bytes consumed (>= header_->tail)
  uint64_t released_ = 0;     // header_->tail as this side last stored it
  uint64_t cached_head_ = 0;  // last head seen, at most head_limit_
  uint64_t head_limit_ = 0;   // released_ + capacity_: no producer publishes past it
  uint64_t peeked_ = 0;       // size of the record peek() returned, padding included
  bool corrupted_ = false;
};

// ---- implementation (inline: the hot paths of the daemon and the workers) ----

inline size_t SpscRing::bytes_for(size_t capacity) { return sizeof(RingHeader) + capacity; }

inline size_t SpscRing::max_record(size_t capacity) {
  return valid_capacity(capacity) ? capacity - kLengthBytes : 0;
}

inline SpscRing::SpscRing(RingHeader* header, uint64_t capacity, uint64_t head, uint64_t tail)
    : header_(header),
      data_(reinterpret_cast<char*>(header) + sizeof(RingHeader)),
      capacity_(capacity),
      mask_(capacity - 1) {
  write_ = published_ = cached_head_ = head;
  read_ = released_ = cached_tail_ = tail;
  head_limit_ = tail + capacity;
}

inline SpscRing SpscRing::create(void* memory, size_t capacity) {
  if (memory == nullptr || reinterpret_cast<uintptr_t>(memory) % alignof(RingHeader) != 0 ||
      !valid_capacity(capacity)) {
    return SpscRing();
  }
  RingHeader* header = std::construct_at(static_cast<RingHeader*>(memory));  // zeroes it
  header->capacity = capacity;
  header->magic = kMagic;
  // Whatever another process stores meanwhile, this side starts empty.
  return SpscRing(header, capacity, 0, 0);
}

inline SpscRing SpscRing::attach(void* memory) {
  if (memory == nullptr || reinterpret_cast<uintptr_t>(memory) % alignof(RingHeader) != 0) {
    return SpscRing();
  }
  auto* header = static_cast<RingHeader*>(memory);
  // Read once: the value checked is the value used.
  const uint64_t magic = __atomic_load_n(&header->magic, __ATOMIC_RELAXED);
  const uint64_t capacity = __atomic_load_n(&header->capacity, __ATOMIC_RELAXED);
  if (magic != kMagic || !valid_capacity(capacity)) return SpscRing();
  const uint64_t head = header->head.load(std::memory_order_acquire);
  const uint64_t tail = header->tail.load(std::memory_order_acquire);
  if (head - tail > capacity) return SpscRing();       // also catches tail > head
  if ((head | tail) % kAlign != 0) return SpscRing();  // records start at multiples of 8
  return SpscRing(header, capacity, head, tail);
}

inline void SpscRing::refresh_tail() {
  // seq_cst (a plain load on x86 and arm64) for producer_prepare_sleep().
  const uint64_t tail = header_->tail.load(std::memory_order_seq_cst);
  // The consumer's tail only grows and never passes what was published:
  // anything outside [cached_tail_, published_] is a scribble.
  if (tail - cached_tail_ > published_ - cached_tail_) {
    corrupted_ = true;
    return;
  }
  cached_tail_ = tail;
}

inline bool SpscRing::has_room(uint64_t bytes) {
  if (write_ + bytes - cached_tail_ <= capacity_) return true;
  refresh_tail();
  return write_ + bytes - cached_tail_ <= capacity_;
}

inline char* SpscRing::reserve(size_t n) {
  if (n > capacity_ - kLengthBytes) return nullptr;
  const uint64_t size = record_bytes(n);
  uint64_t pos = write_ & mask_;
  const uint64_t contiguous = capacity_ - pos;
  if (size > contiguous) {
    // Pad to the end now, even if the record will not fit at the start yet:
    // once the consumer passes the padding, the whole ring is contiguous.
    if (!has_room(contiguous)) return nullptr;
    store_u32(data_ + pos, kPadding);
    write_ += contiguous;
    pos = 0;
  }
  if (!has_room(size)) return nullptr;
  return data_ + pos + kLengthBytes;
}

inline void SpscRing::commit(size_t n) {
  store_u32(data_ + (write_ & mask_), static_cast<uint32_t>(n));
  write_ += record_bytes(n);
}

inline bool SpscRing::publish() {
  if (write_ == published_) return false;  // nothing new: any waiter was told of the rest
  published_ = write_;
  // seq_cst with consumer_prepare_sleep()'s: either the consumer sees the new
  // head, or we see its flag.
  header_->head.store(write_, std::memory_order_seq_cst);
  return header_->consumer_waiting.load(std::memory_order_seq_cst) != 0 &&
         header_->consumer_waiting.exchange(0, std::memory_order_relaxed) != 0;
}

inline bool SpscRing::try_push(std::string_view record) {
  char* at = reserve(record.size());
  if (at == nullptr) return false;
  if (!record.empty()) std::memcpy(at, record.data(), record.size());
  commit(record.size());
  return true;
}

inline bool SpscRing::producer_prepare_sleep(size_t n) {
  if (write_ != published_) return false;
  header_->producer_waiting.store(1, std::memory_order_seq_cst);  // see release()
  refresh_tail();
  bool room = false;
  if (n <= capacity_ - kLengthBytes && !corrupted_) {
    const uint64_t size = record_bytes(n);
    const uint64_t contiguous = capacity_ - (write_ & mask_);
    // Room for the padding alone is progress too: reserve() writes it.
    room = write_ + (size <= contiguous ? size : contiguous) - cached_tail_ <= capacity_;
  }
  if (room) header_->producer_waiting.store(0, std::memory_order_relaxed);
  return !room;
}

inline void SpscRing::refresh_head() {
  // seq_cst (a plain load on x86 and arm64) for consumer_prepare_sleep().
  const uint64_t head = header_->head.load(std::memory_order_seq_cst);
  // A producer never publishes more than one ring past the tail this side
  // stored last (released_), nor takes back what was read: a head outside
  // [read_, head_limit_] is a scribble. Bounding by released_, not read_,
  // also bounds what one stretch of peek()s can take however the head
  // keeps moving.
  if (head - read_ > head_limit_ - read_) {
    corrupted_ = true;
    return;
  }
  cached_head_ = head;
}

inline std::string_view SpscRing::peek() {
  for (;;) {
    if (read_ == cached_head_) {
      refresh_head();
      if (read_ == cached_head_) return {};
    }
    const uint64_t pos = read_ & mask_;
    const uint64_t available = cached_head_ - read_;
    const uint32_t length = load_u32(data_ + pos);
    if (length == kPadding) {
      const uint64_t padding = capacity_ - pos;
      if (padding > available) break;
      read_ += padding;
      continue;
    }
    const uint64_t size = record_bytes(length);
    if (size > available || size > capacity_ - pos) break;
    peeked_ = size;
    return {data_ + pos + kLengthBytes, length};
  }
  corrupted_ = true;
  return {};
}

inline void SpscRing::consume() {
  read_ += peeked_;
  peeked_ = 0;
}

inline bool SpscRing::release() {
  if (read_ == released_) return false;
  released_ = read_;
  head_limit_ = read_ + capacity_;
  // seq_cst with producer_prepare_sleep()'s: either the producer sees the
  // space, or we see its flag.
  header_->tail.store(read_, std::memory_order_seq_cst);
  return header_->producer_waiting.load(std::memory_order_seq_cst) != 0 &&
         header_->producer_waiting.exchange(0, std::memory_order_relaxed) != 0;
}

inline bool SpscRing::consumer_prepare_sleep() {
  if (read_ != released_) return false;
  header_->consumer_waiting.store(1, std::memory_order_seq_cst);  // see publish()
  refresh_head();
  if (read_ != cached_head_ && !corrupted_) {
    header_->consumer_waiting.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

inline void SpscRing::reset() {
  if (header_ == nullptr) return;
  header_->capacity = capacity_;
  header_->magic = kMagic;
  header_->head.store(0, std::memory_order_seq_cst);
  header_->tail.store(0, std::memory_order_seq_cst);
  header_->producer_waiting.store(0, std::memory_order_seq_cst);
  header_->consumer_waiting.store(0, std::memory_order_seq_cst);
  write_ = published_ = cached_tail_ = 0;
  read_ = released_ = cached_head_ = peeked_ = 0;
  head_limit_ = capacity_;
  corrupted_ = false;
}

inline uint64_t SpscRing::used_bytes() const {
  const uint64_t tail = header_->tail.load(std::memory_order_acquire);
  const uint64_t head = header_->head.load(std::memory_order_acquire);
  return head - tail <= capacity_ ? head - tail : 0;
}

}  // namespace corral::ipc

// IdMap<T>: a map from nonzero 64-bit ids to values, for ids that a counter
// hands out (tasks). One flat table, Robin Hood open addressing with erase
// by backward shift (no tombstones): no allocation per entry. An id's
// home slot is the id modulo (capacity - 1), an odd number: the ids alive
// at once, mostly a run of consecutive ones, take consecutive slots (one
// lookup is one division and one compare, and the next id's slot is in the
// same cache line), and ids of a power-of-two stride (every 1024th task
// kept long) do not pile onto a few slots. The table doubles above half
// full and halves when it stays under an eighth full (shrink_if_idle); its
// owner calls shrink_to_fit() once idle, so a burst does not keep its memory.
//
// Values move when the table grows or shrinks and when an erase shifts its
// neighbours: a pointer from find() is valid until the next insert or erase.
// Iteration order is the table's, not the ids'. Not thread-safe.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace corral {

template <typename T>
class IdMap {
 public:
  IdMap() { reset(kMinCapacity); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return ids_.size(); }

  T* find(uint64_t id) {
    size_t i = locate(id);
    return i == kNone ? nullptr : &values_[i];
  }
  const T* find(uint64_t id) const {
    size_t i = locate(id);
    return i == kNone ? nullptr : &values_[i];
  }
  bool contains(uint64_t id) const { return locate(id) != kNone; }

  // Adds ID (nonzero, not in the map) with VALUE.
  T& insert(uint64_t id, T value) {
    assert(id != 0 && !contains(id));
    if (2 * (size_ + 1) > capacity()) rehash(2 * capacity());
    ++size_;
    return place(id, std::move(value));
  }

  // Removes ID and returns its value; false when ID is not in the map.
  bool erase(uint64_t id, T* taken = nullptr) {
    size_t hole = locate(id);
    if (hole == kNone) return false;
    if (taken != nullptr) *taken = std::move(values_[hole]);
    --size_;
    // Backward shift: the entries after the hole move back one slot, up to
    // an empty slot or one at its home (nothing after it probed past).
    const size_t mask = capacity() - 1;
    for (size_t i = (hole + 1) & mask; ids_[i] != 0 && distance(i) > 0; i = (i + 1) & mask) {
      ids_[hole] = ids_[i];
      values_[hole] = std::move(values_[i]);
      hole = i;
    }
    ids_[hole] = 0;
    values_[hole] = T{};
    shrink_if_idle();
    return true;
  }

  void clear() { reset(kMinCapacity); }

  // Gives back what a burst left: the smallest table at most half full.
  void shrink_to_fit() {
    size_t fit = kMinCapacity;
    while (fit < 2 * size_) fit *= 2;
    if (fit < capacity()) rehash(fit);
  }

  // F(id, value&) for every entry; F must not insert or erase.
  template <typename F>
  void for_each(F&& f) {
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] != 0) f(ids_[i], values_[i]);
    }
  }
  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] != 0) f(ids_[i], values_[i]);
    }
  }

 private:
  static constexpr size_t kMinCapacity = 16;
  static constexpr size_t kNone = ~size_t{0};

  // A table that stays under an eighth full halves, but only after as many
  // erases as it has slots with it that small: a size that swings (a burst
  // read, then handed out, down to none) does not grow and shrink the table
  // at every swing, and a rehash stays O(1) per erase over time.
  void shrink_if_idle() {
    if (capacity() <= kMinCapacity) return;
    if (8 * size_ >= capacity()) {
      small_erases_ = 0;
    } else if (++small_erases_ >= capacity()) {
      rehash(capacity() / 2);
    }
  }

  size_t home_of(uint64_t id) const { return static_cast<size_t>(id % (capacity() - 1)); }

  // How far the entry in slot I is from its home.
  size_t distance(size_t i) const { return (i + capacity() - home_of(ids_[i])) & (capacity() - 1); }

  // Robin Hood: along a probe, entries are never closer to their home than
  // the id looked for would be, so a miss ends at the first one that is.
  size_t locate(uint64_t id) const {
    if (id == 0) return kNone;
    const size_t mask = capacity() - 1;
    for (size_t i = home_of(id), probed = 0;; i = (i + 1) & mask, ++probed) {
      if (ids_[i] == id) return i;
      if (ids_[i] == 0 || distance(i) < probed) return kNone;
    }
  }

  // Robin Hood insertion: an entry that is further from its home takes the
  // slot of one that is closer, which moves on.
  T& place(uint64_t id, T&& value) {
    const size_t mask = capacity() - 1;
    T* placed = nullptr;
    for (size_t i = home_of(id), probed = 0;; i = (i + 1) & mask, ++probed) {
      if (ids_[i] == 0) {
        ids_[i] = id;
        values_[i] = std::move(value);
        return placed != nullptr ? *placed : values_[i];
      }
      if (size_t theirs = distance(i); theirs < probed) {
        std::swap(id, ids_[i]);
        std::swap(value, values_[i]);
        if (placed == nullptr) placed = &values_[i];
        probed = theirs;
      }
    }
  }

  void reset(size_t capacity) {
    ids_.assign(capacity, 0);
    values_.clear();
    values_.resize(capacity);
    size_ = 0;
    small_erases_ = 0;
  }

  void rehash(size_t capacity) {
    std::vector<uint64_t> ids = std::move(ids_);
    std::vector<T> values = std::move(values_);
    size_t size = size_;
    reset(capacity);
    size_ = size;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] != 0) place(ids[i], std::move(values[i]));
    }
  }

  std::vector<uint64_t> ids_;  // 0: an empty slot
  std::vector<T> values_;
  size_t size_ = 0;
  size_t small_erases_ = 0;  // erases in a row with the table under an eighth full
};

}  // namespace corral

// The public SharedValue<T>, SharedArray<T>, shared_value<T>() and
// shared_array<T>() of corral/worker.h, for the three element types. The
// cells are found by shared_lookup.h; here they are only read and written.
#include <bit>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "corral/worker.h"
#include "worker/shared_lookup.h"

namespace corral {
namespace {

template <class T>
uint64_t to_bits(T value) {
  return std::bit_cast<uint64_t>(value);
}
template <class T>
T from_bits(uint64_t bits) {
  return std::bit_cast<T>(bits);
}

}  // namespace

template <class T>
T SharedValue<T>::load() const {
  return from_bits<T>(cell_->load(std::memory_order_relaxed));
}

template <class T>
void SharedValue<T>::store(T value) {
  cell_->store(to_bits(value), std::memory_order_relaxed);
}

template <class T>
T SharedValue<T>::fetch_add(T delta) {
  if constexpr (std::is_same_v<T, double>) {
    // No atomic add of doubles across processes: compare-and-swap the bits.
    uint64_t old_bits = cell_->load(std::memory_order_relaxed);
    while (!cell_->compare_exchange_weak(old_bits, to_bits(from_bits<double>(old_bits) + delta),
                                         std::memory_order_relaxed)) {
    }
    return from_bits<double>(old_bits);
  } else {
    // Two's complement: adding the bits of an i64 adds the i64, wrapping.
    return from_bits<T>(cell_->fetch_add(to_bits(delta), std::memory_order_relaxed));
  }
}

template <class T>
SharedValue<T> SharedArray<T>::operator[](size_t i) const {
  if (i >= length_) {
    throw std::out_of_range("shared array index " + std::to_string(i) + " out of range (length " +
                            std::to_string(length_) + ")");
  }
  return SharedValue<T>(cells_ + i);
}

template <class T>
SharedValue<T> shared_value(std::string_view name) {
  return SharedValue<T>(sdk::find_shared<T>(name, false).cells);
}

template <class T>
SharedArray<T> shared_array(std::string_view name) {
  sdk::SharedCells found = sdk::find_shared<T>(name, true);
  return SharedArray<T>(found.cells, found.length);
}

template class SharedValue<uint64_t>;
template class SharedValue<int64_t>;
template class SharedValue<double>;
template class SharedArray<uint64_t>;
template class SharedArray<int64_t>;
template class SharedArray<double>;
template SharedValue<uint64_t> shared_value<uint64_t>(std::string_view);
template SharedValue<int64_t> shared_value<int64_t>(std::string_view);
template SharedValue<double> shared_value<double>(std::string_view);
template SharedArray<uint64_t> shared_array<uint64_t>(std::string_view);
template SharedArray<int64_t> shared_array<int64_t>(std::string_view);
template SharedArray<double> shared_array<double>(std::string_view);

}  // namespace corral

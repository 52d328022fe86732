// What the fuzz targets share: a property check that libFuzzer sees as a
// crash, and the split of a stream into reads of varying size.
#pragma once

#include <cstddef>
#include <cstdint>

namespace corral::fuzz {

// A property that does not hold is a finding: trap, so that libFuzzer keeps
// the input.
inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Piece sizes from 0 to 31 bytes, from a seed (xorshift): fed to a decoder,
// many reads split an item in its length prefix, its header or its payload.
class Pieces {
 public:
  explicit Pieces(uint32_t seed) : state_(seed * 2654435761u + 1) {}
  size_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_ % 32;
  }

 private:
  uint32_t state_;
};

}  // namespace corral::fuzz

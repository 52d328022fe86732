// The job's shared values and arrays (`shared:` in its config) as the public
// shared_value<T>() and shared_array<T>() find them: the cells of a name in
// the segment this process attached (shm_attachment.h), checked to be of
// the kind and type asked for.
//
// Free of base/, for the public side of the SDK (see serving.h); failures
// are std::runtime_error, as corral/worker.h promises. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace corral::sdk {

struct SharedCells {
  std::atomic<uint64_t>* cells = nullptr;  // in the segment, mapped for the process's life
  size_t length = 0;                       // 1 for a value
};

// The element types a config can declare (`type: u64 | i64 | f64`).
enum class SharedType { kU64, kI64, kF64 };
const char* shared_type_name(SharedType type);

// What a name is in the job's segment, whatever it was declared as.
struct SharedFound {
  SharedCells cells;
  SharedType type = SharedType::kU64;
  bool array = false;
};

// The shared value or array NAME as declared (the Python module's lookup,
// which takes the type from the config). Throws std::runtime_error when the
// worker is not on the shm channel, its segment could not be attached, or
// the job declares no such name.
SharedFound find_shared_any(std::string_view name);

// The cells of the shared value (ARRAY false) or array NAME whose elements
// are T (uint64_t, int64_t or double). Throws std::runtime_error when the
// worker is not on the shm channel, its segment could not be attached, the
// job declares no such name, or declares it as the other kind or type.
template <class T>
SharedCells find_shared(std::string_view name, bool array);

}  // namespace corral::sdk

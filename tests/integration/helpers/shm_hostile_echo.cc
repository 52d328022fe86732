// The behaving half of shm_hostile_worker: an echo worker on the C++ SDK.
// A file of its own, since corral/worker.h (the SDK's corral::Result) and
// ipc/ (base/result.h's corral::Result<T, E>) cannot be seen by one file.
#include <corral/worker.h>

#include <string>
#include <string_view>

int serve_echo() {
  return corral::serve([](std::string_view task) { return std::string(task); });
}

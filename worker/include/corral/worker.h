// The corral worker SDK for C++.
//
//   #include <corral/worker.h>
//   int main() {
//     return corral::serve([](std::string_view task) -> corral::Result {
//       return std::to_string(task.size());           // a result
//       // or: return corral::Result::failure("why");  // a failed task
//     });
//   }
//
// serve() reads the channel corrald gave the process from its environment
// (CORRAL_CHANNEL: shm or pipe; CORRAL_FRAMING, CORRAL_SHM, CORRAL_FDS; see
// docs/worker-protocol.md), says READY, runs the handler for each task and
// sends its result back, and returns 0 when the daemon sends the sentinel
// (or closes the pipe). A handler that throws fails its task with the
// exception's message; the worker goes on. The handler runs on the thread
// that called serve(), one task at a time.
//
// shared_value<T>(name) and shared_array<T>(name) reach the job's `shared:`
// values and arrays (shm channel only); T is uint64_t, int64_t or double,
// as the config declares. Every operation is atomic across the job's workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

namespace corral {

class Result {
 public:
  Result(std::string payload)
      : ok_(true), payload_(std::move(payload)) {}               // NOLINT: implicit on purpose
  Result(const char* payload) : ok_(true), payload_(payload) {}  // NOLINT
  static Result success(std::string payload) { return Result(std::move(payload)); }
  static Result failure(std::string message) {
    Result r(std::move(message));
    r.ok_ = false;
    return r;
  }
  bool ok() const { return ok_; }
  const std::string& payload() const { return payload_; }

 private:
  bool ok_;
  std::string payload_;
};

using Handler = std::function<Result(std::string_view task)>;

// Serves tasks until the sentinel; returns the process's exit code (0 after
// a sentinel, 2 when the environment names no usable channel, 1 when the
// channel broke, 3 when a task failed under `framing: lines`, which cannot
// report a failure). Errors are written to stderr.
int serve(const Handler& handler);

// Called from the handler: serve() returns 0 once the result of the task
// being handled has been sent, without waiting for the sentinel (a worker
// that recycles itself after N tasks). Tasks the daemon had already sent
// ahead to this worker are redelivered to another one when it exits.
void stop_after_this_task();

// The environment of this worker, as corrald set it.
std::string_view job_name();  // CORRAL_JOB
int worker_index();           // CORRAL_WORKER, -1 when not under corrald

template <class T>
class SharedValue {
  static_assert(std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t> ||
                    std::is_same_v<T, double>,
                "shared values are uint64_t, int64_t or double");

 public:
  explicit SharedValue(std::atomic<uint64_t>* cell) : cell_(cell) {}
  T load() const;
  void store(T value);
  // Adds DELTA; returns the value before.
  T fetch_add(T delta);

 private:
  std::atomic<uint64_t>* cell_;
};

template <class T>
class SharedArray {
 public:
  SharedArray(std::atomic<uint64_t>* cells, size_t length) : cells_(cells), length_(length) {}
  size_t size() const { return length_; }
  // Element I (I < size(), checked: throws std::out_of_range).
  SharedValue<T> operator[](size_t i) const;

 private:
  std::atomic<uint64_t>* cells_;
  size_t length_;
};

// The job's shared value NAME. Throws std::runtime_error when the job has no
// such value, declares it with another type, or the worker is not on the shm
// channel.
template <class T>
SharedValue<T> shared_value(std::string_view name);
template <class T>
SharedArray<T> shared_array(std::string_view name);

}  // namespace corral

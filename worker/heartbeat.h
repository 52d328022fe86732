// A worker's heartbeat: a thread that calls BEAT every PERIOD, so that a
// long task does not make the worker look dead, while a stopped or hung
// process does stop beating (SIGSTOP stops every thread). The shm channel's
// beat writes the slot's heartbeat cell, the length-framed pipe's a
// HEARTBEAT frame.
//
// Consecutive beats are at least PERIOD apart (a beat's own time is not
// counted in it), so the rate never exceeds the one corrald asked for.
// Thread-safe in the only way it is used: made and destroyed by one thread,
// BEAT run on its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace corral::sdk {

class Heartbeat {
 public:
  // Starts the thread; nothing at all when PERIOD is zero (no heartbeats
  // asked for). Throws std::system_error when no thread can be made.
  Heartbeat(std::chrono::milliseconds period, std::function<void()> beat);
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;
  // Stops the thread without waiting for the next beat; no beat starts after.
  ~Heartbeat();

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace corral::sdk

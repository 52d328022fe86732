#include "worker/heartbeat.h"

#include <utility>

namespace corral::sdk {

Heartbeat::Heartbeat(std::chrono::milliseconds period, std::function<void()> beat) {
  if (period <= std::chrono::milliseconds::zero()) return;
  thread_ = std::thread([this, period, beat = std::move(beat)] {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      if (cv_.wait_for(lock, period, [this] { return stop_; })) break;
      lock.unlock();
      beat();
      lock.lock();
    }
  });
}

Heartbeat::~Heartbeat() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

}  // namespace corral::sdk

// corrald's own recent log lines, kept in memory for `corralctl maintail`
// whatever corrald's log goes to (stderr, the journal): a spdlog sink beside
// the stderr one that keeps the last lines within a count and a byte bound.
// Each line gets a number, so that a follower (maintail -f) asks for what
// came after the last line it saw and learns how many it missed when it
// fell behind by more than the ring holds.
//
// Not thread-safe (a null-mutex sink): corrald logs from its one thread.
#pragma once

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace corral::daemon {

// Lines of the ring, and where the next ones start.
struct LogChunk {
  std::string text;     // whole lines, each ending in '\n'
  uint64_t next = 0;    // the number of the line after them
  uint64_t missed = 0;  // lines asked for that the ring had already dropped
};

class LogRing : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  static constexpr size_t kMaxLines = 1000;
  static constexpr size_t kMaxBytes = 1 << 20;
  // A longer line is cut here (and says so): one line cannot push out the rest.
  static constexpr size_t kMaxLineBytes = 16 << 10;

  explicit LogRing(size_t max_lines = kMaxLines, size_t max_bytes = kMaxBytes)
      : max_lines_(max_lines), max_bytes_(max_bytes) {}

  // Keeps LINE (a '\n' is added when it has none), dropping the oldest
  // lines while more than max_lines or max_bytes are kept.
  void add(std::string line);

  // The number of the first of the last N lines kept (fewer when fewer are).
  uint64_t start_of_last(uint64_t n) const;
  // The lines from number FIRST on, about MAX_BYTES of them (at least one
  // line when there is one).
  LogChunk since(uint64_t first, size_t max_bytes) const;
  // The number the next line will get.
  uint64_t end() const { return first_ + lines_.size(); }
  size_t bytes() const { return bytes_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  size_t max_lines_;
  size_t max_bytes_;
  std::deque<std::string> lines_;
  uint64_t first_ = 0;  // the number of lines_.front()
  size_t bytes_ = 0;
};

}  // namespace corral::daemon

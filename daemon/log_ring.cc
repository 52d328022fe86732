#include "daemon/log_ring.h"

#include <algorithm>

namespace corral::daemon {

void LogRing::add(std::string line) {
  if (line.empty() || line.back() != '\n') line.push_back('\n');
  if (line.size() > kMaxLineBytes) {
    constexpr std::string_view kCut = " [line cut: too long]\n";
    line.resize(kMaxLineBytes - kCut.size());
    line.append(kCut);
  }
  bytes_ += line.size();
  lines_.push_back(std::move(line));
  while (!lines_.empty() && (lines_.size() > max_lines_ || bytes_ > max_bytes_)) {
    bytes_ -= lines_.front().size();
    lines_.pop_front();
    ++first_;
  }
}

uint64_t LogRing::start_of_last(uint64_t n) const {
  return end() - std::min<uint64_t>(n, lines_.size());
}

LogChunk LogRing::since(uint64_t first, size_t max_bytes) const {
  LogChunk chunk;
  if (first < first_) {
    chunk.missed = first_ - first;
    first = first_;
  }
  uint64_t number = std::min(first, end());
  for (; number < end(); ++number) {
    const std::string& line = lines_[number - first_];
    if (!chunk.text.empty() && chunk.text.size() + line.size() > max_bytes) break;
    chunk.text += line;
  }
  chunk.next = number;
  return chunk;
}

void LogRing::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t formatted;
  formatter_->format(msg, formatted);
  add(std::string(formatted.data(), formatted.size()));
}

}  // namespace corral::daemon

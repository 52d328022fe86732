// ByteQueue: the buffers of corralctl's submit stream (ctl/submit.cc), its
// input, the task lines not yet sent and corrald's bytes not yet read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace corral::ctl {

// A byte queue: appended at the tail, consumed at the head. When the tail
// has no room it moves what is left to the front, or grows if that is more
// than half of the block, so that a steady stream reuses one block.
class ByteQueue {
 public:
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  const char* data() const { return block_.get() + begin_; }
  // Room for N more bytes at the tail; commit() tells how many were written.
  char* tail(size_t n) {
    if (capacity_ - end_ < n) make_room(n);
    return block_.get() + end_;
  }
  void commit(size_t n) { end_ += n; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void append(std::string_view bytes) {
    if (bytes.empty()) return;
    std::memcpy(tail(bytes.size()), bytes.data(), bytes.size());
    commit(bytes.size());
  }
  std::string take_all() {
    if (empty()) return {};
    std::string bytes(data(), size());
    begin_ = end_ = 0;
    return bytes;
  }

 private:
  void make_room(size_t n) {
    size_t used = size();
    if (used + n <= capacity_ / 2) {
      std::memmove(block_.get(), data(), used);
    } else {
      size_t capacity = std::max({capacity_ * 2, 2 * (used + n), size_t{64} << 10});
      auto block = std::make_unique_for_overwrite<char[]>(capacity);
      if (used > 0) std::memcpy(block.get(), data(), used);
      block_ = std::move(block);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = used;
  }

  std::unique_ptr<char[]> block_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace corral::ctl

// A Redis reply as corral keeps it: copied out of hiredis's, so that it
// outlives the callback that got it. The types of RESP2, which Redis 7
// answers with unless a client asks for RESP3.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::redis {

struct Reply {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string text;  // kString (bytes), kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  static Reply string(std::string bytes) { return Reply{Type::kString, std::move(bytes), 0, {}}; }
  static Reply status(std::string text) { return Reply{Type::kStatus, std::move(text), 0, {}}; }
  static Reply error(std::string text) { return Reply{Type::kError, std::move(text), 0, {}}; }
  static Reply number(int64_t value) { return Reply{Type::kInteger, {}, value, {}}; }
  static Reply nil() { return Reply{}; }
  static Reply array(std::vector<Reply> elements) {
    return Reply{Type::kArray, {}, 0, std::move(elements)};
  }

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  bool is_array() const { return type == Type::kArray; }
  bool is_string() const { return type == Type::kString || type == Type::kStatus; }
  // The I-th element of an array, or null.
  const Reply* at(size_t i) const {
    return is_array() && i < elements.size() ? &elements[i] : nullptr;
  }
  bool operator==(const Reply&) const = default;
};

// For logs and test failures: `"OK"`, `(error) ERR ...`, `[1, "a", nil]`.
std::string describe(const Reply& reply);

}  // namespace corral::redis

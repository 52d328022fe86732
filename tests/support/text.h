// Small questions tests ask of text (logs, replies, screens). Thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace corral::testing {

// How many times WHAT occurs in TEXT, overlapping occurrences included.
inline size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace corral::testing

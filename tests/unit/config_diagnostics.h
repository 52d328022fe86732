// For the tests of the config loader: its diagnostics as a list (empty when
// the config loaded) and as readable text for failure messages.
#pragma once

#include <string>
#include <vector>

#include "config/parse.h"

namespace corral::config {

// The diagnostics of RESULT; none when it loaded.
inline const std::vector<Diagnostic>& errors_of(const ParseResult& result) {
  static const std::vector<Diagnostic> kNone;
  return result.ok() ? kNone : result.error();
}

// Every error as "file:line:column: message", a line each.
inline std::string all_errors(const ParseResult& result) {
  std::string out;
  for (const Diagnostic& d : errors_of(result)) out += d.str() + "\n";
  return out;
}

}  // namespace corral::config

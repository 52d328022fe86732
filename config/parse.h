// Reads a corral YAML config (and the files its `include` globs name) into a
// validated Config. This is the only place that reads YAML. It never throws:
// every problem becomes a Diagnostic with its file:line:column, and all of
// them are reported at once. Safe to call from any thread, one load a call.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "config/spec.h"

namespace corral::config {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no place in a file
  int column = 0;  // 1-based
  std::string message;

  // "file:line:column: message", or "file: message" without a place.
  std::string str() const;
};

// The config, or every problem found in it (in file order, at least one).
using ParseResult = Result<Config, std::vector<Diagnostic>>;

// Limits a config file's size: a config is small, a huge file is a mistake.
constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;

// Loads FILE and its includes. `cpus` resolves `workers: auto`.
ParseResult load_file(const std::string& file, unsigned cpus);

// Parses TEXT as if it were the content of FILE (includes are still read
// from disk, relative to FILE's directory). Without READ_INCLUDES the include
// globs are checked and kept in Config::include but not expanded, so that no
// file but TEXT is read (the fuzzer).
ParseResult load_string(const std::string& text, const std::string& file, unsigned cpus,
                        bool read_includes = true);

}  // namespace corral::config

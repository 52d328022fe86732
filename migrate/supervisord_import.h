// `corralctl import supervisord FILE`: a supervisord configuration turned
// into a corral config. FILE is read as supervisord 4 reads it
// (supervisord_ini.h, supervisord_values.h); each [program:x] becomes a job
// that does what supervisord would have done, and every option without an
// equivalent, or with a different meaning, gets a YAML comment at its place
// saying why (docs/coming-from-supervisord.md is the same mapping in prose).
// The YAML text is checked with config::load_string before it is returned:
// a text that corral would refuse is an internal error, never an output.
// Reads FILE and its includes; writes nothing. Safe from any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "migrate/supervisord_ini.h"

namespace corral::migrate {

struct ImportOptions {
  // The environment of the importing process: %(ENV_X)s.
  std::map<std::string, std::string> environ;
  // %(host_node_name)s (supervisord's platform.node()).
  std::string host_node_name;
  // Named in the header comment.
  std::string corral_version;
  // Where the YAML will be written (for the check's messages); "" for stdout.
  std::string output_name;
};

// Exit codes of the import, as corralctl exits.
inline constexpr int kImportClean = 0;           // written, nothing to warn of
inline constexpr int kImportWarnings = 1;        // written, with warnings
inline constexpr int kImportNothingWritten = 2;  // refused: errors, nothing written

struct ImportResult {
  std::string yaml;  // empty when nothing is to be written
  std::vector<Diagnostic> warnings;
  std::vector<Diagnostic> errors;  // when not empty, yaml is empty
  int exit_code = kImportClean;
};

ImportResult import_supervisord(const std::string& file, const ImportOptions& options);

// The sh -c script that runs ARGV with each word quoted for a POSIX shell
// ('...' with '\'' for a quote): "exec 'a' 'b c'". For tests and the import.
std::string shell_quote(const std::string& word);

}  // namespace corral::migrate

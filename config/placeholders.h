// The placeholders of a job's command and of its log.stdout/log.stderr
// paths: {job} is the job's name, {index} the worker's index (from 0),
// {index+K} the index plus K (supervisord's numprocs_start) and {index:0N}
// (or {index+K:0N}) zero-padded to N digits (1 to 9). So each worker of a
// job may get arguments and a file of its own (a log path without {index}
// is shared by the job's workers, as supervisord's numprocs share one).
// Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::config {

// Why PATH cannot name a log file (not absolute, naming a directory, a placeholder
// that is not one of the above, a NUL byte); ok otherwise.
Status check_log_path(std::string_view path);

// PATH with its placeholders replaced; PATH must have passed check_log_path.
std::string expand_log_path(std::string_view path, std::string_view job, uint32_t index);

// A command's argument or an env value with its placeholders replaced; any other text,
// braces that open no placeholder included, is kept as written.
std::string expand_placeholders(std::string_view arg, std::string_view job, uint32_t index);

}  // namespace corral::config

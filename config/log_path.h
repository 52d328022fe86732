// The file names of `log.stdout` and `log.stderr`: an absolute path in which
// {job} is the job's name, {index} the worker's index (from 0) and {index:0N}
// the index zero-padded to N digits (1 to 9), so that each worker of a job
// may write a file of its own (without {index} they share one, as
// supervisord's numprocs do). Pure functions, safe from any thread.
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

}  // namespace corral::config

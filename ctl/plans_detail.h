// What the two files of corralctl's plans share: plans.cc (the worker and
// daemon commands, help, import) and task_plans.cc (the task commands).
// Internal to them; pure functions, thread-safe.
#pragma once

#include <span>

#include "ctl/arguments.h"
#include "ctl/commands.h"
#include "ctl/output.h"

namespace corral::ctl::detail {

// A plan that sends nothing: OUTPUT is printed (a usage error, a help text).
Plan answered(const Command& self, Output output);

// The option tables of the task commands (task_plans.cc), which
// takes_next_word (plans.cc) reads besides its own.
std::span<const std::span<const OptionSpec>> task_options();

}  // namespace corral::ctl::detail

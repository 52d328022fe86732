// For the tests of corralctl's commands: the plan of a command line as the
// text output (no --json) would carry it out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ctl/commands.h"

namespace corral::ctl {

inline Plan text_plan(std::string_view name, const std::vector<std::string>& args) {
  return plan_command(name, args, Format::kText);
}

}  // namespace corral::ctl

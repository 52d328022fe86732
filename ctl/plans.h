// The plans of corralctl's commands: each turns the words after a command's
// name into a Plan (commands.h): the request to send, or the answer at once
// (--help, a usage error). The command table (commands.cc) points at them.
// plans.cc holds the worker and daemon commands' plans, help's and import's,
// task_plans.cc the task commands'. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctl/commands.h"

namespace corral::ctl {

using PlanFunction = Plan(const Command& self, const std::vector<std::string>& args, Format format);

// plans.cc
PlanFunction plan_optional_targets;  // [TARGET...]
// status [TARGET...]: as text, it asks for the fields the text shows
// (status_text_fields(), ctl/replies.h); --json asks for every field.
PlanFunction plan_status;
PlanFunction plan_required_targets;  // TARGET...
PlanFunction plan_signal;
PlanFunction plan_restart;
PlanFunction plan_no_args;
PlanFunction plan_help;
PlanFunction plan_tail;
PlanFunction plan_fg;
PlanFunction plan_maintail;
PlanFunction plan_top;
PlanFunction plan_import;  // import supervisord FILE [-o OUT]: local

// task_plans.cc
PlanFunction plan_one_job;       // JOB
PlanFunction plan_optional_job;  // [JOB]
PlanFunction plan_submit;
PlanFunction plan_wait;
PlanFunction plan_dead;
PlanFunction plan_retry;
PlanFunction plan_cancel;
PlanFunction plan_results;

// Whether ARG is an option of some command that takes its value from the
// next word (the shell's completion must not complete that word as a target).
bool takes_next_word(std::string_view arg);

}  // namespace corral::ctl

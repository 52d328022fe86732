// The plans of corralctl's worker and daemon commands (status, start, stop,
// restart, signal, tail, fg, top, maintail, update, shutdown and the like),
// of help and import, and takes_next_word. The task commands' plans are in
// task_plans.cc.
#include "ctl/plans.h"

#include <array>
#include <cstdint>
#include <utility>

#include "config/units.h"
#include "ctl/arguments.h"
#include "ctl/output.h"
#include "ctl/plans_detail.h"
#include "ctl/replies.h"

namespace corral::ctl {

namespace detail {

// A plan that sends nothing: OUTPUT is printed (a usage error, a help text).
Plan answered(const Command& self, Output output) {
  return Plan{&self, std::nullopt, std::move(output), std::nullopt};
}

}  // namespace detail

using detail::answered;

namespace {

Plan plan_with_targets(const Command& self, const std::vector<std::string>& args, Format format,
                       bool required) {
  Operands operands = split_args(self, args, format);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  if (required && operands.words.empty()) {
    return answered(self,
                    usage_error(&self, std::string(self.name) + ": needs at least one TARGET"));
  }
  Json request{{"cmd", self.name}};
  if (!operands.words.empty()) {
    auto targets = parse_targets(self, operands.words);
    if (!targets) return answered(self, targets.error());
    request["targets"] = std::move(*targets);
  }
  plan.request = std::move(request);
  return plan;
}

}  // namespace

Plan plan_optional_targets(const Command& self, const std::vector<std::string>& args,
                           Format format) {
  return plan_with_targets(self, args, format, false);
}

Plan plan_status(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan = plan_with_targets(self, args, format, false);
  if (plan.request && format == Format::kText) {
    // Fewer fields: a shorter reply to read, and nothing sampled from /proc.
    (*plan.request)["fields"] = status_text_fields();
  }
  return plan;
}

Plan plan_required_targets(const Command& self, const std::vector<std::string>& args,
                           Format format) {
  return plan_with_targets(self, args, format, true);
}

// signal SIG TARGET...: the signal is checked here, as corrald would.
Plan plan_signal(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  if (operands.words.size() < 2) {
    return answered(self, usage_error(&self, "signal: needs a signal and at least one TARGET"));
  }
  const std::string& name = operands.words.front();
  if (!config::parse_signal(name)) {
    return answered(
        self, usage_error(&self, "signal: unknown signal '" + name +
                                     "' (expected a name like HUP, SIGUSR1, TERM or a number)"));
  }
  std::vector<std::string> words(operands.words.begin() + 1, operands.words.end());
  auto targets = parse_targets(self, words);
  if (!targets) return answered(self, targets.error());
  plan.request = Json{{"cmd", "signal"}, {"signal", name}, {"targets", std::move(*targets)}};
  return plan;
}

namespace {

constexpr std::array kRestartOptions = {OptionSpec{"--rolling", false}};

}  // namespace

Plan plan_restart(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kRestartOptions);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plain = plan_with_targets(self, operands.words, format, true);
  if (plain.request && !operands.options.empty()) (*plain.request)["rolling"] = true;
  return plain;
}

Plan plan_no_args(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format);
  if (operands.answer) {
    plan.local = *operands.answer;
  } else if (!operands.words.empty()) {
    plan.local = usage_error(
        &self, std::string(self.name) + ": unexpected argument '" + operands.words.front() + "'");
  } else {
    plan.request = Json{{"cmd", self.name}};
  }
  return plan;
}

Plan plan_help(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format);
  if (operands.answer) {
    plan.local = *operands.answer;
  } else if (operands.words.size() > 1) {
    plan.local = usage_error(&self, "help: takes at most one COMMAND");
  } else if (operands.words.empty()) {
    if (format == Format::kJson) {
      Json list = Json::array();
      for (const auto& command : commands()) {
        list.push_back({{"name", command.name},
                        {"usage", command_line(command)},
                        {"summary", command.summary}});
      }
      plan.local.out = dump(list);
    } else {
      plan.local.out = overview();
    }
  } else if (const Command* command = find_command(operands.words.front())) {
    plan.local = help_of(*command, format);
  } else {
    plan.local = usage_error(&self, "help: unknown command '" + operands.words.front() + "'");
  }
  return plan;
}

namespace {

constexpr std::array kTailOptions = {OptionSpec{"-f", false}, OptionSpec{"--follow", false},
                                     OptionSpec{"--stderr", false}, OptionSpec{"-n", true},
                                     OptionSpec{"--lines", true}};

}  // namespace

Plan plan_tail(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kTailOptions);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Json request{{"cmd", "tail"}, {"lines", 10}, {"follow", false}, {"stderr", false}};
  for (const auto& [name, value] : operands.options) {
    if (name == "-f" || name == "--follow") {
      request["follow"] = true;
    } else if (name == "--stderr") {
      request["stderr"] = true;
    } else {
      auto n = value.empty() || value.find_first_not_of("0123456789") != std::string::npos
                   ? std::nullopt
                   : std::optional<uint64_t>(std::stoull(value.substr(0, 18)));
      if (!n) {
        return answered(
            self, usage_error(&self, "tail: -n needs a number of lines, got '" + value + "'"));
      }
      request["lines"] = *n;
    }
  }
  if (operands.words.size() != 1) {
    return answered(self, usage_error(&self, "tail: needs exactly one worker, JOB:INDEX"));
  }
  auto target = protocol::parse_target(operands.words.front());
  if (!target || target->all()) {
    return answered(self, usage_error(&self, "tail: '" + operands.words.front() +
                                                 "' is not one worker; name it as JOB:INDEX"));
  }
  request["target"] = protocol::to_string(*target);
  plan.request = std::move(request);
  plan.stream = true;
  return plan;
}

namespace {

constexpr std::array kFgOptions = {OptionSpec{"-n", true}, OptionSpec{"--lines", true}};

}  // namespace

// fg [-n N] JOB:INDEX: one worker, as tail names it; corrald refuses one
// that is not RUNNING.
Plan plan_fg(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kFgOptions);
  if (operands.answer) return answered(self, *operands.answer);
  Json request{{"cmd", "fg"}, {"lines", 10}};
  for (const auto& [name, value] : operands.options) {
    if (value.empty() || value.size() > 18 ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      return answered(self,
                      usage_error(&self, "fg: -n needs a number of lines, got '" + value + "'"));
    }
    request["lines"] = std::stoull(value);
  }
  if (operands.words.size() != 1) {
    return answered(self, usage_error(&self, "fg: needs exactly one worker, JOB:INDEX"));
  }
  auto target = protocol::parse_target(operands.words.front());
  if (!target) return answered(self, usage_error(&self, "fg: " + target.error().message()));
  if (target->all()) {
    return answered(self, usage_error(&self, "fg: '" + operands.words.front() +
                                                 "' is not one worker; name it as JOB:INDEX"));
  }
  request["target"] = protocol::to_string(*target);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  plan.request = std::move(request);
  plan.fg = true;
  return plan;
}

namespace {

constexpr std::array kMaintailOptions = {OptionSpec{"-f", false}, OptionSpec{"--follow", false},
                                         OptionSpec{"-n", true}, OptionSpec{"--lines", true}};

}  // namespace

// maintail [-f] [-n N]: corrald's own log, streamed as tail streams a worker's.
Plan plan_maintail(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kMaintailOptions);
  if (operands.answer) return answered(self, *operands.answer);
  if (!operands.words.empty()) {
    return answered(
        self, usage_error(&self, "maintail: unexpected argument '" + operands.words.front() + "'"));
  }
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Json request{{"cmd", "maintail"}, {"lines", 10}, {"follow", false}};
  for (const auto& [name, value] : operands.options) {
    if (name == "-f" || name == "--follow") {
      request["follow"] = true;
      continue;
    }
    if (value.empty() || value.size() > 18 ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      return answered(
          self, usage_error(&self, "maintail: -n needs a number of lines, got '" + value + "'"));
    }
    request["lines"] = std::stoull(value);
  }
  plan.request = std::move(request);
  plan.stream = true;
  return plan;
}

namespace {

constexpr std::array kTopOptions = {OptionSpec{"--interval", true}};

}  // namespace

Plan plan_top(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kTopOptions);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  if (!operands.words.empty()) {
    return answered(
        self, usage_error(&self, "top: unexpected argument '" + operands.words.front() + "'"));
  }
  std::chrono::milliseconds interval{1000};
  for (const auto& [name, value] : operands.options) {
    auto duration = config::parse_duration(value);
    if (!duration || duration->count() <= 0) {
      return answered(self, usage_error(&self, "top: invalid --interval '" + value +
                                                   "' (expected a duration like 500ms or 2s)"));
    }
    interval = *duration;
  }
  plan.request = Json{{"cmd", "stats"}};
  plan.top = interval;
  return plan;
}

namespace {

constexpr std::array kImportOptions = {OptionSpec{"-o", true}, OptionSpec{"--output", true}};

}  // namespace

// import supervisord FILE [-o OUT]: run here, never sent to corrald.
Plan plan_import(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kImportOptions);
  if (operands.answer) return answered(self, *operands.answer);
  if (operands.words.empty()) {
    return answered(self, usage_error(&self, "import: needs a source (supervisord) and a FILE"));
  }
  if (operands.words.front() != "supervisord") {
    return answered(self, usage_error(&self, "import: unknown source '" + operands.words.front() +
                                                 "' (the one source is supervisord)"));
  }
  if (operands.words.size() != 2) {
    return answered(
        self, usage_error(&self, operands.words.size() < 2 ? "import supervisord: needs a FILE"
                                                           : "import supervisord: takes one FILE"));
  }
  ImportRequest request{"supervisord", operands.words[1], std::nullopt};
  for (const auto& [name, value] : operands.options) {
    if (value.empty()) {
      return answered(self, usage_error(&self, "import: " + std::string(name) + " needs a file"));
    }
    request.out = value;
  }
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  plan.import = std::move(request);
  return plan;
}

// Whether ARG is a command option that takes its value from the next word.
bool takes_next_word(std::string_view arg) {
  constexpr std::array<std::span<const OptionSpec>, 4> kOwn = {kTailOptions, kFgOptions,
                                                               kTopOptions, kImportOptions};
  for (std::span<const std::span<const OptionSpec>> tables :
       {std::span<const std::span<const OptionSpec>>(kOwn), detail::task_options()}) {
    for (std::span<const OptionSpec> options : tables) {
      for (const OptionSpec& option : options) {
        if (option.takes_value && option.name == arg) return true;
      }
    }
  }
  return false;
}

}  // namespace corral::ctl

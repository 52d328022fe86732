#include "ctl/plans.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "config/units.h"
#include "ctl/arguments.h"
#include "ctl/output.h"
#include "protocol/exit_codes.h"
#include "protocol/json_text.h"
#include "protocol/task_lines.h"

namespace corral::ctl {

namespace {

// A plan that sends nothing: OUTPUT is printed (a usage error, a help text).
Plan answered(const Command& self, Output output) {
  return Plan{&self, std::nullopt, std::move(output), std::nullopt};
}

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

// ---- Task commands ----

namespace {

// WORDS must be one JOB, a valid job name: the job, or the usage error.
Result<std::string, Output> job_of(const Command& self, const std::vector<std::string>& words) {
  if (words.empty()) return usage_error(&self, std::string(self.name) + ": needs a JOB");
  if (words.size() > 1) {
    return usage_error(&self, std::string(self.name) + ": unexpected argument '" + words[1] + "'");
  }
  if (!protocol::valid_job_name(words.front())) {
    return usage_error(&self, std::string(self.name) + ": invalid job name '" + words.front() +
                                  "' (expected letters, digits, '_', '.' or '-')");
  }
  return words.front();
}

}  // namespace

namespace {

Plan plan_job(const Command& self, const std::vector<std::string>& args, Format format,
              bool required) {
  Operands operands = split_args(self, args, format);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Json request{{"cmd", self.name}};
  if (required || !operands.words.empty()) {
    auto job = job_of(self, operands.words);
    if (!job) return answered(self, job.error());
    request["job"] = *job;
  }
  plan.request = std::move(request);
  return plan;
}

}  // namespace

Plan plan_one_job(const Command& self, const std::vector<std::string>& args, Format format) {
  return plan_job(self, args, format, true);
}

Plan plan_optional_job(const Command& self, const std::vector<std::string>& args, Format format) {
  return plan_job(self, args, format, false);
}

namespace {

// A payload as a usage error shows it: quoted, escaped, cut after 40 bytes.
std::string quote_payload(std::string_view payload) {
  constexpr size_t kShown = 40;
  std::string quoted = protocol::json_string(payload.substr(0, kShown));
  if (payload.size() > kShown) quoted.insert(quoted.size() - 1, "...");
  return quoted;
}

}  // namespace

namespace {

constexpr std::array kSubmitOptions = {
    OptionSpec{"--data", true},    OptionSpec{"--file", true},    OptionSpec{"--wait", false},
    OptionSpec{"--timing", false}, OptionSpec{"--timeout", true}, OptionSpec{"--ordered", false},
    OptionSpec{"--deadline", true}};

// --deadline D as the request's deadline_s, or why D is not one. D is at
// most ten years (config/units.h), well within what corrald takes (1e9 s).
Result<double, std::string> deadline_seconds(const std::string& value) {
  auto deadline = config::parse_duration(value);
  if (!deadline) {
    return "invalid --deadline '" + value + "': " + deadline.error().message() +
           " (expected a duration like 30s or 5m)";
  }
  if (deadline->count() <= 0) {
    return std::string(
        "--deadline must be more than 0 (a task not started within it ends expired)");
  }
  return static_cast<double>(deadline->count()) / 1000.0;
}

}  // namespace

Plan plan_submit(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kSubmitOptions);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  auto usage = [&](std::string message) {
    return answered(self, usage_error(&self, "submit: " + message));
  };
  SubmitSources sources;
  bool wait = false;
  bool timing = false;
  std::optional<double> deadline_s;
  auto set_file = [&](const std::string& file) {
    if (sources.file) return false;
    sources.file = file;
    return true;
  };
  for (const auto& [name, value] : operands.options) {
    if (name == "--data") {
      sources.data.push_back(value);
    } else if (name == "--file") {
      if (value.empty()) return usage("--file needs a file name");
      if (!set_file(value)) return usage("takes one --file F or - at most");
    } else if (name == "--timing") {
      timing = true;
    } else if (name == "--timeout") {
      auto timeout = config::parse_duration(value);
      if (!timeout) {
        return usage("invalid --timeout '" + value +
                     "' (expected a duration like 500ms, 5s or 2m)");
      }
      sources.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout);
    } else if (name == "--ordered") {
      sources.ordered = true;
    } else if (name == "--deadline") {
      auto seconds = deadline_seconds(value);
      if (!seconds) return usage(seconds.error());
      deadline_s = *seconds;
    } else {
      wait = true;
    }
  }
  if (!wait) {
    if (timing) return usage("--timing needs --wait (it adds run_us to the result lines)");
    if (sources.timeout) return usage("--timeout needs --wait (it bounds the wait for results)");
    if (sources.ordered) return usage("--ordered needs --wait (it orders the result lines)");
  }
  if (operands.words.empty()) return usage("needs a JOB");
  for (size_t i = 1; i < operands.words.size(); ++i) {
    if (operands.words[i] != "-") return usage("unexpected argument '" + operands.words[i] + "'");
    if (!set_file("-")) return usage("takes one --file F or - at most");
  }
  auto job = job_of(self, {operands.words.front()});
  if (!job) return answered(self, job.error());
  Json request{{"cmd", "submit"}, {"job", *job}};
  if (sources.data.empty() && !sources.file) {
    return usage("no tasks: give --data P, --file F, or - for stdin");
  }
  constexpr size_t kMaxPayload = protocol::kMaxPayloadBytes;
  for (size_t i = 0; i < sources.data.size(); ++i) {
    const std::string& payload = sources.data[i];
    std::string name = "--data #" + std::to_string(i + 1);
    if (payload.find('\n') != std::string::npos) {
      return usage(name + " " + quote_payload(payload) + " contains a newline; a task is one line");
    }
    if (payload.size() > kMaxPayload) {
      return usage(name + " is " + std::to_string(payload.size()) +
                   " bytes, over the line limit of " + std::to_string(kMaxPayload) + " bytes");
    }
  }
  request["wait"] = wait;
  if (timing) request["timing"] = true;
  if (deadline_s) request["deadline_s"] = *deadline_s;
  plan.request = std::move(request);
  plan.submit = std::move(sources);
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

constexpr std::array kWaitOptions = {OptionSpec{"--running", false}, OptionSpec{"--drained", false},
                                     OptionSpec{"--timeout", true}};

}  // namespace

Plan plan_wait(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kWaitOptions);
  if (operands.answer) return answered(self, *operands.answer);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  auto job = job_of(self, operands.words);
  if (!job) return answered(self, job.error());
  Json request{{"cmd", "wait"}, {"job", *job}};
  bool running = false;
  bool drained = false;
  std::optional<double> timeout_s;
  for (const auto& [name, value] : operands.options) {
    if (name == "--running") {
      running = true;
    } else if (name == "--drained") {
      drained = true;
    } else {
      auto duration = config::parse_duration(value);
      if (!duration) {
        return answered(self,
                        usage_error(&self, "wait: invalid --timeout '" + value +
                                               "' (expected a duration like 500ms, 5s or 2m)"));
      }
      timeout_s = static_cast<double>(duration->count()) / 1000.0;
    }
  }
  if (!running && !drained) {
    return answered(self, usage_error(&self, "wait: needs --running, --drained or both"));
  }
  request["running"] = running;
  request["drained"] = drained;
  if (timeout_s) request["timeout_s"] = *timeout_s;
  plan.request = std::move(request);
  return plan;
}

namespace {

constexpr std::array kDeadOptions = {OptionSpec{"--clear", false}};
constexpr std::array kRetryOptions = {OptionSpec{"--wait", false}};

}  // namespace

// dead JOB [--clear]
Plan plan_dead(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kDeadOptions);
  if (operands.answer) return answered(self, *operands.answer);
  auto job = job_of(self, operands.words);
  if (!job) return answered(self, job.error());
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  plan.request = Json{{"cmd", "dead"}, {"job", *job}};
  if (!operands.options.empty()) (*plan.request)["clear"] = true;
  return plan;
}

// retry JOB [ID...] [--wait]: the IDs are those `dead JOB` shows.
Plan plan_retry(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kRetryOptions);
  if (operands.answer) return answered(self, *operands.answer);
  if (operands.words.empty()) return answered(self, usage_error(&self, "retry: needs a JOB"));
  auto job = job_of(self, {operands.words.front()});
  if (!job) return answered(self, job.error());
  Json request{{"cmd", "retry"}, {"job", *job}};
  Json ids = Json::array();
  for (size_t i = 1; i < operands.words.size(); ++i) {
    const std::string& word = operands.words[i];
    uint64_t id = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (word.empty() || ec != std::errc() || end != word.data() + word.size()) {
      return answered(self, usage_error(&self, "retry: invalid ID '" + word +
                                                   "' (expected the id of a task that 'dead " +
                                                   *job + "' lists)"));
    }
    ids.push_back(id);
  }
  if (!ids.empty()) request["ids"] = std::move(ids);
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  if (!operands.options.empty()) {
    request["wait"] = true;
    plan.results = true;
  }
  plan.request = std::move(request);
  return plan;
}

namespace {

constexpr std::array kCancelOptions = {OptionSpec{"--submit", true}, OptionSpec{"--queued", false},
                                       OptionSpec{"--running", false}};
constexpr std::array kResultsOptions = {OptionSpec{"--follow", false}, OptionSpec{"-f", false},
                                        OptionSpec{"--since", true}, OptionSpec{"--submit", true}};

// WORD as a task id, a submit's number or a cursor: digits only, within 64 bits.
std::optional<uint64_t> unsigned_word(const std::string& word) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (word.empty() || ec != std::errc() || end != word.data() + word.size()) return std::nullopt;
  return value;
}

}  // namespace

// cancel JOB (ID... | --submit S | --queued) [--running]: exactly one of the
// three, so that a slip cannot cancel more than was named.
Plan plan_cancel(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kCancelOptions);
  if (operands.answer) return answered(self, *operands.answer);
  auto usage = [&](const std::string& message) {
    return answered(self, usage_error(&self, "cancel: " + message));
  };
  if (operands.words.empty()) return usage("needs a JOB");
  auto job = job_of(self, {operands.words.front()});
  if (!job) return answered(self, job.error());
  Json request{{"cmd", "cancel"}, {"job", *job}};
  Json ids = Json::array();
  for (size_t i = 1; i < operands.words.size(); ++i) {
    auto id = unsigned_word(operands.words[i]);
    if (!id) {
      return usage("invalid ID '" + operands.words[i] +
                   "' (expected a task id, as result lines show it)");
    }
    ids.push_back(*id);
  }
  std::optional<uint64_t> submit;
  bool queued = false;
  bool running = false;
  for (const auto& [name, value] : operands.options) {
    if (name == "--submit") {
      auto number = unsigned_word(value);
      if (!number) {
        return usage("invalid --submit '" + value +
                     "' (expected the number of a submit, as submit prints it)");
      }
      if (submit && *submit != *number) return usage("takes one --submit S at most");
      submit = number;
    } else if (name == "--queued") {
      queued = true;
    } else {
      running = true;
    }
  }
  int chosen = (ids.empty() ? 0 : 1) + (submit ? 1 : 0) + (queued ? 1 : 0);
  if (chosen == 0) return usage("needs task IDs, --submit S or --queued: which tasks to cancel");
  if (chosen > 1) return usage("takes task IDs, --submit S or --queued, only one of them");
  if (!ids.empty()) request["ids"] = std::move(ids);
  if (submit) request["submit"] = *submit;
  if (queued) request["queued"] = true;
  if (running) request["running"] = true;
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  plan.request = std::move(request);
  return plan;
}

// results JOB [--follow] [--since C] [--submit S]: a stream of result lines,
// as retry --wait has.
Plan plan_results(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands operands = split_args(self, args, format, kResultsOptions);
  if (operands.answer) return answered(self, *operands.answer);
  auto job = job_of(self, operands.words);
  if (!job) return answered(self, job.error());
  Json request{{"cmd", "results"}, {"job", *job}, {"follow", false}};
  for (const auto& [name, value] : operands.options) {
    if (name == "--follow" || name == "-f") {
      request["follow"] = true;
      continue;
    }
    auto number = unsigned_word(value);
    if (!number) {
      std::string expected = name == "--since"
                                 ? "a cursor, as the cursor field of a result line shows it"
                                 : "the number of a submit, as submit prints it";
      return answered(self, usage_error(&self, "results: invalid " + std::string(name) + " '" +
                                                   value + "' (expected " + expected + ")"));
    }
    request[name == "--since" ? "since" : "submit"] = *number;
  }
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  plan.request = std::move(request);
  plan.results = true;
  return plan;
}

// Whether ARG is a command option that takes its value from the next word.
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

bool takes_next_word(std::string_view arg) {
  for (std::span<const OptionSpec> options :
       {std::span<const OptionSpec>(kSubmitOptions), std::span<const OptionSpec>(kWaitOptions),
        std::span<const OptionSpec>(kTailOptions), std::span<const OptionSpec>(kFgOptions),
        std::span<const OptionSpec>(kTopOptions), std::span<const OptionSpec>(kCancelOptions),
        std::span<const OptionSpec>(kResultsOptions),
        std::span<const OptionSpec>(kImportOptions)}) {
    for (const OptionSpec& option : options) {
      if (option.takes_value && option.name == arg) return true;
    }
  }
  return false;
}

}  // namespace corral::ctl

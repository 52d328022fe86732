// The plans of corralctl's task commands (plans.h): submit, cancel, results,
// stats, shared, dead, retry and wait, each on a JOB (stats on every job
// without one). The other commands' plans are in plans.cc.
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/units.h"
#include "ctl/arguments.h"
#include "ctl/output.h"
#include "ctl/plans.h"
#include "ctl/plans_detail.h"
#include "protocol/json_text.h"
#include "protocol/task_lines.h"

namespace corral::ctl {

using detail::answered;

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
  // Ok results in batches, passed on without reading each line; --ordered
  // reads each result's seq.
  if (wait && !sources.ordered) request["batches"] = true;
  if (deadline_s) request["deadline_s"] = *deadline_s;
  plan.request = std::move(request);
  plan.submit = std::move(sources);
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

namespace detail {

std::span<const std::span<const OptionSpec>> task_options() {
  static constexpr std::array<std::span<const OptionSpec>, 4> kTables = {
      kSubmitOptions, kWaitOptions, kCancelOptions, kResultsOptions};
  return kTables;
}

}  // namespace detail

}  // namespace corral::ctl

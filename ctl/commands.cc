#include "ctl/commands.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "base/uptime.h"
#include "config/units.h"

namespace corral::ctl {

using protocol::kExitFailed;
using protocol::kExitOk;
using protocol::kExitUsage;

namespace {

// ---- Outputs ----

std::string command_line(const Command& command) {
  std::string line = "corralctl ";
  line.append(command.name);
  if (!command.synopsis.empty()) line.append(" ").append(command.synopsis);
  return line;
}

Output usage_error(const Command* command, std::string_view message) {
  Output output;
  output.exit_code = kExitUsage;
  output.err.append("corralctl: ").append(message).append("\n");
  if (command != nullptr) {
    output.err.append("usage: ").append(command_line(*command)).append("\n");
  } else {
    output.err.append("run 'corralctl help' for the list of commands\n");
  }
  return output;
}

Output failed(std::string_view message) {
  Output output;
  output.exit_code = kExitFailed;
  output.err.append("corralctl: ").append(message).append("\n");
  return output;
}

Output malformed(std::string_view what) {
  return failed(std::string("malformed reply from corrald: ").append(what));
}

std::string dump(const Json& value) {
  return value.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// ---- Reading replies: a field of the wrong type reads as absent ----

std::string string_field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<int64_t> int_field(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

double number_field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

bool ok_field(const Json& object) {
  auto it = object.find("ok");
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

// The reply's error, for a reply with ok:false.
Output error_reply(const Json& reply) {
  std::string message = string_field(reply, "error");
  return failed(message.empty() ? "corrald reported an error without a message" : message);
}

// reply["workers"], which must be a list of objects; null if it is not.
const Json* workers_of(const Json& reply) {
  auto it = reply.find("workers");
  if (it == reply.end() || !it->is_array()) return nullptr;
  for (const auto& worker : *it) {
    if (!worker.is_object()) return nullptr;
  }
  return &*it;
}

std::string pad(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

size_t name_width(const Json& workers) {
  size_t width = 0;
  for (const auto& worker : workers) width = std::max(width, string_field(worker, "name").size());
  return width;
}

void trim_right(std::string& text) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
}

// ---- Arguments ----

Output help_of(const Command& command, Format format);

// An option of a command's own: --NAME, or --NAME VALUE / --NAME=VALUE.
struct OptionSpec {
  std::string_view name;
  bool takes_value = false;
};

// ARGS split into operands and options; `answer` is set when the command
// line is already answered: --help, or a usage error.
struct Operands {
  std::vector<std::string> words;
  std::vector<std::pair<std::string_view, std::string>> options;  // name, value; in order
  std::optional<Output> answer;
};

// Options of corralctl itself, which a user may put after the command by habit.
bool is_global_option(std::string_view arg) {
  std::string_view name = arg.substr(0, arg.find('='));
  return arg == "-s" || arg == "-c" || name == "--socket" || name == "--config" || name == "--json";
}

// KNOWN are the command's options besides --help; `--` ends options so that
// a job named like one (`-web`) can still be an operand. A lone `-` is an
// operand.
Operands split_args(const Command& self, const std::vector<std::string>& args, Format format,
                    std::span<const OptionSpec> known = {}) {
  Operands result;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      result.words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      result.answer = help_of(self, format);
      return result;
    }
    std::string_view name = std::string_view(arg).substr(0, arg.find('='));
    auto spec = std::find_if(known.begin(), known.end(),
                             [&](const OptionSpec& option) { return option.name == name; });
    if (spec == known.end()) {
      std::string message = std::string(self.name) + ": unknown option '" + arg + "'";
      if (is_global_option(arg)) message += " (global options go before the command)";
      result.answer = usage_error(&self, message);
      return result;
    }
    std::string value;
    bool inline_value = name.size() < arg.size();
    if (spec->takes_value) {
      if (inline_value) {
        value = arg.substr(name.size() + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        result.answer = usage_error(
            &self, std::string(self.name) + ": " + std::string(name) + " needs a value");
        return result;
      }
    } else if (inline_value) {
      result.answer =
          usage_error(&self, std::string(self.name) + ": " + std::string(name) + " takes no value");
      return result;
    }
    result.options.emplace_back(spec->name, std::move(value));
  }
  return result;
}

// WORDS -> a JSON list of normalized targets, or a usage error naming the bad one.
std::optional<Output> parse_targets(const Command& self, const std::vector<std::string>& words,
                                    Json& targets) {
  targets = Json::array();
  for (const auto& word : words) {
    auto target = protocol::parse_target(word);
    if (!target) {
      return usage_error(&self, std::string(self.name) + ": invalid target '" + word +
                                    "' (expected JOB, JOB:INDEX or all)");
    }
    targets.push_back(protocol::to_string(*target));
  }
  return std::nullopt;
}

Plan plan_with_targets(const Command& self, const std::vector<std::string>& args, Format format,
                       bool required) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  if (required && operands.words.empty()) {
    plan.local = usage_error(&self, std::string(self.name) + ": needs at least one TARGET");
    return plan;
  }
  Json request{{"cmd", self.name}};
  if (!operands.words.empty()) {
    Json targets;
    if (auto error = parse_targets(self, operands.words, targets)) {
      plan.local = *error;
      return plan;
    }
    request["targets"] = std::move(targets);
  }
  plan.request = std::move(request);
  return plan;
}

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
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  if (operands.words.size() < 2) {
    plan.local = usage_error(&self, "signal: needs a signal and at least one TARGET");
    return plan;
  }
  const std::string& name = operands.words.front();
  if (!config::parse_signal(name)) {
    plan.local = usage_error(&self, "signal: unknown signal '" + name +
                                        "' (expected a name like HUP, SIGUSR1, TERM or a number)");
    return plan;
  }
  Json targets;
  std::vector<std::string> words(operands.words.begin() + 1, operands.words.end());
  if (auto error = parse_targets(self, words, targets)) {
    plan.local = *error;
    return plan;
  }
  plan.request = Json{{"cmd", "signal"}, {"signal", name}, {"targets", std::move(targets)}};
  return plan;
}

constexpr std::array kRestartOptions = {OptionSpec{"--rolling", false}};

Plan plan_restart(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format, kRestartOptions);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  std::vector<std::string> words = operands.words;
  Plan plain = plan_with_targets(self, words, format, true);
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

// WORDS must be one JOB; its request is {"cmd": NAME, "job": JOB}.
std::optional<Output> take_job(const Command& self, const std::vector<std::string>& words,
                               bool required, Json& request) {
  if (words.empty()) {
    if (!required) return std::nullopt;
    return usage_error(&self, std::string(self.name) + ": needs a JOB");
  }
  if (words.size() > 1) {
    return usage_error(&self, std::string(self.name) + ": unexpected argument '" + words[1] + "'");
  }
  if (!protocol::valid_job_name(words.front())) {
    return usage_error(&self, std::string(self.name) + ": invalid job name '" + words.front() +
                                  "' (expected letters, digits, '_', '.' or '-')");
  }
  request["job"] = words.front();
  return std::nullopt;
}

Plan plan_job(const Command& self, const std::vector<std::string>& args, Format format,
              bool required) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  Json request{{"cmd", self.name}};
  if (auto error = take_job(self, operands.words, required, request)) {
    plan.local = *error;
    return plan;
  }
  plan.request = std::move(request);
  return plan;
}

Plan plan_one_job(const Command& self, const std::vector<std::string>& args, Format format) {
  return plan_job(self, args, format, true);
}

Plan plan_optional_job(const Command& self, const std::vector<std::string>& args, Format format) {
  return plan_job(self, args, format, false);
}

// A payload as a usage error shows it: quoted, escaped, cut after 40 bytes.
std::string quote_payload(std::string_view payload) {
  constexpr size_t kShown = 40;
  std::string quoted = Json(std::string(payload.substr(0, kShown)))
                           .dump(-1, ' ', false, Json::error_handler_t::replace);
  if (payload.size() > kShown) quoted.insert(quoted.size() - 1, "...");
  return quoted;
}

constexpr std::array kSubmitOptions = {OptionSpec{"--data", true}, OptionSpec{"--file", true},
                                       OptionSpec{"--wait", false}, OptionSpec{"--timing", false}};

Plan plan_submit(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format, kSubmitOptions);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  auto usage = [&](std::string message) {
    plan.local = usage_error(&self, "submit: " + message);
    return plan;
  };
  SubmitSources sources;
  bool wait = false;
  bool timing = false;
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
    } else {
      wait = true;
    }
  }
  if (timing && !wait) return usage("--timing needs --wait (it adds run_us to the result lines)");
  if (operands.words.empty()) return usage("needs a JOB");
  for (size_t i = 1; i < operands.words.size(); ++i) {
    if (operands.words[i] != "-") return usage("unexpected argument '" + operands.words[i] + "'");
    if (!set_file("-")) return usage("takes one --file F or - at most");
  }
  Json request{{"cmd", "submit"}};
  if (auto error = take_job(self, {operands.words.front()}, true, request)) {
    plan.local = *error;
    return plan;
  }
  if (sources.data.empty() && !sources.file) {
    return usage("no tasks: give --data P, --file F, or - for stdin");
  }
  constexpr size_t kMaxPayload = protocol::kMaxLineBytes - 1;  // with its '+', one line
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
  plan.request = std::move(request);
  plan.submit = std::move(sources);
  return plan;
}

constexpr std::array kTailOptions = {OptionSpec{"-f", false}, OptionSpec{"--follow", false},
                                     OptionSpec{"--stderr", false}, OptionSpec{"-n", true},
                                     OptionSpec{"--lines", true}};

Plan plan_tail(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format, kTailOptions);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
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
        plan.local = usage_error(&self, "tail: -n needs a number of lines, got '" + value + "'");
        return plan;
      }
      request["lines"] = *n;
    }
  }
  if (operands.words.size() != 1) {
    plan.local = usage_error(&self, "tail: needs exactly one worker, JOB:INDEX");
    return plan;
  }
  auto target = protocol::parse_target(operands.words.front());
  if (!target || target->all() || !target->index) {
    plan.local = usage_error(
        &self, "tail: '" + operands.words.front() + "' is not one worker; name it as JOB:INDEX");
    return plan;
  }
  request["target"] = protocol::to_string(*target);
  plan.request = std::move(request);
  plan.stream = true;
  return plan;
}

constexpr std::array kTopOptions = {OptionSpec{"--interval", true}};

Plan plan_top(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format, kTopOptions);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  if (!operands.words.empty()) {
    plan.local = usage_error(&self, "top: unexpected argument '" + operands.words.front() + "'");
    return plan;
  }
  std::chrono::milliseconds interval{1000};
  for (const auto& [name, value] : operands.options) {
    auto duration = config::parse_duration(value);
    if (!duration || duration->count() <= 0) {
      plan.local = usage_error(
          &self, "top: invalid --interval '" + value + "' (expected a duration like 500ms or 2s)");
      return plan;
    }
    interval = *duration;
  }
  plan.request = Json{{"cmd", "stats"}};
  plan.top = interval;
  return plan;
}

constexpr std::array kWaitOptions = {OptionSpec{"--running", false}, OptionSpec{"--drained", false},
                                     OptionSpec{"--timeout", true}};

Plan plan_wait(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}, std::nullopt};
  Operands operands = split_args(self, args, format, kWaitOptions);
  if (operands.answer) {
    plan.local = *operands.answer;
    return plan;
  }
  Json request{{"cmd", "wait"}};
  if (auto error = take_job(self, operands.words, true, request)) {
    plan.local = *error;
    return plan;
  }
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
        plan.local = usage_error(&self, "wait: invalid --timeout '" + value +
                                            "' (expected a duration like 500ms, 5s or 2m)");
        return plan;
      }
      timeout_s = static_cast<double>(duration->count()) / 1000.0;
    }
  }
  if (!running && !drained) {
    plan.local = usage_error(&self, "wait: needs --running, --drained or both");
    return plan;
  }
  request["running"] = running;
  request["drained"] = drained;
  if (timeout_s) request["timeout_s"] = *timeout_s;
  plan.request = std::move(request);
  return plan;
}

// ---- Replies ----

// What a status line says after the state: the daemon's description, then
// the counters that are not zero.
std::string describe(const Json& worker) {
  std::vector<std::string> parts;
  std::string description = string_field(worker, "description");
  if (description.empty()) {
    // An older or terser daemon: rebuild what supervisorctl would say.
    if (auto pid = int_field(worker, "pid")) {
      description = "pid " + std::to_string(*pid) + ", uptime " +
                    format_uptime(number_field(worker, "uptime_s"));
    } else {
      description = string_field(worker, "spawn_error");
      if (description.empty()) description = string_field(worker, "exit_description");
    }
  }
  if (!description.empty()) parts.push_back(description);
  if (int64_t restarts = int_field(worker, "restarts").value_or(0); restarts > 0) {
    parts.push_back("restarts " + std::to_string(restarts));
  }
  int64_t tasks_ok = int_field(worker, "tasks_ok").value_or(0);
  int64_t tasks_failed = int_field(worker, "tasks_failed").value_or(0);
  if (tasks_ok > 0 || tasks_failed > 0) {
    std::string tasks = "tasks " + std::to_string(tasks_ok) + " ok";
    if (tasks_failed > 0) tasks += ", " + std::to_string(tasks_failed) + " failed";
    parts.push_back(tasks);
  }
  std::string text;
  for (const auto& part : parts) {
    if (!text.empty()) text += "; ";
    text += part;
  }
  return text;
}

Output format_status(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  const Json* workers = workers_of(reply);
  if (workers == nullptr) return malformed("status reply without a list of workers");

  Output output;
  for (const auto& worker : *workers) {
    std::string state = string_field(worker, "state");
    if (state == "FATAL" || state == "BACKOFF") output.exit_code = kExitFailed;
  }
  if (format == Format::kJson) {
    output.out = dump(*workers);
    return output;
  }
  // supervisorctl's layout: name, state in 10 columns, description.
  size_t width = name_width(*workers);
  for (const auto& worker : *workers) {
    std::string line = pad(string_field(worker, "name"), width) + "  " +
                       pad(string_field(worker, "state"), 10) + describe(worker);
    trim_right(line);
    output.out += line + "\n";
  }
  return output;
}

// start, stop, restart: NAME: MESSAGE per worker.
Output format_action(const Json& request, const Json& reply, Format format) {
  const Json* workers = workers_of(reply);
  if (workers == nullptr) {
    if (!ok_field(reply)) return error_reply(reply);
    return malformed("reply without a list of workers");
  }
  Output output;
  if (!ok_field(reply)) output.exit_code = kExitFailed;
  std::string cmd = string_field(request, "cmd");
  std::string done = cmd == "stop" ? "stopped" : cmd == "restart" ? "restarted" : "started";
  for (const auto& worker : *workers) {
    auto ok = worker.find("ok");
    bool worker_ok = ok != worker.end() && ok->is_boolean() ? ok->get<bool>() : ok_field(reply);
    if (!worker_ok) output.exit_code = kExitFailed;
    if (format == Format::kJson) continue;
    std::string message = string_field(worker, "message");
    if (message.empty()) {
      std::string state = string_field(worker, "state");
      message = worker_ok ? done : state.empty() ? "ERROR" : "ERROR (" + state + ")";
    }
    output.out += string_field(worker, "name") + ": " + message + "\n";
  }
  if (format == Format::kJson) output.out = dump(*workers);
  if (!ok_field(reply) && !string_field(reply, "error").empty()) {
    output.err = error_reply(reply).err;
  }
  return output;
}

// tail's first line: nothing to show when corrald accepts; the data follows.
Output format_tail(const Json&, const Json& reply, Format) {
  if (!ok_field(reply)) return error_reply(reply);
  return Output{};
}

// reread, update, reload: what changed (supervisorctl's words), the config's
// errors, the warnings.
Output format_reload(const Json& request, const Json& reply, Format format) {
  Output output;
  if (!ok_field(reply)) {
    output = error_reply(reply);
    if (auto errors = reply.find("errors"); errors != reply.end() && errors->is_array()) {
      output.err.clear();
      for (const auto& error : *errors) {
        if (error.is_string()) output.err += "corralctl: " + error.get<std::string>() + "\n";
      }
      output.err += "corralctl: the config has errors; nothing was changed\n";
    }
    if (format == Format::kJson) output.out = dump(reply);
    return output;
  }
  if (auto warnings = reply.find("warnings"); warnings != reply.end() && warnings->is_array()) {
    for (const auto& warning : *warnings) {
      if (warning.is_string())
        output.err += "corralctl: warning: " + warning.get<std::string>() + "\n";
    }
  }
  if (format == Format::kJson) {
    output.out = dump(reply);
    return output;
  }
  const bool applied = string_field(request, "cmd") != "reread";
  auto list = [&](const char* key, const char* reread_word, const char* update_word) {
    auto names = reply.find(key);
    if (names == reply.end() || !names->is_array()) return;
    for (const auto& name : *names) {
      if (!name.is_string()) continue;
      output.out += name.get<std::string>() + ": " + (applied ? update_word : reread_word) + "\n";
    }
  };
  list("added", "available", "added process group");
  list("changed", "changed", "updated process group");
  list("removed", "disappeared", "removed process group");
  if (output.out.empty()) output.out = "No config updates to processes\n";
  return output;
}

// `pid JOB:INDEX` names one worker whatever the config says: print its bare
// pid, as supervisorctl does, so that `kill $(corralctl pid web:0)` works.
bool names_one_worker(const Json& request) {
  auto targets = request.find("targets");
  if (targets == request.end() || !targets->is_array() || targets->size() != 1) return false;
  if (!targets->front().is_string()) return false;
  auto target = protocol::parse_target(targets->front().get<std::string>());
  return target && target->index.has_value();
}

Output format_pid(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  Output output;
  if (!request.contains("targets")) {
    auto pid = int_field(reply, "pid");
    if (!pid) return malformed("pid reply without a pid");
    output.out = std::to_string(*pid) + "\n";
    return output;
  }
  const Json* workers = workers_of(reply);
  if (workers == nullptr) return malformed("pid reply without a list of workers");

  bool one = names_one_worker(request) && workers->size() == 1;
  if (one && !int_field(workers->front(), "pid")) {
    output = failed(string_field(workers->front(), "name") + " has no process");
  }
  if (format == Format::kJson) {
    output.out = dump(*workers);
  } else if (one) {
    if (auto pid = int_field(workers->front(), "pid")) output.out = std::to_string(*pid) + "\n";
  } else {
    size_t width = name_width(*workers);
    for (const auto& worker : *workers) {
      auto pid = int_field(worker, "pid");
      output.out += pad(string_field(worker, "name"), width) + "  " +
                    (pid ? std::to_string(*pid) : std::string("-")) + "\n";
    }
  }
  return output;
}

Output format_shutdown(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  Output output;
  output.out = format == Format::kJson ? dump(reply) : "shutting down\n";
  return output;
}

Output format_version(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) {
    Output output = error_reply(reply);
    output.out = format == Format::kJson
                     ? dump(Json{{"corralctl", protocol::kVersion}, {"corrald", nullptr}})
                     : std::string("corralctl ") + protocol::kVersion + "\n";
    return output;
  }
  std::string daemon = string_field(reply, "version");
  if (daemon.empty()) return malformed("version reply without a version");
  Output output;
  if (format == Format::kJson) {
    output.out = dump(Json{{"corralctl", protocol::kVersion}, {"corrald", daemon}});
  } else {
    output.out = std::string("corralctl ") + protocol::kVersion + "\ncorrald " + daemon + "\n";
  }
  return output;
}

// ---- Replies of the task commands ----

// REPLY without its "ok": what --json shows of stats, retry, shared and wait.
Json without_ok(const Json& reply) {
  Json copy = reply;
  copy.erase("ok");
  return copy;
}

// One line of text for a field that may hold any bytes.
std::string one_line(std::string text) {
  std::string line;
  line.reserve(text.size());
  for (char c : text) {
    if (c == '\n') {
      line += "\\n";
    } else if (c == '\r') {
      line += "\\r";
    } else {
      line += c;
    }
  }
  return line;
}

// A number or any other JSON value as text: 12, 0.5, "x".
std::string value_text(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Microseconds as people read them: 850us, 12.3ms, 1.20s.
std::string format_micros(double us) {
  char text[32];
  if (us < 1000) {
    std::snprintf(text, sizeof text, "%.0fus", us);
  } else if (us < 1e6) {
    std::snprintf(text, sizeof text, "%.1fms", us / 1000);
  } else {
    std::snprintf(text, sizeof text, "%.2fs", us / 1e6);
  }
  return text;
}

std::string plural(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// The job of a request, for messages.
std::string job_of(const Json& request) { return string_field(request, "job"); }

// The submit request's own reply, {"ok": true} before the stream: nothing
// to show. An error ({"ok": false}: no such job, no channel) is the answer.
Output format_submit_reply(const Json&, const Json& reply, Format) {
  if (!ok_field(reply)) return error_reply(reply);
  return Output{};
}

Output format_dead(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  auto letters = reply.find("dead");
  if (letters == reply.end() || !letters->is_array() ||
      !std::all_of(letters->begin(), letters->end(), [](const Json& l) { return l.is_object(); })) {
    return malformed("dead reply without a list of letters");
  }
  Output output;
  if (format == Format::kJson) {
    output.out = dump(*letters);
  } else {
    size_t id_width = 0;
    size_t status_width = 0;
    for (const auto& letter : *letters) {
      id_width = std::max(id_width, value_text(letter.value("id", Json())).size());
      status_width = std::max(status_width, string_field(letter, "status").size());
    }
    for (const auto& letter : *letters) {
      std::string line = "id " + pad(value_text(letter.value("id", Json())), id_width) + "  " +
                         pad(string_field(letter, "status"), status_width) + "  attempts " +
                         value_text(letter.value("attempts", Json())) + "  " +
                         one_line(string_field(letter, "reason")) +
                         "  payload: " + one_line(string_field(letter, "payload"));
      output.out += line + "\n";
    }
  }
  if (int64_t dropped = int_field(reply, "dropped").value_or(0); dropped > 0) {
    output.err =
        "corralctl: " + plural(static_cast<uint64_t>(dropped), "older letter", "older letters") +
        " did not fit in the dead-letter list and " + (dropped == 1 ? "was" : "were") +
        " dropped\n";
  }
  return output;
}

Output format_retry(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  auto requeued = int_field(reply, "requeued");
  if (!requeued) return malformed("retry reply without a count");
  Output output;
  output.out = format == Format::kJson
                   ? dump(without_ok(reply))
                   : "requeued " + plural(static_cast<uint64_t>(*requeued), "task", "tasks") + "\n";
  return output;
}

Output format_shared(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  static const Json kNone = Json::object();
  auto values = reply.find("values");
  auto arrays = reply.find("arrays");
  if ((values != reply.end() && !values->is_object()) ||
      (arrays != reply.end() && !arrays->is_object())) {
    return malformed("shared reply whose values or arrays are not objects");
  }
  Output output;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  for (const auto& [name, value] : (values != reply.end() ? *values : kNone).items()) {
    output.out += name + " = " + value_text(value) + "\n";
  }
  for (const auto& [name, array] : (arrays != reply.end() ? *arrays : kNone).items()) {
    std::string line = name + " = [";
    if (array.is_array()) {
      bool first = true;
      for (const auto& item : array) {
        if (!first) line += ", ";
        line += value_text(item);
        first = false;
      }
    }
    output.out += line + "]\n";
  }
  return output;
}

Output format_wait(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);  // "timed out after 5s: ..."
  Output output;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  bool running = request.value("running", false);
  bool drained = request.value("drained", false);
  output.out = job_of(request) + ": " + (running ? "every worker RUNNING" : "") +
               (running && drained ? ", " : "") + (drained ? "drained" : "") + "\n";
  return output;
}

Output format_stats(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  auto jobs = reply.find("jobs");
  if (jobs == reply.end() || !jobs->is_object()) return malformed("stats reply without jobs");
  Output output;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  // One line per job: its name, then "counter N" cells aligned in columns,
  // then its rate and task latencies (dispatch to result, since it began).
  constexpr std::array kCounters = {"submitted", "queued",      "in_flight", "ok",
                                    "failed",    "redelivered", "dead"};
  constexpr size_t kCells = kCounters.size() + 3;
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  std::vector<size_t> widths(kCells, 0);
  size_t name_width = 0;
  for (const auto& [name, counts] : jobs->items()) {
    std::vector<std::string> cells;
    for (const char* counter : kCounters) {
      auto it = counts.is_object() ? counts.find(counter) : counts.end();
      cells.push_back(std::string(counter) + " " +
                      (counts.is_object() && it != counts.end() ? value_text(*it) : "-"));
    }
    auto rate = counts.is_object() ? counts.find("tasks_per_s") : counts.end();
    cells.push_back("tasks/s " + (counts.is_object() && rate != counts.end() && rate->is_number()
                                      ? std::to_string(std::llround(rate->get<double>()))
                                      : std::string("-")));
    const Json* latency = nullptr;
    if (auto it = counts.is_object() ? counts.find("latency_us") : counts.end();
        counts.is_object() && it != counts.end() && it->is_object()) {
      latency = &*it;
    }
    for (const char* q : {"p50", "p99"}) {
      std::string cell = std::string(q) + " -";
      if (latency != nullptr && number_field(*latency, "count") > 0) {
        cell = std::string(q) + " " + format_micros(number_field(*latency, q));
      }
      cells.push_back(std::move(cell));
    }
    for (size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], cells[i].size());
    name_width = std::max(name_width, name.size());
    rows.emplace_back(name, std::move(cells));
  }
  for (const auto& [name, cells] : rows) {
    std::string line = pad(name, name_width);
    for (size_t i = 0; i < cells.size(); ++i) line += "  " + pad(cells[i], widths[i]);
    trim_right(line);
    output.out += line + "\n";
  }
  return output;
}

// ---- The table ----

constexpr std::array kCommands = {
    Command{"status", "[TARGET...]", "show workers: state, pid, uptime, restarts, tasks",
            "One line per worker: its name (JOB:INDEX), its state, then what it is doing\n"
            "(pid and uptime, or how its last process ended), then its restarts and tasks\n"
            "when there are any. No TARGET: every worker.\n"
            "--json prints the list of worker objects (docs/control-protocol.md).\n"
            "Exits 1 if any worker shown is FATAL or BACKOFF, else 0.",
            plan_optional_targets, format_status},
    Command{"start", "TARGET...", "start workers; also clears FATAL",
            "Starts the workers of each TARGET and waits until each is RUNNING or has\n"
            "failed. Prints 'NAME: started', 'NAME: already started' or 'NAME: ERROR (...)'.\n"
            "A FATAL worker is started again. --json prints the list of results.\n"
            "Exits 1 if any worker failed to start.",
            plan_required_targets, format_action},
    Command{"stop", "TARGET...", "stop workers",
            "Stops the workers of each TARGET and waits until none has a process left.\n"
            "Prints 'NAME: stopped' or 'NAME: not running'. --json prints the list of\n"
            "results. Exits 1 if any worker could not be stopped.",
            plan_required_targets, format_action},
    Command{"restart", "[--rolling] TARGET...", "stop, then start workers",
            "Stops, then starts the workers of each TARGET, as stop and start do.\n"
            "--rolling restarts one worker at a time, each next one once the last is\n"
            "RUNNING again, so that a pool keeps serving; a worker that fails to start\n"
            "ends the roll and the others are left running.\n"
            "--json prints the list of results. Exits 1 if any worker failed to start.",
            plan_restart, format_action},
    Command{"signal", "SIG TARGET...", "send a signal to workers",
            "Sends SIG (HUP, SIGUSR1, TERM, 10, ...) to the process of each worker of the\n"
            "TARGETs (the worker's own process, not its children). Prints 'NAME: signalled'\n"
            "or 'NAME: ERROR (not running)'. Exits 1 if a worker could not be signalled.",
            plan_signal, format_action},
    Command{"clear", "TARGET...", "empty the captured output of workers",
            "Empties the stdout and stderr log files of each worker of the TARGETs\n"
            "(LOG_DIR/JOB-INDEX.out.log and .err.log; rotated copies are kept).",
            plan_required_targets, format_action},
    Command{"top", "[--interval D]", "a live view of jobs and workers",
            "A full-screen view refreshed every D (default 1s): per job its running\n"
            "workers, CPU %, RSS, tasks/s, queue depth, p99 task latency over the last\n"
            "metrics interval and restarts, with history bars of tasks/s and CPU %; per\n"
            "worker its state, pid, CPU %, RSS, tasks and restarts. q or Ctrl-C quits,\n"
            "space refreshes at once. With stdout not a terminal it prints one screen.",
            plan_top, nullptr},
    Command{"tail", "[-f] [--stderr] [-n N] JOB:INDEX", "show the captured output of a worker",
            "Prints the last N lines (default 10) of the worker's captured stdout, or of\n"
            "its stderr with --stderr. -f then prints what the worker writes as it comes,\n"
            "across log rotations, until interrupted (Ctrl-C). Bytes that are not UTF-8\n"
            "show as U+FFFD. --json prints corrald's lines: {\"data\": TEXT} per chunk.",
            plan_tail, format_tail},
    Command{"reread", "", "show what a reload of the config would change",
            "Reads the config file again and validates all of it, with its includes.\n"
            "Prints 'JOB: available' (new), 'JOB: changed' and 'JOB: disappeared'\n"
            "(removed), or 'No config updates to processes'. Changes nothing. A config with\n"
            "errors prints every error and exits 1.",
            plan_no_args, format_reload},
    Command{"update", "", "apply the config file's changes",
            "Reads and validates the config as reread does; if it is valid, applies it and\n"
            "waits until it is applied: removed jobs stop and go, new jobs start, a changed\n"
            "job restarts with its new settings, and a change of only `workers` starts or\n"
            "stops just the difference (the other workers keep running). Jobs that did not\n"
            "change are not touched. A config with errors changes nothing: every error is\n"
            "printed and the exit status is 1. Prints 'JOB: added process group', 'JOB:\n"
            "updated process group', 'JOB: removed process group'. Changes to the daemon:\n"
            "section need a restart of corrald (a warning says so).",
            plan_no_args, format_reload},
    Command{"reload", "", "reread and update in one step (as SIGHUP does)",
            "The same as update: reads, validates and applies the config file.", plan_no_args,
            format_reload},
    Command{"pid", "[TARGET...]", "the pid of corrald, or of workers",
            "No TARGET: the pid of corrald. A single JOB:INDEX: that worker's bare pid\n"
            "(exits 1 when it has no process). Otherwise one line per worker, 'NAME PID',\n"
            "with '-' for a worker without a process. --json prints the pid, or the list\n"
            "of {\"name\", \"pid\"} objects.",
            plan_optional_targets, format_pid},
    Command{"submit", "JOB [--data P]... [--file F | -] [--wait [--timing]]",
            "queue tasks for a job",
            "Queues one task per --data P, then one per line of F (- reads stdin). A line\n"
            "ends at '\\n'; a '\\r' before it is kept; an empty last line after the final\n"
            "'\\n' is not a task. Tasks are streamed: any number of lines, in bounded\n"
            "memory; corrald's back-pressure (a full queue) only slows the stream.\n"
            "Prints 'submitted N tasks to JOB' (--json: the end object, {\"end\": true,\n"
            "\"submitted\": N, \"refused\": R}). --wait waits for the results instead and\n"
            "prints one JSON line per task as it finishes: id, seq (its 0-based position\n"
            "in this submit), status (ok, failed, dead), result, attempts; with --timing\n"
            "also run_us, the microseconds from corrald handing the task to a worker to\n"
            "corrald reading its result.\n"
            "A task corrald refuses (over queue.max_task_bytes), or one over the 1 MiB line\n"
            "limit (not sent, so it has no seq), is reported on stderr as FILE:LINE,\n"
            "stdin:LINE or --data #N. Exits 1 if a task was refused, failed or is dead.",
            plan_submit, format_submit_reply},
    Command{"stats", "[JOB]", "task counters of every job, or of one",
            "One line per job: submitted, queued, in_flight, ok, failed, redelivered and\n"
            "dead tasks. --json prints corrald's reply: {\"daemon\": {...}, \"jobs\":\n"
            "{JOB: {...}}}.",
            plan_optional_job, format_stats},
    Command{"shared", "JOB", "the shared values and arrays of a job",
            "Prints 'NAME = VALUE' for each shared value and 'NAME = [A, B, ...]' for each\n"
            "shared array of JOB. --json prints {\"values\": {...}, \"arrays\": {...}}.",
            plan_one_job, format_shared},
    Command{"dead", "JOB", "the dead-letter list of a job",
            "One line per failed or dead task still in JOB's dead-letter list, oldest\n"
            "first: 'id N  STATUS  attempts A  REASON  payload: P' (a newline in REASON or P\n"
            "shows as \\n). --json prints the list of letters. Says on stderr how many\n"
            "older letters the full list dropped.",
            plan_one_job, format_dead},
    Command{"retry", "JOB", "queue the dead letters of a job again",
            "Queues every task of JOB's dead-letter list again, as new tasks whose results\n"
            "go to the job's sink. Prints 'requeued N tasks'.",
            plan_one_job, format_retry},
    Command{"wait", "JOB [--running] [--drained] [--timeout D]",
            "wait until a job's workers run, or its queue is empty",
            "Blocks until every worker of JOB is RUNNING (--running) and/or nothing of\n"
            "JOB is queued or in flight (--drained); at least one is needed. --timeout D\n"
            "(500ms, 5s, 2m) gives up after D: exits 1 with what was still missing.",
            plan_wait, format_wait},
    Command{"shutdown", "", "stop every worker, then corrald",
            "Asks corrald to stop every job and exit. Returns as soon as corrald has\n"
            "accepted; the workers are stopped after that.",
            plan_no_args, format_shutdown},
    Command{"version", "", "the versions of corralctl and corrald",
            "Prints the version of corralctl, then that of corrald. Without a daemon it\n"
            "prints corralctl's and exits 3.",
            plan_no_args, format_version},
    Command{"help", "[COMMAND]", "list the commands, or explain one",
            "Lists the commands, or shows the help of COMMAND ('corralctl COMMAND --help'\n"
            "does the same).",
            plan_help, nullptr},
};

Output help_of(const Command& command, Format format) {
  Output output;
  if (format == Format::kJson) {
    output.out = dump(Json{{"name", command.name},
                           {"usage", command_line(command)},
                           {"summary", command.summary},
                           {"details", command.details}});
  } else {
    output.out = "usage: " + command_line(command) + "\n\n" + std::string(command.details) + "\n";
  }
  return output;
}

}  // namespace

std::span<const Command> commands() { return kCommands; }

const Command* find_command(std::string_view name) {
  for (const auto& command : kCommands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::string overview() {
  std::string text =
      "usage: corralctl [-s SOCKET | -c CONFIG] [--json] [COMMAND [ARGS]]\n"
      "Without a COMMAND: an interactive shell (history, tab completion; quit or\n"
      "Ctrl-D leaves), or, when stdin is not a terminal, one command per line.\n"
      "\n"
      "commands:\n";
  // A synopsis too long for the column has its summary on the next line.
  constexpr size_t kMaxWidth = 28;
  size_t width = 0;
  for (const auto& command : kCommands) {
    size_t left = command.name.size() + 1 + command.synopsis.size();
    if (left <= kMaxWidth) width = std::max(width, left);
  }
  for (const auto& command : kCommands) {
    std::string left(command.name);
    if (!command.synopsis.empty()) left.append(" ").append(command.synopsis);
    if (left.size() > width) left.append("\n").append(width + 2, ' ');
    text.append("  ").append(pad(left, width)).append("  ").append(command.summary).append("\n");
  }
  text +=
      "\n"
      "TARGET is JOB, JOB:INDEX or all; '--' ends a command's options.\n"
      "options:\n"
      "  -s SOCKET   the control socket (else $CORRAL_SOCKET, else daemon.socket of\n"
      "              -c CONFIG, else " +
      std::string(protocol::kDefaultSocket) +
      ")\n"
      "  -c CONFIG   read the socket path from corrald's config file\n"
      "  --json      print JSON instead of text (may also follow the command)\n"
      "exit codes: 0 ok, 1 the command failed, 2 usage error, 3 cannot reach corrald.\n"
      "'corralctl help COMMAND' explains a command.\n";
  return text;
}

namespace {

// Whether ARG is a command option that takes its value from the next word.
bool takes_next_word(std::string_view arg) {
  for (std::span<const OptionSpec> options :
       {std::span<const OptionSpec>(kSubmitOptions), std::span<const OptionSpec>(kWaitOptions),
        std::span<const OptionSpec>(kTailOptions), std::span<const OptionSpec>(kTopOptions)}) {
    for (const OptionSpec& option : options) {
      if (option.takes_value && option.name == arg) return true;
    }
  }
  return false;
}

}  // namespace

Plan plan_command(std::string_view name, const std::vector<std::string>& args, Format format) {
  const Command* command = find_command(name);
  if (command == nullptr) {
    Plan plan;
    plan.local = usage_error(nullptr, "unknown command '" + std::string(name) + "'");
    return plan;
  }
  // --json may also follow the command (`corralctl status --json`); it is
  // taken out before the command sees its words, unless it is an option's
  // value or comes after `--`.
  std::vector<std::string> words;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      words.insert(words.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (args[i] == "--json") {
      format = Format::kJson;
      continue;
    }
    words.push_back(args[i]);
    if (takes_next_word(args[i]) && i + 1 < args.size()) words.push_back(args[++i]);
  }
  Plan plan = command->plan(*command, words, format);
  plan.format = format;
  return plan;
}

Output format_reply(const Plan& plan, const Json& reply, Format format) {
  if (plan.command == nullptr || plan.command->format == nullptr || !plan.request) {
    return failed("internal error: no request was sent");
  }
  if (!reply.is_object()) return malformed("not a JSON object");
  auto ok = reply.find("ok");
  if (ok == reply.end() || !ok->is_boolean()) return malformed("no boolean \"ok\" field");
  try {
    return plan.command->format(*plan.request, reply, format);
  } catch (const Json::exception& e) {
    // The formatters read defensively; this is a last guard, not a path.
    return malformed(e.what());
  }
}

Output format_submit(const Plan& plan, const SubmitTotals& totals, Format format) {
  if (!plan.request || !plan.submit) return failed("internal error: no submit was sent");
  if (totals.rejected) return format_reply(plan, *totals.rejected, format);
  Output output;
  std::string job = job_of(*plan.request);
  if (!plan.request->value("wait", false)) {
    output.out =
        format == Format::kJson
            ? dump(
                  Json{{"end", true}, {"submitted", totals.submitted}, {"refused", totals.refused}})
            : "submitted " + plural(totals.submitted, "task", "tasks") + " to " + job + "\n";
  }
  if (!totals.input_error.empty()) {
    const std::string& file = *plan.submit->file;
    output.err += "corralctl: reading " + (file == "-" ? std::string("stdin") : file) + ": " +
                  totals.input_error + "; the tasks before were submitted\n";
  }
  if (totals.refused > 0) {
    output.err += "corralctl: " + plural(totals.refused, "task was", "tasks were") + " refused\n";
  }
  if (totals.failed > 0) {
    output.err += "corralctl: " + std::to_string(totals.failed) + " of " +
                  plural(totals.submitted, "task", "tasks") + " failed or dead\n";
  }
  if (!output.err.empty()) output.exit_code = kExitFailed;
  return output;
}

Output format_client_error(const Plan& plan, const ClientError& error, Format format) {
  Output output = failed(error.message());
  output.exit_code = error.exit_code();
  if (plan.command != nullptr && plan.command->name == "version") {
    // corralctl's own version is known without a daemon.
    output.out = format == Format::kJson
                     ? dump(Json{{"corralctl", protocol::kVersion}, {"corrald", nullptr}})
                     : std::string("corralctl ") + protocol::kVersion + "\n";
  }
  return output;
}

}  // namespace corral::ctl

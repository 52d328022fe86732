#include "ctl/commands.h"

#include <algorithm>
#include <array>
#include <cstdint>

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

// ARGS split into operands; `answer` is set when the command line is already
// answered: --help, or a usage error.
struct Operands {
  std::vector<std::string> words;
  std::optional<Output> answer;
};

// Options of corralctl itself, which a user may put after the command by habit.
bool is_global_option(std::string_view arg) {
  std::string_view name = arg.substr(0, arg.find('='));
  return arg == "-s" || arg == "-c" || name == "--socket" || name == "--config" || name == "--json";
}

// None of today's commands has options of its own besides --help; `--` ends
// options so that a job named like one (`-web`) can still be a target.
Operands split_args(const Command& self, const std::vector<std::string>& args, Format format) {
  Operands result;
  bool options_done = false;
  for (const auto& arg : args) {
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      result.words.push_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      result.answer = help_of(self, format);
      return result;
    } else {
      std::string message = std::string(self.name) + ": unknown option '" + arg + "'";
      if (is_global_option(arg)) message += " (global options go before the command)";
      result.answer = usage_error(&self, message);
      return result;
    }
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
  Plan plan{&self, std::nullopt, {}};
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

Plan plan_no_args(const Command& self, const std::vector<std::string>& args, Format format) {
  Plan plan{&self, std::nullopt, {}};
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
  Plan plan{&self, std::nullopt, {}};
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
                    protocol::format_uptime(number_field(worker, "uptime_s"));
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
    Command{"restart", "TARGET...", "stop, then start workers",
            "Stops, then starts the workers of each TARGET, as stop and start do.\n"
            "--json prints the list of results. Exits 1 if any worker failed to start.",
            plan_required_targets, format_action},
    Command{"pid", "[TARGET...]", "the pid of corrald, or of workers",
            "No TARGET: the pid of corrald. A single JOB:INDEX: that worker's bare pid\n"
            "(exits 1 when it has no process). Otherwise one line per worker, 'NAME PID',\n"
            "with '-' for a worker without a process. --json prints the pid, or the list\n"
            "of {\"name\", \"pid\"} objects.",
            plan_optional_targets, format_pid},
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
      "usage: corralctl [-s SOCKET | -c CONFIG] [--json] COMMAND [ARGS]\n"
      "\n"
      "commands:\n";
  size_t width = 0;
  for (const auto& command : kCommands) {
    width = std::max(width, command.name.size() + 1 + command.synopsis.size());
  }
  for (const auto& command : kCommands) {
    std::string left(command.name);
    if (!command.synopsis.empty()) left.append(" ").append(command.synopsis);
    text += "  " + pad(left, width) + "  " + std::string(command.summary) + "\n";
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
      "  --json      print JSON instead of text\n"
      "exit codes: 0 ok, 1 the command failed, 2 usage error, 3 cannot reach corrald.\n"
      "'corralctl help COMMAND' explains a command.\n";
  return text;
}

Plan plan_command(std::string_view name, const std::vector<std::string>& args, Format format) {
  const Command* command = find_command(name);
  if (command == nullptr) {
    Plan plan;
    plan.local = usage_error(nullptr, "unknown command '" + std::string(name) + "'");
    return plan;
  }
  return command->plan(*command, args, format);
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

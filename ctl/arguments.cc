#include "ctl/arguments.h"

#include <algorithm>
#include <array>
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

// corralctl's own options, in every form split_global_args() takes.
enum class GlobalOption { kNone, kSocket, kConfig, kJson, kHelp };

GlobalOption global_option(std::string_view arg) {
  // -s PATH, -sPATH, --socket PATH, --socket=PATH (and -c, --config).
  auto is = [arg](std::string_view short_name, std::string_view long_name) {
    return (arg.starts_with(short_name) && !arg.starts_with("--")) || arg == long_name ||
           (arg.starts_with(long_name) && arg[long_name.size()] == '=');
  };
  if (arg == "--json") return GlobalOption::kJson;
  if (arg == "-h" || arg == "--help") return GlobalOption::kHelp;
  if (is("-s", "--socket")) return GlobalOption::kSocket;
  if (is("-c", "--config")) return GlobalOption::kConfig;
  return GlobalOption::kNone;
}

}  // namespace

GlobalArgs split_global_args(const std::vector<std::string>& args) {
  GlobalArgs result;
  auto refuse = [&result](const std::string& message) {
    result.answer = usage_error(nullptr, message);
    return std::move(result);
  };
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // COMMAND (a lone `-` too)
    const GlobalOption option = global_option(arg);
    if (option == GlobalOption::kNone) return refuse("unknown option '" + arg + "'");
    if (option == GlobalOption::kJson) {
      result.format = Format::kJson;
      continue;
    }
    if (option == GlobalOption::kHelp) {
      result.answer = Output{overview(), "", protocol::kExitOk};
      return result;
    }
    // -s/--socket or -c/--config, with the value joined or next.
    const bool socket = option == GlobalOption::kSocket;
    const char* name = socket ? "-s" : "-c";
    std::optional<std::string> value;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (!arg.starts_with("--") && arg.size() > 2) {
      value = arg.substr(2);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    }
    if (!value || value->empty()) {
      return refuse(std::string(name) + (socket ? " needs a socket path" : " needs a config file"));
    }
    std::optional<std::string>& slot = socket ? result.socket : result.config;
    if (slot) return refuse(std::string(name) + " is given twice");
    slot = std::move(value);
    if (result.socket && result.config) {
      return refuse(
          "-s and -c exclude each other: the socket is either given or read from the config");
    }
  }
  result.words.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return result;
}

// Options of corralctl itself, which a user may put after the command by habit.
bool is_global_option(std::string_view arg) {
  const GlobalOption option = global_option(arg);
  return option != GlobalOption::kNone && option != GlobalOption::kHelp;
}

// KNOWN are the command's options besides --help; `--` ends options so that
// a job named like one (`-web`) can still be an operand. A lone `-` is an
// operand.
Operands split_args(const Command& self, const std::vector<std::string>& args, Format format,
                    std::span<const OptionSpec> known) {
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

// WORDS -> a JSON list of normalized targets, or the usage error (exit 2)
// that names the bad one.
Result<Json, Output> parse_targets(const Command& self, const std::vector<std::string>& words) {
  Json targets = Json::array();
  for (const auto& word : words) {
    auto target = protocol::parse_target(word);
    if (!target) {
      return usage_error(&self, std::string(self.name) + ": " + target.error().message());
    }
    targets.push_back(protocol::to_string(*target));
  }
  return targets;
}

}  // namespace corral::ctl

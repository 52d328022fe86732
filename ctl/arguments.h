// A command's words after its name, split as every command splits them:
// operands, its own options (--NAME, --NAME VALUE, --NAME=VALUE), --help, and
// corralctl's global options put after the command by habit. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "ctl/commands.h"

namespace corral::ctl {

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

// corralctl's own options and the command line after them:
//   corralctl [-s SOCKET | -c CONFIG] [--json] [-h] [COMMAND [ARGS]]
// -s/--socket and -c/--config take a value as the next word, after `=`
// (--socket=PATH) or joined to the short name (-sPATH). The first word that
// is not an option, or the one after `--`, is COMMAND: the rest is the
// command's, options included. `answer` is set when the line is answered
// already: -h (the overview), or a usage error (exit 2).
struct GlobalArgs {
  std::optional<std::string> socket;
  std::optional<std::string> config;
  Format format = Format::kText;
  std::vector<std::string> words;  // COMMAND ARGS...; empty: none given
  std::optional<Output> answer;
};
GlobalArgs split_global_args(const std::vector<std::string>& args);

// Options of corralctl itself, which a user may put after the command by habit.
bool is_global_option(std::string_view arg);

// KNOWN are the command's options besides --help; `--` ends options so that
// a job named like one (`-web`) can still be an operand. A lone `-` is an
// operand.
Operands split_args(const Command& self, const std::vector<std::string>& args, Format format,
                    std::span<const OptionSpec> known = {});

// WORDS -> a JSON list of normalized targets, or the usage error (exit 2)
// that names the bad one.
Result<Json, Output> parse_targets(const Command& self, const std::vector<std::string>& words);

}  // namespace corral::ctl

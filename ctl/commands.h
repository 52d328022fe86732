// corralctl's commands: for each, how its arguments become a request to
// corrald and how corrald's reply is shown, as text (supervisorctl style) or
// as JSON (--json). Nothing here does I/O: main.cc sends the request and
// prints the Output, so every decision (request, text, exit code) is a pure
// function that a unit test can check. This header holds the command table
// (names, synopses, help: the shell's completion reads synopses from it) and
// the entry points; the rooms behind it are ctl/arguments.h (splitting a
// command's words), ctl/plans.h (words -> request), ctl/replies.h (reply ->
// text or JSON) and ctl/output.h (the pieces of an output). Thread-safe: the
// table is constant.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/client.h"
#include "protocol/control.h"
#include "protocol/exit_codes.h"

namespace corral::ctl {

using protocol::Json;

enum class Format { kText, kJson };

// What corralctl prints and how it exits.
struct Output {
  std::string out;  // for stdout
  std::string err;  // for stderr, each line starting "corralctl: " or "usage: "
  int exit_code = protocol::kExitOk;
  bool operator==(const Output&) const = default;
};

struct Command;

// Where the tasks of `submit` come from; main.cc opens the file and streams
// them with Client::submit.
struct SubmitSources {
  std::vector<std::string> data;                     // --data payloads, in order, sent first
  std::optional<std::string> file;                   // --file F, then its lines; "-" is stdin
  std::optional<std::chrono::milliseconds> timeout;  // --timeout D (with --wait)
  bool ordered = false;                              // --ordered (with --wait)
  bool operator==(const SubmitSources&) const = default;
};

// What `import` reads and where it writes (ctl/import.h); no daemon is asked.
struct ImportRequest {
  std::string source;              // "supervisord"
  std::string file;                // the configuration to read
  std::optional<std::string> out;  // -o OUT; stdout without
  bool operator==(const ImportRequest&) const = default;
};

// What to do for one command line: ask corrald, or answer at once (help,
// `COMMAND --help`, a usage error).
struct Plan {
  const Command* command = nullptr;  // null for an unknown command
  std::optional<Json> request;       // when set: send it to corrald, then format_reply
  Output local;                      // when there is no request: print it and exit
  // Set for submit: stream these after the request, then format_submit.
  std::optional<SubmitSources> submit;
  // Set for tail: corrald answers with {"ok": true}, then {"data": TEXT}
  // lines printed as they come, until {"end": true} (never, with -f).
  bool stream = false;
  // Set for fg: as stream, but each data line has a "stream" (stdout lines
  // go to stdout, stderr lines to stderr), Ctrl-C leaves with status 0, and
  // corrald's end line says how the worker's process ended
  // (format_fg_end).
  bool fg = false;
  // Set for results and retry --wait: after the reply, corrald's result
  // lines, printed as they come as submit --wait prints them, until
  // {"end": true} (Client::read_results); then format_results.
  bool results = false;
  // Set for import: run it here (ctl/import.h); nothing goes to corrald.
  std::optional<ImportRequest> import;
  // Set for top: run the live view (ctl/top.h), refreshing this often.
  std::optional<std::chrono::milliseconds> top;
  // How to show the outcome: the global --json, or a --json after the command.
  Format format = Format::kText;
};

struct Command {
  std::string_view name;
  std::string_view synopsis;  // arguments after the name, e.g. "TARGET..."
  std::string_view summary;   // one line for the command list
  std::string_view details;   // the rest of `help COMMAND`
  // ARGS (the words after the name; options included) -> Plan.
  Plan (*plan)(const Command& self, const std::vector<std::string>& args, Format format);
  // corrald's REPLY to REQUEST -> Output. Null for commands that need no daemon.
  Output (*format)(const Json& request, const Json& reply, Format format);
};

// Every command, in the order `help` lists them.
std::span<const Command> commands();
const Command* find_command(std::string_view name);

// NAME ARGS... -> Plan. An unknown NAME is a usage error.
Plan plan_command(std::string_view name, const std::vector<std::string>& args, Format format);

// The reply of corrald to PLAN.request, as the user sees it. A reply that
// does not have the shape of docs/control-protocol.md is an error (exit 1).
Output format_reply(const Plan& plan, const Json& reply, Format format);

// What submit shows once its stream has ended: the result lines and the
// refusals were printed while it ran; this is the summary and the exit code.
Output format_submit(const Plan& plan, const SubmitTotals& totals, Format format);

// What results and retry --wait show once their results have come (they
// were printed as they came): as submit --wait, exit 1 and why when a task
// failed, is dead, was cancelled or expired; with --json, results prints
// corrald's end line too ({"end": true, "cursor": C}).
Output format_results(const Plan& plan, const ResultTotals& totals, Format format);

// What fg shows when corrald ends its stream, END being its end line
// ({"end": true, "name", "state", "pid", "exit_description"}): on stderr
// how the process ended and the worker's state now ("corralctl: web:0
// exited: exit status 1; now BACKOFF"), with --json the end line on stdout;
// exit 1: fg ends by itself only when the worker stops running.
Output format_fg_end(const Json& end, Format format);

// The line submit --wait prints on stderr once corrald has accepted it, for
// a durable job: which submit this is and how to pick up its results if the
// connection is lost. nullopt for any other submit.
std::optional<std::string> submit_notice(const Json& request, const Json& ack);

// What to show when ERROR kept the request or its reply from getting through.
Output format_client_error(const Plan& plan, const ClientError& error, Format format);

// `corralctl help COMMAND` and `corralctl COMMAND --help`.
Output help_of(const Command& command, Format format);

// `corralctl help`: the usage line, the command list and the global options.
std::string overview();

}  // namespace corral::ctl

#include "ctl/commands.h"

#include <algorithm>
#include <array>
#include <utility>

#include "config/spec.h"
#include "config/units.h"
#include "ctl/arguments.h"
#include "ctl/output.h"
#include "ctl/plans.h"
#include "ctl/replies.h"
#include "protocol/exit_codes.h"
#include "protocol/json_text.h"

namespace corral::ctl {

using protocol::kExitFailed;

namespace {

// ---- The table ----

constexpr std::array kCommands = {
    Command{"status", "[TARGET...]", "show workers: state, pid, uptime, restarts, tasks",
            "One line per worker: its name (JOB:INDEX), its state, then what it is doing\n"
            "(pid and uptime, or how its last process ended), then its restarts and tasks\n"
            "when there are any. No TARGET: every worker. A job fed by a broker gets a\n"
            "line 'JOB (broker)' after its workers: READY, CONNECTING or DOWN, the\n"
            "stream, its lag and pending entries (docs/scale-out.md).\n"
            "--json prints the list of worker objects (docs/control-protocol.md).\n"
            "Exits 1 if any worker shown is FATAL or BACKOFF, or a broker DOWN, else 0.",
            plan_status, format_status},
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
    Command{"pause", "TARGET...", "freeze workers (resume thaws them)",
            "Freezes every process of each worker of the TARGETs: its cgroup\n"
            "(cgroup.freeze) where workers have cgroups, else its process group\n"
            "(SIGSTOP). A paused worker keeps its state; its tasks are not timed out\n"
            "and no heartbeat is expected from it; a stop resumes it first. Prints\n"
            "'NAME: paused' or 'NAME: ERROR (not running)'. Exits 1 if one could not be.",
            plan_required_targets, format_action},
    Command{"resume", "TARGET...", "thaw paused workers",
            "Thaws the workers of the TARGETs that pause froze. Prints 'NAME: resumed'.",
            plan_required_targets, format_action},
    Command{"clear", "TARGET...", "empty the captured output of workers",
            "Empties the stdout and stderr log files of each worker of the TARGETs\n"
            "(LOG_DIR/JOB-INDEX.out.log and .err.log; rotated copies are kept).",
            plan_required_targets, format_action},
    Command{"top", "[--interval D]", "a live view of jobs and workers",
            "A full-screen view refreshed every D (default 1s): per job its running\n"
            "workers, CPU %, RSS, tasks/s, queue depth, p99 task latency over the last\n"
            "metrics interval and restarts, with history bars of tasks/s and CPU %, then\n"
            "delayed, cancelled and expired tasks where the terminal is wide enough; per\n"
            "worker its state, pid, CPU %, RSS, tasks and restarts. q or Ctrl-C quits,\n"
            "space refreshes at once. With stdout not a terminal it prints one screen.",
            plan_top, nullptr},
    Command{"tail", "[-f] [--stderr] [-n N] JOB:INDEX", "show the captured output of a worker",
            "Prints the last N lines (default 10) of the worker's captured stdout, or of\n"
            "its stderr with --stderr; a JOB of one worker names that worker. -f then prints what "
            "the worker writes as it comes,\n"
            "across log rotations, until interrupted (Ctrl-C). Bytes that are not UTF-8\n"
            "show as U+FFFD. --json prints corrald's lines: {\"data\": TEXT} per chunk.",
            plan_tail, format_tail},
    Command{"fg", "[-n N] JOB:INDEX", "follow a running worker's stdout and stderr",
            "supervisorctl's fg: prints the last N lines (default 10) of a RUNNING\n"
            "worker's captured stdout, then of its stderr, then what it writes to either\n"
            "as it comes, until it stops: its stdout lines on stdout, its stderr lines on\n"
            "stderr, whole lines, in the order corrald reads them (each stream keeps its\n"
            "own order). A JOB of one worker names that worker. Ctrl-C leaves (exit 0)\n"
            "and the worker keeps running. When the process ends (stopped, crashed,\n"
            "restarted) fg prints what it wrote last, says how it ended on stderr\n"
            "('web:0 exited: exit status 1; now BACKOFF') and exits 1. A worker that is not\n"
            "RUNNING is refused (exit 1), as supervisorctl refuses it.\n"
            "Unlike supervisorctl's fg, what you type is not sent to the worker: corrald\n"
            "gives a worker /dev/null as stdin (or, with channel: pipe and fds: stdio, its\n"
            "task pipe, which submit feeds), never a channel it keeps open for a client;\n"
            "corralctl does not read its own stdin here.\n"
            "--json prints corrald's lines as they come: the acceptance ({\"ok\", \"name\",\n"
            "\"pid\", \"stdout\", \"stderr\"}), {\"stream\": \"stdout\" or \"stderr\",\n"
            "\"data\": TEXT} per chunk of lines, and the end line ({\"end\", \"name\",\n"
            "\"state\", \"pid\", \"exit_description\"}).",
            plan_fg, format_fg},
    Command{"maintail", "[-f] [-n N]", "show corrald's own recent log lines",
            "Prints the last N lines (default 10) of corrald's own log, as supervisorctl's\n"
            "maintail does, wherever that log goes (stderr, the journal): corrald keeps its\n"
            "last 1000 lines (at most 1 MiB) in memory, each with its time and level. -f\n"
            "then prints new lines as they come, until interrupted (Ctrl-C). --json prints\n"
            "corrald's lines: {\"data\": TEXT} per chunk.",
            plan_maintail, format_tail},
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
    Command{"avail", "", "every job of the config file and of corrald",
            "Reads the config file as reread does and prints one line per job of the file\n"
            "and of the running config: its name; 'in use' (running now), 'avail' (in the\n"
            "file, not loaded: update adds it) or 'removed' (running, gone from the file:\n"
            "update removes it); 'auto' or 'manual' (autostart); and its workers. A job\n"
            "whose settings in the file differ from the running ones says so. Changes\n"
            "nothing. --json prints the list of {\"name\", \"state\", \"autostart\",\n"
            "\"workers\", \"changed\"}. A config with errors prints every error and exits 1.",
            plan_no_args, format_avail},
    Command{"reload", "", "reread and update in one step (as SIGHUP does)",
            "The same as update: reads, validates and applies the config file.", plan_no_args,
            format_reload},
    Command{"pid", "[TARGET...]", "the pid of corrald, or of workers",
            "No TARGET: the pid of corrald. A single JOB:INDEX: that worker's bare pid\n"
            "(exits 1 when it has no process). Otherwise one line per worker, 'NAME PID',\n"
            "with '-' for a worker without a process. --json prints the pid, or the list\n"
            "of {\"name\", \"pid\"} objects.",
            plan_optional_targets, format_pid},
    Command{"submit",
            "JOB [--data P]... [--file F | -] [--deadline D] [--wait [--timing] [--ordered] "
            "[--timeout D]]",
            "queue tasks for a job",
            "Queues one task per --data P, then one per line of F (- reads stdin). A line\n"
            "ends at '\\n'; a '\\r' before it is kept; an empty last line after the final\n"
            "'\\n' is not a task. Tasks are streamed: any number of lines, in bounded\n"
            "memory; corrald's back-pressure (a full queue) only slows the stream.\n"
            "Prints 'submitted N tasks to JOB (submit S)': S numbers this submit for\n"
            "'cancel JOB --submit S' and 'results JOB --submit S' (--json: the end object,\n"
            "{\"end\": true, \"submitted\": N, \"refused\": R, \"submit\": S}).\n"
            "--deadline D (30s, 5m): a task not handed to a worker within D of its\n"
            "acceptance ends expired instead, also while it waits for a retry.\n"
            "--wait waits for the results instead and prints one JSON line per task as it\n"
            "finishes, in the order they finish: id, seq (its 0-based position in this\n"
            "submit), status (ok, failed, dead, cancelled, expired), result, attempts; with\n"
            "--timing also run_us, the microseconds from corrald handing the task to a\n"
            "worker to corrald reading its result. --ordered prints them in the order of\n"
            "the tasks instead (at most 4096 tasks are sent ahead of the first without a\n"
            "result, so memory stays bounded). While no worker of the job is RUNNING, a\n"
            "line on stderr says why (once, until one runs). --timeout D stops waiting\n"
            "after D (exit 1); the tasks stay queued in corrald. For a job with\n"
            "queue.durable, --wait first says on stderr which submit this is and how to\n"
            "pick up its results if the connection is lost (results --submit S --follow).\n"
            "A task corrald refuses (over queue.max_task_bytes, or a durable job that\n"
            "cannot write its spool), or one over the 1 MiB line limit (not sent, so it\n"
            "has no seq), is reported on stderr as FILE:LINE, stdin:LINE or --data #N.\n"
            "Exits 1 if a task was refused, failed, is dead, was cancelled or expired.",
            plan_submit, format_submit_reply},
    Command{"cancel", "JOB (ID... | --submit S | --queued) [--running]",
            "cancel tasks that have not started, or running ones",
            "Cancels the tasks of JOB that are queued or wait for a retry: those of the\n"
            "IDs (the ids of result lines), those of submit S (the number submit prints),\n"
            "or every one (--queued). Each ends cancelled: a submitter waiting for it gets\n"
            "a result line of status cancelled. A task already running is left alone and\n"
            "listed, unless --running: then the workers running such tasks are stopped,\n"
            "and those tasks' results are dropped. Prints 'JOB: 3 tasks cancelled, 1\n"
            "stopping; running (use --running to stop them): 12; unknown: 40, 41'\n"
            "(unknown: finished, or never submitted). --json prints corrald's reply.\n"
            "Exits 1 if an ID was unknown or left running, else 0.",
            plan_cancel, format_cancel},
    Command{"results", "JOB [--follow] [--since C] [--submit S]", "the results a durable job keeps",
            "Prints the results JOB keeps (a job with queue.durable: true keeps them for\n"
            "queue.keep_results, default 10m), one JSON line each in the order they\n"
            "finished, as submit --wait prints them, with two more fields: submit (the\n"
            "number of the submit the task came in) and cursor (which grows with each\n"
            "result recorded). --since C prints only those after cursor C; --submit S only\n"
            "those of submit S. --follow (-f) then prints new results as they are\n"
            "recorded, until interrupted (Ctrl-C); with --submit, until every task of that\n"
            "submit has a result, which is what the lost 'submit --wait' would have\n"
            "printed. --json also prints corrald's end line, {\"end\":true,\"cursor\":C}:\n"
            "the C for the next --since. Exits 1 if a result printed is failed, dead,\n"
            "cancelled or expired.",
            plan_results, format_results_reply},
    Command{"stats", "[JOB]", "task counters of every job, or of one",
            "One line per job: submitted, queued, delayed (waiting for a retry),\n"
            "in_flight, ok, failed, redelivered, dead, cancelled and expired tasks, then\n"
            "tasks/s and latencies. --json prints corrald's reply: {\"daemon\": {...},\n"
            "\"jobs\": {JOB: {...}}}.",
            plan_optional_job, format_stats},
    Command{"shared", "JOB", "the shared values and arrays of a job",
            "Prints 'NAME = VALUE' for each shared value and 'NAME = [A, B, ...]' for each\n"
            "shared array of JOB. --json prints {\"values\": {...}, \"arrays\": {...}}.",
            plan_one_job, format_shared},
    Command{"dead", "JOB [--clear]", "the dead-letter list of a job",
            "One line per failed or dead task still in JOB's dead-letter list, oldest\n"
            "first: 'id N  STATUS  attempts A  REASON  payload: P' (a newline in REASON or P\n"
            "shows as \\n). --json prints the list of letters. Says on stderr how many\n"
            "older letters the full list dropped.\n"
            "--clear drops every letter of the list instead and prints 'JOB: cleared N dead\n"
            "letters' (--json: {\"cleared\": N}); corrald logs it.",
            plan_dead, format_dead},
    Command{"retry", "JOB [ID...] [--wait]", "queue the dead letters of a job again",
            "Queues the tasks of JOB's dead-letter list again, as new tasks: every letter, or\n"
            "only those whose IDs are given (as 'dead JOB' shows them; an ID that is not in\n"
            "the list is an error, and nothing is queued then). The letters leave the list.\n"
            "Prints 'requeued N tasks'; their results go to the job's sink. --wait waits for\n"
            "the results instead and prints one JSON line per task as it finishes, as\n"
            "'submit --wait' does (id, seq: its position among the requeued letters,\n"
            "status, result, attempts), and exits 1 if a task failed, is dead, was\n"
            "cancelled or expired.",
            plan_retry, format_retry},
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
    Command{"import", "supervisord FILE [-o OUT]", "turn a supervisord config into a corral config",
            "Reads FILE as supervisord 4 reads it (its [include] files, %(here)s,\n"
            "%(program_name)s, %(process_num)02d, %(ENV_X)s and the other expansions, its\n"
            "value syntax) and prints a corral config whose jobs do what supervisord's\n"
            "programs did, or writes it to OUT (-o, --output; atomically, mode 0644). Each\n"
            "option without an equivalent, or with another meaning, gets a YAML comment\n"
            "saying why (docs/coming-from-supervisord.md). A command with\n"
            "%(process_num) becomes [sh, -c, 'exec ...'] that rebuilds supervisord's\n"
            "argv from CORRAL_WORKER. [eventlistener:x] and [fcgi-program:x] are written\n"
            "commented out. The output passes corrald --check. Local: corrald is not asked.\n"
            "Warnings and errors go to stderr as FILE:LINE: warning: ... and\n"
            "FILE:LINE: error: .... --json prints one object: {\"yaml\": TEXT} or\n"
            "{\"written\": OUT}, \"warnings\" and \"errors\" (lists of {\"file\", \"line\",\n"
            "\"message\"}) and \"exit_code\". Exits 0 when written without warnings, 1\n"
            "when written with warnings, 2 when nothing was written (a file supervisord\n"
            "would refuse, or one that cannot be read).",
            plan_import, nullptr},
    Command{"help", "[COMMAND]", "list the commands, or explain one",
            "Lists the commands, or shows the help of COMMAND ('corralctl COMMAND --help'\n"
            "does the same).",
            plan_help, nullptr},
};

// Why a wait for results exits 1, OF being what they are counted among ("10
// tasks", "2 results"): "3 of 10 tasks failed or dead", or, when some were
// cancelled or expired, "4 of 10 tasks did not end ok: 2 failed or dead, 1
// cancelled, 1 expired".
std::string not_ok_message(uint64_t failed, uint64_t cancelled, uint64_t expired,
                           const std::string& of) {
  if (cancelled == 0 && expired == 0) {
    return std::to_string(failed) + " of " + of + " failed or dead";
  }
  std::string parts;
  auto part = [&parts](uint64_t n, std::string_view what) {
    if (n == 0) return;
    parts.append(parts.empty() ? "" : ", ").append(std::to_string(n)).append(" ").append(what);
  };
  part(failed, "failed or dead");
  part(cancelled, "cancelled");
  part(expired, "expired");
  return std::to_string(failed + cancelled + expired) + " of " + of + " did not end ok: " + parts;
}

}  // namespace

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
      "TARGET is JOB, JOB:INDEX, JOB:* (the same as JOB) or all; '--' ends a command's\n"
      "options.\n"
      "options:\n"
      "  -s SOCKET   the control socket (else $CORRAL_SOCKET, else daemon.socket of\n"
      "              -c CONFIG, else " +
      config::DaemonSpec().socket +
      ")\n"
      "  -c CONFIG   read the socket path from corrald's config file\n"
      "  --json      print JSON instead of text (may also follow the command)\n"
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
    if (format == Format::kJson) {
      Json end{{"end", true}, {"submitted", totals.submitted}, {"refused", totals.refused}};
      if (totals.submit) end["submit"] = *totals.submit;
      output.out = dump(end);
    } else {
      output.out = "submitted " + plural(totals.submitted, "task", "tasks") + " to " + job +
                   (totals.submit ? " (submit " + std::to_string(*totals.submit) + ")" : "") + "\n";
    }
  }
  if (!totals.input_error.empty()) {
    const std::string& file = *plan.submit->file;
    output.err += "corralctl: reading " + (file == "-" ? std::string("stdin") : file) + ": " +
                  totals.input_error + "; the tasks before were submitted\n";
  }
  if (totals.refused > 0) {
    output.err += "corralctl: " + plural(totals.refused, "task was", "tasks were") + " refused\n";
  }
  if (totals.timed_out) {
    const auto& timeout = plan.submit->timeout;
    // A durable job keeps the results, so they can still be had.
    std::string where = totals.durable && totals.submit
                            ? "corralctl results " + job + " --submit " +
                                  std::to_string(*totals.submit) + " --follow waits for them"
                            : "corralctl stats " + job;
    output.err += "corralctl: submit: timed out after " +
                  (timeout ? config::format_duration(*timeout) : std::string("its timeout")) +
                  " with " + plural(totals.results, "result", "results") +
                  "; the tasks without one stay queued in corrald (" + where + ")" +
                  (totals.input_unsent ? "; the rest of the input was not sent" : "") + "\n";
  }
  if (totals.failed + totals.cancelled + totals.expired > 0) {
    output.err += "corralctl: " +
                  not_ok_message(totals.failed, totals.cancelled, totals.expired,
                                 totals.timed_out ? plural(totals.results, "result", "results")
                                                  : plural(totals.submitted, "task", "tasks")) +
                  "\n";
  }
  if (!output.err.empty()) output.exit_code = kExitFailed;
  return output;
}

Output format_results(const Plan& plan, const ResultTotals& totals, Format format) {
  Output output;
  if (totals.failed + totals.cancelled + totals.expired > 0) {
    output = failed(not_ok_message(totals.failed, totals.cancelled, totals.expired,
                                   plural(totals.results, "task", "tasks")));
  }
  // One compact line, so that stdout stays one JSON object per line.
  if (format == Format::kJson && plan.request && string_field(*plan.request, "cmd") == "results" &&
      totals.end.is_object()) {
    output.out = protocol::json_text(totals.end) + "\n";
  }
  return output;
}

Output format_fg_end(const Json& end, Format format) {
  Output output;
  if (format == Format::kJson) output.out = protocol::json_text(end) + "\n";
  std::string name = string_field(end, "name");
  std::string state = string_field(end, "state");
  std::string exit = string_field(end, "exit_description");
  std::string message;
  if (state.empty()) {
    message = name + " is gone: its job was removed or changed";
  } else if (!exit.empty()) {
    message = name + " exited: " + exit + "; now " + state;
    if (auto pid = int_field(end, "pid"); pid && *pid > 0) {
      message += " (pid " + std::to_string(*pid) + ")";
    }
  } else {
    message = name + " is " + state;
  }
  output.err = "corralctl: " + message + "\n";
  output.exit_code = kExitFailed;
  return output;
}

std::optional<std::string> submit_notice(const Json& request, const Json& ack) {
  if (!request.value("wait", false) || !ok_field(ack)) return std::nullopt;
  auto durable = ack.find("durable");
  auto submit = int_field(ack, "submit");
  if (durable == ack.end() || !durable->is_boolean() || !durable->get<bool>() || !submit ||
      *submit < 0) {
    return std::nullopt;
  }
  std::string job = job_of(request);
  std::string id = std::to_string(*submit);
  return "corralctl: submit " + id + " to " + job +
         " (if this connection is lost: corralctl results " + job + " --submit " + id +
         " --follow)\n";
}

Output format_client_error(const Plan& plan, const ClientError& error, Format format) {
  Output output = failed(error.message());
  output.exit_code = error.exit_code();
  if (error.kind() == ClientError::Kind::kUnreachable) {
    output.err +=
        "corralctl: is corrald running? Name its socket with -s PATH, or its config with -c FILE "
        "(daemon.socket)\n";
  }
  if (plan.command != nullptr && plan.command->name == "version") {
    // corralctl's own version is known without a daemon.
    output.out = format == Format::kJson
                     ? dump(Json{{"corralctl", protocol::kVersion}, {"corrald", nullptr}})
                     : std::string("corralctl ") + protocol::kVersion + "\n";
  }
  return output;
}

}  // namespace corral::ctl

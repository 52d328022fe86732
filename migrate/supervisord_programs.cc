// The reading half of the import (supervisord_programs.h): [supervisord],
// the groups and each program's options as supervisord 4 reads them, its
// defaults, checks and expansions, its warnings, and the first refusal.
#include "migrate/supervisord_programs.h"

#include <pwd.h>

#include <algorithm>
#include <map>
#include <set>

namespace corral::migrate::detail {
namespace {

// What supervisord refuses: unwinds the reading of one section (or of the
// file) to the place that reports it. Never leaves this file.
struct Refusal {
  Diagnostic diagnostic;
};

class ProgramReader {
 public:
  ProgramReader(const std::string& file, const ImportOptions& options, SupervisordConfig& config,
                std::vector<Diagnostic>& warnings)
      : file_(file), options_(options), config_(config), warnings_(warnings) {}

  // Throws a Refusal where supervisord refuses the configuration.
  void run();

 private:
  void warn(const std::string& file, int line, std::string message) {
    warnings_.push_back({file, line, std::move(message)});
  }
  [[noreturn]] static void refuse(const std::string& file, int line, std::string message) {
    throw Refusal{{file, line, std::move(message)}};
  }
  [[noreturn]] static void refuse_at(const IniSection& section, const IniOption* option,
                                     const std::string& message) {
    refuse(option != nullptr ? option->file : section.file,
           option != nullptr ? option->line : section.line, "[" + section.name + "] " + message);
  }

  struct Got {
    std::string value;
    const IniOption* option = nullptr;  // null: the default
    bool present() const { return option != nullptr; }
  };
  // supervisord's saneget: OPTION of SECTION or DEFAULT, expanded (unless
  // not DO_EXPAND) with the environment's ENV_ names and EXTRA.
  Got get(const IniSection& section, std::string_view option, std::optional<std::string> fallback,
          const Expansions& extra, bool do_expand = true,
          std::vector<Conversion>* conversions = nullptr);
  bool read_exists(const IniSection& section, std::string_view option) const {
    return config_.read.doc.get(section, option) != nullptr;
  }

  void read_supervisord();
  void read_groups();
  Program read_program(const IniSection& section, const std::string& kind,
                       const std::string& group_name);

  const std::string& file_;
  const ImportOptions& options_;
  SupervisordConfig& config_;
  std::vector<Diagnostic>& warnings_;
  Expansions environ_;  // ENV_ names: the environment, then [supervisord]'s
};

ProgramReader::Got ProgramReader::get(const IniSection& section, std::string_view option,
                                      std::optional<std::string> fallback, const Expansions& extra,
                                      bool do_expand, std::vector<Conversion>* conversions) {
  Got got;
  if (const IniOption* found = config_.read.doc.get(section, option)) {
    got.value = found->value;
    got.option = found;
  } else if (fallback) {
    got.value = *fallback;
  } else {
    return got;
  }
  if (!do_expand) return got;
  Expansions all = environ_;
  for (const auto& [k, v] : extra) all[k] = v;
  auto expanded = expand(got.value, all, section.name + "." + std::string(option), conversions);
  if (!expanded) refuse_at(section, got.option, expanded.error().message());
  got.value = std::move(*expanded);
  return got;
}

constexpr std::string_view kProgramOptions[] = {
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "startsecs",
    "startretries",
    "autorestart",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "environment",
    "directory",
    "umask",
    "serverurl",
    // eventlistener
    "buffer_size",
    "events",
    "result_handler",
    // fcgi-program
    "socket",
    "socket_backlog",
    "socket_owner",
    "socket_mode",
};

void ProgramReader::read_supervisord() {
  const IniSection& s = *config_.supervisord;
  static constexpr std::string_view kKnown[] = {
      "logfile",  "logfile_maxbytes", "logfile_backups", "loglevel",    "pidfile",   "umask",
      "nodaemon", "silent",           "minfds",          "minprocs",    "nocleanup", "childlogdir",
      "user",     "directory",        "strip_ansi",      "environment", "identifier"};
  check_known_options(s, kKnown, warnings_);
  Expansions common{{"here", {ExpansionValue::Kind::kText, config_.here, 0}}};
  auto checked = [&](std::string_view option, const char* fallback, auto parse) {
    Got got = get(s, option, std::string(fallback), common);
    auto value = parse(got.value);
    if (!value) refuse_at(s, got.option, std::string(option) + ": " + value.error().message());
    return *value;
  };
  checked("minfds", "1024", integer);
  checked("minprocs", "200", integer);
  Got directory = get(s, "directory", std::nullopt, common);
  if (directory.present()) config_.directory = directory.value;
  get(s, "user", std::nullopt, common);
  config_.umask = checked("umask", "022", octal);
  config_.umask_written = read_exists(s, "umask");
  get(s, "logfile", std::string("supervisord.log"), common);
  checked("logfile_maxbytes", "50MB", byte_size);
  checked("logfile_backups", "10", integer);
  checked("loglevel", "info", logging_level);
  get(s, "pidfile", std::string("supervisord.pid"), common);
  get(s, "identifier", std::string("supervisor"), common);
  config_.nodaemon = checked("nodaemon", "false", boolean);
  checked("silent", "false", boolean);
  Got childlogdir = get(s, "childlogdir", std::nullopt, common);
  if (childlogdir.present()) config_.childlogdir = childlogdir.value;
  checked("nocleanup", "false", boolean);
  checked("strip_ansi", "false", boolean);
  // environment: expanded with here, host_node_name and ENV_ names.
  Got env = get(s, "environment", std::string(), {}, false);
  Expansions expansions = environ_;
  expansions["here"] = {ExpansionValue::Kind::kText, config_.here, 0};
  expansions["host_node_name"] = {ExpansionValue::Kind::kText, options_.host_node_name, 0};
  auto expanded = expand(env.value, expansions, "environment", nullptr);
  if (!expanded) refuse_at(s, env.option, expanded.error().message());
  auto pairs = key_value_pairs(*expanded);
  if (!pairs) refuse_at(s, env.option, "environment: " + pairs.error().message());
  config_.environment = *pairs;
  for (const auto& [k, v] : config_.environment) {
    environ_["ENV_" + k] = {ExpansionValue::Kind::kText, v, 0};
  }
}

Program ProgramReader::read_program(const IniSection& section, const std::string& kind,
                                    const std::string& group_name) {
  Program p;
  p.section = &section;
  p.kind = kind;
  p.group = group_name;
  check_known_options(section, kProgramOptions, warnings_);
  std::string suffix = section.name.substr(section.name.find(':') + 1);
  auto name = process_or_group_name(suffix);
  if (!name) refuse_at(section, nullptr, name.error().message());
  p.name = *name;
  Expansions common{{"here", {ExpansionValue::Kind::kText, config_.here, 0}},
                    {"program_name", {ExpansionValue::Kind::kText, p.name, 0}},
                    {"host_node_name", {ExpansionValue::Kind::kText, options_.host_node_name, 0}},
                    {"group_name", {ExpansionValue::Kind::kText, group_name, 0}}};
  auto checked = [&](std::string_view option, std::string fallback, auto parse) {
    Got got = get(section, option, std::move(fallback), common);
    auto value = parse(got.value);
    if (!value)
      refuse_at(section, got.option, std::string(option) + ": " + value.error().message());
    return *value;
  };
  p.priority = checked("priority", kind == "eventlistener" ? "-1" : "999", integer);
  p.autostart = checked("autostart", "true", boolean);
  p.autorestart = checked("autorestart", "unexpected", auto_restart);
  p.startsecs = checked("startsecs", "1", integer);
  p.startretries = checked("startretries", "3", integer);
  p.stopsignal = checked("stopsignal", "TERM", signal_number);
  p.stopwaitsecs = checked("stopwaitsecs", "10", integer);
  p.stopasgroup = checked("stopasgroup", "false", boolean);
  p.killasgroup = checked("killasgroup", p.stopasgroup ? "true" : "false", boolean);
  p.group_options_written =
      read_exists(section, "stopasgroup") || read_exists(section, "killasgroup");
  p.exitcodes = checked("exitcodes", "0", exit_codes);
  p.redirect_stderr = checked("redirect_stderr", "false", boolean);
  p.numprocs = checked("numprocs", "1", integer);
  p.numprocs_start = checked("numprocs_start", "0", integer);
  Got env = get(section, "environment", std::string(), {}, false);
  p.stdout_capture = checked("stdout_capture_maxbytes", "0", byte_size);
  p.stdout_events = checked("stdout_events_enabled", "false", boolean);
  p.stderr_capture = checked("stderr_capture_maxbytes", "0", byte_size);
  p.stderr_events = checked("stderr_events_enabled", "false", boolean);
  Got serverurl = get(section, "serverurl", std::nullopt, common);
  if (serverurl.present()) p.serverurl = serverurl.value;
  Got user = get(section, "user", std::nullopt, common);
  if (user.present()) {
    p.user = user.value;
    bool numeric = !user.value.empty() && std::all_of(user.value.begin(), user.value.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
    // supervisord refuses the file: so does the import (import on the
    // machine that will run it, or make the user first).
    if (!numeric && ::getpwnam(user.value.c_str()) == nullptr) {
      refuse_at(section, user.option, "user: Invalid user name " + user.value);
    }
  }
  Got umask = get(section, "umask", std::nullopt, common);
  if (umask.present()) {
    auto value = octal(umask.value);
    if (!value) refuse_at(section, umask.option, "umask: " + value.error().message());
    p.umask = *value;
  }
  Got process_name = get(section, "process_name", std::string("%(program_name)s"), {}, false);
  p.process_name_written = process_name.present();
  auto checked_name = process_or_group_name(process_name.value);
  if (!checked_name) refuse_at(section, process_name.option, checked_name.error().message());
  p.process_name = *checked_name;
  if (p.numprocs > 1 && p.process_name.find("%(process_num)") == std::string::npos) {
    // At the line that asks for several processes, unless process_name is written.
    refuse_at(
        section,
        process_name.present() ? process_name.option : config_.read.doc.get(section, "numprocs"),
        "%(process_num) must be present within process_name when numprocs > 1");
  }
  if (p.stopasgroup && !p.killasgroup) {
    refuse_at(section, config_.read.doc.get(section, "killasgroup"),
              "Cannot set stopasgroup=true and killasgroup=false");
  }
  if (kind == "eventlistener") {
    int64_t buffer_size = checked("buffer_size", "10", integer);
    if (buffer_size < 1) {
      refuse_at(section, config_.read.doc.get(section, "buffer_size"),
                "section sets invalid buffer_size (" + std::to_string(buffer_size) + ")");
    }
    Got events = get(section, "events", std::string(), common);
    if (list_of_strings(events.value).empty()) {
      refuse_at(section, nullptr, "section requires an \"events\" line");
    }
    if (p.redirect_stderr) {
      refuse_at(section, config_.read.doc.get(section, "redirect_stderr"),
                "section sets redirect_stderr=true but this is not allowed because it will "
                "interfere with the eventlistener protocol");
    }
  }
  if (kind == "fcgi-program") {
    Expansions fcgi = common;
    Got socket = get(section, "socket", std::string(), fcgi);
    if (socket.value.empty()) refuse_at(section, nullptr, "section requires a \"socket\" line");
  }
  if (p.numprocs <= 0) return p;  // supervisord reads nothing more: no process

  // The per-process options, read once with process_num as a mark.
  Expansions expansions = common;
  expansions["process_num"] = {ExpansionValue::Kind::kProcessNum, "", 0};
  expansions["numprocs"] = {ExpansionValue::Kind::kInteger, "", p.numprocs};
  for (const auto& [k, v] : environ_) expansions[k] = v;
  Expansions env_expansions = environ_;
  for (const auto& [k, v] : expansions) env_expansions[k] = v;
  auto env_text = expand(env.value, env_expansions, "environment", &p.conversions);
  if (!env_text) refuse_at(section, env.option, env_text.error().message());
  p.env_text = *env_text;
  auto pairs = key_value_pairs(p.env_text);
  if (!pairs) refuse_at(section, env.option, "environment: " + pairs.error().message());
  p.env = *pairs;
  for (const auto& [k, v] : p.env) expansions["ENV_" + k] = {ExpansionValue::Kind::kText, v, 0};
  Got directory = get(section, "directory", std::nullopt, expansions, true, &p.conversions);
  if (directory.present()) p.directory = directory.value;
  for (const auto& [stream, log] : {std::pair<std::string, StreamLog*>{"stdout", &p.out},
                                    std::pair<std::string, StreamLog*>{"stderr", &p.err}}) {
    std::string key = stream + "_logfile";
    Got file = get(section, key, std::nullopt, expansions, true, &p.conversions);
    if (file.present()) {
      // supervisord expands a logfile name twice.
      Expansions all = environ_;
      for (const auto& [k, v] : expansions) all[k] = v;
      auto again = expand(file.value, all, key, &p.conversions);
      if (!again) refuse_at(section, file.option, again.error().message());
      log->raw = *again;
      log->name = logfile_name(log->raw);
      log->option = file.option;
    }
    auto stream_checked = [&](const std::string& option, std::string fallback, auto parse) {
      Got got = get(section, option, std::move(fallback), expansions, true, &p.conversions);
      auto value = parse(got.value);
      if (!value) refuse_at(section, got.option, option + ": " + value.error().message());
      return *value;
    };
    log->backups = stream_checked(stream + "_logfile_backups", "10", integer);
    log->maxbytes = stream_checked(stream + "_logfile_maxbytes", "50MB", byte_size);
    log->syslog = stream_checked(stream + "_syslog", "false", boolean);
    if (log->name.kind == LogfileName::Kind::kSyslog) {
      warn(log->option->file, log->option->line,
           "For [" + section.name + "], " + key + "=syslog but this is deprecated and will be " +
               "removed.  Use " + stream + "_syslog=true to enable syslog instead.");
      log->name.kind = LogfileName::Kind::kNone;
      log->syslog = true;
    }
    if (log->name.kind == LogfileName::Kind::kAuto && log->maxbytes == 0) {
      warn(section.file, section.line,
           "For [" + section.name + "], AUTO logging used for " + key +
               " without rollover, set maxbytes > 0 to avoid filling up filesystem "
               "unintentionally");
    }
  }
  if (p.redirect_stderr && p.err.name.kind == LogfileName::Kind::kPath) {
    warn(p.err.option->file, p.err.option->line,
         "For [" + section.name +
             "], redirect_stderr=true but stderr_logfile has also been set to a filename, the "
             "filename has been ignored");
  }
  Got command = get(section, "command", std::nullopt, expansions, true, &p.conversions);
  if (!command.present()) {
    refuse_at(section, nullptr, "program section " + section.name + " does not specify a command");
  }
  p.command = command.value;
  Expansions all = environ_;
  for (const auto& [k, v] : expansions) all[k] = v;
  std::vector<Conversion> name_conversions;
  auto expanded_name = expand(p.process_name, all, "process_name", &name_conversions);
  if (!expanded_name) refuse_at(section, process_name.option, expanded_name.error().message());
  // Every process's values, as supervisord computes them one by one: the
  // same errors, and the environment parsed for each.
  for (int64_t n = p.numprocs_start; n < p.numprocs_start + p.numprocs; ++n) {
    auto text = fill_marks(p.env_text, p.conversions, n);
    if (!text) refuse_at(section, env.option, text.error().message());
    auto each = key_value_pairs(*text);
    if (!each) refuse_at(section, env.option, "environment: " + each.error().message());
  }
  return p;
}

void ProgramReader::read_groups() {
  std::set<std::string> grouped;
  std::vector<std::pair<const IniSection*, std::string>> members;  // section, group
  std::map<const IniSection*, std::pair<std::string, int64_t>> group_of;
  std::map<const IniSection*, std::string> group_section_of;
  for (const auto& section : config_.read.doc.sections) {
    if (!section.name.starts_with("group:")) continue;
    static constexpr std::string_view kKnown[] = {"programs", "priority"};
    check_known_options(section, kKnown, warnings_);
    auto name = process_or_group_name(section.name.substr(6));
    if (!name) refuse_at(section, nullptr, name.error().message());
    Expansions common{{"here", {ExpansionValue::Kind::kText, config_.here, 0}}};
    Got programs = get(section, "programs", std::nullopt, common);
    Got priority_text = get(section, "priority", std::string("999"), common);
    auto priority = integer(priority_text.value);
    if (!priority)
      refuse_at(section, priority_text.option, "priority: " + priority.error().message());
    for (const auto& program : list_of_strings(programs.value)) {
      const IniSection* plain = config_.read.doc.find("program:" + program);
      const IniSection* fcgi = config_.read.doc.find("fcgi-program:" + program);
      if (plain == nullptr && fcgi == nullptr) {
        refuse_at(section, programs.option, "names unknown program or fcgi-program " + program);
      }
      if (plain != nullptr && fcgi != nullptr) {
        refuse_at(section, programs.option,
                  "name " + program + " is ambiguous (exists as program and fcgi-program)");
      }
      const IniSection* member = plain != nullptr ? plain : fcgi;
      if (group_of.contains(member)) {
        warn(programs.option->file, programs.option->line,
             "[" + section.name + "] names " + program + ", already in [" +
                 group_section_of[member] +
                 "]: supervisord runs a second set of its processes; the import keeps the first");
        continue;
      }
      group_of[member] = {*name, *priority};
      group_section_of[member] = section.name;
    }
  }
  for (const auto& section : config_.read.doc.sections) {
    std::string kind = section.name.substr(0, section.name.find(':'));
    if (section.name.find(':') == std::string::npos) continue;
    if (kind != "program" && kind != "fcgi-program" && kind != "eventlistener") continue;
    auto group = group_of.find(&section);
    std::string group_name;
    if (group != group_of.end()) {
      group_name = group->second.first;
    } else if (kind == "eventlistener") {
      group_name = section.name.substr(section.name.find(':') + 1);
    } else {
      auto name = process_or_group_name(section.name.substr(section.name.find(':') + 1));
      if (!name) refuse_at(section, nullptr, name.error().message());
      group_name = *name;
    }
    Program p = read_program(section, kind, group_name);
    if (group != group_of.end()) {
      p.group_priority = group->second.second;
      p.group_section = group_section_of[&section];
    }
    config_.programs.push_back(std::move(p));
  }
}

void ProgramReader::run() {
  for (const auto& [k, v] : options_.environ) {
    environ_["ENV_" + k] = {ExpansionValue::Kind::kText, v, 0};
  }
  for (const auto& section : config_.read.doc.sections) {
    for (const auto& [name, option] : section.options) {
      if (option.value.find(kMark) != std::string::npos ||
          option.value.find(kMarkEnd) != std::string::npos) {
        refuse(option.file, option.line,
               "the value holds the control character \\x01 or \\x02, which the import refuses");
      }
    }
  }
  config_.supervisord = config_.read.doc.find("supervisord");
  if (config_.supervisord == nullptr) {
    refuse(file_, 0, ".ini file does not include supervisord section");
  }
  read_supervisord();
  read_groups();
}

}  // namespace

void check_known_options(const IniSection& section, std::span<const std::string_view> known,
                         std::vector<Diagnostic>& warnings) {
  for (const auto& [name, option] : section.options) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      warnings.push_back(
          {option.file, option.line,
           "unknown option \"" + name + "\" in [" + section.name + "]; supervisord ignores it"});
    }
  }
}

bool read_programs(const std::string& file, const ImportOptions& options, SupervisordConfig& config,
                   ImportResult& result) {
  config.read = read_supervisord_files(file, options.environ, options.host_node_name);
  result.warnings = config.read.warnings;
  if (!config.read.errors.empty()) {
    result.errors = config.read.errors;
    result.exit_code = kImportNothingWritten;
    return false;
  }
  config.here = directory_of(file);
  try {
    ProgramReader(file, options, config, result.warnings).run();
  } catch (const Refusal& refusal) {
    result.errors.push_back(refusal.diagnostic);
    result.exit_code = kImportNothingWritten;
    return false;
  }
  return true;
}

}  // namespace corral::migrate::detail

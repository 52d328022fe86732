#include "migrate/supervisord_import.h"

#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <utility>

#include "base/job_name.h"
#include "config/parse.h"
#include "config/quote.h"
#include "config/units.h"

namespace corral::migrate {

namespace {

// What supervisord refuses: unwinds the reading of one section (or of the
// file) to the place that reports it. Never leaves this file.
struct Refusal {
  Diagnostic diagnostic;
};

std::string q(std::string_view text) {
  return "\"" + config::escape_double_quoted(text, config::Invisible::kKeep) + "\"";
}

std::string seconds(int64_t n) {
  return config::format_duration(std::chrono::seconds(std::max<int64_t>(0, n)));
}

std::string octal_text(int64_t mode) {
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "0%03llo", static_cast<unsigned long long>(mode));
  return buffer.data();
}

// YAML text with comments where they belong.
class Yaml {
 public:
  void line(int indent, std::string_view text) {
    text_.append(static_cast<size_t>(indent), ' ').append(text).append("\n");
  }
  // TEXT as '#' lines at INDENT, wrapped at about 100 columns.
  void comment(int indent, std::string_view text) {
    size_t width = 100 - static_cast<size_t>(indent) - 2;
    std::string current;
    auto flush = [&] {
      line(indent, "# " + current);
      current.clear();
    };
    size_t i = 0;
    while (i < text.size()) {
      size_t space = text.find(' ', i);
      std::string_view word = text.substr(i, space == std::string_view::npos ? space : space - i);
      if (!current.empty() && current.size() + 1 + word.size() > width) flush();
      if (!current.empty()) current.push_back(' ');
      current.append(word);
      if (space == std::string_view::npos) break;
      i = space + 1;
    }
    if (!current.empty()) flush();
  }
  void blank() { text_.append("\n"); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A directory that others may write (world-writable, or group-writable by a
// group other than root's): corral refuses files there unless
// daemon.private_dirs is false.
// Whether a directory on the way to PATH's (those that exist) lets someone
// other than root add names to it: another owner, or group/other write
// without a sticky bit above the last step; corrald refuses such a log
// directory unless daemon.private_dirs is false (daemon/private_dir.h).
bool shared_directory(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  for (bool last = true;; last = false) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      const bool sticky = !last && (st.st_mode & S_ISVTX) != 0;
      const bool writable =
          (st.st_mode & S_IWOTH) != 0 || ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0);
      if (st.st_uid != 0 || (writable && !sticky)) return true;
    }
    if (dir == "/") return false;
    size_t up = dir.rfind('/');
    dir = up == 0 ? "/" : dir.substr(0, up);
  }
}

std::string sanitize_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out == "." || out == "..") out = "program" + out;
  return out;
}

struct StreamLog {
  LogfileName name;
  std::string raw;  // the value, expanded (marks for process_num)
  int64_t backups = 10;
  int64_t maxbytes = 50 * 1024 * 1024;
  bool syslog = false;
  const IniOption* option = nullptr;
};

struct Program {
  const IniSection* section = nullptr;
  std::string kind;  // program, eventlistener, fcgi-program
  std::string name;
  std::string group;
  std::optional<int64_t> group_priority;
  std::string group_section;
  int64_t priority = 999;
  bool autostart = true;
  AutoRestart autorestart = AutoRestart::kUnexpected;
  int64_t startsecs = 1;
  int64_t startretries = 3;
  int stopsignal = 15;
  int64_t stopwaitsecs = 10;
  bool stopasgroup = false;
  bool killasgroup = false;
  bool group_options_written = false;
  std::vector<int> exitcodes{0};
  bool redirect_stderr = false;
  int64_t numprocs = 1;
  int64_t numprocs_start = 0;
  std::string env_text;                                  // expanded, with marks
  std::vector<std::pair<std::string, std::string>> env;  // with marks
  std::optional<std::string> directory;                  // with marks
  StreamLog out, err;
  int64_t stdout_capture = 0, stderr_capture = 0;
  bool stdout_events = false, stderr_events = false;
  std::optional<std::string> serverurl;
  std::optional<std::string> user;
  std::optional<int64_t> umask;
  std::string process_name = "%(program_name)s";
  bool process_name_written = false;
  std::string command;                  // expanded, with marks
  std::vector<Conversion> conversions;  // what the marks stand for
};

bool has_mark(std::string_view text) { return text.find(kMark) != std::string_view::npos; }

// Splits TEXT at marks: literal pieces and conversion indexes, in order.
struct Piece {
  bool mark = false;
  std::string text;
  size_t index = 0;
};
std::vector<Piece> pieces_of(std::string_view text) {
  std::vector<Piece> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t mark = text.find(kMark, i);
    if (mark != i) {
      out.push_back({false, std::string(text.substr(i, mark - i)), 0});
      if (mark == std::string_view::npos) break;
    }
    size_t end = text.find(kMarkEnd, mark);
    out.push_back({true, "", std::stoul(std::string(text.substr(mark + 1, end - mark - 1)))});
    i = end + 1;
  }
  return out;
}

// A conversion that printf(1) formats as Python does, for a non-negative
// process number: the printf format, or nullopt.
std::optional<std::string> printf_format(const Conversion& c) {
  if (c.precision || c.flags.find('#') != std::string::npos) return std::nullopt;
  std::string width = c.width ? std::to_string(*c.width) : "";
  if (c.type == 'd' || c.type == 'i' || c.type == 'u') {
    std::string flags;
    for (char f : std::string_view("-0 +")) {
      if (c.flags.find(f) != std::string::npos) flags.push_back(f);
    }
    return "%" + flags + width + "d";
  }
  if (c.type == 's' || c.type == 'r' || c.type == 'a') {
    // Python ignores '0', '+' and ' ' for text.
    return std::string("%") + (c.flags.find('-') != std::string::npos ? "-" : "") + width + "s";
  }
  return std::nullopt;
}

class Importer {
 public:
  Importer(const std::string& file, const ImportOptions& options)
      : file_(file), options_(options) {}

  ImportResult run();

 private:
  void warn(const std::string& file, int line, std::string message) {
    result_.warnings.push_back({file, line, std::move(message)});
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
    return read_.doc.get(section, option) != nullptr;
  }

  void read_supervisord();
  void read_groups();
  Program read_program(const IniSection& section, const std::string& kind,
                       const std::string& group_name);
  void check_known_options(const IniSection& section, std::span<const std::string_view> known);

  void emit_header(Yaml& y);
  void emit_daemon(Yaml& y);
  void emit_job(Yaml& y, Program& p);
  void emit_log(Yaml& y, Program& p, const std::string& job);
  std::optional<std::string> log_path(Program& p, StreamLog& log, const std::string& stream,
                                      std::vector<std::string>& notes);
  std::vector<std::string> command_of(Program& p, std::vector<std::string>& notes, bool& in_shell);

  std::string file_;
  const ImportOptions& options_;
  IniRead read_;
  ImportResult result_;
  std::string here_;
  Expansions environ_;  // ENV_ names: the environment, then [supervisord]'s
  std::vector<std::pair<std::string, std::string>> supervisord_env_;
  const IniSection* supervisord_ = nullptr;
  bool nodaemon_ = false;
  int64_t umask_ = 022;
  bool umask_written_ = false;
  std::optional<std::string> childlogdir_;
  std::optional<std::string> directory_;
  std::vector<std::string> shared_dirs_;  // paths corral would refuse without private_dirs: false
  std::vector<Program> programs_;
  std::set<std::string> job_names_;
};

Importer::Got Importer::get(const IniSection& section, std::string_view option,
                            std::optional<std::string> fallback, const Expansions& extra,
                            bool do_expand, std::vector<Conversion>* conversions) {
  Got got;
  if (const IniOption* found = read_.doc.get(section, option)) {
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

void Importer::check_known_options(const IniSection& section,
                                   std::span<const std::string_view> known) {
  for (const auto& [name, option] : section.options) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      warn(option.file, option.line,
           "unknown option \"" + name + "\" in [" + section.name + "]; supervisord ignores it");
    }
  }
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

void Importer::read_supervisord() {
  const IniSection& s = *supervisord_;
  static constexpr std::string_view kKnown[] = {
      "logfile",  "logfile_maxbytes", "logfile_backups", "loglevel",    "pidfile",   "umask",
      "nodaemon", "silent",           "minfds",          "minprocs",    "nocleanup", "childlogdir",
      "user",     "directory",        "strip_ansi",      "environment", "identifier"};
  check_known_options(s, kKnown);
  Expansions common{{"here", {ExpansionValue::Kind::kText, here_, 0}}};
  auto checked = [&](std::string_view option, const char* fallback, auto parse) {
    Got got = get(s, option, std::string(fallback), common);
    auto value = parse(got.value);
    if (!value) refuse_at(s, got.option, std::string(option) + ": " + value.error().message());
    return *value;
  };
  checked("minfds", "1024", integer);
  checked("minprocs", "200", integer);
  Got directory = get(s, "directory", std::nullopt, common);
  if (directory.present()) directory_ = directory.value;
  get(s, "user", std::nullopt, common);
  umask_ = checked("umask", "022", octal);
  umask_written_ = read_exists(s, "umask");
  get(s, "logfile", std::string("supervisord.log"), common);
  checked("logfile_maxbytes", "50MB", byte_size);
  checked("logfile_backups", "10", integer);
  checked("loglevel", "info", logging_level);
  get(s, "pidfile", std::string("supervisord.pid"), common);
  get(s, "identifier", std::string("supervisor"), common);
  nodaemon_ = checked("nodaemon", "false", boolean);
  checked("silent", "false", boolean);
  Got childlogdir = get(s, "childlogdir", std::nullopt, common);
  if (childlogdir.present()) childlogdir_ = childlogdir.value;
  checked("nocleanup", "false", boolean);
  checked("strip_ansi", "false", boolean);
  // environment: expanded with here, host_node_name and ENV_ names.
  Got env = get(s, "environment", std::string(), {}, false);
  Expansions expansions = environ_;
  expansions["here"] = {ExpansionValue::Kind::kText, here_, 0};
  expansions["host_node_name"] = {ExpansionValue::Kind::kText, options_.host_node_name, 0};
  auto expanded = expand(env.value, expansions, "environment", nullptr);
  if (!expanded) refuse_at(s, env.option, expanded.error().message());
  auto pairs = key_value_pairs(*expanded);
  if (!pairs) refuse_at(s, env.option, "environment: " + pairs.error().message());
  supervisord_env_ = *pairs;
  for (const auto& [k, v] : supervisord_env_) {
    environ_["ENV_" + k] = {ExpansionValue::Kind::kText, v, 0};
  }
}

Program Importer::read_program(const IniSection& section, const std::string& kind,
                               const std::string& group_name) {
  Program p;
  p.section = &section;
  p.kind = kind;
  p.group = group_name;
  check_known_options(section, kProgramOptions);
  std::string suffix = section.name.substr(section.name.find(':') + 1);
  auto name = process_or_group_name(suffix);
  if (!name) refuse_at(section, nullptr, name.error().message());
  p.name = *name;
  Expansions common{{"here", {ExpansionValue::Kind::kText, here_, 0}},
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
    refuse_at(section,
              process_name.present() ? process_name.option : read_.doc.get(section, "numprocs"),
              "%(process_num) must be present within process_name when numprocs > 1");
  }
  if (p.stopasgroup && !p.killasgroup) {
    refuse_at(section, read_.doc.get(section, "killasgroup"),
              "Cannot set stopasgroup=true and killasgroup=false");
  }
  if (kind == "eventlistener") {
    int64_t buffer_size = checked("buffer_size", "10", integer);
    if (buffer_size < 1) {
      refuse_at(section, read_.doc.get(section, "buffer_size"),
                "section sets invalid buffer_size (" + std::to_string(buffer_size) + ")");
    }
    Got events = get(section, "events", std::string(), common);
    if (list_of_strings(events.value).empty()) {
      refuse_at(section, nullptr, "section requires an \"events\" line");
    }
    if (p.redirect_stderr) {
      refuse_at(section, read_.doc.get(section, "redirect_stderr"),
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

void Importer::read_groups() {
  std::set<std::string> grouped;
  std::vector<std::pair<const IniSection*, std::string>> members;  // section, group
  std::map<const IniSection*, std::pair<std::string, int64_t>> group_of;
  std::map<const IniSection*, std::string> group_section_of;
  for (const auto& section : read_.doc.sections) {
    if (!section.name.starts_with("group:")) continue;
    static constexpr std::string_view kKnown[] = {"programs", "priority"};
    check_known_options(section, kKnown);
    auto name = process_or_group_name(section.name.substr(6));
    if (!name) refuse_at(section, nullptr, name.error().message());
    Expansions common{{"here", {ExpansionValue::Kind::kText, here_, 0}}};
    Got programs = get(section, "programs", std::nullopt, common);
    Got priority_text = get(section, "priority", std::string("999"), common);
    auto priority = integer(priority_text.value);
    if (!priority)
      refuse_at(section, priority_text.option, "priority: " + priority.error().message());
    for (const auto& program : list_of_strings(programs.value)) {
      const IniSection* plain = read_.doc.find("program:" + program);
      const IniSection* fcgi = read_.doc.find("fcgi-program:" + program);
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
  for (const auto& section : read_.doc.sections) {
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
    programs_.push_back(std::move(p));
  }
}

// corral's placeholder ({index}, {index+K}, {index:0N}, {index+K:0N}) for
// supervisord's process_num written with conversion C, when it writes it
// alike; supervisord's process_num is corral's index plus numprocs_start.
namespace {
std::optional<std::string> placeholder_of(const Conversion& c, int64_t numprocs_start) {
  if (numprocs_start < 0 || numprocs_start > 999999) return std::nullopt;
  const bool plain =
      (c.type == 'd' || c.type == 'i' || c.type == 'u' || c.type == 's') && !c.precision;
  if (!plain) return std::nullopt;
  std::string index = numprocs_start > 0 ? "index+" + std::to_string(numprocs_start) : "index";
  if (c.flags.empty() && (!c.width || *c.width <= 1)) return "{" + index + "}";
  if (c.flags == "0" && c.width && *c.width >= 1 && *c.width <= 9 && c.type != 's') {
    return "{" + index + ":0" + std::to_string(*c.width) + "}";
  }
  return std::nullopt;
}
}  // namespace

namespace {
// TEXT with each process_num turned into corral's placeholder; nullopt when
// one has none, or when TEXT's own words would read as a placeholder.
std::optional<std::string> with_placeholders(std::string_view text,
                                             const std::vector<Conversion>& conversions,
                                             int64_t numprocs_start) {
  std::string out;
  for (const auto& piece : pieces_of(text)) {
    if (!piece.mark) {
      if (piece.text.find("{index") != std::string::npos ||
          piece.text.find("{job}") != std::string::npos) {
        return std::nullopt;
      }
      out += piece.text;
      continue;
    }
    auto placeholder = placeholder_of(conversions[piece.index], numprocs_start);
    if (!placeholder) return std::nullopt;
    out += *placeholder;
  }
  return out;
}
}  // namespace

std::vector<std::string> Importer::command_of(Program& p, std::vector<std::string>& notes,
                                              bool& in_shell) {
  in_shell = false;
  auto argv = shlex_split(p.command);
  if (!argv || argv->empty()) return {};
  std::vector<std::pair<std::string, std::string>> per_process_env;
  for (const auto& [k, v] : p.env) {
    if (has_mark(k) || has_mark(v)) per_process_env.emplace_back(k, v);
  }
  bool marked_argv =
      std::any_of(argv->begin(), argv->end(), [](const auto& w) { return has_mark(w); });
  bool marked_dir = p.directory && has_mark(*p.directory);
  if (!marked_argv && per_process_env.empty() && !marked_dir) return *argv;
  // Where the argv and environment values differ by conversions corral's
  // placeholders write alike, the job says {index} itself: corrald puts
  // each worker's in, with no shell between.
  if (!marked_dir && std::none_of(per_process_env.begin(), per_process_env.end(),
                                  [](const auto& kv) { return has_mark(kv.first); })) {
    std::vector<std::string> words;
    bool expressible = true;
    for (const auto& word : *argv) {
      auto replaced = with_placeholders(word, p.conversions, p.numprocs_start);
      expressible = expressible && replaced;
      words.push_back(replaced.value_or(""));
    }
    for (const auto& [k, v] : per_process_env) {
      expressible = expressible && with_placeholders(v, p.conversions, p.numprocs_start);
    }
    if (expressible) {
      notes.push_back(
          "command: supervisord's %(process_num) is corral's " +
          *placeholder_of(Conversion{"", std::nullopt, std::nullopt, 'd'}, p.numprocs_start) +
          ", which corrald replaces in each worker's argv and env");
      return words;
    }
  }
  in_shell = true;
  // printf(1) rebuilds each value when every conversion is one it formats
  // as Python does and no value holds a blank (which would split words
  // differently); else each worker's values are written out.
  std::set<size_t> used;
  auto collect = [&used](std::string_view text) {
    for (const auto& piece : pieces_of(text)) {
      if (piece.mark) used.insert(piece.index);
    }
  };
  for (const auto& word : *argv) collect(word);
  for (const auto& [k, v] : per_process_env) collect(v);
  if (p.directory) collect(*p.directory);
  bool printf_ok = std::all_of(per_process_env.begin(), per_process_env.end(), [](const auto& kv) {
    const std::string& k = kv.first;
    return !has_mark(k) && !k.empty() && (std::isdigit(static_cast<unsigned char>(k[0])) == 0) &&
           std::all_of(k.begin(), k.end(), [](char c) {
             return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
           });
  });
  for (size_t index : used) {
    if (!printf_format(p.conversions[index])) printf_ok = false;
    for (int64_t n = p.numprocs_start; printf_ok && n < p.numprocs_start + p.numprocs; ++n) {
      auto text = format_integer(n, p.conversions[index]);
      if (!text || text->find_first_of(" \t\r\n") != std::string::npos) printf_ok = false;
    }
  }
  auto shell_word = [&](std::string_view word) {
    std::string out;
    for (const auto& piece : pieces_of(word)) {
      out += piece.mark ? "\"${f" + std::to_string(piece.index) + "}\"" : shell_quote(piece.text);
    }
    return out.empty() ? std::string("''") : out;
  };
  std::string script;
  if (printf_ok) {
    script = p.numprocs_start == 0
                 ? "n=$CORRAL_WORKER; "
                 : "n=$((CORRAL_WORKER + " + std::to_string(p.numprocs_start) + ")); ";
    for (size_t index : used) {
      script += "f" + std::to_string(index) + "=$(printf " +
                shell_quote(*printf_format(p.conversions[index])) + " \"$n\"); ";
    }
    if (marked_dir) script += "cd " + shell_word(*p.directory) + " || exit 127; ";
    for (const auto& [k, v] : per_process_env) script += "export " + k + "=" + shell_word(v) + "; ";
    script += "exec";
    for (const auto& word : *argv) script += " " + shell_word(word);
    notes.push_back(
        "command: supervisord's %(process_num)s differs per process: sh rebuilds each worker's "
        "argv from CORRAL_WORKER" +
        (p.numprocs_start != 0 ? " + " + std::to_string(p.numprocs_start) + " (numprocs_start)"
                               : std::string()) +
        " with printf, so that it equals what supervisord ran");
  } else {
    script = "case $CORRAL_WORKER in\n";
    for (int64_t i = 0; i < p.numprocs; ++i) {
      int64_t n = p.numprocs_start + i;
      std::string branch = std::to_string(i) + ")";
      if (p.directory) {
        auto dir = fill_marks(*p.directory, p.conversions, n);
        if (marked_dir && dir) branch += " cd " + shell_quote(*dir) + " || exit 127;";
      }
      auto env_text = fill_marks(p.env_text, p.conversions, n);
      auto env = env_text
                     ? key_value_pairs(*env_text)
                     : Result<std::vector<std::pair<std::string, std::string>>>(env_text.error());
      if (env) {
        for (const auto& pair : *env) {
          // (A structured binding cannot be captured by clang 14's lambdas.)
          const std::string& k = pair.first;
          bool per =
              std::any_of(per_process_env.begin(), per_process_env.end(),
                          [&](const auto& kv) { return kv.first == k || has_mark(kv.first); });
          if (per) branch += " export " + shell_quote(k + "=" + pair.second) + ";";
        }
      }
      auto words = fill_marks(p.command, p.conversions, n);
      auto split = words ? shlex_split(*words) : Result<std::vector<std::string>>(words.error());
      branch += " exec";
      if (split) {
        for (const auto& word : *split) branch += " " + shell_quote(word);
      }
      script += branch + " ;;\n";
    }
    script += "esac\nexit 127";
    notes.push_back(
        "command: supervisord's %(process_num)s differs per process: sh runs each worker's argv "
        "as supervisord computed it (the format or its blanks are beyond printf)");
  }
  return {"sh", "-c", script};
}

std::optional<std::string> Importer::log_path(Program& p, StreamLog& log, const std::string& stream,
                                              std::vector<std::string>& notes) {
  std::string key = stream + "_logfile";
  switch (log.name.kind) {
    case LogfileName::Kind::kAuto:
      return std::nullopt;
    case LogfileName::Kind::kNone:
    case LogfileName::Kind::kSyslog:
      return std::string("off");
    case LogfileName::Kind::kPath:
      break;
  }
  std::string path = log.raw;
  // A container's habit: the worker writes to supervisord's own output.
  // corral's `inherit` is corrald's own stdout for stdout, stderr for stderr.
  const bool to_stdout = path == "/dev/stdout" || path == "/proc/self/fd/1";
  const bool to_stderr = path == "/dev/stderr" || path == "/proc/self/fd/2";
  if (to_stdout || to_stderr) {
    if (to_stderr != (stream == "stderr")) {
      notes.push_back(key + "=" + path + ": inherit gives the worker corrald's own " + stream +
                      ", not its " + (to_stdout ? "stdout" : "stderr"));
    }
    return std::string("inherit");
  }
  if (path == "/dev/null") return std::string("off");
  // existing_dirpath's os.path.expanduser.
  if (path == "~" || path.starts_with("~/")) {
    auto home = options_.environ.find("HOME");
    if (home != options_.environ.end()) path = home->second + path.substr(1);
  }
  if (path.empty() || path.front() != '/') {
    std::string base = directory_ ? *directory_ : here_;
    notes.push_back(key + "=" + log.raw +
                    " is relative to supervisord's working directory; taken as " + "relative to " +
                    base);
    path = base + "/" + path;
  }
  std::string out;
  bool marked = false;
  for (const auto& piece : pieces_of(path)) {
    if (!piece.mark) {
      out += piece.text;
      continue;
    }
    marked = true;
    auto placeholder = placeholder_of(p.conversions[piece.index], p.numprocs_start);
    if (!placeholder) {
      placeholder = placeholder_of(Conversion{"", std::nullopt, std::nullopt, 'd'}, 0);
      notes.push_back(key + ": this %(process_num) format has no corral counterpart; " +
                      *placeholder + " stands for it");
    }
    out += *placeholder;
  }
  if (marked && (p.numprocs_start < 0 || p.numprocs_start > 999999)) {
    notes.push_back(key +
                    ": {index} counts from 0, so the files are numbered from 0 where "
                    "supervisord numbered them from numprocs_start=" +
                    std::to_string(p.numprocs_start));
  }
  // Without a per-process part, the workers share the file, as supervisord's
  // processes did (corral appends each worker's output in chunks to it).
  if (shared_directory(out)) shared_dirs_.push_back(out);
  return out;
}

void Importer::emit_log(Yaml& y, Program& p, const std::string& job) {
  std::vector<std::string> notes;
  auto out = log_path(p, p.out, "stdout", notes);
  std::optional<std::string> err;
  if (p.redirect_stderr) {
    err = "stdout";
  } else {
    err = log_path(p, p.err, "stderr", notes);
  }
  if (p.out.name.kind == LogfileName::Kind::kAuto ||
      (!p.redirect_stderr && p.err.name.kind == LogfileName::Kind::kAuto)) {
    notes.push_back("AUTO: corral's own files in daemon.log_dir (" + job + "-INDEX.out.log, " +
                    job +
                    "-INDEX.err.log), kept across restarts of corrald where supervisord removed "
                    "its AUTO files at start (nocleanup=false)");
  }
  for (const auto& [stream, log] : {std::pair<std::string, StreamLog*>{"stdout", &p.out},
                                    std::pair<std::string, StreamLog*>{"stderr", &p.err}}) {
    if (log->syslog) {
      notes.push_back(stream +
                      "_syslog=true: corral has no syslog copy of a worker's output; its "
                      "files, or corralctl tail -f");
    }
  }
  if (p.stdout_capture != 0 || p.stderr_capture != 0 || p.stdout_events || p.stderr_events) {
    notes.push_back(
        "*_capture_maxbytes, *_events_enabled: corral has no event listeners (no "
        "PROCESS_COMMUNICATION or PROCESS_LOG events); corralctl tail -f, /metrics");
  }
  const StreamLog& rotation = p.out;
  bool stderr_logged = !p.redirect_stderr && p.err.name.kind != LogfileName::Kind::kNone &&
                       p.err.name.kind != LogfileName::Kind::kSyslog;
  if (stderr_logged && (p.err.maxbytes != p.out.maxbytes || p.err.backups != p.out.backups)) {
    notes.push_back("stderr_logfile_maxbytes/backups (" + std::to_string(p.err.maxbytes) + ", " +
                    std::to_string(p.err.backups) +
                    ") differ from stdout's: corral rotates both files of a job alike, with "
                    "stdout's values");
  }
  for (const auto& note : notes) y.comment(4, note);
  y.line(4, "log:");
  if (out) y.line(6, "stdout: " + q(*out));
  if (err) y.line(6, "stderr: " + q(*err));
  y.line(6, "max_size: " + (rotation.maxbytes <= 0
                                ? std::string("off")
                                : config::format_size(static_cast<uint64_t>(rotation.maxbytes))));
  y.line(6, "keep: " + std::to_string(std::max<int64_t>(0, rotation.backups)));
}

void Importer::emit_job(Yaml& top, Program& p) {
  std::string job = sanitize_name(p.name);
  while (job_names_.contains(job)) job += "_";
  job_names_.insert(job);
  Yaml y;
  bool commented_out = p.kind != "program";
  std::string where = p.section->file + ":" + std::to_string(p.section->line);
  top.comment(2, "[" + p.section->name + "] (" + where + ")");
  if (job != p.name) {
    top.comment(2, "the job is named " + job +
                       ": corral's names are letters, digits, '_', '.' "
                       "and '-' (supervisord's: " +
                       p.name + ")");
  }
  if (p.kind == "eventlistener") {
    warn(p.section->file, p.section->line,
         "[" + p.section->name +
             "]: an event listener has no corral equivalent (supervisord's "
             "event protocol on its stdin/stdout); written commented out");
    top.comment(2,
                "no equivalent: an event listener speaks supervisord's event protocol on "
                "stdin/stdout; corral has no events (see /metrics and corralctl status --json). "
                "The job below is commented out");
  } else if (p.kind == "fcgi-program") {
    warn(p.section->file, p.section->line,
         "[" + p.section->name +
             "]: a FastCGI program has no corral equivalent (a socket that "
             "supervisord opens and hands over on fd 0); written commented out");
    top.comment(2,
                "no equivalent: supervisord opened the FastCGI socket and gave it to each "
                "process as fd 0; corral hands no socket to workers. The job below is "
                "commented out");
  }
  if (!p.group.empty() && !p.group_section.empty()) {
    top.comment(2,
                "member of [" + p.group_section +
                    "]: corral has no groups of jobs (name "
                    "several jobs at once: corralctl restart web api); priority is the group's (" +
                    std::to_string(*p.group_priority) + ")");
  }
  y.line(2, job + ":");
  std::vector<std::string> notes;
  bool in_shell = false;
  std::vector<std::string> argv;
  if (p.numprocs > 0) argv = command_of(p, notes, in_shell);
  if (p.numprocs > 0 && argv.empty()) {
    auto split = shlex_split(p.command);
    std::string why = split
                          ? "command is empty"
                          : "can't parse command " + q(p.command) + ": " + split.error().message();
    const IniOption* option = read_.doc.get(*p.section, "command");
    warn(option->file, option->line,
         "[" + p.section->name + "] " + why +
             ": supervisord accepts the file but each start fails (FATAL); the job is written "
             "commented out");
    commented_out = true;
    top.comment(2, "supervisord: " + why + " (each start fails); commented out");
    argv = {"false"};
  }
  if (p.numprocs <= 0) argv = {"false"};
  for (const auto& note : notes) y.comment(4, note);
  std::string command = "command: [";
  for (size_t i = 0; i < argv.size(); ++i) command += (i > 0 ? ", " : "") + q(argv[i]);
  y.line(4, command + "]");
  if (p.process_name_written) {
    y.comment(4, "process_name=" + p.process_name + ": corral names workers " + job +
                     ":INDEX (0.." + std::to_string(std::max<int64_t>(p.numprocs, 1) - 1) + ")");
  }
  if (p.numprocs < 0) y.comment(4, "numprocs=" + std::to_string(p.numprocs) + ": no process");
  y.line(4, "workers: " + std::to_string(std::max<int64_t>(0, p.numprocs)));
  y.line(4, "autostart: " + std::string(p.autostart ? "true" : "false"));
  if (p.directory && !(in_shell && has_mark(*p.directory))) {
    y.line(4, "cwd: " + q(*p.directory));
  } else if (p.directory) {
    y.comment(4, "directory differs per process: the sh -c above changes to it");
  }
  if (p.user) {
    y.comment(4,
              "user: unlike supervisord, corral gives a worker of another user that user's "
              "HOME, USER, LOGNAME, SHELL and PATH=/usr/local/bin:/usr/bin:/bin instead of "
              "corrald's environment (docs/coming-from-supervisord.md); name more in "
              "daemon.pass_env or env");
    y.line(4, "user: " + q(*p.user));
  }
  if (p.umask) {
    y.line(4, "umask: " + q(octal_text(*p.umask)));
  } else if (!nodaemon_) {
    y.comment(4, "umask: supervisord set its own umask (" + octal_text(umask_) +
                     (umask_written_ ? ", [supervisord] umask" : ", its default") +
                     ") when it daemonized, and its processes inherited it");
    y.line(4, "umask: " + q(octal_text(umask_)));
  } else {
    y.comment(4,
              "umask: with nodaemon=true supervisord kept the umask it was started with; "
              "the worker keeps corrald's (0022 under systemd)");
  }
  int64_t priority = p.group_priority ? *p.group_priority : p.priority;
  if (priority < 0 || priority > 999999) {
    y.comment(4, "priority " + std::to_string(priority) + " is beyond corral's 0..999999");
    priority = std::clamp<int64_t>(priority, 0, 999999);
  }
  y.line(4, "priority: " + std::to_string(priority));
  // The environment: [supervisord]'s, then the program's over it.
  std::vector<std::pair<std::string, std::string>> env = supervisord_env_;
  for (const auto& pair : p.env) {
    const std::string& k = pair.first;
    std::string v = pair.second;
    if (in_shell && (has_mark(k) || has_mark(v))) continue;
    // Not in the shell: command_of found each process_num expressible.
    if (has_mark(v)) v = with_placeholders(v, p.conversions, p.numprocs_start).value_or(v);
    auto same = std::find_if(env.begin(), env.end(), [&](const auto& kv) { return kv.first == k; });
    if (same != env.end()) {
      same->second = v;
    } else {
      env.emplace_back(k, v);
    }
  }
  std::vector<std::pair<std::string, std::string>> kept;
  for (const auto& [k, v] : env) {
    if (k.empty() || k.find('=') != std::string::npos) {
      y.comment(4, "environment: the name " + q(k) + " cannot be a corral env name; left out");
      warn(p.section->file, p.section->line,
           "[" + p.section->name + "] environment: the name " + q(k) + " is left out");
      continue;
    }
    kept.emplace_back(k, v);
  }
  if (!supervisord_env_.empty()) y.comment(4, "env: [supervisord] environment, then the program's");
  if (kept.empty()) {
    y.line(4, "env: {}");
  } else {
    y.line(4, "env:");
    for (const auto& [k, v] : kept) y.line(6, q(k) + ": " + q(v));
  }
  y.line(4, "start:");
  y.line(6, "settle: " + seconds(p.startsecs));
  y.line(6, "retries: " + std::to_string(std::max<int64_t>(0, p.startretries)));
  y.line(4, "restart:");
  const char* policy = p.autorestart == AutoRestart::kAlways  ? "always"
                       : p.autorestart == AutoRestart::kNever ? "never"
                                                              : "on-failure";
  y.line(6, std::string("policy: ") + policy);
  std::string codes = "exit_codes: [";
  for (size_t i = 0; i < p.exitcodes.size(); ++i) {
    codes += (i > 0 ? ", " : "") + std::to_string(p.exitcodes[i]);
  }
  y.line(6, codes + "]");
  int64_t retries = std::max<int64_t>(1, p.startretries);
  y.comment(6,
            "supervisord waits 1 s, 2 s, 3 s... after failed starts; corral's backoff grows "
            "1 s, 2 s, 4 s... up to max (" +
                std::to_string(retries) +
                " s, startretries), and a worker that crashed while RUNNING waits 1 s where "
                "supervisord restarts it at once");
  y.line(6, "backoff: {initial: 1s, max: " + seconds(retries) + ", multiplier: 2.0, jitter: 0}");
  y.line(6, "reset_after: " + seconds(std::max<int64_t>(1, p.startsecs)));
  y.comment(6,
            "supervisord restarts a worker that started well forever, and leaves a FATAL one "
            "FATAL");
  y.line(6, "max_restarts: off");
  y.line(6, "cooldown: off");
  y.line(4, "stop:");
  int signal = p.stopsignal == 0 ? 15 : p.stopsignal;
  if (p.stopsignal == 0) y.comment(6, "stopsignal 0 sends nothing in supervisord; TERM here");
  y.line(6, "signal: " + config::signal_name(signal));
  y.line(6, "timeout: " + seconds(p.stopwaitsecs));
  if (p.group_options_written) {
    y.comment(6, std::string("stopasgroup=") + (p.stopasgroup ? "true" : "false") +
                     ", killasgroup=" + (p.killasgroup ? "true" : "false") +
                     ": corral always signals the worker's whole process group" +
                     (p.stopasgroup && p.killasgroup ? " (as written)" : ""));
  }
  emit_log(y, p, job);
  if (p.serverurl) {
    y.comment(4, "serverurl=" + *p.serverurl +
                     ": no equivalent (no SUPERVISOR_SERVER_URL; a "
                     "worker reaches corrald with corralctl and CORRAL_SOCKET)");
  }
  if (commented_out) {
    std::string text = y.text();
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      std::string_view line(text.data() + start, end - start);
      size_t indent = line.find_first_not_of(' ');
      if (indent == std::string_view::npos) indent = line.size();
      top.line(2, "# " + std::string(line.substr(std::min<size_t>(2, indent))));
      start = end + 1;
    }
  } else {
    top.line(0, std::string_view(y.text()).substr(0, y.text().size() - 1));
  }
}

void Importer::emit_header(Yaml& y) {
  std::string files;
  for (size_t i = 1; i < read_.files.size(); ++i) files += (i > 1 ? ", " : "") + read_.files[i];
  y.comment(0, "corral config imported from supervisord's " + file_ +
                   (files.empty() ? std::string() : " (and its includes: " + files + ")") +
                   " by corralctl import supervisord (corral " + options_.corral_version + ").");
  y.comment(0, "Check it with: corrald -c FILE --check. What differs for every job:");
  y.comment(0,
            "- Workers get CORRAL_JOB and CORRAL_WORKER (the index, from 0) instead of "
            "SUPERVISOR_ENABLED, SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME and "
            "SUPERVISOR_SERVER_URL.");
  y.comment(0,
            "- %(ENV_X)s and %(host_node_name)s were expanded at import time, from the "
            "importing environment and host (" +
                options_.host_node_name + "); import again where they differ.");
  y.comment(0,
            "- A worker of corrald's own user gets corrald's environment, as supervisord's "
            "children got supervisord's; corrald's own variables (NOTIFY_SOCKET...) excepted.");
  y.comment(0,
            "- Stop and kill signals go to each worker's whole process group (its own "
            "session), and what is left of the group is killed when the worker ends.");
  y.comment(0, "- Workers are named JOB:INDEX; supervisord's GROUP:PROCESS names do not exist.");
  y.blank();
}

void Importer::emit_daemon(Yaml& y) {
  y.line(0, "daemon:");
  const IniSection& s = *supervisord_;
  auto written = [&](std::string_view option) -> const IniOption* { return s.find(option); };
  auto note = [&](std::string_view option, const std::string& why) {
    if (const IniOption* o = written(option)) {
      y.comment(2, "[supervisord] " + std::string(option) + "=" + o->value + ": " + why);
    }
  };
  note("logfile",
       "corrald logs to stderr (the journal under systemd), or to corrald --log-file "
       "FILE; corralctl maintail shows its last lines");
  note("logfile_maxbytes", "corrald does not rotate its own log (journald or logrotate does)");
  note("logfile_backups", "corrald does not rotate its own log (journald or logrotate does)");
  note("pidfile", "no pid file: corralctl pid, or systemd's MAINPID");
  note("nodaemon",
       "corrald always runs in the foreground (systemd Type=notify), which is what "
       "nodaemon=true asks");
  note("silent", "corrald's log goes to stderr; under systemd, to the journal only");
  note("minfds",
       "corrald raises its own RLIMIT_NOFILE to the hard limit; workers keep the "
       "original one unless limits.nofile");
  note("minprocs", "no equivalent: LimitNPROC= in corrald's systemd unit");
  note("nocleanup", "corral never removes worker logs at start");
  note("identifier", "no equivalent: a corrald is known by its socket");
  note("strip_ansi", "no equivalent: worker output is written as it comes");
  note("user",
       "run corrald as that user: User= in its systemd unit (jobs with user: need "
       "corrald as root)");
  note("directory",
       "corrald does not change directory: WorkingDirectory= in its systemd unit; "
       "a job without cwd runs in corrald's");
  note("umask", nodaemon_ ? "supervisord with nodaemon=true does not set it; jobs keep corrald's"
                          : "written as each job's umask below");
  note("environment", "merged into each job's env below");
  if (const IniOption* level = written("loglevel")) {
    std::string l = *logging_level(level->value);
    std::string mapped = l == "critical" ? "error" : l == "blather" ? "trace" : l;
    if (mapped != l) y.comment(2, "loglevel=" + l + ": corral's nearest level is " + mapped);
    y.line(2, "log_level: " + mapped);
  }
  if (childlogdir_) {
    y.comment(2, "[supervisord] childlogdir: where AUTO logs go");
    if (shared_directory(*childlogdir_ + "/x")) shared_dirs_.push_back(*childlogdir_);
    y.line(2, "log_dir: " + q(*childlogdir_));
  }
  if (const IniSection* unix_server = read_.doc.find("unix_http_server")) {
    static constexpr std::string_view kKnown[] = {"file", "chmod", "chown", "username", "password"};
    check_known_options(*unix_server, kKnown);
    const IniOption* file = unix_server->find("file");
    if (file != nullptr) {
      std::string path = file->value;
      for (size_t at = path.find("%(here)s"); at != std::string::npos; at = path.find("%(here)s")) {
        path.replace(at, 8, file->here);
      }
      if (path.empty() || path.front() != '/' || path.size() > 107) {
        y.comment(2, "[unix_http_server] file=" + path +
                         ": not an absolute path of at most 107 "
                         "bytes; corral's default socket is kept");
      } else {
        y.comment(2, "[unix_http_server] file: corralctl finds it with -s, CORRAL_SOCKET or -c");
        if (shared_directory(path)) shared_dirs_.push_back(path);
        y.line(2, "socket: " + q(path));
      }
    }
    const IniOption* chmod = unix_server->find("chmod");
    auto mode = octal(chmod != nullptr ? chmod->value : "0700");
    if (mode && *mode >= 0 && *mode <= 07777) {
      if (chmod == nullptr) y.comment(2, "[unix_http_server] chmod: supervisord's default 0700");
      y.line(2, "socket_mode: " + q(octal_text(*mode)));
    }
    if (const IniOption* chown = unix_server->find("chown")) {
      y.comment(2, "[unix_http_server] chown=" + chown->value +
                       ": the socket belongs to "
                       "corrald's user; let others in with daemon.allow_users / allow_groups (and "
                       "socket_mode)");
    }
    if (unix_server->find("username") != nullptr || unix_server->find("password") != nullptr) {
      y.comment(2,
                "[unix_http_server] username/password: corral has no passwords; it checks "
                "each client's uid and groups (SO_PEERCRED) against daemon.allow_users and "
                "allow_groups");
    }
  }
  for (const auto& section : read_.doc.sections) {
    std::string kind = section.name.substr(0, section.name.find(':'));
    if (kind == "inet_http_server") {
      y.comment(2, "[" + section.name +
                       "]: no control over the network: corralctl speaks over "
                       "the Unix socket only; daemon.metrics.listen serves read-only Prometheus "
                       "metrics");
      // Whatever used the HTTP interface (a remote supervisorctl, a dashboard) stops working.
      warn(section.file, section.line,
           "[" + section.name +
               "]: corral has no control over the network (corralctl uses the Unix socket; "
               "metrics are on daemon.metrics.listen); left out");
    } else if (kind == "supervisorctl") {
      y.comment(2,
                "[supervisorctl]: corralctl finds the socket with -s, CORRAL_SOCKET or -c "
                "CONFIG (daemon.socket); it has no username or password");
    } else if (kind == "rpcinterface") {
      y.comment(2, "[" + section.name +
                       "]: no plugins; corral's control protocol is "
                       "docs/control-protocol.md");
    } else if (kind == "include") {
      y.comment(2, "[include]: its files were read now; their sections are below");
    }
  }
  if (!shared_dirs_.empty()) {
    std::string list;
    for (const auto& path : shared_dirs_) list += (list.empty() ? "" : ", ") + path;
    y.comment(2, "private_dirs: false: others may write the directory of " + list +
                     " (supervisord does not mind; corral refuses such directories unless "
                     "private_dirs is false, and then warns)");
    y.line(2, "private_dirs: false");
  }
  y.blank();
}

ImportResult Importer::run() {
  read_ = read_supervisord_files(file_, options_.environ, options_.host_node_name);
  result_.warnings = read_.warnings;
  if (!read_.errors.empty()) {
    result_.errors = read_.errors;
    result_.exit_code = kImportNothingWritten;
    return result_;
  }
  here_ = directory_of(file_);
  for (const auto& [k, v] : options_.environ) {
    environ_["ENV_" + k] = {ExpansionValue::Kind::kText, v, 0};
  }
  try {
    for (const auto& section : read_.doc.sections) {
      for (const auto& [name, option] : section.options) {
        if (option.value.find(kMark) != std::string::npos ||
            option.value.find(kMarkEnd) != std::string::npos) {
          refuse(option.file, option.line,
                 "the value holds the control character \\x01 or \\x02, which the import refuses");
        }
      }
    }
    supervisord_ = read_.doc.find("supervisord");
    if (supervisord_ == nullptr) {
      refuse(file_, 0, ".ini file does not include supervisord section");
    }
    read_supervisord();
    read_groups();
  } catch (const Refusal& refusal) {
    result_.errors.push_back(refusal.diagnostic);
    result_.exit_code = kImportNothingWritten;
    return result_;
  }
  Yaml jobs;
  jobs.line(0, "jobs:");
  if (programs_.empty()) jobs.comment(2, "(no [program:x] section)");
  for (auto& p : programs_) emit_job(jobs, p);
  Yaml y;
  emit_header(y);
  emit_daemon(y);
  y.line(0, std::string_view(jobs.text()).substr(0, jobs.text().size() - 1));
  // Sections without a job.
  for (const auto& section : read_.doc.sections) {
    std::string kind = section.name.substr(0, section.name.find(':'));
    static constexpr std::string_view kKnown[] = {"program",          "group",
                                                  "eventlistener",    "fcgi-program",
                                                  "supervisord",      "unix_http_server",
                                                  "inet_http_server", "supervisorctl",
                                                  "rpcinterface",     "include"};
    if (std::find(std::begin(kKnown), std::end(kKnown), kind) == std::end(kKnown) ||
        (kind == "rpcinterface" && section.name.find(':') == std::string::npos)) {
      warn(section.file, section.line,
           "unknown section [" + section.name + "]; supervisord ignores it");
    }
  }
  std::string text = y.text();
  auto checked = config::load_string(
      text, options_.output_name.empty() ? "<import>" : options_.output_name, 1, false);
  if (!checked) {
    for (const auto& d : checked.error()) {
      result_.errors.push_back({options_.output_name.empty() ? "<stdout>" : options_.output_name,
                                d.line,
                                "internal error: the YAML written is not a valid corral config (a "
                                "bug of the import; please report it): " +
                                    d.message});
    }
    result_.exit_code = kImportNothingWritten;
    return result_;
  }
  result_.yaml = std::move(text);
  result_.exit_code = result_.warnings.empty() ? kImportClean : kImportWarnings;
  return result_;
}

}  // namespace

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

ImportResult import_supervisord(const std::string& file, const ImportOptions& options) {
  Importer importer(file, options);
  return importer.run();
}

}  // namespace corral::migrate

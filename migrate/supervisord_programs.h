// A supervisord configuration as supervisord 4 reads it, for the import
// (supervisord_import.h): the [supervisord] settings a job inherits, and
// each [program:x], [eventlistener:x] and [fcgi-program:x] with its options
// parsed, checked and expanded the way supervisord does (a value that
// differs per process keeps a mark for %(process_num), supervisord_values.h),
// with what supervisord warns of and the first thing it refuses. Read by
// supervisord_programs.cc; written as YAML by the YamlWriter
// (supervisord_yaml.h). Internal to the migrate library; safe from any
// thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "migrate/supervisord_import.h"

namespace corral::migrate::detail {

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

// What the reading finds. The programs point into READ's sections: not to
// be copied.
struct SupervisordConfig {
  SupervisordConfig() = default;
  SupervisordConfig(const SupervisordConfig&) = delete;
  SupervisordConfig& operator=(const SupervisordConfig&) = delete;

  IniRead read;                             // the files, main first, and their sections
  std::string here;                         // the main file's directory
  const IniSection* supervisord = nullptr;  // [supervisord]
  std::vector<std::pair<std::string, std::string>> environment;  // [supervisord]'s
  bool nodaemon = false;
  int64_t umask = 022;
  bool umask_written = false;
  std::optional<std::string> childlogdir;
  std::optional<std::string> directory;
  std::vector<Program> programs;  // in the order of their sections
};

// Reads FILE and its includes into CONFIG as supervisord does, appending
// what supervisord warns of to RESULT.warnings. False when supervisord
// refuses the file: RESULT then holds the errors and kImportNothingWritten.
bool read_programs(const std::string& file, const ImportOptions& options, SupervisordConfig& config,
                   ImportResult& result);

// Appends to WARNINGS a warning for each option of SECTION that is not in
// KNOWN: supervisord ignores it.
void check_known_options(const IniSection& section, std::span<const std::string_view> known,
                         std::vector<Diagnostic>& warnings);

}  // namespace corral::migrate::detail

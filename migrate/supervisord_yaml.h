// The corral config of a supervisord configuration (supervisord_programs.h)
// as YAML text, with a comment wherever an option has no equivalent or a
// different meaning (docs/coming-from-supervisord.md says the same in
// prose). YamlWriter writes the header comment, daemon: and the whole text
// in supervisord_yaml.cc, and each job in supervisord_yaml_job.cc (its
// command by supervisord_command.h). Internal to the migrate library; reads
// no file, but looks at the directories of the paths it writes.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "migrate/supervisord_programs.h"

namespace corral::migrate::detail {

// TEXT as a double-quoted YAML scalar.
std::string q(std::string_view text);
// N seconds (0 if negative) as a corral duration.
std::string seconds(int64_t n);
// MODE in octal with a leading 0, at least 4 digits: "0022".
std::string octal_text(int64_t mode);

// A directory that others may write (world-writable, or group-writable by a
// group other than root's): corral refuses files there unless
// daemon.private_dirs is false.
// Whether a directory on the way to PATH's (those that exist) lets someone
// other than root add names to it: another owner, or group/other write
// without a sticky bit above the last step; corrald refuses such a log
// directory unless daemon.private_dirs is false (daemon/private_dir.h).
bool shared_directory(const std::string& path);

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

// Writes the YAML of CONFIG, read from FILE, appending a warning for what
// it leaves out to WARNINGS. One write() per writer.
class YamlWriter {
 public:
  YamlWriter(const std::string& file, const ImportOptions& options, const SupervisordConfig& config,
             std::vector<Diagnostic>& warnings)
      : file_(file), options_(options), config_(config), warnings_(warnings) {}

  std::string write();

 private:
  void warn(const std::string& file, int line, std::string message) {
    warnings_.push_back({file, line, std::move(message)});
  }

  void emit_header(Yaml& y);
  void emit_daemon(Yaml& y);
  void emit_job(Yaml& y, const Program& p);
  void emit_log(Yaml& y, const Program& p, const std::string& job);
  std::optional<std::string> log_path(const Program& p, const StreamLog& log,
                                      const std::string& stream, std::vector<std::string>& notes);

  const std::string& file_;
  const ImportOptions& options_;
  const SupervisordConfig& config_;
  std::vector<Diagnostic>& warnings_;
  std::vector<std::string> shared_dirs_;  // paths corral would refuse without private_dirs: false
  std::set<std::string> job_names_;
};

}  // namespace corral::migrate::detail

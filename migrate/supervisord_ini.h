// A supervisord configuration read as supervisord 4 reads it: Python's
// RawConfigParser with supervisord's settings (UnhosedConfigParser: `=` and
// `:` delimiters, option names lowercased, `;` and `#` comments, inline ones
// only after whitespace, indented continuation lines, strict=False so that a
// section or option given again is merged or overwritten), then the
// [include] files= globs of the main file, read in sorted order into the
// same parser, and %(here)s set to the directory of the file each value
// came from. Every section and option keeps its file and line for messages.
// Reads files (read_supervisord_files) or text (parse_ini); no other I/O.
// Safe from any thread, one call at a time per document.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "migrate/supervisord_values.h"

namespace corral::migrate {

// A warning or an error with its place: "FILE:LINE: warning: MESSAGE".
struct Diagnostic {
  std::string file;
  int line = 0;  // 1-based; 0 when it has no line
  std::string message;
  bool operator==(const Diagnostic&) const = default;
};

struct IniOption {
  std::string value;  // continuation lines joined with '\n', stripped
  std::string file;
  int line = 0;
  std::string here;  // the directory of FILE, absolute
};

struct IniSection {
  std::string name;  // as written between the brackets
  std::string file;  // where it first appeared
  int line = 0;
  std::vector<std::pair<std::string, IniOption>> options;  // lowercased names, first-seen order

  const IniOption* find(std::string_view option) const;
};

struct IniDocument {
  std::vector<IniSection> sections;  // in order of first appearance, [DEFAULT] excluded
  IniSection defaults;               // [DEFAULT]: seen by every section

  IniSection* find(std::string_view name);
  const IniSection* find(std::string_view name) const;
  // OPTION of SECTION, or of [DEFAULT] (as RawConfigParser.get falls back).
  const IniOption* get(const IniSection& section, std::string_view option) const;
};

// Parses TEXT (the content of FILE, whose directory is HERE) into DOC, as
// RawConfigParser.read_file does on a parser that may already hold sections.
// ERRORS receives a missing section header (parsing stops there) or every
// line that is no section, option or continuation; DOC is not to be used
// after an error.
void parse_ini(std::string_view text, const std::string& file, const std::string& here,
               IniDocument& doc, std::vector<Diagnostic>& errors);

// Where a read ends: the document, what supervisord would have warned of
// (an include pattern matching nothing, an included file it cannot read),
// and the errors that make supervisord refuse the file (none when it reads).
struct IniRead {
  IniDocument doc;
  std::vector<Diagnostic> warnings;
  std::vector<Diagnostic> errors;
  std::vector<std::string> files;  // the files read, main first, in order
};

// os.path.dirname(os.path.abspath(PATH)): lexical, no link resolved.
std::string directory_of(const std::string& path);

// Reads FILE and the files its [include] section names. ENVIRON gives
// %(ENV_X)s and HOST_NODE_NAME %(host_node_name)s in files=.
IniRead read_supervisord_files(const std::string& file,
                               const std::map<std::string, std::string>& environ,
                               const std::string& host_node_name);

}  // namespace corral::migrate

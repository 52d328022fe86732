// supervisord's value syntax, read the way supervisord 4 reads it: its
// datatypes (supervisor/datatypes.py: booleans, integers, byte sizes,
// signals, octal modes, autorestart, exit codes, KEY=VALUE environments),
// Python's shlex (the command's words, the environment's tokens) and the
// %-expansion of supervisord's expand() (Python's `s % dict`). Each parser
// returns supervisord's own reason when it refuses a value, so that the
// import says what supervisord would have said. The datatypes (and the
// Python basics) are in supervisord_datatypes.cc, the expansion in
// supervisord_expand.cc, shlex in supervisord_shlex.cc. Pure functions,
// safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace corral::migrate {

// ---- Python's string basics, as the parsers use them ----

// str.isspace() for ASCII (and \x1c..\x1f, which Python counts).
bool py_space(char c);
std::string_view py_strip(std::string_view text);  // str.strip()
std::string py_lower(std::string_view text);       // str.lower() for ASCII
std::string py_repr(std::string_view text);        // repr(str), for messages

// ---- Expansion (supervisor.options.expand) ----

// One %(...)X conversion as Python reads it: flags, width, precision, type.
struct Conversion {
  std::string flags;  // of "-+ #0", as written
  std::optional<int> width;
  std::optional<int> precision;
  char type = 's';
  bool operator==(const Conversion&) const = default;
};

// A value of the expansion table: text, or an integer (numprocs), or the
// process number, which differs per process (%(process_num)d).
struct ExpansionValue {
  enum class Kind { kText, kInteger, kProcessNum } kind = Kind::kText;
  std::string text;
  int64_t number = 0;
};
using Expansions = std::map<std::string, ExpansionValue>;

// Bytes that stand for a per-process conversion in an expanded text: kMark,
// the conversion's index in decimal, kMarkEnd. The import refuses a value
// that holds either byte, so a mark is never confused with text; marks in
// TEXT pass through expand() unchanged (supervisord expands some options
// twice).
constexpr char kMark = '\x01';
constexpr char kMarkEnd = '\x02';

// TEXT % EXPANSIONS, as Python formats it; NAME says which option (for the
// message, as supervisord's: "Format string '...' for 'program:x.command'
// contains names ('foo') which cannot be expanded. Available names: ...").
// A kProcessNum value becomes a mark (see above) and its conversion is
// appended to PER_PROCESS; when PROCESS_NUM is given it is formatted instead.
Result<std::string> expand(std::string_view text, const Expansions& expansions,
                           std::string_view name, std::vector<Conversion>* per_process,
                           std::optional<int64_t> process_num = std::nullopt);

// NUMBER formatted by CONVERSION as Python's %-formatting does (d i u o x X
// s r a c e f g...); an error for a conversion that an integer refuses.
Result<std::string> format_integer(int64_t number, const Conversion& conversion);
// TEXT formatted by CONVERSION (s r a with width and precision); an error
// for a numeric conversion ("%d format: a real number is required, not str").
Result<std::string> format_text(std::string_view text, const Conversion& conversion);

// Replaces every mark in TEXT by the conversion of PROCESS_NUM it stands for.
Result<std::string> fill_marks(std::string_view text, const std::vector<Conversion>& conversions,
                               int64_t process_num);

// ---- Datatypes (supervisor/datatypes.py) ----

// Python's int(TEXT): blanks around, a sign, '_' between digits.
Result<int64_t> integer(std::string_view text);
// yes/true/on/1, no/false/off/0, any case.
Result<bool> boolean(std::string_view text);
// "50MB", "10kb", "1GB" (powers of 1024) or a bare integer.
Result<int64_t> byte_size(std::string_view text);
// int(TEXT, 8): "022", "0o22", "22".
Result<int64_t> octal(std::string_view text);
// A name (TERM, SIGTERM, any case) or a number that Python's signal module
// knows (0 included: SIG_DFL); the number.
Result<int> signal_number(std::string_view text);
enum class AutoRestart { kNever, kUnexpected, kAlways };
Result<AutoRestart> auto_restart(std::string_view text);
// "0,2": each 0..255.
Result<std::vector<int>> exit_codes(std::string_view text);
// "a, b" -> {"a", "b"}; empty text: none.
std::vector<std::string> list_of_strings(std::string_view text);
// A program's or group's name: stripped, without ' ', ':' or '/'.
Result<std::string> process_or_group_name(std::string_view text);
// critical error warn info debug trace blather -> the same word, lowercased.
Result<std::string> logging_level(std::string_view text);

// A *_logfile value: none/off -> kNone, auto -> kAuto, syslog -> kSyslog,
// anything else a path.
struct LogfileName {
  enum class Kind { kNone, kAuto, kSyslog, kPath } kind = Kind::kAuto;
  std::string path;
};
LogfileName logfile_name(std::string_view text);

// ---- shlex ----

// shlex.split(TEXT) (POSIX mode, whitespace_split, no comments): the
// command's argv as supervisord's spawn splits it. Marks count as word
// characters.
Result<std::vector<std::string>> shlex_split(std::string_view text);

// dict_of_key_value_pairs(TEXT): KEY=VALUE pairs separated by any one token
// (',' usually), quotes allowed, '#' starts a comment. Pairs in order (a key
// given twice keeps the last value, as the dict does). Marks count as word
// characters.
Result<std::vector<std::pair<std::string, std::string>>> key_value_pairs(std::string_view text);

}  // namespace corral::migrate

// A line of corralctl's shell (ctl/shell.h): its words, split as sh splits
// them, and what a tab press completes in it. Pure functions: the daemon's
// workers come in through a callback, so tests need no processes.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::ctl {

// A command line split into words as sh splits it, without expansions:
// blanks separate words, '...' keeps everything, "..." keeps everything but
// \" \\ \$ \`, a backslash outside quotes keeps the next character, and an
// unquoted # at the start of a word starts a comment.
struct Words {
  std::vector<std::string> words;
  std::string error;  // "unterminated single quote"...; empty when the line is well formed
  bool open = false;  // the line ends inside the last word (no blank after it)
};
Words split_words(std::string_view line);

// What a tab press does to the text before the cursor.
struct Completion {
  std::string insert;                // appended at the cursor: the rest of the one match
                                     // and a blank, or what all matches have in common
  std::vector<std::string> choices;  // the matches, sorted, when there is more than one
};

// Completes the last word of BEFORE_CURSOR: a command name (and quit, exit),
// a global option, the command's own options (from its synopsis), or its
// operand: a TARGET (jobs, JOB:INDEX workers, all), a JOB, a JOB:INDEX, a
// COMMAND. WORKER_NAMES gives the daemon's workers (JOB:INDEX); it is called
// only when an operand of those kinds is being completed.
Completion complete(std::string_view before_cursor,
                    const std::function<std::vector<std::string>()>& worker_names);

}  // namespace corral::ctl

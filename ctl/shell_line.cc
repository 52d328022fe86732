#include "ctl/shell_line.h"

#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include "ctl/commands.h"
#include "protocol/control.h"

namespace corral::ctl {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

// ---- Words ----

Words split_words(std::string_view line) {
  Words result;
  std::string word;
  char quote = 0;  // ' or " while inside quotes
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'') {
        quote = 0;
      } else {
        word += c;
      }
    } else if (quote == '"') {
      if (c == '"') {
        quote = 0;
      } else if (c == '\\' && i + 1 < line.size() &&
                 std::string_view("\"\\$`").find(line[i + 1]) != std::string_view::npos) {
        word += line[++i];
      } else {
        word += c;
      }
    } else if (is_blank(c)) {
      if (result.open) result.words.push_back(std::move(word));
      word.clear();
      result.open = false;
    } else if (c == '#' && !result.open) {
      break;
    } else {
      result.open = true;
      if (c == '\'' || c == '"') {
        quote = c;
      } else if (c != '\\') {
        word += c;
      } else if (i + 1 < line.size()) {
        word += line[++i];
      } else {
        result.error = "backslash at the end of the line";
      }
    }
  }
  if (quote != 0) {
    result.error = quote == '\'' ? "unterminated single quote" : "unterminated double quote";
  }
  if (result.open) result.words.push_back(std::move(word));
  return result;
}

// ---- Completion ----

namespace {

// What a command takes, as its synopsis says ("JOB [--file F | -] [--wait]",
// "JOB (ID... | --submit S | --queued)"), so that completion follows the
// command table without a table of its own.
struct Operand {
  std::string kind;  // TARGET, JOB, JOB:INDEX, COMMAND, ...
  bool repeated = false;
};
struct Syntax {
  std::vector<std::string> options;        // --wait, -f, ...
  std::vector<std::string> value_options;  // those followed by a value: --file F, -n N
  std::vector<Operand> operands;           // in order
};

// One word of a synopsis without its brackets, parentheses and "...".
struct SynopsisToken {
  std::string_view text;
  int opens = 0;   // '[' or '(' before it
  int closes = 0;  // ']' or ')' after it
  bool repeated = false;
};

SynopsisToken synopsis_token(std::string_view word) {
  SynopsisToken token;
  while (!word.empty() && (word.front() == '[' || word.front() == '(')) {
    word.remove_prefix(1);
    ++token.opens;
  }
  for (;;) {
    if (word.ends_with("]") || word.ends_with(")")) {
      word.remove_suffix(1);
      ++token.closes;
    } else if (word.ends_with("...")) {
      word.remove_suffix(3);
      token.repeated = true;
    } else {
      break;
    }
  }
  token.text = word;
  return token;
}

Syntax syntax_of(std::string_view synopsis) {
  Syntax syntax;
  int depth = 0;                 // inside this many [...] or (...)
  std::string_view last_option;  // an option inside them that the next word is the value of
  while (!synopsis.empty()) {
    size_t end = std::min(synopsis.find(' '), synopsis.size());
    SynopsisToken token = synopsis_token(synopsis.substr(0, end));
    synopsis.remove_prefix(std::min(end + 1, synopsis.size()));
    depth += token.opens;
    if (token.text.size() > 1 && token.text.front() == '-') {
      syntax.options.emplace_back(token.text);
      last_option = depth > 0 ? token.text : std::string_view();
    } else if (!token.text.empty() && token.text != "|" && token.text != "-") {
      if (!last_option.empty()) {
        syntax.value_options.emplace_back(last_option);
      } else {
        syntax.operands.push_back({std::string(token.text), token.repeated});
      }
      last_option = {};
    } else {
      last_option = {};
    }
    depth = std::max(0, depth - token.closes);
    if (token.closes > 0) last_option = {};
  }
  return syntax;
}

constexpr std::array<std::string_view, 7> kGlobalOptions = {
    "-s", "--socket", "-c", "--config", "--json", "-h", "--help"};

bool global_option_takes_value(std::string_view word) {
  return word == "-s" || word == "--socket" || word == "-c" || word == "--config";
}

bool contains(const std::vector<std::string>& list, std::string_view word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (const auto& command : commands()) names.emplace_back(command.name);
  return names;
}

// The words an operand of KIND can be.
std::vector<std::string> operand_choices(std::string_view kind,
                                         const std::function<std::vector<std::string>()>& workers) {
  if (kind == "COMMAND") return command_names();
  if (kind != "TARGET" && kind != "JOB" && kind != "JOB:INDEX") return {};
  std::vector<std::string> names = workers();
  if (names.empty()) return {};  // corrald did not answer: not even `all`
  std::vector<std::string> choices;
  if (kind != "JOB") choices = names;
  if (kind != "JOB:INDEX") {
    for (const auto& name : names) {
      auto target = protocol::parse_target(name);
      if (!target || target->all()) continue;
      choices.push_back(target->job);
      // supervisorctl's GROUP:*, for those who type it by habit.
      if (kind == "TARGET") choices.push_back(target->job + ":*");
    }
  }
  if (kind == "TARGET") choices.emplace_back("all");
  return choices;
}

// The choices for CURRENT, a word after the command whose syntax is SYNTAX
// and whose arguments so far are ARGS.
std::vector<std::string> argument_choices(
    const Syntax& syntax, std::span<const std::string> args, const std::string& current,
    const std::function<std::vector<std::string>()>& workers) {
  size_t operands = 0;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      ++operands;
    } else if (arg == "--") {
      options_done = true;
    } else if (contains(syntax.value_options, arg)) {
      if (i + 1 == args.size()) return {};  // CURRENT is this option's value
      ++i;
    }
  }
  if (!options_done && current.starts_with("-")) {
    std::vector<std::string> options = syntax.options;
    options.emplace_back("--help");
    return options;
  }
  if (operands < syntax.operands.size()) {
    return operand_choices(syntax.operands[operands].kind, workers);
  }
  if (!syntax.operands.empty() && syntax.operands.back().repeated) {
    return operand_choices(syntax.operands.back().kind, workers);
  }
  return {};
}

// The choices for CURRENT after the complete words WORDS.
std::vector<std::string> choices_for(const std::vector<std::string>& words,
                                     const std::string& current,
                                     const std::function<std::vector<std::string>()>& workers) {
  size_t i = 0;  // the command's position, after the global options
  while (i < words.size() && words[i].size() > 1 && words[i][0] == '-') {
    i += global_option_takes_value(words[i]) ? 2 : 1;
  }
  if (i > words.size()) return {};  // CURRENT is the value of -s or -c
  if (i == words.size()) {
    if (current.starts_with("-")) return {kGlobalOptions.begin(), kGlobalOptions.end()};
    std::vector<std::string> names = command_names();
    if (i == 0) names.insert(names.end(), {"quit", "exit"});
    return names;
  }
  const Command* command = find_command(words[i]);
  if (command == nullptr) return {};
  return argument_choices(syntax_of(command->synopsis),
                          std::span<const std::string>(words).subspan(i + 1), current, workers);
}

// CHOICES that extend CURRENT, as a Completion.
Completion completion_of(const std::string& current, const std::vector<std::string>& choices) {
  std::vector<std::string> matches;
  for (const auto& choice : choices) {
    if (choice.starts_with(current)) matches.push_back(choice);
  }
  std::sort(matches.begin(), matches.end());
  matches.erase(std::unique(matches.begin(), matches.end()), matches.end());
  if (matches.empty()) return {};
  std::string common = matches.front();
  for (const auto& match : matches) {
    auto mismatch = std::mismatch(common.begin(), common.end(), match.begin(), match.end());
    common.erase(mismatch.first, common.end());
  }
  Completion completion;
  completion.insert = common.substr(current.size());
  if (matches.size() == 1) {
    completion.insert += ' ';
  } else {
    completion.choices = std::move(matches);
  }
  return completion;
}

}  // namespace

Completion complete(std::string_view before_cursor,
                    const std::function<std::vector<std::string>()>& worker_names) {
  Words split = split_words(before_cursor);
  if (!split.error.empty()) return {};
  std::string current;
  if (split.open) {
    current = std::move(split.words.back());
    split.words.pop_back();
  }
  return completion_of(current, choices_for(split.words, current, worker_names));
}

}  // namespace corral::ctl

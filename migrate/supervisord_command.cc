// The per-process values and the command of a job (supervisord_command.h),
// and shell_quote (supervisord_import.h).
#include "migrate/supervisord_command.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

namespace corral::migrate {

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

namespace detail {
namespace {

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

}  // namespace

bool has_mark(std::string_view text) { return text.find(kMark) != std::string_view::npos; }

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

std::vector<std::string> command_of(const Program& p, std::vector<std::string>& notes,
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

}  // namespace detail
}  // namespace corral::migrate

// Python's shlex in POSIX mode (supervisord_values.h): a command's words
// (shlex.split) and the tokens of an environment= value
// (dict_of_key_value_pairs).
#include <algorithm>
#include <cctype>
#include <utility>

#include "migrate/supervisord_values.h"

namespace corral::migrate {
namespace {

// One character of the input as Python sees it: a code point, here its
// UTF-8 bytes (an invalid byte stands alone).
std::vector<std::string_view> code_points(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    auto u = static_cast<unsigned char>(text[i]);
    size_t n = u < 0x80 ? 1 : (u >> 5) == 0x6 ? 2 : (u >> 4) == 0xe ? 3 : (u >> 3) == 0x1e ? 4 : 1;
    if (i + n > text.size()) n = 1;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
        n = 1;
        break;
      }
    }
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

// shlex's wordchars in POSIX mode plus dict_of_key_value_pairs's "/.+-():",
// and the marks.
bool env_word_char(std::string_view ch) {
  if (ch.size() == 1) {
    char c = ch[0];
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
           std::string_view("/.+-():").find(c) != std::string_view::npos || c == kMark ||
           c == kMarkEnd;
  }
  if (ch.size() == 2) {
    // U+00C0..U+00FF but U+00D7 and U+00F7: shlex's Latin-1 letters.
    auto b0 = static_cast<unsigned char>(ch[0]);
    auto b1 = static_cast<unsigned char>(ch[1]);
    unsigned cp = ((b0 & 0x1fu) << 6) | (b1 & 0x3fu);
    return cp >= 0xc0 && cp <= 0xff && cp != 0xd7 && cp != 0xf7;
  }
  return false;
}

bool shlex_space(std::string_view ch) {
  return ch.size() == 1 && (ch[0] == ' ' || ch[0] == '\t' || ch[0] == '\r' || ch[0] == '\n');
}

// Python's shlex.shlex in POSIX mode: WHITESPACE_SPLIT as shlex.split sets
// it; COMMENTS: '#' starts a comment to the end of the line.
Result<std::vector<std::string>> shlex_tokens(std::string_view text, bool whitespace_split,
                                              bool comments) {
  std::vector<std::string_view> input = code_points(text);
  std::vector<std::string> tokens;
  size_t pos = 0;
  std::optional<std::string_view> pushed;
  auto next = [&]() -> std::string_view {
    if (pushed) {
      std::string_view c = *pushed;
      pushed.reset();
      return c;
    }
    if (pos >= input.size()) return {};
    return input[pos++];
  };
  auto skip_line = [&] {
    while (pos < input.size() && input[pos] != "\n") ++pos;
    if (pos < input.size()) ++pos;
  };
  auto is_quote = [](std::string_view c) { return c == "'" || c == "\""; };
  auto word_char = [&](std::string_view c) { return whitespace_split ? true : env_word_char(c); };
  bool at_eof = false;
  while (!at_eof) {
    std::string token;
    bool quoted = false;
    char state = ' ';
    char escaped_state = ' ';
    while (true) {
      std::string_view c = next();
      bool eof = c.empty();
      if (state == ' ') {
        if (eof) {
          at_eof = true;
          break;
        }
        if (shlex_space(c)) {
          if (!token.empty() || quoted) break;
          continue;
        }
        if (comments && c == "#") {
          skip_line();
          continue;
        }
        if (c == "\\") {
          escaped_state = 'a';
          state = '\\';
        } else if (!whitespace_split && env_word_char(c)) {
          token = std::string(c);
          state = 'a';
        } else if (is_quote(c)) {
          state = c[0];
        } else if (whitespace_split) {
          token = std::string(c);
          state = 'a';
        } else {
          token = std::string(c);
          break;  // a single punctuation character is a token
        }
      } else if (state == '\'' || state == '"') {
        quoted = true;
        if (eof) return Error("No closing quotation");
        if (c[0] == state && c.size() == 1) {
          state = 'a';
        } else if (c == "\\" && state == '"') {
          escaped_state = state;
          state = '\\';
        } else {
          token += c;
        }
      } else if (state == '\\') {
        if (eof) return Error("No escaped character");
        if ((escaped_state == '\'' || escaped_state == '"') && c != "\\" &&
            !(c.size() == 1 && c[0] == escaped_state)) {
          token.push_back('\\');
        }
        token += c;
        state = escaped_state;
      } else {  // 'a': in a word
        if (eof) {
          at_eof = true;
          break;
        }
        if (shlex_space(c)) {
          state = ' ';
          if (!token.empty() || quoted) break;
          continue;
        }
        if (comments && c == "#") {
          skip_line();
          state = ' ';
          if (!token.empty() || quoted) break;
          continue;
        }
        if (is_quote(c)) {
          state = c[0];
        } else if (c == "\\") {
          escaped_state = 'a';
          state = '\\';
        } else if (word_char(c)) {
          token += c;
        } else {
          pushed = c;
          state = ' ';
          if (!token.empty() || quoted) break;
          continue;
        }
      }
    }
    if (!token.empty() || quoted) tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace

Result<std::vector<std::string>> shlex_split(std::string_view text) {
  return shlex_tokens(text, true, false);
}

Result<std::vector<std::pair<std::string, std::string>>> key_value_pairs(std::string_view text) {
  auto tokens = shlex_tokens(text, false, true);
  if (!tokens) return tokens.error();
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < tokens->size(); i += 4) {
    if (i + 3 > tokens->size() || (*tokens)[i + 1] != "=") {
      return Error("Unexpected end of key/value pairs in value '" + std::string(text) + "'");
    }
    std::string key = (*tokens)[i];
    auto same =
        std::find_if(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == key; });
    if (same != pairs.end()) {
      same->second = (*tokens)[i + 2];
    } else {
      pairs.emplace_back(key, (*tokens)[i + 2]);
    }
  }
  return pairs;
}

}  // namespace corral::migrate

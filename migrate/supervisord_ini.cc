#include "migrate/supervisord_ini.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

#include "base/unique_fd.h"

namespace corral::migrate {

namespace {

std::string py_rstrip(std::string text) {
  while (!text.empty() && py_space(text.back())) text.pop_back();
  return text;
}

// The lines of TEXT as Python's universal newlines splits them, each with
// its line end.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\r') {
      size_t end = i + 1;
      if (text[i] == '\r' && end < text.size() && text[end] == '\n') ++end;
      lines.push_back(text.substr(start, end - start));
      start = end;
      i = end - 1;
    }
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// Where an inline comment starts in LINE (a ';' or '#' at the start or after
// whitespace), found as configparser's loop finds it: each round advances
// every prefix to its next occurrence and stops at the first round where
// one qualifies. npos: none.
size_t inline_comment_start(std::string_view line) {
  struct Prefix {
    char c;
    size_t index;
    bool live;
  };
  std::vector<Prefix> prefixes = {{';', std::string_view::npos, true},
                                  {'#', std::string_view::npos, true}};
  size_t comment = std::string_view::npos;
  while (comment == std::string_view::npos) {
    bool any = false;
    for (auto& p : prefixes) {
      if (!p.live) continue;
      size_t from = p.index == std::string_view::npos ? 0 : p.index + 1;
      size_t index = line.find(p.c, from);
      if (index == std::string_view::npos) {
        p.live = false;
        continue;
      }
      any = true;
      p.index = index;
      if (index == 0 || py_space(line[index - 1])) comment = std::min(comment, index);
    }
    if (!any) break;
  }
  return comment;
}

IniOption* find_option(IniSection& section, const std::string& name) {
  for (auto& [key, option] : section.options) {
    if (key == name) return &option;
  }
  return nullptr;
}

}  // namespace

const IniOption* IniSection::find(std::string_view option) const {
  for (const auto& [key, value] : options) {
    if (key == option) return &value;
  }
  return nullptr;
}

IniSection* IniDocument::find(std::string_view name) {
  for (auto& section : sections) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

const IniSection* IniDocument::find(std::string_view name) const {
  for (const auto& section : sections) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

const IniOption* IniDocument::get(const IniSection& section, std::string_view option) const {
  if (const IniOption* found = section.find(option)) return found;
  return defaults.find(option);
}

void parse_ini(std::string_view text, const std::string& file, const std::string& here,
               IniDocument& doc, std::vector<Diagnostic>& errors) {
  IniSection* section = nullptr;
  IniOption* option = nullptr;      // the option that continuation lines extend
  std::vector<std::string> pieces;  // its lines, joined at the end of the option
  size_t indent_level = 0;
  auto close_option = [&] {
    if (option == nullptr) return;
    std::string joined;
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i > 0) joined.push_back('\n');
      joined += pieces[i];
    }
    option->value = py_rstrip(std::move(joined));
    option = nullptr;
    pieces.clear();
  };
  int lineno = 0;
  for (std::string_view line : split_lines(text)) {
    ++lineno;
    size_t comment = inline_comment_start(line);
    std::string_view stripped = py_strip(line);
    if (stripped.starts_with(';') || stripped.starts_with('#')) comment = 0;
    std::string_view value =
        py_strip(comment == std::string_view::npos ? line : line.substr(0, comment));
    if (value.empty()) {
      // empty_lines_in_values: a blank line (not a comment) belongs to the
      // value being read, and is dropped again if it ends the value.
      if (comment == std::string_view::npos && section != nullptr && option != nullptr) {
        pieces.emplace_back();
      }
      continue;
    }
    size_t indent = 0;
    while (indent < line.size() && py_space(line[indent])) ++indent;
    if (section != nullptr && option != nullptr && indent > indent_level) {
      pieces.emplace_back(value);
      continue;
    }
    indent_level = indent;
    // A section header: '[', then anything, up to the last ']'.
    size_t close = value.rfind(']');
    if (value.front() == '[' && close != std::string_view::npos && close >= 2) {
      close_option();
      std::string name(value.substr(1, close - 1));
      if (name == "DEFAULT") {
        section = &doc.defaults;
        if (section->file.empty()) {
          section->name = name;
          section->file = file;
          section->line = lineno;
        }
      } else if (IniSection* existing = doc.find(name)) {
        section = existing;
      } else {
        doc.sections.push_back(IniSection{name, file, lineno, {}});
        section = &doc.sections.back();
      }
      continue;
    }
    if (section == nullptr) {
      errors.push_back({file, lineno,
                        "File contains no section headers: " + py_repr(line) +
                            " (supervisord refuses the file)"});
      return;
    }
    // name, blanks, '=' or ':' (whichever comes first), blanks, value.
    size_t delimiter = value.find_first_of("=:");
    if (delimiter == std::string_view::npos) {
      close_option();
      errors.push_back({file, lineno, "Source contains parsing errors: " + py_repr(line)});
      continue;
    }
    std::string name = py_lower(py_strip(value.substr(0, delimiter)));
    close_option();
    if (name.empty()) {
      errors.push_back({file, lineno, "Source contains parsing errors: " + py_repr(line)});
    }
    IniOption* target = find_option(*section, name);
    if (target == nullptr) {
      section->options.emplace_back(name, IniOption{});
      target = &section->options.back().second;
    }
    *target = IniOption{"", file, lineno, here};
    option = target;
    pieces.emplace_back(py_strip(value.substr(delimiter + 1)));
  }
  close_option();
}

namespace {

// The text of FILE, or why not.
Result<std::string> read_text(const std::string& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return errno_error("cannot open " + file);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("cannot stat " + file);
  if (!S_ISREG(st.st_mode)) return Error("cannot read " + file + ": not a regular file");
  constexpr size_t kMaxBytes = 16 * 1024 * 1024;
  if (static_cast<uint64_t>(st.st_size) > kMaxBytes) {
    return Error("cannot read " + file + ": larger than 16 MiB");
  }
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot read " + file);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxBytes) return Error("cannot read " + file + ": larger than 16 MiB");
  }
  return text;
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

}  // namespace

std::string directory_of(const std::string& path) {
  std::string abs = absolute(path);
  // abspath normalizes: "a/./b" and "a//b"; ".." is folded lexically.
  std::vector<std::string> parts;
  size_t start = 1;
  while (start <= abs.size()) {
    size_t slash = abs.find('/', start);
    std::string part =
        abs.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (!parts.empty()) parts.pop_back();
  std::string dir;
  for (const auto& part : parts) dir += "/" + part;
  return dir.empty() ? "/" : dir;
}

IniRead read_supervisord_files(const std::string& file,
                               const std::map<std::string, std::string>& environ,
                               const std::string& host_node_name) {
  IniRead read;
  auto text = read_text(file);
  if (!text) {
    read.errors.push_back({file, 0, text.error().message()});
    return read;
  }
  std::string here = directory_of(file);
  read.files.push_back(file);
  parse_ini(*text, file, here, read.doc, read.errors);
  if (!read.errors.empty()) return read;

  const IniSection* include = read.doc.find("include");
  if (include != nullptr) {
    const IniOption* files = read.doc.get(*include, "files");
    if (files == nullptr) {
      read.errors.push_back(
          {include->file, include->line, ".ini file has [include] section, but no files setting"});
      return read;
    }
    Expansions expansions;
    expansions["here"] = {ExpansionValue::Kind::kText, here, 0};
    expansions["host_node_name"] = {ExpansionValue::Kind::kText, host_node_name, 0};
    for (const auto& [name, value] : environ) {
      expansions["ENV_" + name] = {ExpansionValue::Kind::kText, value, 0};
    }
    // supervisord replaces %(here)s of the main file's values first.
    std::string value = files->value;
    for (size_t at = value.find("%(here)s"); at != std::string::npos;
         at = value.find("%(here)s", at + here.size())) {
      value.replace(at, 8, here);
    }
    auto expanded = expand(value, expansions, "include.files", nullptr);
    if (!expanded) {
      read.errors.push_back({files->file, files->line, expanded.error().message()});
      return read;
    }
    int files_line = files->line;
    std::string files_file = files->file;
    // Split on whitespace, as str.split() does.
    std::vector<std::string> patterns;
    std::string current;
    for (char c : *expanded) {
      if (py_space(c)) {
        if (!current.empty()) patterns.push_back(std::move(current));
        current.clear();
      } else {
        current.push_back(c);
      }
    }
    if (!current.empty()) patterns.push_back(std::move(current));
    for (const auto& raw : patterns) {
      std::string pattern = raw.front() == '/' ? raw : here + "/" + raw;
      glob_t matches{};
      int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
      std::vector<std::string> names;
      if (rc == 0) {
        for (size_t i = 0; i < matches.gl_pathc; ++i) names.emplace_back(matches.gl_pathv[i]);
      }
      ::globfree(&matches);
      if (names.empty()) {
        read.warnings.push_back(
            {files_file, files_line, "No file matches via include \"" + pattern + "\""});
        continue;
      }
      std::sort(names.begin(), names.end());
      for (const auto& name : names) {
        auto included = read_text(name);
        if (!included) {
          // RawConfigParser.read skips a file it cannot open.
          read.warnings.push_back(
              {files_file, files_line,
               included.error().message() + " (supervisord skips it without a word)"});
          continue;
        }
        read.files.push_back(name);
        parse_ini(*included, name, directory_of(name), read.doc, read.errors);
        if (!read.errors.empty()) return read;
      }
    }
    // expand_here: each value's %(here)s is the directory of its own file,
    // replaced as plain text before any other expansion.
    auto replace_here = [](IniSection& section) {
      for (auto& [name, option] : section.options) {
        std::string& v = option.value;
        for (size_t at = v.find("%(here)s"); at != std::string::npos;
             at = v.find("%(here)s", at + option.here.size())) {
          v.replace(at, 8, option.here);
        }
      }
    };
    for (auto& section : read.doc.sections) replace_here(section);
    replace_here(read.doc.defaults);
  }
  return read;
}

}  // namespace corral::migrate

// The loader: reads a main config file and the files its include globs
// name into one Config. It expands the globs (a directory that cannot be
// read stops the expansion rather than hide jobs), reads each file once
// (a file matched twice, or the main file matching its own glob), keeps job
// names unique across files, and sorts the diagnostics into file order. The
// rooms it uses: config_file.h reads a file that may be trusted,
// yaml_document.h turns text into a YAML tree behind the pre-scan guards of
// prescan.h, schema.h reads the daemon: section and the jobs with the
// Reader and Section of reader.h.
#include "config/parse.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "base/job_name.h"
#include "config/config_file.h"
#include "config/quote.h"
#include "config/reader.h"
#include "config/schema.h"
#include "config/units.h"
#include "config/yaml_document.h"

namespace corral::config {

std::string Diagnostic::str() const {
  std::string place = file;
  if (line > 0) {
    place += (place.empty() ? "" : ":") + std::to_string(line) + ":" + std::to_string(column);
  }
  return place.empty() ? message : place + ": " + message;
}

namespace {

std::string directory_of(const std::string& file) {
  size_t slash = file.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : file.substr(0, slash);
}

// DIR with glob(3)'s special characters escaped, so that only the include's
// own pattern is expanded.
std::string escape_glob(const std::string& dir) {
  std::string out;
  for (char c : dir) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Why glob(3) gave up; its error callback has no context argument.
thread_local std::string glob_failure;

// A directory that does not exist matches nothing, like a missing file; one
// that cannot be read would silently hide jobs, so it stops the expansion.
int on_glob_error(const char* path, int error) {
  if (error == ENOENT || error == ENOTDIR) return 0;
  glob_failure = std::string(path) + ": " + strerror(error);
  return 1;
}

std::optional<std::string> canonical(const std::string& path) {
  std::unique_ptr<char, void (*)(void*)> resolved(realpath(path.c_str(), nullptr), free);
  if (!resolved) return std::nullopt;
  return std::string(resolved.get());
}

// Reads a main file and the files its includes name into one Config.
class Loader {
 public:
  Loader(unsigned cpus, bool read_includes) : cpus_(cpus), read_includes_(read_includes) {}

  ParseResult load(const std::string& text, const std::string& file) {
    config_.file = file;
    if (auto path = canonical(file)) loaded_.insert(*path);
    file_order_.push_back(file);
    Reader reader(file, errors_);
    std::vector<Item> includes;
    if (text.size() > kMaxConfigBytes) {
      reader.error(YAML::Mark::null_mark(), "config is " + std::to_string(text.size()) +
                                                " bytes; a config file may hold at most " +
                                                format_size(kMaxConfigBytes));
    } else if (auto root = parse_yaml(reader, text, values_left_)) {
      includes = read_main(reader, *root);
    }
    if (read_includes_) {
      for (const Item& glob : includes) include(reader, glob);
    }
    return finish();
  }

 private:
  struct Origin {
    std::string file;
    YAML::Mark mark;
  };

  // Reads the main file's ROOT into config_; returns its include globs.
  std::vector<Item> read_main(Reader& reader, const YAML::Node& root) {
    Item top{Scope{}, "", YAML::Mark(), root};
    if (!root.IsNull() && !root.IsMap()) {
      reader.error(top.mark(),
                   "the top level must be a map with keys like daemon: and jobs:, got " +
                       Reader::describe(root));
      return {};
    }
    Section s(reader, top, Scope{});
    s.get_section("daemon", [&](Section& daemon) { read_daemon(daemon, config_.daemon); });
    std::vector<Item> globs;
    if (auto item = s.take("include")) {
      if (auto elements = reader.list(*item, "a list of globs like [\"jobs.d/*.yaml\"]")) {
        for (const Item& element : *elements) {
          if (auto glob = reader.string(element, false)) {
            config_.include.push_back(*glob);
            globs.push_back(element);
          }
        }
      }
    }
    if (auto jobs = s.take("jobs")) read_jobs(reader, *jobs);
    s.finish();
    return globs;
  }

  void read_jobs(Reader& reader, const Item& item) {
    Section jobs(reader, item, Scope{"", "jobs"}, "a map of job names to jobs");
    for (const Item& entry : jobs.all()) {
      // A job with a bad name is still read, to report its other mistakes too.
      bool named_well = valid_job_name(entry.key);
      if (!named_well) {
        reader.error(entry.key_mark, "invalid job name " + quote(entry.key) +
                                         ": use letters, digits, '_', '.' and '-'");
      }
      JobSpec job;
      job.name = entry.key;
      Section body(reader, entry, Scope{entry.key, ""}, "a map of job settings");
      read_job(body, job, cpus_);
      body.finish();
      if (named_well) add_job(std::move(job), Origin{reader.file(), entry.key_mark}, reader);
    }
  }

  void add_job(JobSpec job, Origin origin, Reader& reader) {
    auto [first, inserted] = origins_.emplace(job.name, origin);
    if (!inserted) {
      const Origin& o = first->second;
      reader.error(origin.mark, "job " + quote(job.name) + " is already defined at " + o.file +
                                    ":" + std::to_string(o.mark.line + 1) + ":" +
                                    std::to_string(o.mark.column + 1));
      return;
    }
    config_.jobs.push_back(std::move(job));
  }

  // Expands one include glob of the main file and reads each file it names.
  void include(Reader& reader, const Item& glob) {
    const std::string& pattern = glob.value.Scalar();
    std::string full = pattern;
    std::string dir = directory_of(reader.file());
    if (!pattern.empty() && pattern[0] != '/' && !dir.empty()) {
      full = escape_glob(dir) + (dir == "/" ? "" : "/") + pattern;
    }
    glob_t matches{};
    glob_failure.clear();
    int rc = ::glob(full.c_str(), 0, on_glob_error, &matches);
    std::unique_ptr<glob_t, void (*)(glob_t*)> freer(&matches, globfree);
    if (rc == GLOB_NOMATCH) {
      // An empty or missing jobs.d is fine; a file named without wildcards
      // is meant to be there, and a misspelt name would drop its jobs.
      if (pattern.find_first_of("*?[") == std::string::npos) {
        std::string path =
            pattern[0] == '/' || dir.empty() ? pattern : dir + (dir == "/" ? "" : "/") + pattern;
        reader.error(glob, "no file " + quote(path, PATH_MAX) +
                               " (a name without *, ? or [ must name an existing file)");
      }
      return;
    }
    if (rc != 0) {
      reader.error(glob, "cannot expand " + quote(full) + ": " +
                             (rc == GLOB_NOSPACE ? "out of memory" : glob_failure));
      return;
    }
    std::string from = reader.file() + ":" + std::to_string(glob.mark().line + 1) + ":" +
                       std::to_string(glob.mark().column + 1);
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      std::string path = matches.gl_pathv[i];
      // A file matched twice, or the main file matching its own glob, is read once.
      if (auto real = canonical(path); real && !loaded_.insert(*real).second) continue;
      load_included(path, from);
    }
  }

  void load_included(const std::string& path, const std::string& from) {
    file_order_.push_back(path);
    Reader reader(path, errors_);
    auto text = read_config_file(path);
    if (!text) {
      reader.error(YAML::Mark::null_mark(),
                   text.error().message() + " (included from " + from + ")");
      return;
    }
    auto root = parse_yaml(reader, *text, values_left_);
    if (!root) return;
    Item top{Scope{}, "", YAML::Mark(), *root};
    if (!root->IsNull() && !root->IsMap()) {
      reader.error(top.mark(),
                   "an included file must be a map holding jobs:, got " + Reader::describe(*root));
      return;
    }
    Section s(reader, top, Scope{});
    for (std::string_view key : {"daemon", "include"}) {
      if (auto item = s.take(key)) {
        reader.error(item->key_mark, quote(key) +
                                         " is not allowed in an included file (included from " +
                                         from + "); it holds only a jobs: map");
      }
    }
    if (auto jobs = s.take("jobs")) read_jobs(reader, *jobs);
    s.finish();
  }

  ParseResult finish() {
    std::sort(config_.jobs.begin(), config_.jobs.end(),
              [](const JobSpec& a, const JobSpec& b) { return a.name < b.name; });
    // Errors are found section by section; a reader wants them in file order.
    auto rank = [this](const Diagnostic& d) {
      auto at = std::find(file_order_.begin(), file_order_.end(), d.file);
      return std::tuple(at - file_order_.begin(), d.line, d.column);
    };
    std::stable_sort(errors_.begin(), errors_.end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return rank(a) < rank(b); });
    if (!errors_.empty()) return std::move(errors_);
    return std::move(config_);
  }

  unsigned cpus_;
  bool read_includes_;
  Config config_;
  std::vector<Diagnostic> errors_;
  std::map<std::string, Origin> origins_;  // job name -> where it was defined first
  std::set<std::string> loaded_;           // canonical paths of the files read
  std::vector<std::string> file_order_;
  size_t values_left_ = kMaxValues;  // shared by the main file and its includes
};

}  // namespace

ParseResult load_string(const std::string& text, const std::string& file, unsigned cpus,
                        bool read_includes) {
  try {
    return Loader(cpus, read_includes).load(text, file);
  } catch (const std::exception& e) {
    // yaml-cpp's node accessors may throw on a tree we did not expect; the
    // contract is to never throw, so report it rather than crash a reload.
    return std::vector<Diagnostic>{
        {file, 0, 0, std::string("internal error reading config: ") + e.what()}};
  }
}

ParseResult load_file(const std::string& file, unsigned cpus) {
  auto text = read_config_file(file);
  if (!text) return std::vector<Diagnostic>{{file, 0, 0, text.error().message()}};
  return load_string(*text, file, cpus);
}

}  // namespace corral::config

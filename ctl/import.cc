#include "ctl/import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "base/io.h"
#include "base/unique_fd.h"
#include "ctl/output.h"
#include "migrate/supervisord_import.h"
#include "protocol/control.h"
#include "protocol/exit_codes.h"

extern char** environ;  // NOLINT: POSIX

namespace corral::ctl {

namespace {

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    size_t eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

// platform.node(): the host's name as uname(2) gives it.
std::string node_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

std::string line_of(const migrate::Diagnostic& d, std::string_view kind) {
  std::string place = d.file + (d.line > 0 ? ":" + std::to_string(d.line) : std::string());
  return place + ": " + std::string(kind) + ": " + d.message + "\n";
}

Json list_of(const std::vector<migrate::Diagnostic>& diagnostics) {
  Json list = Json::array();
  for (const auto& d : diagnostics) {
    list.push_back({{"file", d.file}, {"line", d.line}, {"message", d.message}});
  }
  return list;
}

}  // namespace

Status write_atomically(const std::string& path, const std::string& text) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string temp = dir + "/." + base + ".XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  UniqueFd fd(::mkostemp(name.data(), O_CLOEXEC));
  if (!fd) return errno_error("cannot write " + path + ": cannot create a file in " + dir);
  std::string temp_name(name.data());
  auto fail = [&](std::string_view what) {
    Error error = errno_error("cannot write " + path + ": " + std::string(what));
    ::unlink(temp_name.c_str());
    return error;
  };
  if (::fchmod(fd.get(), 0644) != 0) return fail("fchmod");
  if (Status written = write_all(fd.get(), text); !written) {
    ::unlink(temp_name.c_str());
    return Error("cannot write " + path + ": " + written.error().message());
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  if (::rename(temp_name.c_str(), path.c_str()) != 0) return fail("rename");
  return {};
}

Output run_import(const ImportRequest& request, Format format) {
  migrate::ImportOptions options;
  options.environ = environment();
  options.host_node_name = node_name();
  options.corral_version = protocol::kVersion;
  options.output_name = request.out.value_or("");
  migrate::ImportResult result = migrate::import_supervisord(request.file, options);

  bool written = false;
  if (result.errors.empty() && request.out) {
    if (Status status = write_atomically(*request.out, result.yaml); !status) {
      result.errors.push_back({*request.out, 0, status.error().message()});
      result.exit_code = migrate::kImportNothingWritten;
    } else {
      written = true;
    }
  }
  Output output;
  output.exit_code = result.exit_code;
  if (format == Format::kJson) {
    Json reply{{"warnings", list_of(result.warnings)},
               {"errors", list_of(result.errors)},
               {"exit_code", result.exit_code}};
    if (written) {
      reply["written"] = *request.out;
    } else if (result.errors.empty()) {
      reply["yaml"] = result.yaml;
    }
    output.out = dump(reply);
    return output;
  }
  if (result.errors.empty() && !request.out) output.out = result.yaml;
  for (const auto& d : result.warnings) output.err += line_of(d, "warning");
  for (const auto& d : result.errors) output.err += line_of(d, "error");
  return output;
}

}  // namespace corral::ctl

// The import (supervisord_import.h): the configuration read as supervisord
// reads it (supervisord_programs.h), written as YAML (supervisord_yaml.h),
// the sections supervisord ignores warned of, and the YAML checked as
// corrald would load it.
#include "migrate/supervisord_import.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include "config/parse.h"
#include "migrate/supervisord_programs.h"
#include "migrate/supervisord_yaml.h"

namespace corral::migrate {

ImportResult import_supervisord(const std::string& file, const ImportOptions& options) {
  ImportResult result;
  detail::SupervisordConfig supervisord;
  if (!detail::read_programs(file, options, supervisord, result)) return result;
  std::string text = detail::YamlWriter(file, options, supervisord, result.warnings).write();
  // Sections without a job.
  for (const auto& section : supervisord.read.doc.sections) {
    std::string kind = section.name.substr(0, section.name.find(':'));
    static constexpr std::string_view kKnown[] = {"program",          "group",
                                                  "eventlistener",    "fcgi-program",
                                                  "supervisord",      "unix_http_server",
                                                  "inet_http_server", "supervisorctl",
                                                  "rpcinterface",     "include"};
    if (std::find(std::begin(kKnown), std::end(kKnown), kind) == std::end(kKnown) ||
        (kind == "rpcinterface" && section.name.find(':') == std::string::npos)) {
      result.warnings.push_back({section.file, section.line,
                                 "unknown section [" + section.name + "]; supervisord ignores it"});
    }
  }
  auto checked = config::load_string(
      text, options.output_name.empty() ? "<import>" : options.output_name, 1, false);
  if (!checked) {
    for (const auto& d : checked.error()) {
      result.errors.push_back({options.output_name.empty() ? "<stdout>" : options.output_name,
                               d.line,
                               "internal error: the YAML written is not a valid corral config (a "
                               "bug of the import; please report it): " +
                                   d.message});
    }
    result.exit_code = kImportNothingWritten;
    return result;
  }
  result.yaml = std::move(text);
  result.exit_code = result.warnings.empty() ? kImportClean : kImportWarnings;
  return result;
}

}  // namespace corral::migrate

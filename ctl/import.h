// `corralctl import supervisord FILE [-o OUT]`: a local command, the one
// that never talks to corrald. It reads a supervisord configuration
// (migrate/supervisord_import.h) and prints the corral config, or writes it
// to OUT atomically (a temporary file in OUT's directory, then rename(2),
// mode 0644). Exit codes: 0 written without warnings, 1 written with
// warnings, 2 nothing written. Reads and writes files; safe from any thread.
#pragma once

#include <optional>
#include <string>

#include "ctl/commands.h"

namespace corral::ctl {

// Runs REQUEST; the Output holds the YAML (or, with --json, one JSON object:
// {"yaml": TEXT} or {"written": OUT}, "warnings" and "errors" as lists of
// {"file", "line", "message"}, "exit_code"), the diagnostics on stderr as
// FILE:LINE: warning: ... / FILE:LINE: error: ..., and the exit code.
Output run_import(const ImportRequest& request, Format format);

// Writes TEXT to PATH atomically with mode 0644: a temporary file beside it,
// then rename(2). An existing PATH is replaced; a failure leaves it as it was.
Status write_atomically(const std::string& path, const std::string& text);

}  // namespace corral::ctl

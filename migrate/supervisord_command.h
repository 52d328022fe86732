// A program's values that differ per process (the marks of %(process_num),
// supervisord_values.h) in corral's terms, and the command of its job:
// corral's placeholders ({index}, {index+K}, {index:0N}) where they write
// the number as supervisord did, else an sh -c script that rebuilds each
// worker's argv, environment and directory from CORRAL_WORKER. Internal to
// the migrate library; pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "migrate/supervisord_programs.h"

namespace corral::migrate::detail {

bool has_mark(std::string_view text);

// Splits TEXT at marks: literal pieces and conversion indexes, in order.
struct Piece {
  bool mark = false;
  std::string text;
  size_t index = 0;
};
std::vector<Piece> pieces_of(std::string_view text);

// corral's placeholder ({index}, {index+K}, {index:0N}, {index+K:0N}) for
// supervisord's process_num written with conversion C, when it writes it
// alike; supervisord's process_num is corral's index plus numprocs_start.
std::optional<std::string> placeholder_of(const Conversion& c, int64_t numprocs_start);

// TEXT with each process_num turned into corral's placeholder; nullopt when
// one has none, or when TEXT's own words would read as a placeholder.
std::optional<std::string> with_placeholders(std::string_view text,
                                             const std::vector<Conversion>& conversions,
                                             int64_t numprocs_start);

// The argv of P's job, empty when P's command splits into no word (or
// does not split). IN_SHELL: the argv is an sh -c script that sets the
// values that differ per process, which the job's env and cwd then leave
// out. NOTES: what the comments above the command say.
std::vector<std::string> command_of(const Program& p, std::vector<std::string>& notes,
                                    bool& in_shell);

}  // namespace corral::migrate::detail

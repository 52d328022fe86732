// Durations, sizes, signals and modes as people write them in a config:
// `250ms`, `30s`, `10MiB`, `TERM`, `"0660"`. Each parser returns nullopt for
// text it does not accept; the caller words the error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/spec.h"

namespace corral::config {

// A number with ms, s, m or h; a bare number is seconds. Fractions allowed
// ("1.5s"). Negative values are refused. When it returns nullopt and WHY is
// given, *WHY says what is wrong in a user's words ("unknown unit "xs"; use
// ms, s, m or h").
std::optional<Duration> parse_duration(std::string_view text, std::string* why = nullptr);
// Canonical form: the largest unit that divides exactly ("90s" -> "90s",
// "1500ms", "2m", "1h"); "0s" for zero.
std::string format_duration(Duration d);

// A number with B, KiB, MiB, GiB (KB, MB, GB accepted as powers of 1024 too);
// a bare number is bytes. WHY as for parse_duration.
std::optional<uint64_t> parse_size(std::string_view text, std::string* why = nullptr);
std::string format_size(uint64_t bytes);

// "TERM", "SIGTERM", "term" or "15" -> 15.
std::optional<int> parse_signal(std::string_view text);
// 15 -> "TERM"; unknown numbers print as the number.
std::string signal_name(int signal);

// An octal file mode "0660" or "660".
std::optional<unsigned> parse_mode(std::string_view text);

// "0-3,6" -> {0,1,2,3,6}.
std::optional<std::vector<int>> parse_cpu_list(std::string_view text);

// Splits a command string like a POSIX shell does for words: whitespace
// separates, single quotes are literal, double quotes allow \" \\ \$ \`,
// a backslash outside quotes escapes the next character. No expansion of
// variables or globs. nullopt for an unterminated quote or trailing backslash.
std::optional<std::vector<std::string>> split_command(std::string_view text);

// Levenshtein distance, for "did you mean".
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace corral::config

// Durations, sizes, signals and modes as people write them in a config:
// `250ms`, `30s`, `10MiB`, `TERM`, `"0660"`. Each parser returns the value or
// an Error that says in a user's words what is wrong with the text ("unknown
// unit "xs"; use ms, s, m or h"), without the text itself: the caller words
// the whole message. Pure functions, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/spec.h"

namespace corral::config {

// A number with ms, s, m or h; a bare number is seconds. Fractions allowed
// ("1.5s"). Negative values are refused.
Result<Duration> parse_duration(std::string_view text);
// Canonical form: the largest unit that divides exactly ("90s" -> "90s",
// "1500ms", "2m", "1h"); "0s" for zero.
std::string format_duration(Duration d);

// A short spin: "50us" or "2ms" (an integer and us or ms).
Result<std::chrono::microseconds> parse_spin(std::string_view text);
// "50us", "2ms", or "off" for zero.
std::string format_spin(std::chrono::microseconds spin);

// A number with B, KiB, MiB, GiB (KB, MB, GB accepted as powers of 1024 too);
// a bare number is bytes.
Result<uint64_t> parse_size(std::string_view text);
std::string format_size(uint64_t bytes);

// "TERM", "SIGTERM", "term" or "15" -> 15.
Result<int> parse_signal(std::string_view text);
// 15 -> "TERM"; unknown numbers print as the number.
std::string signal_name(int signal);

// An octal file mode "0660" or "660".
Result<unsigned> parse_mode(std::string_view text);

// "0-3,6" -> {0,1,2,3,6}.
Result<std::vector<int>> parse_cpu_list(std::string_view text);

// Splits a command string like a POSIX shell does for words: whitespace
// separates, single quotes are literal, double quotes allow \" \\ \$ \`,
// a backslash outside quotes escapes the next character. No expansion of
// variables or globs. An error for an unterminated quote or a trailing
// backslash.
Result<std::vector<std::string>> split_command(std::string_view text);

// Levenshtein distance, for "did you mean".
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace corral::config

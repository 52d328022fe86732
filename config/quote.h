// Text between double quotes, escaped as YAML reads it back: the one home of
// string escaping in the config library. The loader's messages show a user's
// text with quote() (invisible characters made visible, long text cut), and
// the emitter writes strings that cannot be plain with escape_double_quoted().
// Pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace corral::config {

// Whether invisible characters (no-break space, zero-width characters, a
// byte order mark...) are written as \uXXXX or kept as they are.
enum class Invisible { kKeep, kShow };

// TEXT escaped for a YAML double-quoted scalar, quotes excluded: '"' and '\'
// with a backslash, newline and tab as \n and \t, other control characters
// as \xHH; UTF-8 passes through (but for invisible characters with kShow).
std::string escape_double_quoted(std::string_view text, Invisible invisible);

// TEXT as a message shows it: quoted, escaped with Invisible::kShow (a key
// "workers" with a no-break space would look right otherwise), and cut after
// MAX_SHOWN bytes (without splitting a UTF-8 sequence) with "..." before the
// closing quote.
std::string quote(std::string_view text, size_t max_shown = 60);

}  // namespace corral::config

// Whole-file reads and writes and existence checks for tests, which compare
// what a program wrote with what it should have. Thread-safe (no state).
#pragma once

#include <string>

namespace corral::testing {

// The bytes of PATH, "" when it cannot be read.
std::string read_file(const std::string& path);
// Replaces PATH's bytes with TEXT, creating it (mode 0666 & ~umask).
void write_file(const std::string& path, const std::string& text);
// Whether anything is at PATH, a symbolic link (even a dangling one) included.
bool path_exists(const std::string& path);
// Whether PATH leads to something: a symbolic link only if its target exists.
bool path_resolves(const std::string& path);

}  // namespace corral::testing

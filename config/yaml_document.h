// The one place yaml-cpp reads a config's text: the pre-scan guards
// (prescan.h) first, then a pass over yaml-cpp's events that finds syntax
// errors and counts the values before any tree is built, then the tree. Each
// problem is recorded on the Reader with its place, and yaml-cpp's terse
// syntax messages get a few words on what usually causes them. No exception
// leaves it. One loader on one thread at a time.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>

#include "config/prescan.h"
#include "config/reader.h"

namespace corral::config {

// The document of TEXT; nullopt after recording on READER why there is none.
// VALUES_LEFT is the budget of values (kMaxValues) that a main file and its
// includes share; what TEXT holds is taken from it.
std::optional<YAML::Node> parse_yaml(Reader& reader, const std::string& text, size_t& values_left);

// A few words after yaml-cpp's MESSAGE (about TEXT, at AT) on what usually
// causes it: " (a tab in the indentation? ...)", or "".
std::string syntax_hint(const std::string& message, const std::string& text, const YAML::Mark& at,
                        const FlowScan& flow);

}  // namespace corral::config

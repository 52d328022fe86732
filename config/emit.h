// Writes a Config back as YAML with every default filled in: the
// "normalized config" that `corrald --check` prints, which loads again to an
// equal Config.
#pragma once

#include <string>

#include "config/spec.h"

namespace corral::config {

std::string to_yaml(const Config& config);

// Lower-case names as the config spells them ("on-failure", "shm", ...).
const char* to_string(RestartPolicy policy);
const char* to_string(Channel channel);
const char* to_string(LogLevel level);

}  // namespace corral::config

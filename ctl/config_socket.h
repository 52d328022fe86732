// The socket of a corralctl line that may name a config (-c): corralctl-full's
// part of ctl/client.h's choice, since reading a config takes the YAML parser.
#pragma once

#include <optional>
#include <string>

#include "ctl/client.h"

namespace corral::ctl {

// FLAG (-s), else ENV ($CORRAL_SOCKET, may be null), else daemon.socket of
// CONFIG_FILE (-c), read only when it decides, else the default.
SocketChoice resolve_socket(const std::optional<std::string>& flag, const char* env,
                            const std::optional<std::string>& config_file);

}  // namespace corral::ctl

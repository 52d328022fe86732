#include "ctl/config_socket.h"

#include <algorithm>
#include <thread>

#include "config/parse.h"

namespace corral::ctl {

SocketChoice resolve_socket(const std::optional<std::string>& flag, const char* env,
                            const std::optional<std::string>& config_file) {
  if (!config_file || named_socket(flag, env)) return socket_without_config(flag, env);
  unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  config::ParseResult parsed = config::load_file(*config_file, cpus);
  SocketChoice choice;
  if (!parsed.ok()) {
    for (const auto& diagnostic : parsed.error()) choice.errors.push_back(diagnostic.str());
  } else {
    choice.path = parsed->daemon.socket;
  }
  return choice;
}

}  // namespace corral::ctl

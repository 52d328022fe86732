// The control commands (docs/control-protocol.md): each takes a parsed
// request and answers through a Reply, at once or later (start waits for
// RUNNING). Independent of sockets, so the socket server (control.h) stays
// about connections and tests can call commands directly.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <functional>

#include "daemon/supervisor.h"
#include "protocol/control.h"

namespace corral::daemon {

using Reply = std::function<void(const protocol::Json&)>;

class Commands {
 public:
  // SHUTDOWN is called after the reply to a `shutdown` request is handed out.
  Commands(Supervisor& supervisor, std::function<void()> shutdown);

  // Answers REQUEST through REPLY exactly once (for a streaming command,
  // several lines ending with {"end": true}).
  void handle(const protocol::Json& request, Reply reply);

 private:
  void status(const protocol::Json& request, Reply reply);
  void change(const protocol::Json& request, const std::string& verb, Reply reply);
  void pid(const protocol::Json& request, Reply reply);

  // The targets of REQUEST (DEFAULT_ALL: none means all), or an error reply.
  std::optional<std::vector<WorkerId>> targets(const protocol::Json& request, bool default_all,
                                               const Reply& reply);

  Supervisor& supervisor_;
  std::function<void()> shutdown_;
};

// The worker object of the protocol.
protocol::Json to_json(const WorkerStatus& status);

}  // namespace corral::daemon

// corral-spawn: corrald's spawn server (spawn_server.h), a program of its
// own so that it maps none of corrald's libraries and holds none of its
// memory. corrald starts it with its end of a socketpair; it is not meant to
// be run by hand.
//
//   corral-spawn SOCKET_FD DAEMON_PID GREETING
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/spawn_protocol.h"

namespace {

bool parse_int(const char* text, long& out) {
  char* end = nullptr;
  errno = 0;
  out = strtol(text, &end, 10);
  return errno == 0 && end != text && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  using corral::daemon::spawn_protocol::kGreeting;
  long socket = -1, daemon = 0;
  if (argc != 4 || !parse_int(argv[1], socket) || socket < 0 || !parse_int(argv[2], daemon) ||
      daemon <= 0) {
    fprintf(stderr, "corral-spawn: corrald's spawn server, started by corrald, not by hand\n");
    return 2;
  }
  if (strcmp(argv[3], kGreeting) != 0) {
    // Another build's corrald: its requests would be misread.
    fprintf(stderr, "corral-spawn: corrald speaks \"%s\", this is \"%s\"\n", argv[3], kGreeting);
    return 2;
  }
  corral::daemon::spawn_protocol::serve(static_cast<int>(socket), static_cast<pid_t>(daemon));
}

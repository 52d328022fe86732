// A redis-server of a test's own: Debian's binary, started in a directory
// of the test's (its config, its append-only file), listening only on a Unix
// socket there, with `appendonly yes` and `appendfsync always`, so that what
// it acknowledged survives its kill -9. Never a system one. Stopped (and
// killed if it must be) with its owner.
#pragma once

#include <sys/types.h>

#include <string>

namespace corral::testing {

class RedisServer {
 public:
  // Whether redis-server can be run here (scripts/setup-deps installs it);
  // a test that needs it skips with this reason where it cannot.
  static bool available();
  static constexpr const char* kMissing =
      "redis-server is not installed (scripts/setup-deps installs Debian's redis-server)";

  // Prepares DIR (it must exist) for a server; start() runs it.
  explicit RedisServer(std::string dir);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server and waits until it answers; false (with its log in
  // log()) when it does not within a few seconds.
  bool start();
  // SIGTERM, then SIGKILL if it lingers; waits for it.
  void stop();
  // SIGKILL at once: what it acknowledged is in its append-only file.
  void kill9();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  const std::string& socket() const { return socket_; }
  // "unix:///DIR/redis.sock", for a config's broker url.
  std::string url() const { return "unix://" + socket_; }
  std::string log() const;
  // Runs redis-cli against it with ARGS; its stdout (a test's inspection).
  std::string cli(const std::string& args) const;

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace corral::testing

// One connection to a Redis server, driven by corrald's Asio loop (hiredis's
// async API has adapters for libev, libevent and others, not for Asio: this
// is that adapter). Commands are pipelined: each goes out as soon as the
// socket takes it, without waiting for the replies before it, and its DONE
// runs on the loop with its reply, in the order the commands were given.
//
// Every command has a deadline (Options::timeout, plus what the command
// itself blocks for). Redis answers in order, so a command past its deadline
// means the connection is stuck: it is closed, every waiting command fails
// with the reason, and ON_CLOSED hears it once. The owner reconnects (a new
// Connection) with its own backoff. A Connection never reconnects by itself.
//
// Lifetime: hiredis owns the socket's fd and closes it; the Asio descriptor
// that watches it releases it instead of closing it again. Destroying a
// Connection frees the hiredis context at once, and the DONEs still waiting
// are dropped without being called: whoever destroys it is no longer
// listening. A DONE or ON_CLOSED may destroy the Connection.
//
// hiredis writes with write(2), not send(MSG_NOSIGNAL): the process must
// ignore SIGPIPE (corrald does), or a server that dies kills it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "redis/address.h"
#include "redis/reply.h"

namespace boost::asio {
class io_context;
}

namespace corral::redis {

class Connection {
 public:
  struct Options {
    Address address;
    // The longest a connect or a reply may take.
    std::chrono::milliseconds timeout{5000};
  };
  // A reply, or why none came (the connection failed, timed out or closed).
  // A reply of Redis's own error type (`-ERR ...`) is a Reply, not an Error.
  using Done = std::function<void(Result<Reply>)>;

  // Starts connecting to OPTIONS.address (and SELECTs its db); commands may
  // be given at once: they go out once it is connected. ON_CLOSED runs once,
  // on the loop, when the connection ends other than by close() or the
  // destructor, with the reason ("redis unix:///x: connect: No such file or
  // directory"), after every waiting DONE has failed with it.
  Connection(boost::asio::io_context& io, Options options,
             std::function<void(const Error&)> on_closed);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends ARGS as one command. EXTRA: how long the command may block in
  // Redis on purpose (XREADGROUP ... BLOCK), added to the timeout.
  void command(std::vector<std::string> args, Done done,
               std::chrono::milliseconds extra = std::chrono::milliseconds(0));
  // Once the server has answered the connect (and SELECT).
  bool connected() const;
  // Ends the connection: the waiting DONEs fail with "closed", ON_CLOSED does
  // not run. Commands given later fail at once.
  void close();
  const Address& address() const;
  // Commands sent and not answered yet.
  size_t pending() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace corral::redis

// The control commands (docs/control-protocol.md): each takes a parsed
// request and answers through a Reply, at once or later (start waits for
// RUNNING). Independent of sockets, so the socket server (control.h) stays
// about connections and tests can call commands directly.
//
// Not thread-safe; lives on the daemon's event loop.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <type_traits>

#include "base/result.h"
#include "config/parse.h"
#include "daemon/supervisor.h"
#include "protocol/control.h"

namespace corral::daemon {

class LogRing;

// One client's side of an exchange, as a command sees it: lines out, and for
// streaming commands lines in. The socket session implements it.
class Conversation {
 public:
  enum class Verdict { kContinue, kPause, kEnd };
  virtual ~Conversation() = default;
  // Sends MESSAGE; FINAL ends the exchange (the next request is read).
  virtual void send(const protocol::Json& message, bool final) = 0;
  // Sends a line already encoded ('\n' included); not final.
  virtual void send_raw(std::string_view line) = 0;
  // Sends the lines WRITE(std::string& out) appends to OUT, as send_raw()
  // would, but written in place where the conversation can take them so (a
  // socket's output buffer): a stream of results is not copied per line.
  template <typename Write>
  void send_raw_with(Write&& write) {
    std::string& out = raw_buffer();
    const size_t from = out.size();
    write(out);
    raw_appended(from);
  }
  // Hands each following input line to ON_LINE until it answers kEnd (the
  // command then ends the exchange with a final send); kPause stops reading
  // until resume(). ON_BATCH runs after each batch of lines read at once.
  virtual void take_lines(std::function<Verdict(std::string_view)> on_line,
                          std::function<void()> on_batch) = 0;
  virtual void resume() = 0;
  // ON_CLOSE runs if the client goes away before the exchange ends.
  virtual void on_close(std::function<void()> on_close) = 0;
  virtual bool closed() const = 0;
  // Bytes sent but not yet taken by the client: a producer that can wait
  // (tail -f) waits while this is large.
  virtual size_t unsent() const = 0;

 protected:
  // Where send_raw_with() appends, and what sends what it appended from
  // FROM on: by default a scratch string handed to send_raw().
  virtual std::string& raw_buffer() {
    raw_scratch_.clear();
    return raw_scratch_;
  }
  virtual void raw_appended(size_t from) { send_raw(std::string_view(raw_scratch_).substr(from)); }

 private:
  std::string raw_scratch_;
};
using ConversationPtr = std::shared_ptr<Conversation>;

class Reply;
// What a Reply can be made of: anything that takes the answer, but a Reply
// (that one is copied).
template <typename Send>
concept ReplyFunction =
    !std::is_same_v<std::decay_t<Send>, Reply> && std::is_invocable_v<Send&, const protocol::Json&>;

// Where a command's answer goes, once: the conversation of the client that
// asked (its exchange ends with the answer), or a function (SIGHUP's
// reload, tests). Copies share one state. The conversation is held weakly:
// whatever waits to answer a client (start waits for RUNNING, wait for its
// condition) does not keep the client's connection open after the client
// has gone, and needed() tells such a waiter to give up.
class Reply {
 public:
  template <ReplyFunction Send>
  Reply(Send send)  // NOLINT: implicit, so that a lambda is a Reply
      : state_(std::make_shared<State>()) {
    state_->send = std::move(send);
  }
  static Reply to(const ConversationPtr& conversation);

  // Sends MESSAGE, unless an answer was sent already or the client has gone.
  void operator()(const protocol::Json& message) const;
  // False once the answer is sent or its client has gone: nobody waits for
  // it any more.
  bool needed() const;
  // A waiter's GONE (waiters.h): true once this answer is no longer awaited.
  std::function<bool()> unneeded() const {
    return [state = state_] { return !Reply(state).needed(); };
  }

 private:
  struct State {
    std::function<void(const protocol::Json&)> send;
    std::weak_ptr<Conversation> conversation;
    bool answered = false;
  };
  explicit Reply(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// What the control socket hands each request to (control.h): the commands,
// or a decorator in front of them (test_hooks.h).
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  // Answers REQUEST through CONVERSATION; a streaming command takes the
  // conversation's following lines.
  virtual void handle(const protocol::Json& request, ConversationPtr conversation) = 0;
  // A client's connection has closed in the middle of an exchange.
  virtual void client_gone() = 0;
};

// Reads the config file again (reread, update, reload, SIGHUP).
using ConfigLoader = std::function<config::ParseResult()>;

class Commands : public CommandHandler {
 public:
  // SHUTDOWN is called after the reply to a `shutdown` request is handed
  // out. LOAD reads the config anew; DAEMON is the daemon section running
  // now (a change to it needs a restart of corrald, which update says).
  Commands(Supervisor& supervisor, Host& host, std::function<void()> shutdown,
           ConfigLoader load = {}, config::DaemonSpec daemon = {});

  void handle(const protocol::Json& request, ConversationPtr conversation) override;
  // ON_RELOAD(true) runs before a config is applied, ON_RELOAD(false) once
  // it is (the service manager hears RELOADING=1, then READY=1).
  void set_reload_observer(std::function<void(bool applying)> on_reload) {
    on_reload_ = std::move(on_reload);
  }
  // corrald's recent log lines, for maintail (none: maintail is an error).
  void set_log_ring(std::shared_ptr<const LogRing> ring) { log_ring_ = std::move(ring); }
  // Where /metrics is served ("" when off), for stats.
  void set_metrics_address(std::string address) { metrics_address_ = std::move(address); }
  // For one-reply commands: answers through REPLY exactly once.
  void handle(const protocol::Json& request, Reply reply);
  // A client's connection has closed: what waited to answer it (start,
  // stop, restart, wait) and the back-pressure of its submit go now, rather
  // than at a change that may never come.
  void client_gone() override;

 private:
  void submit(const protocol::Json& request, ConversationPtr conversation);
  void tail(const protocol::Json& request, ConversationPtr conversation);
  // supervisorctl's fg: a running worker's stdout and stderr on one stream
  // until its process is gone (log_tail.cc).
  void fg(const protocol::Json& request, ConversationPtr conversation);
  void maintail(const protocol::Json& request, ConversationPtr conversation);
  // A durable job's kept results (task_results.cc).
  void results(const protocol::Json& request, ConversationPtr conversation);
  void dead(const protocol::Json& request, Reply reply);
  void cancel(const protocol::Json& request, Reply reply);
  void retry(const protocol::Json& request, Reply reply);
  // retry with "wait": requeues, then streams the letters' results as a
  // waiting submit gets them.
  void retry_and_wait(const protocol::Json& request, ConversationPtr conversation);
  void shared(const protocol::Json& request, Reply reply);
  void wait(const protocol::Json& request, Reply reply);
  void stats(const protocol::Json& request, Reply reply);
  // reread (APPLY false): what a new config would change; update and reload
  // (APPLY true): apply it, answering once the changed workers are up.
  void reload(bool apply, Reply reply);
  void avail(Reply reply);
  // The config file as it reads now (reread's reading), or nullopt once
  // REPLY has said why not: every error of a config with errors.
  std::optional<config::Config> read_config(const Reply& reply);
  void signal(const protocol::Json& request, Reply reply);
  void clear(const protocol::Json& request, Reply reply);
  void pause(const protocol::Json& request, bool paused, Reply reply);
  // The feed of the job REQUEST names, or an error reply.
  std::shared_ptr<JobFeed> feed_of(const protocol::Json& request, const Reply& reply);

  void status(const protocol::Json& request, Reply reply);
  void change(const protocol::Json& request, const std::string& verb, Reply reply);
  void pid(const protocol::Json& request, Reply reply);
  void rolling_restart(const std::vector<WorkerId>& ids, Reply reply);

  // The targets of REQUEST (DEFAULT_ALL: none means all), or an error reply.
  std::optional<std::vector<WorkerId>> targets(const protocol::Json& request, bool default_all,
                                               const Reply& reply);

  Supervisor& supervisor_;
  Host& host_;
  std::function<void()> shutdown_;
  ConfigLoader load_;
  std::string metrics_address_;
  std::function<void(bool)> on_reload_;
  config::DaemonSpec daemon_;
  std::shared_ptr<const LogRing> log_ring_;
};

// The worker object of the protocol; with FIELDS, only the fields it names
// (protocol::worker_fields()).
protocol::Json to_json(const WorkerStatus& status,
                       const std::vector<std::string>* fields = nullptr);
// A broker job's broker, as status and stats show it.
protocol::Json to_json(const BrokerStatus& broker);

// The workers that TARGETS name, in job and index order, without
// duplicates; or an error naming the first unknown target.
Result<std::vector<WorkerId>> select_workers(const Supervisor& supervisor,
                                             const std::vector<protocol::Target>& targets);

}  // namespace corral::daemon

#include "redis/connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>

namespace corral::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

Reply copy_reply(const redisReply& r) {
  switch (r.type) {
    case REDIS_REPLY_STRING:
      return Reply::string(std::string(r.str, r.len));
    case REDIS_REPLY_STATUS:
      return Reply::status(std::string(r.str, r.len));
    case REDIS_REPLY_ERROR:
      return Reply::error(std::string(r.str, r.len));
    case REDIS_REPLY_INTEGER:
      return Reply::number(r.integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<Reply> elements;
      elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) elements.push_back(copy_reply(*r.element[i]));
      return Reply::array(std::move(elements));
    }
    default:
      return Reply::nil();
  }
}

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

// Everything the hiredis callbacks and the Asio handlers reach. Handlers
// hold it weakly; the Connection holds it, and frees the hiredis context
// before it goes. User code (DONEs, ON_CLOSED) only ever runs from a posted
// handler, never inside hiredis, so hiredis is never re-entered.
struct Connection::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io_context, Options opts, std::function<void(const Error&)> closed)
      : io(io_context),
        options(std::move(opts)),
        on_closed(std::move(closed)),
        socket(io_context),
        timer(io_context) {}

  asio::io_context& io;
  Options options;
  std::function<void(const Error&)> on_closed;
  redisAsyncContext* ctx = nullptr;
  // Watches ctx's fd; released when hiredis frees it, never closed here.
  asio::posix::stream_descriptor socket;
  asio::steady_timer timer;
  bool reading = false, writing = false;         // what hiredis wants
  bool read_armed = false, write_armed = false;  // what is waited for
  bool timer_armed = false;
  bool is_connected = false;
  bool ended_by_owner = false;   // close() or the destructor: ON_CLOSED stays quiet
  bool dropping = false;         // the destructor: DONEs are not called
  std::optional<Error> failure;  // why the connection ended, once it has
  struct Waiting {
    Done done;
    Clock::time_point deadline;
  };
  std::deque<Waiting> waiting;

  Error named(std::string_view what) const {
    return Error("redis " + options.address.url + ": " + std::string(what));
  }

  // Why the connection is ending: our own reason, or hiredis's.
  Error reason() const {
    if (failure) return *failure;
    if (ctx != nullptr && ctx->err != 0 && ctx->errstr != nullptr) return named(ctx->errstr);
    return named("connection closed");
  }

  void post_done(Done done, Result<Reply> result) {
    if (dropping || !done) return;
    std::weak_ptr<State> weak = weak_from_this();
    asio::post(io, [weak, done = std::move(done), result = std::move(result)]() mutable {
      auto self = weak.lock();
      if (!self || self->dropping) return;
      done(std::move(result));
    });
  }

  // ---- hiredis's hooks ----
  static State& of(void* privdata) { return *static_cast<State*>(privdata); }

  static void add_read(void* p) {
    of(p).reading = true;
    of(p).arm_read();
  }
  static void del_read(void* p) { of(p).reading = false; }
  static void add_write(void* p) {
    of(p).writing = true;
    of(p).arm_write();
  }
  static void del_write(void* p) { of(p).writing = false; }
  // hiredis is freeing the context (and will close its fd).
  static void cleanup(void* p) {
    State& s = of(p);
    s.reading = s.writing = false;
    if (!s.failure) s.failure = s.reason();
    if (s.socket.is_open()) (void)s.socket.release();
    s.ctx = nullptr;
    s.is_connected = false;
    s.timer.cancel();
    if (!s.ended_by_owner && s.on_closed) {
      std::weak_ptr<State> weak = s.weak_from_this();
      asio::post(s.io, [weak, error = *s.failure] {
        auto self = weak.lock();
        if (!self || self->ended_by_owner || !self->on_closed) return;
        auto on_closed = std::move(self->on_closed);
        on_closed(error);
      });
    }
  }

  static void on_connect(const redisAsyncContext* c, int status) {
    State& s = of(c->data);
    if (status == REDIS_OK) {
      s.is_connected = true;
    } else if (!s.failure) {
      s.failure = s.named(std::string("connect: ") + (c->errstr != nullptr ? c->errstr : "failed"));
    }
  }
  static void on_disconnect(const redisAsyncContext* c, int /*status*/) {
    State& s = of(c->data);
    s.is_connected = false;
  }

  // A reply (or null: the context is going) for the oldest waiting command.
  static void on_reply(redisAsyncContext* c, void* reply, void* privdata) {
    State& s = of(privdata);
    if (s.waiting.empty()) return;
    Waiting w = std::move(s.waiting.front());
    s.waiting.pop_front();
    if (reply == nullptr) {
      if (!s.failure && c->err != 0) s.failure = s.reason();
      s.post_done(std::move(w.done), s.failure ? *s.failure : s.named("connection closed"));
    } else {
      s.post_done(std::move(w.done), copy_reply(*static_cast<redisReply*>(reply)));
    }
  }

  // ---- Asio's side ----
  // Waits until the socket is ready for WAIT (read or write) while hiredis
  // wants it (WANTED), then lets hiredis HANDLE it, and waits again.
  void arm(asio::posix::stream_descriptor::wait_type wait, bool State::*wanted, bool State::*armed,
           void (*handle)(redisAsyncContext*)) {
    if (this->*armed || !socket.is_open()) return;
    this->*armed = true;
    std::weak_ptr<State> weak = weak_from_this();
    socket.async_wait(wait,
                      [weak, wait, wanted, armed, handle](const boost::system::error_code& ec) {
                        auto self = weak.lock();
                        if (!self) return;
                        (*self).*armed = false;
                        if (ec || self->ctx == nullptr || !((*self).*wanted)) return;
                        handle(self->ctx);
                        if (self->ctx != nullptr && (*self).*wanted)
                          self->arm(wait, wanted, armed, handle);
                      });
  }
  void arm_read() {
    arm(asio::posix::stream_descriptor::wait_read, &State::reading, &State::read_armed,
        redisAsyncHandleRead);
  }
  void arm_write() {
    arm(asio::posix::stream_descriptor::wait_write, &State::writing, &State::write_armed,
        redisAsyncHandleWrite);
  }

  // The oldest command's deadline; replies come in order, so a later
  // command cannot be answered before it.
  void arm_timer() {
    if (timer_armed || waiting.empty() || ctx == nullptr) return;
    timer_armed = true;
    timer.expires_at(waiting.front().deadline);
    std::weak_ptr<State> weak = weak_from_this();
    timer.async_wait([weak](const boost::system::error_code&) {
      auto self = weak.lock();
      if (!self) return;
      self->timer_armed = false;
      if (self->ctx == nullptr || self->waiting.empty()) return;
      const Waiting& oldest = self->waiting.front();
      if (oldest.deadline > Clock::now()) {
        self->arm_timer();
        return;
      }
      self->failure =
          self->named((self->is_connected ? "no reply within " : "connect: no answer within ") +
                      seconds_text(self->options.timeout));
      redisAsyncFree(self->ctx);  // the waiting DONEs get the failure
    });
  }

  void start() {
    const Address& a = options.address;
    ctx = a.unix_path.empty() ? redisAsyncConnect(a.host.c_str(), a.port)
                              : redisAsyncConnectUnix(a.unix_path.c_str());
    if (ctx == nullptr) {
      failure = named("cannot make a connection (out of memory)");
    } else if (ctx->err != 0) {
      failure = named(std::string("connect: ") + ctx->errstr);
      redisAsyncFree(ctx);  // no hooks yet: nothing else runs
      ctx = nullptr;
    }
    if (ctx == nullptr) {
      ended_by_owner = false;
      std::weak_ptr<State> weak = weak_from_this();
      asio::post(io, [weak, error = *failure] {
        auto self = weak.lock();
        if (!self || self->ended_by_owner || !self->on_closed) return;
        auto on_closed = std::move(self->on_closed);
        on_closed(error);
      });
      return;
    }
    ctx->data = this;
    boost::system::error_code ec;
    socket.assign(ctx->c.fd, ec);
    if (ec) {
      failure = named("cannot watch its socket: " + ec.message());
      redisAsyncFree(ctx);
      ctx = nullptr;
      return;
    }
    ctx->ev.data = this;
    ctx->ev.addRead = add_read;
    ctx->ev.delRead = del_read;
    ctx->ev.addWrite = add_write;
    ctx->ev.delWrite = del_write;
    ctx->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(ctx, on_connect);
    redisAsyncSetDisconnectCallback(ctx, on_disconnect);
    // A connect that is not done yet waits for the socket to be writable.
    writing = true;
    arm_write();
  }

  void send(std::vector<std::string> args, Done done, std::chrono::milliseconds extra) {
    if (ctx == nullptr) {
      post_done(std::move(done), failure ? *failure : named("connection closed"));
      return;
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    waiting.push_back(Waiting{std::move(done), Clock::now() + options.timeout + extra});
    if (redisAsyncCommandArgv(ctx, on_reply, this, static_cast<int>(argv.size()), argv.data(),
                              lengths.data()) != REDIS_OK) {
      Waiting w = std::move(waiting.back());
      waiting.pop_back();
      post_done(std::move(w.done), named("cannot send a command: the connection is ending"));
      return;
    }
    arm_timer();
  }
};

Connection::Connection(asio::io_context& io, Options options,
                       std::function<void(const Error&)> on_closed)
    : state_(std::make_shared<State>(io, std::move(options), std::move(on_closed))) {
  state_->start();
  if (state_->ctx != nullptr && state_->options.address.db != 0) {
    // First in the pipeline, before any command of the owner's.
    std::weak_ptr<State> weak = state_;
    state_->send(
        {"SELECT", std::to_string(state_->options.address.db)},
        [weak](Result<Reply> reply) {
          auto self = weak.lock();
          if (!self || self->ctx == nullptr || !reply || !reply->is_error()) return;
          self->failure = self->named("SELECT " + std::to_string(self->options.address.db) + ": " +
                                      reply->text);
          redisAsyncFree(self->ctx);
        },
        std::chrono::milliseconds(0));
  }
}

Connection::~Connection() {
  state_->dropping = true;
  state_->ended_by_owner = true;
  if (state_->ctx != nullptr) redisAsyncFree(state_->ctx);
}

void Connection::command(std::vector<std::string> args, Done done,
                         std::chrono::milliseconds extra) {
  state_->send(std::move(args), std::move(done), extra);
}

bool Connection::connected() const { return state_->is_connected && state_->ctx != nullptr; }

void Connection::close() {
  state_->ended_by_owner = true;
  if (!state_->failure) state_->failure = state_->named("closed");
  if (state_->ctx != nullptr) redisAsyncFree(state_->ctx);
}

const Address& Connection::address() const { return state_->options.address; }

size_t Connection::pending() const { return state_->waiting.size(); }

}  // namespace corral::redis

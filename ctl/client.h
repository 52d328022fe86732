// corralctl's connection to corrald: where the control socket is
// (resolve_socket) and a small blocking client that speaks the line protocol
// of docs/control-protocol.md over it, plus its streams: submit, which sends
// tasks and reads results at the same time, and the result lines of results
// and retry --wait. Plain POSIX sockets, so that corralctl stays light and
// starts fast. A Client is not thread-safe; use one per thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "protocol/control.h"

namespace corral::ctl {

using protocol::Json;

// Why talking to corrald failed.
class ClientError {
 public:
  enum class Kind {
    kUnreachable,  // no connection: no socket, refused, no permission (exit 3)
    kProtocol,     // connected, but the conversation broke: closed, bad reply (exit 1)
  };

  // "cannot reach corrald at SOCKET: strerror(err)".
  static ClientError unreachable(std::string_view socket, int err);
  static ClientError unreachable(std::string_view socket, std::string_view why);
  static ClientError protocol(std::string message);

  Kind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // kExitUnreachable or kExitFailed.
  int exit_code() const;

 private:
  ClientError(Kind kind, std::string message) : kind_(kind), message_(std::move(message)) {}
  Kind kind_;
  std::string message_;
};

// A value, or the ClientError that prevented it: base/result.h's Result with
// an error that also knows its exit code.
template <typename T>
using ClientResult = Result<T, ClientError>;
using ClientStatus = Result<void, ClientError>;

// Where the tasks of a submit come from, in this order: each of `data`, then
// each line of `fd`. A line ends at '\n'; a '\r' before it is kept as data;
// an empty last line after the final '\n' is not a task.
struct SubmitInput {
  std::vector<std::string> data;  // one task each, no '\n' inside; "--data #N" in messages
  int fd = -1;                    // read to its end when >= 0; not closed
  std::string name;               // FILE, or "stdin": messages say NAME:LINE
};

// How a submit --wait waits for its results.
struct SubmitWaiting {
  // Stop waiting after this long; the tasks corrald has stay queued.
  std::optional<std::chrono::milliseconds> timeout;
  // Print the results in the order of the tasks (their seq) instead of as
  // they come. At most kOrderedWindow tasks are sent ahead of the first one
  // without a result, so that memory stays bounded.
  bool ordered = false;
  // Asked after each second without a result while results are awaited: a
  // line saying why nothing runs (for stderr), or nullopt while workers run.
  // Its line is printed when it first has one, and not again until it had
  // none in between.
  std::function<std::optional<std::string>()> why_waiting;
  // Asked once with corrald's acceptance ({"ok":true,"submit":S,"durable":B}):
  // text to print on stderr at once, whole lines (how to pick up the results
  // if the connection is lost), or nullopt.
  std::function<std::optional<std::string>(const Json& ack)> accepted;
};
inline constexpr uint64_t kOrderedWindow = 4096;

// How a submit went.
struct SubmitTotals {
  std::optional<Json> rejected;    // corrald's {"ok": false} to the request: nothing was sent
  uint64_t submitted = 0;          // tasks corrald accepted (its end line)
  uint64_t refused = 0;            // refused by corrald, or by corralctl for a line over the limit
  std::optional<uint64_t> submit;  // the number corrald gave this submit (its acceptance)
  bool durable = false;            // the job keeps its tasks and results on disk
  uint64_t failed = 0;             // results "failed" or "dead" (with wait)
  uint64_t cancelled = 0;          // results "cancelled" (with wait)
  uint64_t expired = 0;            // results "expired" (with wait)
  uint64_t results = 0;            // result lines received (with wait)
  std::string input_error;         // why reading the input stopped early; empty if it did not
  bool timed_out = false;          // SubmitWaiting::timeout passed before the end line
  bool input_unsent = false;       // when it timed out: some of the input was not sent
};

// The result lines of a results or retry --wait stream, as they came.
struct ResultTotals {
  uint64_t results = 0;    // result lines
  uint64_t failed = 0;     // of status failed or dead
  uint64_t cancelled = 0;  // of status cancelled
  uint64_t expired = 0;    // of status expired
  Json end;                // corrald's last line, {"end":true,...}; null until it came
  bool operator==(const ResultTotals&) const = default;
};

// The directory a socket is in, as stat() shows it.
struct SocketDirectory {
  std::string path;
  uid_t uid = 0;
  mode_t mode = 0;
};

// Whether corralctl may talk to the process (of uid PEER) that serves a
// socket, and if not why: that process must run as root, as the caller (ME),
// or as the owner of the socket's directory DIR when nobody else may write in
// DIR (then only its owner can have put the socket there). DIR is nullopt
// when it could not be read.
Status trust_peer(uid_t peer, uid_t me, const std::optional<SocketDirectory>& dir);

// One connection to corrald. Requests and replies are single lines of at most
// protocol::kMaxLineBytes. Calls block; EINTR is retried.
class Client {
 public:
  // Connects, and checks who serves the socket (trust_peer) before
  // anything is sent: a socket put in place by another user is
  // kUnreachable.
  static ClientResult<Client> connect(const std::string& socket_path);

  Client(Client&& other) noexcept = default;
  Client& operator=(Client&& other) noexcept = default;

  const std::string& socket_path() const { return socket_path_; }
  // The connection's socket, for a signal handler that ends a blocking read
  // by shutting it down (fg's Ctrl-C); the Client keeps owning it.
  int native_handle() const { return fd_.get(); }

  // Sends REQUEST as one line.
  ClientStatus send(const Json& request);
  // The next line from corrald, without its '\n'. End of stream is an error:
  // corrald always ends a conversation with a reply or {"end": true}.
  ClientResult<std::string> read_line();
  // The next line, which must be a JSON object.
  ClientResult<Json> read_message();
  // send, then read_message: one request, one reply. A reply with
  // "refused": true (corrald does not accept this peer) is a kUnreachable error.
  // A status request's "fields" that an older corrald does not take (it says
  // `unknown field "fields"`) are dropped and the request sent again: it
  // answers with every field.
  ClientResult<Json> call(const Json& request);

  // After a streaming request was accepted: hands each following message to
  // ON_MESSAGE until one says {"end": true} (not handed over).
  ClientStatus read_until_end(const std::function<void(const Json&)>& on_message);

  // The submit exchange: REQUEST ({"cmd":"submit",...}), then the tasks of
  // INPUT as `+payload` lines, then `.`, while corrald's lines are read as
  // they come, so that neither side waits on the other when corrald applies
  // back-pressure. Result lines go to OUT_FD as corrald wrote them, in large
  // writes; each refusal goes to ERR_FD as "corralctl: SOURCE: ERROR". Memory
  // stays bounded whatever the input's size: the input is not read while
  // more than 4 MiB wait to be sent. A payload over the protocol's line limit
  // is refused here and not sent (so it has no seq). Returns when corrald's
  // end line has come, or WAITING's timeout has passed (the connection is
  // then closed: nothing more can be asked on it).
  ClientResult<SubmitTotals> submit(const Json& request, const SubmitInput& input,
                                    const SubmitWaiting& waiting, int out_fd, int err_fd);

  // After corrald accepted a request that streams result lines (results,
  // retry --wait): copies each to OUT_FD as it comes (an ok line without
  // parsing it), until {"end": true}, which is kept in the totals, not
  // printed. An {"ok": false} line ends it as an error with its message. A
  // stream that never ends (results --follow without --submit) returns only
  // when corrald goes away.
  ClientResult<ResultTotals> read_results(int out_fd);

 private:
  Client(UniqueFd fd, std::string socket_path)
      : fd_(std::move(fd)), socket_path_(std::move(socket_path)) {}

  UniqueFd fd_;
  std::string socket_path_;
  std::string buffer_;        // received bytes not yet returned by read_line
  bool peer_closed_ = false;  // a send found corrald's end closed
};

// Where corralctl finds the daemon (corralctl(1)): FLAG (-s), else ENV
// ($CORRAL_SOCKET, may be null), else daemon.socket of the config (-c;
// resolve_socket, ctl/config_socket.h, in corralctl-full), else the default
// of daemon.socket (config/spec.h). The config's errors, if any, come back
// in `errors` ("file:line:column: message").
struct SocketChoice {
  std::string path;
  std::vector<std::string> errors;
};
// FLAG, else ENV; none when neither names a socket (then -c or the default decides).
std::optional<std::string> named_socket(const std::optional<std::string>& flag, const char* env);
// named_socket, else the default: the choice of a line without -c.
SocketChoice socket_without_config(const std::optional<std::string>& flag, const char* env);

}  // namespace corral::ctl

// Client::submit: the one streaming exchange of the control protocol. Tasks
// go out and results come back at the same time over a non-blocking socket,
// in one thread, with memory bounded however long the input is.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "base/io.h"
#include "ctl/byte_queue.h"
#include "ctl/client.h"
#include "protocol/task_lines.h"

namespace corral::ctl {

namespace {

// The buffers are small enough to stay in the caches: with 1 MiB input
// reads, 4 MiB of unsent tasks and 1 MiB of output, a submit of tiny tasks
// faulted in 17 MB of buffer pages and ran 1.3x slower.
constexpr size_t kInputChunk = 128 << 10;     // read from the input at a time
constexpr size_t kSendHighWater = 256 << 10;  // the input is not read above this many unsent bytes
constexpr size_t kReceiveChunk = 256 << 10;
constexpr size_t kReceivePerTurn = 4 << 20;  // then the loop goes back to sending
constexpr size_t kOutBuffer = 256 << 10;  // result lines are written to stdout in blocks this big
constexpr size_t kErrBuffer = 64 << 10;
// `+`, then the payload, make one line of the protocol.
constexpr size_t kMaxPayload = protocol::kMaxPayloadBytes;

using SteadyClock = std::chrono::steady_clock;
// How long without a result before WAITING.why_waiting is asked.
constexpr auto kQuietBeforeAsking = std::chrono::seconds(1);

// A failed write has nowhere left to be told (a closed stdout ends corralctl
// by SIGPIPE anyway).
void write_or_drop(int fd, std::string_view bytes) { (void)corral::write_all(fd, bytes); }

uint64_t uint_field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// One submit exchange after corrald's {"ok": true}: a single-threaded loop
// over the socket (non-blocking) and the input. Each turn it queues tasks
// while fewer than kSendHighWater bytes wait, sends what the socket takes
// and reads whatever corrald has sent, so a daemon that stops reading (its
// queue is full) while it writes results cannot deadlock us.
class SubmitStream {
 public:
  SubmitStream(int socket, std::string_view received, const SubmitInput& input,
               const SubmitWaiting& waiting, int out_fd, int err_fd)
      : socket_(socket),
        input_(input),
        waiting_(waiting),
        out_fd_(out_fd),
        err_fd_(err_fd),
        input_open_(input.fd >= 0),
        started_(SteadyClock::now()),
        last_result_(started_) {
    received_.append(received);
  }

  ClientResult<SubmitTotals> run() {
    ClientStatus status = loop();
    flush();
    if (!status) return status.error();
    totals_.refused += refused_here_;
    return totals_;
  }

  // Bytes corrald sent after its end line (none, if it keeps to the protocol).
  std::string leftover() { return received_.take_all(); }

 private:
  ClientStatus loop() {
    if (auto taken = take_lines(); !taken) return taken;
    while (!ended_) {
      produce();
      bool want_write = !to_send_.empty() && !peer_closed_;
      bool want_input = input_open_ && next_data_ == input_.data.size() &&
                        to_send_.size() <= kSendHighWater && !window_full();
      pollfd fds[2] = {{socket_, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0},
                       {input_.fd, POLLIN, 0}};
      nfds_t count = want_input ? 2 : 1;
      int ready = ::poll(fds, count, 0);
      if (ready == 0) {
        // Nothing to do at once: show what came so far before waiting.
        flush();
        ready = ::poll(fds, count, wait_ms());
        if (ready == 0) {
          if (timed_out()) return {};
          ask_why_waiting();
          continue;
        }
      }
      if (ready < 0) {
        if (errno == EINTR) continue;
        return ClientError::protocol(std::string("poll: ") + std::strerror(errno));
      }
      if (fds[0].revents & POLLNVAL) return ClientError::protocol("not connected to corrald");
      if (fds[0].revents & POLLOUT) {
        if (auto sent = send_some(); !sent) return sent;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (auto received = receive_some(); !received) return received;
      }
      if (want_input && fds[1].revents != 0) read_input();
    }
    return {};
  }

  // ---- waiting ----

  bool waits() const { return waiting_.timeout || waiting_.why_waiting; }

  // How long poll() may sleep: until the timeout, or the next time to ask
  // why nothing comes; -1: for ever.
  int wait_ms() const {
    if (!waits()) return -1;
    auto now = SteadyClock::now();
    auto until = now + std::chrono::hours(1);
    if (waiting_.timeout) until = std::min(until, started_ + *waiting_.timeout);
    if (waiting_.why_waiting && awaited() > 0) {
      until = std::min(until, std::max(now, last_result_ + kQuietBeforeAsking));
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 3600 * 1000));
  }

  bool timed_out() {
    if (!waiting_.timeout || SteadyClock::now() < started_ + *waiting_.timeout) return false;
    totals_.timed_out = true;
    totals_.input_unsent = input_open_ || next_data_ < input_.data.size() || !to_send_.empty();
    return true;
  }

  // Tasks sent or queued to send whose result has not come.
  uint64_t awaited() const { return tasks_queued_ - std::min(tasks_queued_, answered_); }

  void ask_why_waiting() {
    if (!waiting_.why_waiting || awaited() == 0) return;
    if (SteadyClock::now() < last_result_ + kQuietBeforeAsking) return;
    std::optional<std::string> why = waiting_.why_waiting();
    last_result_ = SteadyClock::now();  // ask again a second later, not at once
    if (why && !told_why_) {
      err_ += "corralctl: " + *why + "\n";
      flush();
    }
    told_why_ = why.has_value();
  }

  // --ordered: no more tasks are sent while this many wait for the first
  // result still missing.
  bool window_full() const {
    return waiting_.ordered && tasks_queued_ - std::min(tasks_queued_, next_seq_) >= kOrderedWindow;
  }

  // ---- tasks out ----

  // Queues the --data tasks, then the end line once the input is done.
  void produce() {
    while (next_data_ < input_.data.size() && to_send_.size() < kSendHighWater && !window_full()) {
      const std::string& payload = input_.data[next_data_++];
      ++position_;
      if (payload.size() > kMaxPayload || payload.find('\n') != std::string::npos) {
        refuse_here(payload.size(), payload.size() > kMaxPayload);
        continue;
      }
      char* at = to_send_.tail(payload.size() + 2);
      at[0] = protocol::kTaskMark;
      std::memcpy(at + 1, payload.data(), payload.size());
      at[payload.size() + 1] = '\n';
      to_send_.commit(payload.size() + 2);
      ++tasks_queued_;
    }
    if (next_data_ == input_.data.size() && !input_open_ && !end_queued_) {
      to_send_.append(std::string(protocol::kEndOfTasks) + "\n");
      end_queued_ = true;
    }
  }

  void read_input() {
    ssize_t n = ::read(input_.fd, input_buffer_.tail(kInputChunk), kInputChunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
      // A line cut by the error is not sent: it may not be the whole task.
      totals_.input_error = std::strerror(errno);
      input_open_ = false;
      return;
    }
    input_buffer_.commit(static_cast<size_t>(n));
    if (n == 0) input_open_ = false;
    split_lines();
  }

  // Moves the complete lines of input_buffer_ to to_send_ as `+line\n`; the
  // last partial line stays, unless the input ended (then it is a task) or it
  // is already too long for a task (then the rest of it is skipped).
  void split_lines() {
    bool at_end = !input_open_;
    const char* p = input_buffer_.data();
    const char* end = p + input_buffer_.size();
    if (skipped_bytes_ > 0) {
      const char* newline =
          p == end ? nullptr : static_cast<const char*>(std::memchr(p, '\n', end - p));
      skipped_bytes_ += static_cast<uint64_t>((newline != nullptr ? newline : end) - p);
      if (newline == nullptr && !at_end) {
        input_buffer_.consume(input_buffer_.size());
        return;
      }
      ++position_;
      refuse_here(skipped_bytes_, true);
      skipped_bytes_ = 0;
      p = newline != nullptr ? newline + 1 : end;
    }
    // Each line of L bytes and its '\n' become L + 2 bytes: at most twice.
    char* const start = to_send_.tail(2 * static_cast<size_t>(end - p) + 2);
    char* out = start;
    auto put = [&](const char* line, size_t length) {
      ++position_;
      if (length > kMaxPayload) {
        refuse_here(length, true);
        return;
      }
      *out++ = protocol::kTaskMark;
      std::memcpy(out, line, length);
      out += length;
      *out++ = '\n';
      ++tasks_queued_;
    };
    while (p < end) {
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (newline == nullptr) break;
      put(p, static_cast<size_t>(newline - p));
      p = newline + 1;
    }
    size_t rest = static_cast<size_t>(end - p);
    if (rest > 0 && at_end) {
      put(p, rest);  // a last line without '\n'
      p = end;
    } else if (rest > kMaxPayload) {
      skipped_bytes_ = rest;  // refused once its end is found
      p = end;
    }
    to_send_.commit(static_cast<size_t>(out - start));
    input_buffer_.consume(static_cast<size_t>(p - input_buffer_.data()));
  }

  // A task that is not sent: TOO_LONG for the line limit, else a '\n' inside.
  void refuse_here(uint64_t bytes, bool too_long) {
    ++refused_here_;
    unsent_.push_back(position_);
    std::string why = too_long ? "task of " + std::to_string(bytes) +
                                     " bytes is over the line limit of " +
                                     std::to_string(kMaxPayload) + " bytes; not sent"
                               : std::string("a task cannot contain a newline; not sent");
    err_ += "corralctl: " + source_at(position_) + ": " + why + "\n";
  }

  ClientStatus send_some() {
    while (!to_send_.empty()) {
      ssize_t n = ::send(socket_, to_send_.data(), to_send_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EPIPE || errno == ECONNRESET) {
          // corrald hung up; what it said last is still to be read.
          peer_closed_ = true;
          return {};
        }
        return ClientError::protocol(std::string("sending to corrald: ") + std::strerror(errno));
      }
      to_send_.consume(static_cast<size_t>(n));
    }
    return {};
  }

  // ---- corrald's lines in ----

  ClientStatus receive_some() {
    size_t taken = 0;
    while (taken < kReceivePerTurn && !ended_) {
      ssize_t n = ::recv(socket_, received_.tail(kReceiveChunk), kReceiveChunk, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno != ECONNRESET) {
          return ClientError::protocol(std::string("reading from corrald: ") +
                                       std::strerror(errno));
        }
        n = 0;
      }
      if (n == 0) {
        return ClientError::protocol(
            received_.empty() && batch_.count == 0
                ? "corrald closed the connection before the end of the submit"
                : "corrald closed the connection in the middle of a line");
      }
      received_.commit(static_cast<size_t>(n));
      taken += static_cast<size_t>(n);
      if (auto lines = take_lines(); !lines) return lines;
    }
    return {};
  }

  ClientStatus take_lines() {
    const char* p = received_.data();
    const char* end = p + received_.size();
    while (!ended_ && p != end) {
      if (batch_.count > 0) {
        if (auto taken = take_batch(p, end); !taken) return taken;
        if (batch_.count > 0) break;  // the rest is still to come
        continue;
      }
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (newline == nullptr) break;
      if (auto line = take_line(std::string_view(p, newline - p + 1)); !line) return line;
      p = newline + 1;
    }
    received_.consume(static_cast<size_t>(p - received_.data()));
    if (std::exchange(results_in_batch_, false)) {
      last_result_ = SteadyClock::now();
      told_why_ = false;
    }
    if (!ended_ && received_.size() > protocol::kMaxLineBytes) {
      return ClientError::protocol("reply line from corrald longer than " +
                                   std::to_string(protocol::kMaxLineBytes) + " bytes");
    }
    return {};
  }

  // The results of the batch under way in P..END, each unpacked into its
  // line, up to the last whole one: P moves past them.
  ClientStatus take_batch(const char*& p, const char* end) {
    bool malformed = false;
    while (batch_.count > 0) {
      const size_t here = std::min<uint64_t>(batch_.bytes, static_cast<size_t>(end - p));
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', here));
      if (newline == nullptr) {
        malformed = here == batch_.bytes;  // its bytes end inside a result
        break;
      }
      std::string_view result(p, static_cast<size_t>(newline - p));
      if (result.size() < 2 || result.front() != '"' || result.back() != '"') {
        malformed = true;  // not a JSON string
        break;
      }
      lines_.add_ok(batch_.id++, batch_.seq++, result, batch_.attempts);
      batch_.bytes -= result.size() + 1;
      --batch_.count;
      p = newline + 1;
      if (out_.size() >= kOutBuffer) flush();
    }
    if (malformed || (batch_.count == 0 && batch_.bytes != 0)) {
      return ClientError::protocol("malformed batch of results from corrald in a submit stream");
    }
    lines_.flush();
    return {};
  }

  // LINE, '\n' included: a result, a refusal, the end line or an error.
  ClientStatus take_line(std::string_view line) {
    // An ok result is copied as it is, without parsing (unless its seq is
    // needed to order it).
    if (!waiting_.ordered && protocol::is_ok_result_line(line)) {
      result_came();
      write_out(line);
      return {};
    }
    // A batch of them (asked for unless --ordered): its bytes follow.
    if (line.starts_with(protocol::kBatchStart)) {
      if (waiting_.ordered) {
        return ClientError::protocol(
            "corrald sent a batch of results to an --ordered submit, which did not ask for one");
      }
      std::optional<protocol::ResultBatch> batch = protocol::parse_batch_line(line);
      if (!batch || batch->count == 0) {
        return ClientError::protocol("malformed batch line from corrald in a submit stream");
      }
      result_came(batch->count);
      batch_ = *batch;
      return {};
    }
    Json message = Json::parse(line.substr(0, line.size() - 1), nullptr, false);
    if (message.is_discarded() || !message.is_object()) {
      return ClientError::protocol("malformed line from corrald in a submit stream");
    }
    if (auto end = message.find("end"); end != message.end() && end->is_boolean()) {
      totals_.submitted = uint_field(message, "submitted");
      totals_.refused = uint_field(message, "refused");
      ended_ = true;
      return {};
    }
    if (auto ok = message.find("ok"); ok != message.end() && ok->is_boolean() && !ok->get<bool>()) {
      auto error = message.find("error");
      return ClientError::protocol(error != message.end() && error->is_string()
                                       ? error->get<std::string>()
                                       : "corrald ended the submit with an error");
    }
    auto status = message.find("status");
    if (status == message.end() || !status->is_string()) return {};
    auto seq_field = message.find("seq");
    std::optional<uint64_t> seq;
    if (seq_field != message.end() && seq_field->is_number_unsigned()) {
      seq = seq_field->get<uint64_t>();
    }
    if (*status == "refused") {
      ++answered_;
      if (seq && waiting_.ordered) put_in_order(*seq, {});
      auto error = message.find("error");
      err_ += "corralctl: " + (seq ? source_of(*seq) : std::string("a task")) + ": " +
              (error != message.end() && error->is_string() ? error->get<std::string>()
                                                            : std::string("refused")) +
              "\n";
      if (err_.size() >= kErrBuffer) flush();
      return {};
    }
    if (*status == "ok") {
      // (--ordered reads every line for its seq: an ok one comes here too.)
    } else if (*status == "cancelled") {
      ++totals_.cancelled;
    } else if (*status == "expired") {
      ++totals_.expired;
    } else {
      ++totals_.failed;  // failed, dead, or a status this corralctl does not know
    }
    result_came();
    if (waiting_.ordered && seq) {
      put_in_order(*seq, std::string(line));
    } else {
      write_out(line);
    }
    return {};
  }

  // The time of the last result is read once per batch of lines (in
  // take_lines()): a clock read per result was a fifth of corralctl's CPU
  // on a VM whose clock is slow to read.
  void result_came(uint64_t n = 1) {
    totals_.results += n;
    answered_ += n;
    results_in_batch_ = true;
  }

  // --ordered: LINE (empty for a task that has none) is the answer to task
  // SEQ; it is printed after those before it.
  void put_in_order(uint64_t seq, std::string line) {
    if (seq != next_seq_) {
      if (seq > next_seq_) held_.emplace(seq, std::move(line));
      return;
    }
    write_out(line);
    ++next_seq_;
    for (auto next = held_.begin(); next != held_.end() && next->first == next_seq_;
         next = held_.erase(next)) {
      write_out(next->second);
      ++next_seq_;
    }
  }

  void write_out(std::string_view line) {
    out_.append(line);
    if (out_.size() >= kOutBuffer) flush();
  }

  void flush() {
    lines_.flush();
    if (!out_.empty()) write_or_drop(out_fd_, out_);
    out_.clear();
    if (!err_.empty()) write_or_drop(err_fd_, err_);
    err_.clear();
  }

  // ---- where a task came from ----

  // The task at POSITION (1-based, over the --data tasks, then the lines).
  std::string source_at(uint64_t position) const {
    uint64_t data = input_.data.size();
    if (position <= data) return "--data #" + std::to_string(position);
    return input_.name + ":" + std::to_string(position - data);
  }

  // The task that corrald numbered SEQ: the tasks refused here have no seq.
  std::string source_of(uint64_t seq) const {
    uint64_t position = seq + 1;
    for (uint64_t unsent : unsent_) {
      if (unsent > position) break;
      ++position;
    }
    return source_at(position);
  }

  int socket_;
  const SubmitInput& input_;
  const SubmitWaiting& waiting_;
  int out_fd_;
  int err_fd_;
  size_t next_data_ = 0;          // the next --data task to queue
  bool input_open_;               // the input fd has more to read
  bool end_queued_ = false;       // `.` is queued
  uint64_t position_ = 0;         // tasks and lines taken so far
  uint64_t skipped_bytes_ = 0;    // > 0: skipping the rest of a line too long to send
  std::vector<uint64_t> unsent_;  // positions refused here, ascending
  uint64_t refused_here_ = 0;
  ByteQueue input_buffer_;
  ByteQueue to_send_;
  ByteQueue received_;
  std::string out_;
  std::string err_;
  bool peer_closed_ = false;
  bool ended_ = false;
  SubmitTotals totals_;
  uint64_t tasks_queued_ = 0;  // `+` lines put in to_send_: the next one gets this seq
  uint64_t answered_ = 0;      // results and refusals by corrald
  SteadyClock::time_point started_;
  SteadyClock::time_point last_result_;   // or the last question of why_waiting
  bool told_why_ = false;                 // why_waiting's line is out, and still true
  bool results_in_batch_ = false;         // take_lines() handed on a result
  protocol::ResultBatch batch_;           // what is still to come of a batch of results
  protocol::ResultLines lines_{out_};     // a batch's results, unpacked
  uint64_t next_seq_ = 0;                 // --ordered: the next seq to print
  std::map<uint64_t, std::string> held_;  // --ordered: results that came early
};

}  // namespace

ClientResult<SubmitTotals> Client::submit(const Json& request, const SubmitInput& input,
                                          const SubmitWaiting& waiting, int out_fd, int err_fd) {
  auto ack = call(request);
  if (!ack) return ack.error();
  auto ok = ack->find("ok");
  if (ok == ack->end() || !ok->is_boolean()) {
    return ClientError::protocol("malformed reply from corrald: no boolean \"ok\" field");
  }
  if (!ok->get<bool>()) {
    SubmitTotals totals;
    totals.rejected = std::move(*ack);
    return totals;
  }
  // Said before any result: a user who loses the connection later still
  // knows which submit to ask for.
  if (waiting.accepted) {
    if (std::optional<std::string> notice = waiting.accepted(*ack)) write_or_drop(err_fd, *notice);
  }
  int flags = ::fcntl(fd_.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
    return ClientError::protocol(std::string("fcntl: ") + std::strerror(errno));
  }
  SubmitStream stream(fd_.get(), buffer_, input, waiting, out_fd, err_fd);
  buffer_.clear();
  auto totals = stream.run();
  if (totals) {
    if (auto id = ack->find("submit");
        id != ack->end() && id->is_number_integer() && id->get<int64_t>() >= 0) {
      totals->submit = id->get<uint64_t>();
    }
    auto durable = ack->find("durable");
    totals->durable = durable != ack->end() && durable->is_boolean() && durable->get<bool>();
  }
  if (!totals || totals->timed_out) {
    fd_.reset();  // the conversation is lost; nothing more can be asked on it
    return totals;
  }
  buffer_ = stream.leftover();
  ::fcntl(fd_.get(), F_SETFL, flags);
  return totals;
}

}  // namespace corral::ctl

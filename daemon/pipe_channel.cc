#include "daemon/pipe_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <utility>

#include "base/io.h"
#include "base/unique_fd.h"
#include "ipc/frame.h"

namespace corral::daemon {

namespace asio = boost::asio;
using asio::posix::stream_descriptor;

namespace {

class PipeChannel : public Channel {
 public:
  static constexpr size_t kMaxOutbox = 4 << 20;

  // TO_WORKER and FROM_WORKER are the daemon's ends; CHILD_IN and CHILD_OUT
  // the child's, closed once it has them.
  PipeChannel(const ChannelContext& context, uint32_t worker, asio::io_context& io,
              UniqueFd to_worker, UniqueFd from_worker, UniqueFd child_in, UniqueFd child_out,
              config::Framing framing, size_t max_bytes)
      : Channel(context, worker),
        out_(io, to_worker.release()),
        in_(io, from_worker.release()),
        child_in_(std::move(child_in)),
        child_out_(std::move(child_out)),
        framing_(framing),
        frames_(max_bytes + ipc::kResultHeaderBytes),
        lines_(max_bytes) {}

  int child_in() const { return child_in_.get(); }
  int child_out() const { return child_out_.get(); }

  void start() override {
    // The child has its own copies; ours would keep its input from ever
    // ending and its output from ever reading EOF.
    child_in_.reset();
    child_out_.reset();
    // Any line filter is a worker: it never says READY, so it takes tasks
    // from the start.
    read_more();
    if (framing_ == config::Framing::kLines) {
      ready_ = true;
      attach();
      results_done();  // hand it the queued tasks now, not at the next event
    }
  }

  bool can_send(size_t) const override { return pending_.size() < kMaxOutbox; }

  void send(uint64_t id, std::string_view payload) override {
    if (framing_ == config::Framing::kLines) {
      pending_.append(payload);
      pending_.push_back('\n');
    } else {
      ipc::append_task(pending_, id, payload);
    }
  }

  bool send_chunk(uint64_t first_id, uint32_t count, std::string_view items) override {
    if (pending_.size() >= kMaxOutbox) return false;
    ipc::append_tasks(pending_, first_id, count, items);
    return true;
  }

  void flush() override {
    if (writing_ || pending_.empty() || closed_) return;
    writing_ = true;
    writing_buffer_.swap(pending_);
    pending_.clear();
    asio::async_write(out_, asio::buffer(writing_buffer_),
                      [this, alive = alive()](boost::system::error_code ec, size_t) {
                        if (alive.expired()) return;  // the channel is gone
                        writing_ = false;
                        writing_buffer_.clear();
                        // EPIPE: the worker is gone; its exit is handled by the pidfd.
                        if (ec) return;
                        if (close_after_write_ && pending_.empty()) return close_input();
                        flush();
                      });
  }

  void sentinel() override {
    sentinel_sent_ = true;
    dispatcher().detach(worker_);
    if (framing_ == config::Framing::kLines) {
      // EOF on its input is a line worker's sentinel.
      close_after_write_ = true;
      if (!writing_ && pending_.empty())
        close_input();
      else
        flush();
    } else {
      ipc::append_control(pending_, ipc::FrameType::kShutdown);
      flush();
    }
  }

 private:
  void close_input() {
    boost::system::error_code ignored;
    out_.close(ignored);
    closed_ = true;
  }

  void read_more() {
    in_.async_read_some(
        asio::buffer(buffer_), [this, alive = alive()](boost::system::error_code ec, size_t n) {
          if (ec || alive.expired()) return;  // EOF or error: the exit comes through the pidfd
          bool ok = framing_ == config::Framing::kLines ? on_lines(n) : on_frames(n);
          if (!ok) return;
          results_done();
          read_more();
        });
  }

  void collect_remains() override {
    if (broken_) return;
    int fd = in_.native_handle();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
      ssize_t n = ::read(fd, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      bool ok = framing_ == config::Framing::kLines ? on_lines(static_cast<size_t>(n))
                                                    : on_frames(static_cast<size_t>(n));
      if (!ok) break;
    }
  }

  bool on_lines(size_t n) {
    begin_batch();
    lines_.feed(std::string_view(buffer_.data(), n));
    std::string_view line;
    for (;;) {
      auto status = lines_.next(line);
      if (status == ipc::DecodeStatus::kNeedMore) return true;
      if (status == ipc::DecodeStatus::kError) return protocol_error(lines_.error());
      auto id = dispatcher().oldest(worker_);
      if (!id) return protocol_error("a result line for no task");
      if (!on_result(*id, true, line)) return false;
    }
  }

  bool on_frames(size_t n) {
    begin_batch();
    frames_.feed(std::string_view(buffer_.data(), n));
    ipc::Frame frame;
    for (;;) {
      auto status = frames_.next(frame);
      if (status == ipc::DecodeStatus::kNeedMore) return true;
      if (status == ipc::DecodeStatus::kError) return protocol_error(frames_.error());
      if (!on_frame(frame)) return false;
    }
  }

  stream_descriptor out_;
  stream_descriptor in_;
  UniqueFd child_in_, child_out_;
  config::Framing framing_;
  ipc::FrameDecoder frames_;
  ipc::LineDecoder lines_;
  std::array<char, 64 * 1024> buffer_;
  std::string pending_;
  std::string writing_buffer_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<Channel>> open_pipe_channel(const ChannelContext& context, uint32_t worker,
                                                   asio::io_context& io, const config::JobSpec& job,
                                                   SpawnRequest& request) {
  auto to_worker = make_pipe();
  if (!to_worker) return std::move(to_worker).error();
  auto from_worker = make_pipe();
  if (!from_worker) return std::move(from_worker).error();
  auto channel = std::make_unique<PipeChannel>(
      context, worker, io, std::move(to_worker->write), std::move(from_worker->read),
      std::move(to_worker->read), std::move(from_worker->write), job.pipe.framing,
      job.queue.max_task_bytes);
  bool stdio = job.pipe.fds == config::PipeFds::kStdio;
  int in_fd = stdio ? 0 : 3, out_fd = stdio ? 1 : 4;
  request.fds.push_back({in_fd, channel->child_in()});
  request.fds.push_back({out_fd, channel->child_out()});
  request.env.push_back(std::string("CORRAL_FRAMING=") +
                        (job.pipe.framing == config::Framing::kLines ? "lines" : "length"));
  request.env.push_back("CORRAL_FDS=" + std::to_string(in_fd) + "," + std::to_string(out_fd));
  return std::unique_ptr<Channel>(std::move(channel));
}

}  // namespace corral::daemon

// `corralctl tail`: a worker's log, its last lines and then (follow) what is
// appended, streamed to the client. Commands' other members are in
// commands.cc and task_commands.cc.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>

#include "daemon/commands.h"

namespace corral::daemon {

using protocol::Json;

namespace {

constexpr size_t kTailChunk = 64 << 10;
constexpr size_t kTailMaxBacklog = 1 << 20;  // a follower reads no more while this waits unsent
constexpr auto kTailPoll = std::chrono::milliseconds(200);

// Where the last LINES lines of the file open at FD start.
off_t start_of_last_lines(int fd, off_t size, uint64_t lines) {
  if (lines == 0) return size;
  std::array<char, kTailChunk> block;
  off_t end = size;
  uint64_t seen = 0;
  while (end > 0) {
    off_t begin = std::max<off_t>(0, end - static_cast<off_t>(block.size()));
    ssize_t n = ::pread(fd, block.data(), static_cast<size_t>(end - begin), begin);
    if (n <= 0) return 0;
    for (ssize_t i = n - 1; i >= 0; --i) {
      // The newline that ends the file does not start a line.
      if (block[static_cast<size_t>(i)] != '\n' || begin + i == size - 1) continue;
      if (++seen == lines) return begin + i + 1;
    }
    end = begin;
  }
  return 0;
}

// One `tail` exchange: the file's last lines, then (follow) what is appended,
// polled; a file that was rotated or truncated is read again from its start.
// The file is opened and looked at only relative to the log directory held
// open (safe_file.h): a link, FIFO or someone else's file at its name is
// refused, never read.
class TailStream : public std::enable_shared_from_this<TailStream> {
 public:
  TailStream(std::shared_ptr<const SafeDir> dir, std::string name, ConversationPtr conversation,
             std::unique_ptr<Timer> timer, Host& host)
      : dir_(std::move(dir)),
        name_(std::move(name)),
        conv_(conversation),
        timer_(std::move(timer)),
        host_(host) {}

  // Opens the file if there is one; why it is refused, or "". A worker that
  // wrote nothing yet has no file: an empty tail, not an error.
  // Opens the file if it is there; the error says why it cannot be read.
  Status open_first() {
    open_file();
    if (!error_.empty()) return Error(error_);
    return {};
  }
  void start(uint64_t lines, bool follow) {
    follow_ = follow;
    if (fd_.valid()) offset_ = start_of_last_lines(fd_.get(), size_of(), lines);
    poll();
  }

 private:
  bool open_file() {
    if (fd_.valid()) return true;
    if (!dir_) return false;
    Result<OpenedFile> file = dir_->open(name_, FileUse::kRead, "log file");
    if (!file) {
      // Logged once per stream, not at every poll of a follower.
      if (error_.empty()) spdlog::error("tail: {}", file.error().message());
      error_ = file.error().message();
      return false;
    }
    error_.clear();
    if (file->missing) return false;
    fd_ = std::move(file->fd);
    inode_ = file->st.st_ino;
    offset_ = file->st.st_size;
    return true;
  }
  off_t size_of() const {
    struct stat st {};
    return fd_.valid() && ::fstat(fd_.get(), &st) == 0 ? st.st_size : 0;
  }
  // The file at the name is not the one we hold any more (rotated), or it shrank.
  void check_replaced() {
    if (!dir_) return;
    auto st = dir_->stat(name_);
    if (!st) return;
    if (!fd_.valid() || st->st_ino != inode_) {
      if (fd_.valid()) {
        send_available();  // what the old file got before the rotation
        fd_.reset();
      }
      if (open_file()) offset_ = 0;
      return;
    }
    if (size_of() < offset_) offset_ = 0;
  }
  // Sends what the file has past offset_, while the client keeps up.
  void send_available() {
    auto conv = conv_.lock();
    if (!conv || !fd_.valid()) return;
    std::array<char, kTailChunk> block;
    while (conv->unsent() < kTailMaxBacklog) {
      ssize_t n = ::pread(fd_.get(), block.data(), block.size(), offset_);
      if (n <= 0) break;
      offset_ += n;
      conv->send_raw(
          protocol::encode_line(Json{{"data", std::string(block.data(), static_cast<size_t>(n))}}));
    }
  }
  void poll() {
    auto conv = conv_.lock();
    if (!conv || conv->closed()) return;
    check_replaced();
    send_available();
    if (!follow_) {
      conv->send(Json{{"end", true}}, true);
      return;
    }
    timer_->arm(host_.now() + kTailPoll, [self = shared_from_this()] { self->poll(); });
  }

  std::shared_ptr<const SafeDir> dir_;
  std::string name_;
  std::weak_ptr<Conversation> conv_;
  std::unique_ptr<Timer> timer_;
  Host& host_;
  UniqueFd fd_;
  ino_t inode_ = 0;
  off_t offset_ = 0;
  bool follow_ = false;
  std::string error_;  // why the file at the name was last refused
};

}  // namespace

void Commands::tail(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  auto target_it = request.find("target");
  std::optional<protocol::Target> target;
  if (target_it != request.end() && target_it->is_string()) {
    if (auto parsed = protocol::parse_target(target_it->get<std::string>())) target = *parsed;
  }
  if (!target || target->all()) {
    return reply(protocol::error_reply(
        "tail needs \"target\": one worker, JOB:INDEX (or JOB, for a job of one worker)"));
  }
  auto selected = select_workers(supervisor_, {*target});
  if (!selected) return reply(protocol::error_reply(selected.error().message()));
  // supervisorctl's `tail NAME`: a job of one worker names that worker.
  if (selected->size() != 1) {
    return reply(protocol::error_reply("tail: " + target->job + " has " +
                                       std::to_string(selected->size()) +
                                       " workers; name one as JOB:INDEX"));
  }
  const WorkerId id = selected->front();
  uint64_t lines = 10;
  if (auto it = request.find("lines"); it != request.end()) {
    if (!it->is_number_unsigned()) {
      return reply(protocol::error_reply("\"lines\" must be a number of lines, 0 or more"));
    }
    lines = it->get<uint64_t>();
  }
  const bool stderr_log = request.value("stderr", false);
  const bool follow = request.value("follow", false);
  Result<OutputFile> file = supervisor_.output_file(id, stderr_log);
  if (!file) {
    return reply(protocol::error_reply(id.str() + "'s " + (stderr_log ? "stderr" : "stdout") +
                                       ": " + file.error().message()));
  }
  const std::string path = file->path;
  // The stream lives on its timer while it follows, until the client goes.
  auto stream =
      std::make_shared<TailStream>(file->dir, file->name, conversation, host_.make_timer(), host_);
  if (Status opened = stream->open_first(); !opened) {
    return reply(protocol::error_reply(opened.error().message()));
  }
  conversation->send(Json{{"ok", true}, {"path", path}}, false);
  stream->start(lines, follow);
}

}  // namespace corral::daemon

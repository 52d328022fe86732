// `corralctl tail` and `corralctl fg`: a worker's log, its last lines and
// then (follow) what is appended, streamed to the client; fg streams both
// of the worker's files on one connection, each line tagged with its
// stream, until the process it attached to is gone. Commands' other members
// are in commands.cc and task_commands.cc.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>

#include "daemon/commands.h"

namespace corral::daemon {

using protocol::Json;

namespace {

constexpr size_t kTailChunk = 64 << 10;
constexpr size_t kTailMaxBacklog = 1 << 20;  // a follower reads no more while this waits unsent
constexpr auto kTailPoll = std::chrono::milliseconds(200);
// fg is watched by someone at a terminal: its files are looked at more often.
constexpr auto kFgPoll = std::chrono::milliseconds(100);
// After fg's process is gone, what it wrote last still reaches its files
// (corrald reads its pipes); fg reads until a look finds nothing new, at
// most this long.
constexpr auto kFgDrain = std::chrono::seconds(2);

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

// One log file followed by its name in the log directory: its last lines,
// then what is appended; a file that was rotated or truncated is read again
// from its start. The file is opened and looked at only relative to the log
// directory held open (safe_file.h): a link, FIFO or someone else's file at
// its name is refused, never read.
class LogReader {
 public:
  LogReader(std::shared_ptr<const SafeDir> dir, std::string name)
      : dir_(std::move(dir)), name_(std::move(name)) {}

  // Opens the file if it is there; the error says why it cannot be read. A
  // worker that wrote nothing yet has no file: nothing to read, not an error.
  Status open_first() {
    open_file();
    if (!error_.empty()) return Error(error_);
    return {};
  }
  // The next read starts at the last LINES lines.
  void seek_last_lines(uint64_t lines) {
    if (fd_.valid()) offset_ = start_of_last_lines(fd_.get(), size_of(), lines);
  }
  // Hands what the file has past what was read to ON_DATA, chunk by chunk,
  // while MORE() (the client keeps up); first what a file rotated away got
  // before its rotation. Whether anything was read.
  bool read_new(const std::function<bool()>& more,
                const std::function<void(std::string_view)>& on_data) {
    bool read = false;
    check_replaced(more, on_data, read);
    read_available(more, on_data, read);
    return read;
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
  void check_replaced(const std::function<bool()>& more,
                      const std::function<void(std::string_view)>& on_data, bool& read) {
    if (!dir_) return;
    auto st = dir_->stat(name_);
    if (!st) return;
    if (!fd_.valid() || st->st_ino != inode_) {
      if (fd_.valid()) {
        read_available(more, on_data, read);  // what the old file got before the rotation
        fd_.reset();
      }
      if (open_file()) offset_ = 0;
      return;
    }
    if (size_of() < offset_) offset_ = 0;
  }
  void read_available(const std::function<bool()>& more,
                      const std::function<void(std::string_view)>& on_data, bool& read) {
    if (!fd_.valid()) return;
    std::array<char, kTailChunk> block;
    while (more()) {
      ssize_t n = ::pread(fd_.get(), block.data(), block.size(), offset_);
      if (n <= 0) break;
      offset_ += n;
      read = true;
      on_data(std::string_view(block.data(), static_cast<size_t>(n)));
    }
  }

  std::shared_ptr<const SafeDir> dir_;
  std::string name_;
  UniqueFd fd_;
  ino_t inode_ = 0;
  off_t offset_ = 0;
  std::string error_;  // why the file at the name was last refused
};

// One `tail` exchange: the file's last lines, then (follow) what is
// appended, polled.
class TailStream : public std::enable_shared_from_this<TailStream> {
 public:
  TailStream(std::shared_ptr<const SafeDir> dir, std::string name, ConversationPtr conversation,
             std::unique_ptr<Timer> timer, Host& host)
      : reader_(std::move(dir), std::move(name)),
        conv_(conversation),
        timer_(std::move(timer)),
        host_(host) {}

  Status open_first() { return reader_.open_first(); }
  void start(uint64_t lines, bool follow) {
    follow_ = follow;
    reader_.seek_last_lines(lines);
    poll();
  }

 private:
  void poll() {
    auto conv = conv_.lock();
    if (!conv || conv->closed()) return;
    reader_.read_new([&conv] { return conv->unsent() < kTailMaxBacklog; },
                     [&conv](std::string_view data) {
                       conv->send_raw(protocol::encode_line(Json{{"data", std::string(data)}}));
                     });
    if (!follow_) {
      conv->send(Json{{"end", true}}, true);
      return;
    }
    timer_->arm(host_.now() + kTailPoll, [self = shared_from_this()] { self->poll(); });
  }

  LogReader reader_;
  std::weak_ptr<Conversation> conv_;
  std::unique_ptr<Timer> timer_;
  Host& host_;
  bool follow_ = false;
};

// One `fg` exchange: the last lines of the worker's stdout and stderr
// files, then what is appended to either, read in turn at each look and
// sent as whole lines, each message tagged with its stream; until the
// process fg attached to is gone, then what it wrote last and an end line
// saying how it ended.
class FgStream : public std::enable_shared_from_this<FgStream> {
 public:
  FgStream(Supervisor& supervisor, WorkerId id, pid_t pid, ConversationPtr conversation,
           std::unique_ptr<Timer> timer, Host& host)
      : supervisor_(supervisor),
        id_(std::move(id)),
        pid_(pid),
        conv_(conversation),
        timer_(std::move(timer)),
        host_(host) {}

  // Follows FILE as STREAM ("stdout", "stderr"); a file already followed
  // (stderr sent to the stdout file) is not read twice.
  Status add(const std::string& stream, const OutputFile& file) {
    for (const auto& source : sources_) {
      if (source->name == file.path) return {};
    }
    auto source = std::make_unique<Source>(stream, file.path, LogReader(file.dir, file.name));
    if (Status opened = source->reader.open_first(); !opened) return opened;
    sources_.push_back(std::move(source));
    return {};
  }
  void start(uint64_t lines) {
    for (auto& source : sources_) source->reader.seek_last_lines(lines);
    poll();
  }

 private:
  struct Source {
    Source(std::string stream, std::string name, LogReader reader)
        : stream(std::move(stream)), name(std::move(name)), reader(std::move(reader)) {}
    std::string stream;
    std::string name;
    LogReader reader;
    std::string partial;  // the start of a line whose end was not read yet
  };

  static void send(Conversation& conv, const Source& source, std::string_view data) {
    conv.send_raw(
        protocol::encode_line(Json{{"stream", source.stream}, {"data", std::string(data)}}));
  }
  // Reads what SOURCE's file got, sending whole lines; a partial line waits
  // for its end until a look finds nothing more (a prompt without a
  // newline), or it is longer than a chunk. Whether anything was read or is
  // left unread because the client is behind.
  bool pump(Conversation& conv, Source& source) {
    auto more = [&conv] { return conv.unsent() < kTailMaxBacklog; };
    bool read = source.reader.read_new(more, [&](std::string_view data) {
      source.partial.append(data);
      size_t end = source.partial.rfind('\n');
      if (end == std::string::npos && source.partial.size() < kTailChunk) return;
      size_t cut = end == std::string::npos ? source.partial.size() : end + 1;
      send(conv, source, std::string_view(source.partial).substr(0, cut));
      source.partial.erase(0, cut);
    });
    if (!read && !source.partial.empty()) {
      send(conv, source, source.partial);
      source.partial.clear();
    }
    return read || !more();
  }
  void poll() {
    auto conv = conv_.lock();
    if (!conv || conv->closed()) return;
    bool busy = false;
    for (auto& source : sources_) busy = pump(*conv, *source) || busy;
    if (!gone_at_ && (!supervisor_.exists(id_) || supervisor_.status(id_).pid != pid_)) {
      gone_at_ = host_.now();
      busy = true;  // look once more: corrald may not have read its pipes' last bytes yet
    }
    if (gone_at_ && (!busy || host_.now() - *gone_at_ >= kFgDrain)) return finish(*conv);
    timer_->arm(host_.now() + kFgPoll, [self = shared_from_this()] { self->poll(); });
  }
  // The end line: how the process ended and the worker's state now.
  void finish(Conversation& conv) {
    for (auto& source : sources_) {
      if (!source->partial.empty()) send(conv, *source, source->partial);
    }
    Json end{{"end", true}, {"name", id_.str()}};
    if (!supervisor_.exists(id_)) {
      end["state"] = nullptr;
      end["pid"] = nullptr;
      end["exit_description"] = nullptr;
    } else {
      WorkerStatus status = supervisor_.status(id_);
      end["state"] = to_string(status.state);
      end["pid"] = status.pid > 0 ? Json(status.pid) : Json(nullptr);
      end["exit_description"] = status.last_exit ? Json(status.last_exit->str()) : Json(nullptr);
    }
    conv.send(end, true);
  }

  Supervisor& supervisor_;
  WorkerId id_;
  pid_t pid_;
  std::weak_ptr<Conversation> conv_;
  std::unique_ptr<Timer> timer_;
  Host& host_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::optional<TimePoint> gone_at_;  // when the process was seen gone
};

// The one worker REQUEST's "target" names, for COMMAND (tail, fg), or why
// it names none.
Result<WorkerId> one_worker(const Supervisor& supervisor, const Json& request,
                            const std::string& command) {
  auto target_it = request.find("target");
  std::optional<protocol::Target> target;
  if (target_it != request.end() && target_it->is_string()) {
    if (auto parsed = protocol::parse_target(target_it->get<std::string>())) target = *parsed;
  }
  if (!target || target->all()) {
    return Error(command +
                 " needs \"target\": one worker, JOB:INDEX (or JOB, for a job of one worker)");
  }
  auto selected = select_workers(supervisor, {*target});
  if (!selected) return std::move(selected).error();
  // supervisorctl's `tail NAME`: a job of one worker names that worker.
  if (selected->size() != 1) {
    return Error(command + ": " + target->job + " has " + std::to_string(selected->size()) +
                 " workers; name one as JOB:INDEX");
  }
  return selected->front();
}

// REQUEST's "lines" (default 10), or why it is not a number of lines.
Result<uint64_t> lines_of(const Json& request) {
  if (auto it = request.find("lines"); it != request.end()) {
    if (!it->is_number_unsigned()) return Error("\"lines\" must be a number of lines, 0 or more");
    return it->get<uint64_t>();
  }
  return uint64_t{10};
}

}  // namespace

void Commands::tail(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  auto worker = one_worker(supervisor_, request, "tail");
  if (!worker) return reply(protocol::error_reply(worker.error().message()));
  const WorkerId id = *worker;
  auto lines = lines_of(request);
  if (!lines) return reply(protocol::error_reply(lines.error().message()));
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
  stream->start(*lines, follow);
}

void Commands::fg(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  auto worker = one_worker(supervisor_, request, "fg");
  if (!worker) return reply(protocol::error_reply(worker.error().message()));
  const WorkerId id = *worker;
  auto lines = lines_of(request);
  if (!lines) return reply(protocol::error_reply(lines.error().message()));
  // supervisorctl's fg: only a running process can be brought to the front.
  WorkerStatus status = supervisor_.status(id);
  if (status.state != State::kRunning || status.pid <= 0) {
    return reply(protocol::error_reply("fg: " + id.str() + " is not running (" +
                                       to_string(status.state) + ")"));
  }
  auto stream = std::make_shared<FgStream>(supervisor_, id, status.pid, conversation,
                                           host_.make_timer(), host_);
  // A stream corrald does not keep (log: off, inherit) is left out, and
  // its path is null; fg needs at least one.
  Json paths{{"stdout", nullptr}, {"stderr", nullptr}};
  std::string not_kept;
  for (bool stderr_log : {false, true}) {
    const char* name = stderr_log ? "stderr" : "stdout";
    Result<OutputFile> file = supervisor_.output_file(id, stderr_log);
    if (!file) {
      not_kept += std::string(not_kept.empty() ? "" : "; ") + name + ": " + file.error().message();
      continue;
    }
    if (Status added = stream->add(name, *file); !added) {
      return reply(protocol::error_reply(added.error().message()));
    }
    paths[name] = file->path;
  }
  if (paths["stdout"].is_null() && paths["stderr"].is_null()) {
    return reply(protocol::error_reply("fg: " + id.str() + " has no output corrald keeps (" +
                                       not_kept + ")"));
  }
  conversation->send(Json{{"ok", true},
                          {"name", id.str()},
                          {"pid", status.pid},
                          {"stdout", paths["stdout"]},
                          {"stderr", paths["stderr"]}},
                     false);
  stream->start(*lines);
}

}  // namespace corral::daemon

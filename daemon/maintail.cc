// `corralctl maintail`: corrald's own recent log lines (daemon/log_ring.h),
// the last ones and then (follow) the new ones as they come, streamed to the
// client as `tail` streams a worker's output. Commands' other members are in
// commands.cc, task_commands.cc and log_tail.cc.
#include <memory>

#include "daemon/commands.h"
#include "daemon/log_ring.h"

namespace corral::daemon {

using protocol::Json;

namespace {

constexpr size_t kMaintailChunk = 64 << 10;
constexpr size_t kMaintailMaxBacklog = 1 << 20;  // a follower is sent no more while this waits
constexpr auto kMaintailPoll = std::chrono::milliseconds(200);

// One `maintail` exchange. It holds the ring, so a line logged while it
// sends is either in this turn or the next one; a follower that fell behind
// by more than the ring holds is told how many lines it missed.
class MaintailStream : public std::enable_shared_from_this<MaintailStream> {
 public:
  MaintailStream(std::shared_ptr<const LogRing> ring, ConversationPtr conversation,
                 std::unique_ptr<Timer> timer, Host& host)
      : ring_(std::move(ring)), conv_(conversation), timer_(std::move(timer)), host_(host) {}

  void start(uint64_t lines, bool follow) {
    next_ = ring_->start_of_last(lines);
    follow_ = follow;
    poll();
  }

 private:
  void send_available(Conversation& conv) {
    while (conv.unsent() < kMaintailMaxBacklog) {
      LogChunk chunk = ring_->since(next_, kMaintailChunk);
      if (chunk.missed > 0) {
        conv.send_raw(protocol::encode_line(
            Json{{"data", "[corrald: " + std::to_string(chunk.missed) +
                              " log lines were dropped from memory before this client read "
                              "them]\n"}}));
      }
      next_ = chunk.next;
      if (chunk.text.empty()) break;
      conv.send_raw(protocol::encode_line(Json{{"data", std::move(chunk.text)}}));
    }
  }
  void poll() {
    auto conv = conv_.lock();
    if (!conv || conv->closed()) return;
    send_available(*conv);
    if (!follow_) {
      conv->send(Json{{"end", true}}, true);
      return;
    }
    timer_->arm(host_.now() + kMaintailPoll, [self = shared_from_this()] { self->poll(); });
  }

  std::shared_ptr<const LogRing> ring_;
  std::weak_ptr<Conversation> conv_;
  std::unique_ptr<Timer> timer_;
  Host& host_;
  uint64_t next_ = 0;  // the number of the next line to send
  bool follow_ = false;
};

}  // namespace

void Commands::maintail(const Json& request, ConversationPtr conversation) {
  if (log_ring_ == nullptr) {
    return conversation->send(protocol::error_reply("this corrald keeps no log lines in memory"),
                              true);
  }
  uint64_t lines = 10;
  if (auto it = request.find("lines"); it != request.end() && it->is_number_unsigned()) {
    lines = it->get<uint64_t>();
  }
  const bool follow = request.value("follow", false);
  conversation->send(Json{{"ok", true}}, false);
  // The stream lives on its timer while it follows, until the client goes.
  auto stream =
      std::make_shared<MaintailStream>(log_ring_, conversation, host_.make_timer(), host_);
  stream->start(lines, follow);
}

}  // namespace corral::daemon

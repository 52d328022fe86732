// `results`: a durable job's kept results, read from its spool page by page
// in finish order; with `follow`, then each result as it is committed (with
// `submit`, until that submit has none pending). Commands' other members are
// in commands.cc and task_commands.cc.
#include <memory>
#include <optional>

#include "daemon/commands.h"
#include "protocol/task_lines.h"

namespace corral::daemon {

using protocol::Json;

namespace {

constexpr size_t kResultsPage = 1000;

std::string kept_line(const KeptResult& r) {
  protocol::TaskResult line{r.id, r.seq, r.status, r.result, r.attempts, std::nullopt};
  line.kept = protocol::TaskResult::Kept{r.submit, r.cursor};
  return protocol::result_line(line);
}

}  // namespace

void Commands::results(const Json& request, ConversationPtr conversation) {
  Reply reply = [conversation](const Json& j) { conversation->send(j, true); };
  std::shared_ptr<JobFeed> feed = feed_of(request, reply);
  if (feed == nullptr) return;
  const std::string job = request["job"];
  if (!feed->durable()) {
    return reply(protocol::error_reply("job " + job +
                                       " is not durable (queue.durable: false): its results go to "
                                       "its sink and to waiting submitters only"));
  }
  struct State {
    uint64_t cursor = 0;
    std::optional<uint64_t> submit;
    bool follow = false;
    bool reading = false;
    bool ended = false;
  };
  auto state = std::make_shared<State>();
  state->cursor = request.value("since", uint64_t{0});
  if (auto it = request.find("submit"); it != request.end()) state->submit = it->get<uint64_t>();
  state->follow = request.value("follow", false);
  std::weak_ptr<Conversation> weak = conversation;
  std::weak_ptr<JobFeed> weak_feed = feed;
  conversation->on_close([state] { state->ended = true; });
  conversation->send(Json{{"ok", true}}, false);

  auto end = [state, weak] {
    state->ended = true;
    if (auto conv = weak.lock()) conv->send(Json{{"end", true}, {"cursor", state->cursor}}, true);
  };
  // Reads the next page when there is something to read and no read is
  // out; ends the stream when nothing more will come. Held by the feed's
  // listener below while the stream lasts, and by a read that is out.
  auto read = std::make_shared<std::function<void()>>();
  *read = [state, weak, weak_feed, end, read_weak = std::weak_ptr(read)] {
    auto feed = weak_feed.lock();
    if (state->ended || state->reading || feed == nullptr) return;
    const uint64_t on_disk = feed->results_cursor();
    if (state->cursor >= on_disk) {
      // Caught up with the disk.
      if (!state->follow || feed->retired()) return end();
      if (state->submit && !feed->submit_pending(*state->submit)) return end();
      return;
    }
    state->reading = true;
    auto again = read_weak.lock();
    feed->read_results(state->cursor, state->submit, kResultsPage,
                       [state, weak, end, again, on_disk](Result<std::vector<KeptResult>> page) {
                         state->reading = false;
                         auto conv = weak.lock();
                         if (state->ended || !conv) return;
                         if (!page) {
                           state->ended = true;
                           conv->send(protocol::error_reply(page.error().message()), true);
                           return;
                         }
                         std::string lines;
                         for (const KeptResult& r : *page) {
                           lines += kept_line(r);
                           state->cursor = std::max(state->cursor, r.cursor);
                         }
                         if (!lines.empty()) conv->send_raw(lines);
                         // A short page: everything up to ON_DISK was looked at (results of
                         // other submits and expired ones are skipped by the spool).
                         if (page->size() < kResultsPage)
                           state->cursor = std::max(state->cursor, on_disk);
                         if (again) (*again)();
                       });
  };
  auto gone = [state, weak] {
    auto conv = weak.lock();
    return state->ended || !conv || conv->closed();
  };
  feed->add_listener(
      [read, state] {
        if (state->ended) return true;
        (*read)();
        return state->ended;
      },
      gone);
  (*read)();
}

}  // namespace corral::daemon

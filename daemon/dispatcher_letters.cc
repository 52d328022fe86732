// The dispatcher's dead-letter list (dispatcher.h): retried as new tasks,
// cleared, and handed from a feed to the one that replaces it. Letters are
// added where tasks end, in conclude() (dispatcher.cc).
#include <algorithm>
#include <set>

#include "daemon/dispatcher.h"

namespace corral::daemon {

size_t Dispatcher::retry_dead_letters() {
  size_t n = dead_letters_.size();
  if (journal_ != nullptr && n > 0) journal_->letters_removed({});
  for (auto& letter : dead_letters_) submit(std::move(letter.payload), 0, 0);
  dead_letters_.clear();
  return n;
}

Result<size_t> Dispatcher::retry_dead_letters(const std::vector<uint64_t>& ids,
                                              uint64_t submitter) {
  std::set<uint64_t> wanted(ids.begin(), ids.end());
  std::string unknown;
  size_t unknown_count = 0;
  for (uint64_t id : wanted) {
    bool listed = std::any_of(dead_letters_.begin(), dead_letters_.end(),
                              [id](const DeadLetter& letter) { return letter.id == id; });
    if (listed) continue;
    unknown += (unknown.empty() ? "" : ", ") + std::to_string(id);
    ++unknown_count;
  }
  if (unknown_count > 0) {
    return Error(unknown_count == 1 ? "no dead letter has id " + unknown
                                    : "no dead letters have ids " + unknown);
  }
  size_t n = 0;
  uint64_t submit_id = new_submit();
  if (journal_ != nullptr) {
    std::vector<uint64_t> taken(wanted.begin(), wanted.end());
    if (!dead_letters_.empty()) journal_->letters_removed(taken);
  }
  std::deque<DeadLetter> kept;
  for (auto& letter : dead_letters_) {
    if (wanted.empty() || wanted.contains(letter.id)) {
      submit(std::move(letter.payload), TaskOrigin{submitter, submit_id, n++, std::nullopt});
    } else {
      kept.push_back(std::move(letter));
    }
  }
  dead_letters_ = std::move(kept);
  return n;
}

size_t Dispatcher::clear_dead_letters() {
  size_t n = dead_letters_.size();
  if (journal_ != nullptr && n > 0) journal_->letters_removed({});
  dead_letters_.clear();
  return n;
}

std::deque<DeadLetter> Dispatcher::take_dead_letters() {
  std::deque<DeadLetter> letters;
  letters.swap(dead_letters_);
  return letters;
}

void Dispatcher::adopt_dead_letters(std::deque<DeadLetter> letters) {
  for (auto& letter : dead_letters_) letters.push_back(std::move(letter));
  while (letters.size() > kMaxDeadLetters) {
    letters.pop_front();
    ++counts_.dead_letters_dropped;
  }
  dead_letters_ = std::move(letters);
}

}  // namespace corral::daemon

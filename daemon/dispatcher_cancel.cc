// The dispatcher's cancels (dispatcher.h): queued and delayed tasks end at
// once, a chunk cut around a task named alone; a running task ends when its
// worker, stopped by the caller, answers or dies.
#include <algorithm>

#include "daemon/dispatcher.h"

namespace corral::daemon {

CancelReport Dispatcher::cancel(const CancelSelection& selection, bool running,
                                const std::string& why) {
  CancelReport report;
  // A whole entry.
  auto take = [&](uint64_t key, Task& task) {
    if (task.where != Where::kInFlight) {
      report.cancelled += task.items;
      end_waiting(key, TaskOutcome::kCancelled, why);
      return;
    }
    if (task.cancelled || !running) {
      if (task.cancelled) report.stopping += task.items;
      return;
    }
    task.cancelled = true;
    report.stopping += task.items;
    report.stop_workers.push_back(*task.worker);
  };
  if (!selection.ids.empty()) {
    for (uint64_t id : selection.ids) {
      uint64_t key = 0;
      Task* found = covering(id, key);
      if (found == nullptr) {
        report.unknown.push_back(id);
        continue;
      }
      if (found->chunk && found->where != Where::kInFlight) {
        // Cut out of its chunk, it ends alone.
        if (id > first_of(key, *found)) cut(key, id);
        if (id < key) cut(key, id + 1);
        take(id, *tasks_.find(id));
        continue;
      }
      if (!found->chunk) {
        if (found->where == Where::kInFlight && !found->cancelled && !running) {
          report.running.push_back(id);
        } else {
          take(id, *found);
        }
        continue;
      }
      // In flight in a chunk, which cannot be cut: it ends when answered.
      if (found->cancelled || cancelled_items_.contains(id)) {
        ++report.stopping;
      } else if (!running) {
        report.running.push_back(id);
      } else {
        cancelled_items_.insert(id);
        ++report.stopping;
        report.stop_workers.push_back(*found->worker);
      }
    }
  } else {
    std::vector<uint64_t> chosen;
    tasks_.for_each([&](uint64_t key, const Task& task) {
      if (selection.all || (selection.submit && task.origin.submit == *selection.submit)) {
        chosen.push_back(key);
      }
    });
    std::sort(chosen.begin(), chosen.end());
    for (uint64_t key : chosen) take(key, *tasks_.find(key));
  }
  prune_heaps();
  std::sort(report.stop_workers.begin(), report.stop_workers.end());
  report.stop_workers.erase(std::unique(report.stop_workers.begin(), report.stop_workers.end()),
                            report.stop_workers.end());
  compact_queue();
  return report;
}

}  // namespace corral::daemon

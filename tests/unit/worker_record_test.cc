// The record of a corrald's workers (daemon.state_dir/workers) and the
// choice of what the next corrald ends from it: the recorded worker and
// the later members of its process group or session, never a process that
// only reuses a recorded pid, and nothing from another boot.
#include "daemon/worker_record.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

ProcessEntry process(pid_t pid, pid_t pgid, pid_t sid, uint64_t start) {
  return {pid, ProcIdentity{1, pgid, sid, start}};
}

TEST(WorkerRecordTest, RoundTripsThisBootsWorkersAndIgnoresAnotherBoot) {
  const std::vector<RecordedWorker> workers = {{1234, 5000, "web:0"}, {1240, 5010, "web:1"}};
  const std::string text = format_record("boot-a", workers);
  EXPECT_EQ(text, "corral-workers 1\nboot boot-a\n1234 5000 web:0\n1240 5010 web:1\n");
  EXPECT_EQ(parse_record(text, "boot-a"), workers);
  EXPECT_TRUE(parse_record(text, "boot-b").empty());
  EXPECT_TRUE(parse_record("", "boot-a").empty());
  EXPECT_TRUE(parse_record("corral-workers 1\nboot boot-a\n12x 5000 web:0\n", "boot-a").empty());
  EXPECT_TRUE(parse_record("corral-workers 1\nboot boot-a\n1 5000 init\n", "boot-a").empty());
  EXPECT_FALSE(boot_id().empty());
}

TEST(WorkerRecordTest, TheWorkerAndItsGroupAndSessionAreLeftovers) {
  const std::vector<RecordedWorker> workers = {{100, 5000, "web:0"}};
  const std::vector<ProcessEntry> table = {
      process(100, 100, 100, 5000),  // the worker itself, still there
      process(101, 100, 100, 5001),  // its background child
      process(102, 102, 100, 5002),  // a group of its own, in its session
      process(200, 200, 200, 4000),  // unrelated
  };
  EXPECT_EQ(leftovers_of(workers, table), (std::vector<pid_t>{100, 101, 102}));
}

TEST(WorkerRecordTest, AGroupWhoseLeaderDiedIsStillFound) {
  const std::vector<RecordedWorker> workers = {{100, 5000, "web:0"}};
  const std::vector<ProcessEntry> table = {process(101, 100, 100, 5001)};
  EXPECT_EQ(leftovers_of(workers, table), (std::vector<pid_t>{101}));
}

TEST(WorkerRecordTest, AReusedPidIsNeverHitNorItsGroup) {
  const std::vector<RecordedWorker> workers = {{100, 5000, "web:0"}};
  // Pid 100 now belongs to another process (another start time), which
  // leads a session and a group with a child of its own.
  const std::vector<ProcessEntry> table = {process(100, 100, 100, 9000),
                                           process(101, 100, 100, 9001)};
  EXPECT_TRUE(leftovers_of(workers, table).empty());
  // And an older process in a group of that number is none of the worker's.
  const std::vector<ProcessEntry> older = {process(150, 100, 100, 4000)};
  EXPECT_TRUE(leftovers_of(workers, older).empty());
}

}  // namespace
}  // namespace corral::daemon

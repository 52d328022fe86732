// The record of a corrald's workers (daemon.state_dir/workers) and the
// choice of what the next corrald ends from it: the recorded worker, the
// later members of its process group or session, and later processes that
// carry the recorded CORRAL_INSTANCE; never a process that only reuses a
// recorded pid, and nothing from another boot.
#include "daemon/worker_record.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

const std::string kInstance = "0123456789abcdef";

ProcessEntry process(pid_t pid, pid_t pgid, pid_t sid, uint64_t start, std::string instance = "") {
  return {pid, ProcIdentity{1, pgid, sid, start}, std::move(instance)};
}

Record record_of(std::vector<RecordedWorker> workers) {
  return Record{kInstance, 4900, std::move(workers)};
}

TEST(WorkerRecordTest, RoundTripsThisBootsRecordAndIgnoresAnotherBoot) {
  const Record record = record_of({{1234, 5000, "web:0"}, {1240, 5010, "web:1"}});
  const std::string text = format_record("boot-a", record);
  EXPECT_EQ(text,
            "corral-workers 2\nboot boot-a\ninstance 0123456789abcdef 4900\n1234 5000 web:0\n"
            "1240 5010 web:1\n");
  EXPECT_EQ(parse_record(text, "boot-a"), record);
  EXPECT_EQ(parse_record(text, "boot-b"), Record{});
  EXPECT_EQ(parse_record("", "boot-a"), Record{});
  EXPECT_EQ(parse_record("corral-workers 2\nboot boot-a\ninstance 0123456789abcdef 4900\n"
                         "12x 5000 web:0\n",
                         "boot-a"),
            Record{});
  EXPECT_EQ(parse_record("corral-workers 2\nboot boot-a\ninstance 0123456789abcdef 4900\n"
                         "1 5000 init\n",
                         "boot-a"),
            Record{});
  EXPECT_FALSE(boot_id().empty());
  const std::string id = new_instance_id();
  EXPECT_EQ(id.size(), 16u);
  EXPECT_NE(id, new_instance_id());
}

TEST(WorkerRecordTest, TheWorkerAndItsGroupAndSessionAreLeftovers) {
  const std::vector<ProcessEntry> table = {
      process(100, 100, 100, 5000),  // the worker itself, still there
      process(101, 100, 100, 5001),  // its background child
      process(102, 102, 100, 5002),  // a group of its own, in its session
      process(200, 200, 200, 4000),  // unrelated
  };
  EXPECT_EQ(leftovers_of(record_of({{100, 5000, "web:0"}}), table),
            (std::vector<pid_t>{100, 101, 102}));
}

TEST(WorkerRecordTest, AGroupWhoseLeaderDiedIsStillFound) {
  const std::vector<ProcessEntry> table = {process(101, 100, 100, 5001)};
  EXPECT_EQ(leftovers_of(record_of({{100, 5000, "web:0"}}), table), (std::vector<pid_t>{101}));
}

TEST(WorkerRecordTest, AReusedPidIsNeverHitNorItsGroup) {
  const Record record = record_of({{100, 5000, "web:0"}});
  // Pid 100 now belongs to another process (another start time), which
  // leads a session and a group with a child of its own.
  EXPECT_TRUE(
      leftovers_of(record, {process(100, 100, 100, 9000), process(101, 100, 100, 9001)}).empty());
  // And an older process in a group of that number is none of the worker's.
  EXPECT_TRUE(leftovers_of(record, {process(150, 100, 100, 4000)}).empty());
}

TEST(WorkerRecordTest, WhatLeftTheGroupAndSessionIsFoundByItsInstance) {
  const Record record = record_of({{100, 5000, "web:0"}});
  const std::vector<ProcessEntry> table = {
      process(300, 300, 300, 5100, kInstance),           // a double fork with setsid
      process(301, 301, 301, 4000, kInstance),           // older than that corrald: not its
      process(302, 302, 302, 5200, "fedcba9876543210"),  // another corrald's
      process(303, 303, 303, 5300),                      // no instance at all
  };
  EXPECT_EQ(leftovers_of(record, table), (std::vector<pid_t>{300}));
}

}  // namespace
}  // namespace corral::daemon

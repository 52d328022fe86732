// Parsing /proc/PID/stat and /proc/PID/status, and reading our own.
#include "daemon/proc_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <utility>

namespace corral::daemon {
namespace {

TEST(ProcStatsTest, StatFieldsAreCountedAfterTheLastParenthesis) {
  // A command name with spaces and a ')' of its own.
  std::string stat =
      "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 "
      "12345 1000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  ProcSample s;
  ASSERT_TRUE(parse_stat(stat, 100, s));
  EXPECT_DOUBLE_EQ(s.cpu_s, 3.0);
  EXPECT_EQ(s.threads, 7u);
  EXPECT_EQ(s.rss_bytes, 300u * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));  // field 24
  EXPECT_FALSE(parse_stat("4242 (x) S 1 2", 100, s));
  EXPECT_FALSE(parse_stat("no parenthesis at all", 100, s));
}

TEST(ProcStatsTest, StatusGivesRssAndContextSwitches) {
  std::string status =
      "Name:\tworker\nState:\tS (sleeping)\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\n"
      "Threads:\t2\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
  ProcSample s;
  ASSERT_TRUE(parse_status(status, s));
  EXPECT_EQ(s.rss_bytes, 1536u * 1024);
  EXPECT_EQ(s.voluntary_switches, 12u);
  EXPECT_EQ(s.involuntary_switches, 3u);
  // A zombie has no VmRSS line.
  ASSERT_TRUE(parse_status("Name:\tz\nState:\tZ (zombie)\n", s));
  EXPECT_EQ(s.rss_bytes, 0u);
}

TEST(ProcStatsTest, ReadsThisProcess) {
  auto before = read_proc(getpid());
  ASSERT_TRUE(before);
  EXPECT_GT(before->rss_bytes, 1u << 20);
  EXPECT_GE(before->threads, 1u);
  volatile uint64_t x = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  while (std::chrono::steady_clock::now() < end) x = x + 1;
  auto after = read_proc(getpid());
  ASSERT_TRUE(after);
  EXPECT_GE(after->cpu_s, before->cpu_s);
  EXPECT_FALSE(read_proc(-1));
}

TEST(ProcStatsTest, AKeptReaderReadsAgainAndCarriesTheLastSwitches) {
  // A process ctest has just started may not have been switched out yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ProcReader reader(getpid());
  auto first = reader.read(true);
  ASSERT_TRUE(first);
  EXPECT_GT(first->voluntary_switches + first->involuntary_switches, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // one more voluntary switch
  // Without the status file, the switches are those of the last read that had it.
  auto second = reader.read(false);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->voluntary_switches, first->voluntary_switches);
  EXPECT_EQ(second->involuntary_switches, first->involuntary_switches);
  ProcReader moved = std::move(reader);  // its files go with it
  auto third = moved.read(true);
  ASSERT_TRUE(third);
  EXPECT_GT(third->voluntary_switches, first->voluntary_switches);
  EXPECT_FALSE(ProcReader(-1).read());
}

}  // namespace
}  // namespace corral::daemon

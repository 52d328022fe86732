// corralctl top's screen, from replies, without a terminal.
#include "ctl/top.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::ctl {
namespace {

using ::testing::HasSubstr;

Json stats_reply(double tasks_per_s, double cpu) {
  return Json{
      {"ok", true},
      {"daemon", {{"pid", 7}, {"version", "0.1.0"}, {"cpu_s", 1.5}, {"rss_bytes", 15 << 20}}},
      {"jobs",
       {{"sums",
         {{"workers", 2},
          {"running", 2},
          {"cpu_percent", cpu},
          {"rss_bytes", 8 << 20},
          {"tasks_per_s", tasks_per_s},
          {"queued", 1234},
          {"restarts", 3},
          {"recent_latency_us", {{"p99", 1500.0}, {"count", 10}}}}}}}};
}

Json two_workers_status_reply() {
  return Json{{"ok", true},
              {"workers",
               {{{"name", "sums:0"},
                 {"state", "RUNNING"},
                 {"pid", 4242},
                 {"cpu_percent", 99.5},
                 {"rss_bytes", 4 << 20},
                 {"tasks_ok", 10},
                 {"tasks_failed", 2},
                 {"restarts", 1}},
                {{"name", "sums:1"}, {"state", "BACKOFF"}, {"pid", nullptr}, {"restarts", 2}}}}};
}

TEST(TopTest, SparklineScalesToItsLargestValue) {
  EXPECT_EQ(sparkline({0, 1, 2, 4}, 4), "▁▃▅█");
  EXPECT_EQ(sparkline({}, 3), "   ");
  EXPECT_EQ(sparkline({5}, 3), "  █");
  EXPECT_EQ(sparkline({0, 0}, 2), "▁▁");
  EXPECT_EQ(sparkline({1, 2, 3, 4, 8}, 2), "▅█");  // the newest values, scaled to all
}

TEST(TopTest, ScreenShowsJobsAndWorkers) {
  TopHistory history;
  for (double rate : {100.0, 200.0, 400.0}) history.add(stats_reply(rate, rate / 4));
  std::string screen =
      render_top(two_workers_status_reply(), stats_reply(400, 100), history, 200, 50, "");
  EXPECT_THAT(screen, HasSubstr("corrald 0.1.0  pid 7  cpu 1.5s  rss 15.0MiB"));
  EXPECT_THAT(screen, HasSubstr("sums  2/2  100.0  8.0MiB      400   1234  1.5ms         3"));
  EXPECT_THAT(screen, HasSubstr("▃▅█"));  // 100, 200, 400 tasks/s
  EXPECT_THAT(screen, HasSubstr("sums:0  RUNNING  4242  99.5  4.0MiB     12         1"));
  EXPECT_THAT(screen, HasSubstr("sums:1  BACKOFF     -   0.0      0B      0         2"));
}

// In an 80-column terminal the history columns do not fit: they are left out
// whole, so the headers shown stand over their columns, and the daemon's line
// keeps "q: quit".
TEST(TopTest, ANarrowTerminalLeavesOutWholeColumnsFromTheRight) {
  TopHistory history;
  history.add(stats_reply(100, 25));
  std::string screen =
      render_top(two_workers_status_reply(), stats_reply(400, 100), history, 64, 50, "");
  std::vector<std::string> lines;
  for (size_t start = 0, nl; (nl = screen.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(screen.substr(start, nl - start));
  }
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "corrald 0.1.0  pid 7  cpu 1.5s  rss 15.0MiB    q: quit");
  EXPECT_EQ(lines[2], "JOB   RUN   CPU%     RSS  TASKS/S  QUEUE    P99  RESTARTS");
  EXPECT_EQ(lines[3], "sums  2/2  100.0  8.0MiB      400   1234  1.5ms         3");
  std::string tiny =
      render_top(two_workers_status_reply(), stats_reply(400, 100), history, 24, 50, "");
  EXPECT_EQ(tiny.substr(0, tiny.find('\n')), "corrald 0.1.0    q: quit");
  EXPECT_THAT(tiny, HasSubstr("\nJOB   RUN   CPU%     RSS\nsums  2/2  100.0  8.0MiB\n"));
  EXPECT_THAT(tiny, HasSubstr("\nWORKER  STATE     PID\nsums:0  RUNNING  4242\n"));
}

TEST(TopTest, ScreenFitsTheTerminalAndShowsWhyItHasNoData) {
  std::string narrow =
      render_top(two_workers_status_reply(), stats_reply(1, 1), TopHistory{}, 20, 3, "");
  int lines = 0;
  for (size_t start = 0, nl; (nl = narrow.find('\n', start)) != std::string::npos; start = nl + 1) {
    ++lines;
    EXPECT_LE(nl - start, 20u);
  }
  EXPECT_EQ(lines, 3);
  std::string down = render_top(Json::object(), Json::object(), TopHistory{}, 80, 24,
                                "cannot reach corrald at /x.sock (retrying)");
  EXPECT_THAT(down, HasSubstr("cannot reach corrald at /x.sock (retrying)"));
}

}  // namespace
}  // namespace corral::ctl

// GET /metrics of a real corrald: promtool accepts it, SPEC section 7's
// names are there with their labels, and other requests are turned away.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string body_of(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

TEST(MetricsTest, PromtoolAcceptsTheExpositionAndEveryNameIsThere) {
  Daemon d("jobs:\n  sums:\n    command: [" + std::string(CORRAL_WORKER_PATH) +
               ", --handler, sum]\n    channel: shm\n    workers: 2\n"
               "    shared: {values: {processed: u64}, arrays: {hist: {type: u64, length: 4}}}\n"
               "  idle:\n    command: [sleep, '1000']\n    start: {settle: 0s}\n",
           "  metrics: {listen: 127.0.0.1:0, interval: 100ms}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  auto lines = d.submit("sums", std::vector<std::string>(500, "100"));
  ASSERT_EQ(lines.size(), 501u);
  Json stats = d.request({{"cmd", "stats"}});
  ASSERT_TRUE(stats["daemon"]["metrics"].is_string()) << stats.dump();
  const std::string address = stats["daemon"]["metrics"];

  std::string response = http(address, "GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("text/plain; version=0.0.4"));
  std::string body = body_of(response);
  write_file(d.dir().file("metrics.txt"), body);
  RunResult check =
      run({"/bin/sh", "-c", "promtool check metrics < " + d.dir().file("metrics.txt")});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  for (const char* name :
       {"corral_worker_state{", "corral_worker_cpu_seconds_total{",
        "corral_worker_resident_memory_bytes{", "corral_worker_restarts_total{",
        "corral_job_tasks_total{", "corral_job_queue_depth{", "corral_job_in_flight{",
        "corral_job_tasks_submitted_total{", "corral_job_tasks_finished_total{",
        "corral_job_redeliveries_total{", "corral_job_tasks_delayed{",
        "corral_job_task_duration_seconds_bucket{", "corral_job_shared_value{",
        "corral_daemon_resident_memory_bytes ", "corral_daemon_cpu_seconds_total "}) {
    EXPECT_THAT(body, HasSubstr(name)) << name;
  }
  EXPECT_THAT(body, HasSubstr("corral_worker_state{job=\"idle\",worker=\"idle:0\","
                              "state=\"RUNNING\"} 1"));
  EXPECT_THAT(body, HasSubstr("corral_job_tasks_total{job=\"sums\",status=\"ok\"} 500"));
  EXPECT_THAT(body, HasSubstr("corral_job_tasks_submitted_total{job=\"sums\"} 500"));
  EXPECT_THAT(body, HasSubstr("corral_job_tasks_finished_total{job=\"sums\",status=\"ok\"} 500"));
  EXPECT_THAT(body,
              HasSubstr("corral_job_tasks_finished_total{job=\"sums\",status=\"cancelled\"} 0"));
  // Rates are Prometheus's to compute.
  EXPECT_THAT(body, Not(HasSubstr("corral_job_tasks_per_second")));
  EXPECT_THAT(body, HasSubstr("# TYPE corral_worker_exits_total counter"));
  EXPECT_THAT(body, HasSubstr("corral_job_task_duration_seconds_count{job=\"sums\"} 500"));
  EXPECT_THAT(body, HasSubstr("corral_job_shared_value{job=\"sums\",name=\"processed\"} 500"));
  EXPECT_THAT(body, HasSubstr("corral_job_shared_value{job=\"sums\",name=\"hist\",index=\"3\"} 0"));

  EXPECT_THAT(http(address, "GET / HTTP/1.0\r\n\r\n"), HasSubstr("404"));
  EXPECT_THAT(http(address, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
              HasSubstr("405"));
  std::string head = http(address, "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_THAT(head, HasSubstr("200 OK"));
  EXPECT_EQ(body_of(head), "");
  // Garbage is dropped, and the server goes on.
  EXPECT_EQ(body_of(http(address, "\x01\x02 nonsense\r\n\r\n")), "");
  EXPECT_THAT(http(address, "GET /metrics HTTP/1.0\r\n\r\n"), HasSubstr("200 OK"));
}

TEST(MetricsTest, APortInUseIsAClearStartupError) {
  Daemon first("jobs: {}\n", "  metrics: {listen: 127.0.0.1:0}\n");
  ASSERT_TRUE(first.start()) << first.daemon_log();
  std::string taken = first.request({{"cmd", "stats"}})["daemon"]["metrics"];
  Daemon second("jobs: {}\n", "  metrics: {listen: " + taken + "}\n");
  EXPECT_FALSE(second.start());
  EXPECT_THAT(second.daemon_log(), HasSubstr("metrics.listen " + taken));
  EXPECT_THAT(second.daemon_log(), HasSubstr("Address already in use"));
}

}  // namespace
}  // namespace corral::testing

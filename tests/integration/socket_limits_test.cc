// What no socket client can do to corrald: clients that leave in the middle
// of a `wait` take their fds and waiters with them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(SocketLimitsTest, AbandonedWaitsLeaveNeitherFdsNorWaitersBehind) {
  Daemon d(
      "jobs:\n  idle:\n    command: [sleep, '1000']\n    autostart: false\n"
      "  queue:\n    command: " +
      worker_command("--handler, echo") + "\n    channel: pipe\n    autostart: false\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  // A task no worker takes: `wait --drained` never comes true either.
  ASSERT_EQ(d.submit("queue", {"x"}, false).back()["submitted"], 1);
  // corrald's fds once a request has come and gone (anything it samples is
  // open by then, and that request's connection closed).
  auto fds = [&] {
    d.request({{"cmd", "status"}});
    size_t last = open_fds(d.pid()).size();
    wait_until([&] {
      std::this_thread::sleep_for(50ms);
      return std::exchange(last, open_fds(d.pid()).size()) == last;
    });
    return last;
  };
  const size_t before = fds();

  for (int i = 0; i < 300; ++i) {
    int fd = connect_socket(d.socket());
    ASSERT_GE(fd, 0);
    Json wait = i % 2 == 0 ? Json{{"cmd", "wait"}, {"job", "idle"}, {"running", true}}
                           : Json{{"cmd", "wait"}, {"job", "queue"}, {"drained", true}};
    std::string line = protocol::encode_line(wait);
    ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL), ssize_t(line.size()));
    ::close(fd);
  }
  // A request after them: corrald has seen them go by the time it answers.
  EXPECT_EQ(d.request({{"cmd", "version"}})["ok"], true);
  size_t after = 0;
  EXPECT_TRUE(wait_until([&] { return (after = fds()) == before; }))
      << "corrald holds " << after << " fds; it held " << before << " before the waits";
  EXPECT_EQ(d.request({{"cmd", "stats"}})["daemon"]["waiters"], 0);
}

}  // namespace
}  // namespace corral::testing

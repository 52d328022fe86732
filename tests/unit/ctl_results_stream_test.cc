// corralctl's side of the streams of task control, against a fake corrald on
// a thread: the result lines of `results` (printed as they come, ended by
// corrald's end line), a cancel's request and reply on the wire, and the line
// that names a durable submit before its results come.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "ctl/client.h"
#include "ctl/commands.h"
#include "protocol/control.h"
#include "tests/support/captured_file.h"
#include "tests/support/fake_control_socket.h"
#include "tests/support/poll.h"
#include "tests/unit/ctl_plan.h"

namespace corral::ctl {
namespace {

using corral::testing::CapturedFile;

using corral::testing::FakeControlSocket;
using corral::testing::read_line;
using corral::testing::send_all;
using corral::testing::wait_until;

const std::string kOkLine =
    R"({"id":17,"seq":0,"status":"ok","result":"4950","attempts":1,"submit":3,"cursor":118})";
const std::string kFailedLine =
    R"({"id":18,"seq":1,"status":"failed","result":"bad input","attempts":1,"submit":3,"cursor":119})";
const std::string kCancelledLine =
    R"({"id":19,"seq":2,"status":"cancelled","result":"cancelled by corralctl cancel","attempts":0,"submit":3,"cursor":120})";
const std::string kExpiredLine =
    R"({"id":20,"seq":3,"status":"expired","result":"not started within its deadline of 5s","attempts":0,"submit":3,"cursor":121})";

// Connects to DAEMON and asks PLAN's request; the client, accepted.
std::optional<Client> accepted_client(FakeControlSocket& daemon, const Plan& plan) {
  auto client = Client::connect(daemon.path());
  EXPECT_TRUE(client) << client.error().message();
  if (!client) return std::nullopt;
  auto reply = client->call(*plan.request);
  EXPECT_TRUE(reply) << reply.error().message();
  if (!reply) return std::nullopt;
  EXPECT_EQ(format_reply(plan, *reply, Format::kText), Output{});
  return std::move(*client);
}

TEST(CtlResultsStreamTest, ResultLinesAreCopiedAndTheEndLineEndsThem) {
  FakeControlSocket daemon;
  Json request;
  daemon.serve([&](int fd) {
    request = Json::parse(read_line(fd));
    send_all(fd, "{\"ok\":true}\n" + kOkLine + "\n" + kFailedLine + "\n" + kCancelledLine + "\n" +
                     kExpiredLine + "\n{\"end\":true,\"cursor\":121}\n");
  });
  Plan plan = text_plan("results", {"primes", "--since", "117"});
  auto client = accepted_client(daemon, plan);
  ASSERT_TRUE(client);
  CapturedFile out;
  auto totals = client->read_results(out.fd());
  daemon.join();
  EXPECT_EQ(request, *plan.request);
  ASSERT_TRUE(totals) << totals.error().message();
  EXPECT_EQ(out.text(),
            kOkLine + "\n" + kFailedLine + "\n" + kCancelledLine + "\n" + kExpiredLine + "\n");
  EXPECT_EQ(*totals, (ResultTotals{4, 1, 1, 1, Json{{"end", true}, {"cursor", 121}}}));
  Output end = format_results(plan, *totals, Format::kText);
  EXPECT_EQ(end.exit_code, protocol::kExitFailed);
  EXPECT_EQ(end.err,
            "corralctl: 3 of 4 tasks did not end ok: 1 failed or dead, 1 cancelled, 1 expired\n");
}

// A follower sees each result as corrald sends it, not when the stream ends:
// the fake sends its second line only once the first is out.
TEST(CtlResultsStreamTest, AFollowPrintsEachResultAsItComesUntilTheEnd) {
  FakeControlSocket daemon;
  std::promise<void> first_seen;
  daemon.serve([&](int fd) {
    read_line(fd);
    send_all(fd, "{\"ok\":true}\n" + kOkLine + "\n");
    first_seen.get_future().wait();
    send_all(fd, kCancelledLine + "\n{\"end\":true,\"cursor\":120}\n");
  });
  Plan plan = text_plan("results", {"primes", "--submit", "3", "--follow"});
  auto client = accepted_client(daemon, plan);
  ASSERT_TRUE(client);
  CapturedFile out;
  auto reading = std::async(std::launch::async, [&] { return client->read_results(out.fd()); });
  bool shown = wait_until([&] { return out.text() == kOkLine + "\n"; });
  first_seen.set_value();
  EXPECT_TRUE(shown) << "the first result was not printed before the stream went on";
  auto totals = reading.get();
  daemon.join();
  ASSERT_TRUE(totals) << totals.error().message();
  EXPECT_EQ(out.text(), kOkLine + "\n" + kCancelledLine + "\n");
  EXPECT_EQ(totals->results, 2u);
  EXPECT_EQ(totals->cancelled, 1u);
  EXPECT_EQ(format_results(plan, *totals, Format::kText).exit_code, protocol::kExitFailed);
  Plan json = plan_command("results", {"primes", "--submit", "3", "--follow"}, Format::kJson);
  EXPECT_EQ(format_results(json, *totals, Format::kJson).out, "{\"cursor\":120,\"end\":true}\n");
}

TEST(CtlResultsStreamTest, AnErrorLineOrAHangUpEndsTheStreamAsAnError) {
  {
    FakeControlSocket daemon;
    daemon.serve([&](int fd) {
      read_line(fd);
      send_all(fd, "{\"ok\":true}\n" + kOkLine + "\n" +
                       protocol::encode_line(protocol::error_reply("job primes was removed")));
    });
    Plan plan = text_plan("results", {"primes", "--follow"});
    auto client = accepted_client(daemon, plan);
    ASSERT_TRUE(client);
    CapturedFile out;
    auto totals = client->read_results(out.fd());
    daemon.join();
    ASSERT_FALSE(totals);
    EXPECT_EQ(totals.error().message(), "job primes was removed");
    EXPECT_EQ(out.text(), kOkLine + "\n");
  }
  {
    FakeControlSocket daemon;
    daemon.serve([&](int fd) {
      read_line(fd);
      send_all(fd, "{\"ok\":true}\n" + kOkLine + "\n");
    });
    Plan plan = text_plan("results", {"primes", "--follow"});
    auto client = accepted_client(daemon, plan);
    ASSERT_TRUE(client);
    CapturedFile out;
    auto totals = client->read_results(out.fd());
    daemon.join();
    ASSERT_FALSE(totals);
    EXPECT_EQ(totals.error().kind(), ClientError::Kind::kProtocol);
    EXPECT_EQ(totals.error().message(), "corrald closed the connection");
    EXPECT_EQ(out.text(), kOkLine + "\n");
  }
}

TEST(CtlResultsStreamTest, ACancelGoesOutAsPlannedAndItsReplyIsShown) {
  FakeControlSocket daemon;
  Json request;
  daemon.serve([&](int fd) {
    request = Json::parse(read_line(fd));
    send_all(fd, protocol::encode_line({{"ok", true},
                                        {"cancelled", 2},
                                        {"stopping", 0},
                                        {"running", {12}},
                                        {"unknown", {40}}}));
  });
  Plan plan = text_plan("cancel", {"primes", "7", "8", "12", "40"});
  ASSERT_TRUE(plan.request) << plan.local.err;
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client) << client.error().message();
  auto reply = client->call(*plan.request);
  daemon.join();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(request, Json::parse(R"({"cmd":"cancel","job":"primes","ids":[7,8,12,40]})"));
  EXPECT_EQ(format_reply(plan, *reply, Format::kText),
            (Output{"primes: 2 tasks cancelled; running (use --running to stop them): 12; "
                    "unknown: 40\n",
                    "", protocol::kExitFailed}));
}

// A corrald for one submit --wait whose acknowledgement is ACK: it waits for
// NOTICE_SEEN before it reads the tasks, then answers each with a result
// whose status is the task's payload.
void serve_acknowledged_submit(int fd, const Json& ack, std::shared_future<void> notice_seen) {
  read_line(fd);
  send_all(fd, protocol::encode_line(ack));
  notice_seen.wait();
  uint64_t seq = 0;
  std::string replies;
  for (std::string line = read_line(fd); line != "." && !line.empty(); line = read_line(fd)) {
    replies += R"({"id":)" + std::to_string(seq + 50) + R"(,"seq":)" + std::to_string(seq) +
               R"(,"status":")" + line.substr(1) + R"(","result":"r","attempts":1})" + "\n";
    ++seq;
  }
  send_all(fd,
           replies + protocol::encode_line({{"end", true}, {"submitted", seq}, {"refused", 0}}));
}

struct NoticeRun {
  ClientResult<SubmitTotals> totals = ClientError::protocol("not run");
  std::string out;
  std::string err;
  bool notice_came_first = false;  // on stderr before any result was sent
};

NoticeRun submit_with_ack(const Json& ack, const std::string& notice,
                          const std::vector<std::string>& statuses = {"ok", "ok"}) {
  FakeControlSocket daemon;
  std::promise<void> notice_seen;
  daemon.serve([&, seen = notice_seen.get_future().share()](int fd) {
    serve_acknowledged_submit(fd, ack, seen);
  });
  std::vector<std::string> args = {"primes", "--wait"};
  for (const std::string& status : statuses) args.insert(args.end(), {"--data", status});
  Plan plan = text_plan("submit", args);
  SubmitInput input{plan.submit->data, -1, ""};
  SubmitWaiting waiting;
  waiting.accepted = [&plan](const Json& acknowledgement) {
    return submit_notice(*plan.request, acknowledgement);
  };
  CapturedFile out, err;
  auto client = Client::connect(daemon.path());
  EXPECT_TRUE(client) << client.error().message();
  auto running = std::async(std::launch::async, [&] {
    return client->submit(*plan.request, input, waiting, out.fd(), err.fd());
  });
  NoticeRun run;
  // Without a notice to wait for, a short look shows none comes early.
  run.notice_came_first =
      wait_until([&] { return !notice.empty() && err.text() == notice; },
                 notice.empty() ? std::chrono::milliseconds(200) : std::chrono::seconds(10));
  notice_seen.set_value();
  run.totals = running.get();
  daemon.join();
  run.out = out.text();
  run.err = err.text();
  return run;
}

TEST(CtlResultsStreamTest, ADurableSubmitNamesItselfOnStderrBeforeItsResults) {
  const std::string notice =
      "corralctl: submit 5 to primes (if this connection is lost: corralctl results primes "
      "--submit 5 --follow)\n";
  NoticeRun durable = submit_with_ack({{"ok", true}, {"submit", 5}, {"durable", true}}, notice);
  ASSERT_TRUE(durable.totals) << durable.totals.error().message();
  EXPECT_TRUE(durable.notice_came_first);
  EXPECT_EQ(durable.err, notice);
  EXPECT_EQ(durable.totals->submit, 5u);
  EXPECT_TRUE(durable.totals->durable);
  EXPECT_EQ(durable.totals->results, 2u);

  NoticeRun in_memory = submit_with_ack({{"ok", true}, {"submit", 6}, {"durable", false}}, "");
  ASSERT_TRUE(in_memory.totals) << in_memory.totals.error().message();
  EXPECT_EQ(in_memory.err, "");
  EXPECT_EQ(in_memory.totals->submit, 6u);
  EXPECT_FALSE(in_memory.totals->durable);
  EXPECT_EQ(in_memory.totals->results, 2u);
  EXPECT_EQ(std::count(in_memory.out.begin(), in_memory.out.end(), '\n'), 2);
}

// Results of status cancelled and expired are printed as they come and
// counted apart, so that the summary names them and the exit code is 1.
TEST(CtlResultsStreamTest, CancelledAndExpiredResultsOfASubmitAreCounted) {
  NoticeRun run = submit_with_ack({{"ok", true}, {"submit", 2}, {"durable", false}}, "",
                                  {"ok", "cancelled", "expired", "expired", "dead"});
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.totals->results, 5u);
  EXPECT_EQ(run.totals->cancelled, 1u);
  EXPECT_EQ(run.totals->expired, 2u);
  EXPECT_EQ(run.totals->failed, 1u);
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 5);
  Plan plan = text_plan("submit", {"primes", "-", "--wait"});
  run.totals->submitted = 5;
  EXPECT_EQ(format_submit(plan, *run.totals, Format::kText),
            (Output{"",
                    "corralctl: 4 of 5 tasks did not end ok: 1 failed or dead, 1 cancelled, 2 "
                    "expired\n",
                    protocol::kExitFailed}));
}

}  // namespace
}  // namespace corral::ctl

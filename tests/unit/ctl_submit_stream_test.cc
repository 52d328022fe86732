// corralctl's side of the submit stream (ctl/submit.cc), against a fake
// corrald on a thread: tasks out and results in at once, back-pressure,
// refusals, errors, --ordered, --timeout and the notice of why nothing runs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ctl/client.h"
#include "protocol/control.h"
#include "protocol/task_lines.h"
#include "tests/support/captured_file.h"
#include "tests/support/fake_control_socket.h"

namespace corral::ctl {
namespace {

using corral::testing::CapturedFile;

using StreamArgs = std::vector<std::string>;

using corral::testing::FakeControlSocket;
using corral::testing::send_all;

// Reads lines from a blocking fd, in chunks.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool next(std::string& line) {
    while (true) {
      size_t newline = buffer_.find('\n', start_);
      if (newline != std::string::npos) {
        line.assign(buffer_, start_, newline - start_);
        start_ = newline + 1;
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      char chunk[64 * 1024];
      ssize_t n = ::recv(fd_, chunk, read_size_, 0);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void set_read_size(size_t n) { read_size_ = std::min(n, size_t{64 * 1024}); }

 private:
  int fd_;
  std::string buffer_;
  size_t start_ = 0;
  size_t read_size_ = 64 * 1024;
};

// What the fake corrald saw and how it behaves.
struct Script {
  // Payload -> its fate; others are ok with the payload as result.
  std::string refuse = "REFUSE";  // refused: {"seq":S,"status":"refused","error":"too big"}
  std::string fail = "FAIL";      // result with status failed
  std::chrono::milliseconds slow_start{0};  // sleep before reading the tasks
  size_t slow_lines = 0;                    // then read this many lines in small reads
  bool reverse = false;                     // with wait: the results after `.`, last task first
  bool silent = false;  // with wait: no result ever; after `.`, wait for a hang-up
  // With "batches" asked: ok results in batches of up to this many, each
  // sent in three pieces (its line, then its bytes in two) a moment apart.
  size_t batch = 0;
  std::string bad_batch_line;  // sent instead of the first batch's line
  std::string bad_batch_body;  // sent instead of the first batch's results
  // Filled by the fake:
  Json request;
  std::vector<std::string> payloads;
  bool saw_end = false;
};

// A corrald for one submit: acks, reads `+` lines, answers each as it reads
// it (with wait: a result line; a refusal in any case) with blocking writes,
// and sends the end line after `.`.
void serve_submit(int fd, Script& script) {
  LineReader reader(fd);
  std::string line;
  if (!reader.next(line)) return;
  script.request = Json::parse(line);
  bool wait = script.request.value("wait", false);
  send_all(fd, "{\"ok\":true}\n");
  std::this_thread::sleep_for(script.slow_start);
  uint64_t seq = 0;
  uint64_t refused = 0;
  std::string replies;
  std::vector<std::string> held;  // script.reverse: the results, last first
  const bool batches = script.batch > 0 && script.request.value("batches", false);
  std::string batch;  // its results
  uint64_t batched = 0;
  uint64_t batch_seq = 0;  // its first task's
  auto send_batch = [&] {
    if (batched == 0) return;
    send_all(fd, replies);
    replies.clear();
    std::string line = protocol::batch_line({batched, batch_seq + 100, batch_seq, 1, batch.size()});
    if (!script.bad_batch_line.empty()) line = std::exchange(script.bad_batch_line, {});
    if (!script.bad_batch_body.empty()) batch = std::exchange(script.bad_batch_body, {});
    send_all(fd, line);
    const size_t half = batch.size() / 2;
    for (std::string_view piece :
         {std::string_view(batch).substr(0, half), std::string_view(batch).substr(half)}) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      send_all(fd, std::string(piece));
    }
    batch.clear();
    batched = 0;
  };
  if (script.slow_lines > 0) reader.set_read_size(512);
  while (reader.next(line)) {
    if (line == ".") {
      script.saw_end = true;
      break;
    }
    if (line.empty() || line[0] != '+') {
      send_all(fd, protocol::encode_line(protocol::error_reply("bad line")));
      return;
    }
    std::string payload = line.substr(1);
    if (payload == script.refuse) {
      ++refused;
      replies += protocol::encode_line({{"seq", seq}, {"status", "refused"}, {"error", "too big"}});
    } else if (wait && !script.silent) {
      std::string status = payload == script.fail ? "failed" : "ok";
      const std::string json_result =
          Json(payload).dump(-1, ' ', false, Json::error_handler_t::replace);
      std::string result = "{\"id\":" + std::to_string(seq + 100) +
                           ",\"seq\":" + std::to_string(seq) + ",\"status\":\"" + status +
                           "\",\"result\":" + json_result + ",\"attempts\":1}\n";
      if (script.reverse) {
        held.insert(held.begin(), std::move(result));
      } else if (batches && status == "ok") {
        if (batched == 0) batch_seq = seq;
        batch += json_result + "\n";
        if (++batched == script.batch) send_batch();
      } else {
        send_batch();
        replies += result;
      }
    }
    ++seq;
    script.payloads.push_back(std::move(payload));
    if (script.payloads.size() == script.slow_lines) reader.set_read_size(64 * 1024);
    if (replies.size() > 16 * 1024) {
      send_all(fd, replies);  // blocks while corralctl does not read
      replies.clear();
    }
  }
  if (script.silent) {
    while (reader.next(line)) {
    }
    return;
  }
  send_batch();
  for (const std::string& result : held) replies += result;
  send_all(fd, replies);
  send_all(fd, protocol::encode_line(
                   {{"end", true}, {"submitted", seq - refused}, {"refused", refused}}));
}

struct Submitted {
  ClientResult<SubmitTotals> totals = ClientError::protocol("not run");
  std::string out;
  std::string err;
};

// Runs the submit of REQUEST and INPUT against DAEMON; a stream that does not
// end within a minute (a deadlock) fails the whole test binary.
Submitted submit(FakeControlSocket& daemon, const Json& request, const SubmitInput& input,
                 const SubmitWaiting& waiting = {}) {
  CapturedFile out, err;
  auto client = Client::connect(daemon.path());
  EXPECT_TRUE(client) << client.error().message();
  auto done = std::async(std::launch::async, [&] {
    return client->submit(request, input, waiting, out.fd(), err.fd());
  });
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "the submit stream is stuck";
    std::abort();
  }
  Submitted run;
  run.totals = done.get();
  run.out = out.text();
  run.err = err.text();
  return run;
}

// An open fd on PATH, closed at the end of the scope.
class OpenFile {
 public:
  explicit OpenFile(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    EXPECT_GE(fd_, 0) << path;
  }
  ~OpenFile() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

Json submit_request(bool wait) { return {{"cmd", "submit"}, {"job", "j"}, {"wait", wait}}; }

TEST(CtlSubmitStreamTest, DataThenLinesCarriageReturnsKeptNoTaskForTheEmptyLastLine) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("tasks.txt", "x\ny\r\n\nlast"));
  SubmitInput input{{"a", ""}, file.fd(), "tasks.txt"};
  Submitted run = submit(daemon, submit_request(false), input);
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(script.request, submit_request(false));
  EXPECT_EQ(script.payloads, StreamArgs({"a", "", "x", "y\r", "", "last"}));
  EXPECT_TRUE(script.saw_end);
  EXPECT_EQ(run.totals->submitted, 6u);
  EXPECT_EQ(run.totals->refused, 0u);
  EXPECT_FALSE(run.totals->rejected);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "");
}

TEST(CtlSubmitStreamTest, LineEndings) {
  struct Case {
    std::string content;
    StreamArgs payloads;
  };
  for (const Case& c : std::vector<Case>{{"", {}},
                                         {"\n", {""}},
                                         {"1\n2\n", {"1", "2"}},
                                         {"1\n2", {"1", "2"}},
                                         {"1\n\n", {"1", ""}},
                                         {"\r\n", {"\r"}}}) {
    FakeControlSocket daemon;
    Script script;
    daemon.serve([&](int fd) { serve_submit(fd, script); });
    OpenFile file(daemon.file("t", c.content));
    Submitted run = submit(daemon, submit_request(false), {{}, file.fd(), "t"});
    daemon.join();
    ASSERT_TRUE(run.totals) << run.totals.error().message();
    EXPECT_EQ(script.payloads, c.payloads) << Json(c.content);
    EXPECT_EQ(run.totals->submitted, c.payloads.size());
  }
}

TEST(CtlSubmitStreamTest, WaitCopiesResultLinesAndCountsFailures) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("t", "1\nFAIL\n\"quoted\"\n"));
  Submitted run = submit(daemon, submit_request(true), {{}, file.fd(), "t"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.out,
            "{\"id\":100,\"seq\":0,\"status\":\"ok\",\"result\":\"1\",\"attempts\":1}\n"
            "{\"id\":101,\"seq\":1,\"status\":\"failed\",\"result\":\"FAIL\",\"attempts\":1}\n"
            "{\"id\":102,\"seq\":2,\"status\":\"ok\",\"result\":\"\\\"quoted\\\"\","
            "\"attempts\":1}\n");
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.totals->submitted, 3u);
  EXPECT_EQ(run.totals->failed, 1u);
}

// A waiting submit of the lines TASKS that asks for batches, to a fake
// corrald that follows SCRIPT.
Submitted submit_in_batches(Script& script, const std::string& tasks) {
  FakeControlSocket daemon;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("t", tasks));
  Json request = submit_request(true);
  request["batches"] = true;
  Submitted run = submit(daemon, request, {{}, file.fd(), "t"});
  daemon.join();
  return run;
}

// Ok results in batches, each batch's bytes coming in pieces: unpacked into
// their lines, in the order they came among the other lines, and counted.
TEST(CtlSubmitStreamTest, BatchesOfOkResultsArePassedOnAsTheyCameAndCounted) {
  Script script;
  script.batch = 3;
  Submitted run = submit_in_batches(script, "1\n2\n3\n4\nFAIL\n5\n6\n");
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  std::string expected;
  for (int seq = 0; seq < 7; ++seq) {
    const bool failed = seq == 4;
    const std::string result = seq < 4  ? std::to_string(seq + 1)
                               : failed ? "FAIL"
                                        : std::to_string(seq);
    expected += "{\"id\":" + std::to_string(100 + seq) + ",\"seq\":" + std::to_string(seq) +
                ",\"status\":\"" + (failed ? "failed" : "ok") + "\",\"result\":\"" + result +
                "\",\"attempts\":1}\n";
  }
  // 1 2 3 in a batch, 4 alone (a batch of one), FAIL, 5 6 in a batch.
  EXPECT_EQ(run.out, expected);
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.totals->submitted, 7u);
  EXPECT_EQ(run.totals->results, 7u);
  EXPECT_EQ(run.totals->failed, 1u);
}

TEST(CtlSubmitStreamTest, AMalformedBatchLineIsAProtocolError) {
  for (std::string bad : {R"({"batch":2,"id":100,"seq":0,"attempts":1,"bytes":-5})"
                          "\n",
                          R"({"batch":2,"bytes":8})"
                          "\n",
                          R"({"batch":0,"id":100,"seq":0,"attempts":1,"bytes":0})"
                          "\n",
                          R"({"batch":2,"id":100,"seq":0,"attempts":1,"bytes":8,"x":1})"
                          "\n"}) {
    Script script;
    script.batch = 2;
    script.bad_batch_line = bad;
    Submitted run = submit_in_batches(script, "1\n2\n");
    ASSERT_FALSE(run.totals) << bad;
    EXPECT_EQ(run.totals.error().message(), "malformed batch line from corrald in a submit stream")
        << bad;
  }
}

// A batch whose results do not match its line (more or fewer bytes than
// it says, fewer results, a result that is not a JSON string) is an error,
// not lines made up.
TEST(CtlSubmitStreamTest, ABatchWhoseResultsDoNotMatchItsLineIsAProtocolError) {
  struct Case {
    std::string line;
    std::string body;
  };
  // The good batch: {"batch":2,...,"bytes":8} then "1"\n"2"\n.
  for (const Case& bad : {Case{R"({"batch":2,"id":100,"seq":0,"attempts":1,"bytes":3})"
                               "\n",
                               ""},
                          Case{R"({"batch":2,"id":100,"seq":0,"attempts":1,"bytes":12})"
                               "\n",
                               "\"1\"\n\"2\"\n\"3\"\n"},
                          Case{R"({"batch":3,"id":100,"seq":0,"attempts":1,"bytes":8})"
                               "\n",
                               ""},
                          Case{"", "\"1\"\n2\n\n\n"}, Case{"", "\"1\"\n\"\n\n\n"}}) {
    Script script;
    script.batch = 2;
    script.bad_batch_line = bad.line;
    script.bad_batch_body = bad.body;
    Submitted run = submit_in_batches(script, "1\n2\n");
    ASSERT_FALSE(run.totals) << bad.line << bad.body;
    EXPECT_EQ(run.totals.error().message(),
              "malformed batch of results from corrald in a submit stream")
        << bad.line << bad.body;
  }
}

TEST(CtlSubmitStreamTest, RefusalsNameTheirLineOrData) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  OpenFile file(daemon.file("t", "1\n2\nREFUSE\n4\n"));
  Submitted run = submit(daemon, submit_request(true), {{"x", "REFUSE"}, file.fd(), "stdin"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.err,
            "corralctl: --data #2: too big\n"
            "corralctl: stdin:3: too big\n");
  EXPECT_EQ(run.totals->submitted, 4u);
  EXPECT_EQ(run.totals->refused, 2u);
  EXPECT_EQ(run.totals->failed, 0u);
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 4);
}

TEST(CtlSubmitStreamTest, ALineOverTheLimitIsRefusedHereAndLaterLinesKeepTheirNumbers) {
  FakeControlSocket daemon;
  Script script;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  std::string huge(protocol::kMaxLineBytes + 5, 'h');
  std::string max(protocol::kMaxLineBytes - 1, 'm');  // '+' and it: exactly one line
  OpenFile file(
      daemon.file("t.txt", "1\n" + huge + "\n" + max + "\nREFUSE\n" + huge + "\n6\n" + huge));
  Submitted run = submit(daemon, submit_request(false), {{}, file.fd(), "t.txt"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  // Lines refused here are reported as they are read, corrald's as they come back.
  std::vector<std::string> errors;
  for (size_t start = 0, end; (end = run.err.find('\n', start)) != std::string::npos;
       start = end + 1) {
    errors.push_back(run.err.substr(start, end - start));
  }
  std::sort(errors.begin(), errors.end());
  std::string too_long = " bytes is over the line limit of 1048575 bytes; not sent";
  EXPECT_EQ(errors, StreamArgs({"corralctl: t.txt:2: task of 1048581" + too_long,
                                "corralctl: t.txt:4: too big",
                                "corralctl: t.txt:5: task of 1048581" + too_long,
                                "corralctl: t.txt:7: task of 1048581" + too_long}));
  EXPECT_EQ(script.payloads, StreamArgs({"1", max, "REFUSE", "6"}));
  EXPECT_EQ(run.totals->submitted, 3u);
  EXPECT_EQ(run.totals->refused, 4u);
}

TEST(CtlSubmitStreamTest, ALargeInputUnderBackPressureArrivesWholeAndInOrder) {
  FakeControlSocket daemon;
  Script script;
  script.slow_start = std::chrono::milliseconds(300);
  script.slow_lines = 20000;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  constexpr int kLines = 200000;
  constexpr int kRefused = 123457;  // 1-based line
  std::string content;
  for (int i = 1; i <= kLines; ++i) {
    content += i == kRefused ? std::string("REFUSE") : "task-" + std::to_string(i);
    content += '\n';
  }
  OpenFile file(daemon.file("big.txt", content));
  Submitted run = submit(daemon, submit_request(true), {{}, file.fd(), "big.txt"});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_EQ(run.totals->submitted, uint64_t{kLines - 1});
  EXPECT_EQ(run.totals->refused, 1u);
  EXPECT_EQ(run.err, "corralctl: big.txt:" + std::to_string(kRefused) + ": too big\n");
  ASSERT_EQ(script.payloads.size(), size_t{kLines});
  for (int i = 1; i <= kLines; i += 997) {
    if (i != kRefused) {
      EXPECT_EQ(script.payloads[i - 1], "task-" + std::to_string(i));
    }
  }
  EXPECT_EQ(script.payloads.back(), "task-200000");
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), kLines - 1);
  EXPECT_NE(
      run.out.find("{\"id\":199999,\"seq\":199899,\"status\":\"ok\",\"result\":\"task-199900\""),
      std::string::npos);
}

TEST(CtlSubmitStreamTest, ARejectedSubmitSendsNothing) {
  FakeControlSocket daemon;
  std::promise<std::string> after_reply;
  daemon.serve([&](int fd) {
    LineReader reader(fd);
    std::string line;
    reader.next(line);
    send_all(fd, protocol::encode_line(protocol::error_reply("unknown job 'j'")));
    std::string after;
    char chunk[256];
    ssize_t n;
    while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0) after.append(chunk, n);
    after_reply.set_value(after);
  });
  Submitted run = submit(daemon, submit_request(false), {{"1", "2"}, -1, ""});
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  ASSERT_TRUE(run.totals->rejected);
  EXPECT_EQ(*run.totals->rejected, protocol::error_reply("unknown job 'j'"));
  EXPECT_EQ(run.totals->submitted, 0u);
  EXPECT_EQ(after_reply.get_future().get(), "");  // the client has hung up by now
}

TEST(CtlSubmitStreamTest, AnErrorLineInTheStreamEndsItWithThatMessage) {
  FakeControlSocket daemon;
  daemon.serve([&](int fd) {
    LineReader reader(fd);
    std::string line;
    reader.next(line);
    send_all(fd, "{\"ok\":true}\n");
    reader.next(line);
    send_all(fd, protocol::encode_line(protocol::error_reply("bad line in a submit stream")));
  });
  Submitted run = submit(daemon, submit_request(false), {{"1"}, -1, ""});
  daemon.join();
  ASSERT_FALSE(run.totals);
  EXPECT_EQ(run.totals.error().kind(), ClientError::Kind::kProtocol);
  EXPECT_EQ(run.totals.error().message(), "bad line in a submit stream");
}

TEST(CtlSubmitStreamTest, ADaemonThatHangsUpMidStreamIsAProtocolError) {
  FakeControlSocket daemon;
  daemon.serve([&](int fd) {
    LineReader reader(fd);
    std::string line;
    reader.next(line);
    send_all(
        fd,
        "{\"ok\":true}\n{\"id\":1,\"seq\":0,\"status\":\"ok\",\"result\":\"r\",\"attempts\":1}\n");
  });
  OpenFile file("/dev/zero");  // never ends: only the hang-up can stop the stream
  Submitted run = submit(daemon, submit_request(true), {{}, file.fd(), "zero"});
  daemon.join();
  ASSERT_FALSE(run.totals);
  EXPECT_EQ(run.totals.error().message(),
            "corrald closed the connection before the end of the submit");
  EXPECT_EQ(run.out, "{\"id\":1,\"seq\":0,\"status\":\"ok\",\"result\":\"r\",\"attempts\":1}\n");
}

TEST(CtlSubmitStreamTest, ARefusedPeerIsUnreachable) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) {
    send_all(fd, protocol::encode_line(
                     {{"ok", false}, {"error", "uid 1000 may not connect"}, {"refused", true}}));
  });
  Submitted run = submit(daemon, submit_request(false), {{"1"}, -1, ""});
  daemon.join();
  ASSERT_FALSE(run.totals);
  EXPECT_EQ(run.totals.error().kind(), ClientError::Kind::kUnreachable);
}

// The seq of each result line of OUT, in order.
std::vector<uint64_t> seqs_of(const std::string& out) {
  std::vector<uint64_t> seqs;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) seqs.push_back(Json::parse(line)["seq"]);
  return seqs;
}

// The same results and counts either way: ok results are not failures
// because --ordered reads each line.
TEST(CtlSubmitStreamTest, OrderedPrintsTheResultsInTheOrderOfTheTasks) {
  for (bool ordered : {false, true}) {
    FakeControlSocket daemon;
    Script script;
    script.reverse = true;
    script.refuse = "3";
    daemon.serve([&](int fd) { serve_submit(fd, script); });
    SubmitInput input{{"0", "1", "2", "3", "4", "FAIL"}, -1, ""};
    SubmitWaiting waiting;
    waiting.ordered = ordered;
    Submitted run = submit(daemon, submit_request(true), input, waiting);
    daemon.join();
    ASSERT_TRUE(run.totals) << run.totals.error().message();
    const std::vector<uint64_t> expected =
        ordered ? std::vector<uint64_t>{0, 1, 2, 4, 5} : std::vector<uint64_t>{5, 4, 2, 1, 0};
    EXPECT_EQ(seqs_of(run.out), expected);
    EXPECT_EQ(run.totals->results, 5u);
    EXPECT_EQ(run.totals->failed, 1u) << ordered;
    EXPECT_EQ(run.totals->cancelled + run.totals->expired, 0u);
    EXPECT_EQ(run.err, "corralctl: --data #4: too big\n");
  }
}

// Memory stays bounded: with the first result missing, --ordered sends no
// more than kOrderedWindow tasks; --timeout then ends the wait.
TEST(CtlSubmitStreamTest, OrderedSendsAWindowAheadOfTheFirstMissingResult) {
  FakeControlSocket daemon;
  Script script;
  script.silent = true;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  SubmitInput input;
  for (uint64_t i = 0; i < kOrderedWindow + 500; ++i) input.data.push_back(std::to_string(i));
  SubmitWaiting waiting;
  waiting.ordered = true;
  waiting.timeout = std::chrono::milliseconds(300);
  Submitted run = submit(daemon, submit_request(true), input, waiting);
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_TRUE(run.totals->timed_out);
  EXPECT_TRUE(run.totals->input_unsent);
  EXPECT_EQ(script.payloads.size(), kOrderedWindow);
  EXPECT_FALSE(script.saw_end);
}

// With no result for a second, the stream asks why, says it once on stderr,
// and asks again each second without repeating itself.
TEST(CtlSubmitStreamTest, WithoutResultsItSaysWhyOnceAndTheTimeoutEndsTheWait) {
  FakeControlSocket daemon;
  Script script;
  script.silent = true;
  daemon.serve([&](int fd) { serve_submit(fd, script); });
  SubmitWaiting waiting;
  waiting.timeout = std::chrono::milliseconds(2500);
  int asked = 0;
  waiting.why_waiting = [&]() -> std::optional<std::string> {
    ++asked;
    return "waiting: j has 0 of 1 worker running";
  };
  Submitted run = submit(daemon, submit_request(true), {{"1", "2"}, -1, ""}, waiting);
  daemon.join();
  ASSERT_TRUE(run.totals) << run.totals.error().message();
  EXPECT_TRUE(run.totals->timed_out);
  EXPECT_FALSE(run.totals->input_unsent);
  EXPECT_EQ(script.payloads, StreamArgs({"1", "2"}));
  EXPECT_EQ(run.err, "corralctl: waiting: j has 0 of 1 worker running\n");
  EXPECT_GE(asked, 2);
}

}  // namespace
}  // namespace corral::ctl

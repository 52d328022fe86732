// Tests of protocol/control.h: reading a request line and checking a
// request's command and fields before a command runs, against the requests
// that docs/control-protocol.md documents.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "protocol/control.h"

namespace corral::protocol {
namespace {

// The reason a line is not a request corrald takes, or "" when it is.
std::string check(std::string_view line) {
  auto request = parse_request_line(line);
  if (!request) return request.error().message();
  return message_of(check_request(*request));
}

TEST(ParseRequestLineTest, ReadsJsonAndRefusesTheRest) {
  auto request = parse_request_line(R"({"cmd":"status"})");
  ASSERT_TRUE(request);
  EXPECT_EQ(*request, Json({{"cmd", "status"}}));
  auto bad = parse_request_line(R"({"cmd":)");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "bad JSON in request");
  auto long_line = parse_request_line(std::string(kMaxLineBytes + 1, ' '));
  ASSERT_FALSE(long_line);
  EXPECT_EQ(long_line.error().message(), "request line longer than 1048576 bytes");
}

// Each request docs/control-protocol.md shows (a `{"cmd":...}` span), with its
// placeholders filled in: [...] is a list of targets, J a job. A span that is
// not JSON then is an error of the document or of this reading, and fails.
struct DocumentedRequest {
  std::string text;  // as the document shows it
  Json request;      // null when it did not read as JSON
};

std::vector<DocumentedRequest> documented_requests() {
  std::ifstream file(CORRAL_SOURCE_DIR "/docs/control-protocol.md");
  EXPECT_TRUE(file) << "cannot read docs/control-protocol.md";
  std::stringstream text;
  text << file.rdbuf();
  const std::string doc = text.str();
  std::vector<DocumentedRequest> requests;
  const std::regex span(R"(`(\{"cmd":"[^`]*\})`)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), span); it != std::sregex_iterator();
       ++it) {
    std::string shown = (*it)[1];
    std::string filled = std::regex_replace(shown, std::regex(R"(\[\.\.\.\])"), R"(["all"])");
    filled = std::regex_replace(filled, std::regex(R"(:J([,}]))"), R"(:"j"$1)");
    requests.push_back({shown, Json::parse(filled, nullptr, /*allow_exceptions=*/false)});
  }
  return requests;
}

TEST(CheckRequestTest, TakesEveryDocumentedRequest) {
  std::vector<DocumentedRequest> requests = documented_requests();
  EXPECT_GE(requests.size(), 20u) << "the document's requests were not found";
  for (const auto& [text, request] : requests) {
    ASSERT_FALSE(request.is_discarded()) << "not JSON once its placeholders are filled: " << text;
    EXPECT_EQ(message_of(check_request(request)), "") << text;
  }
}

// worker_fields() are the rows of the document's worker object table, in
// its order (a row may name two or three fields).
TEST(CheckRequestTest, WorkerFieldsAreTheDocumentedOnes) {
  std::ifstream file(CORRAL_SOURCE_DIR "/docs/control-protocol.md");
  ASSERT_TRUE(file);
  std::string line;
  bool in_table = false;
  std::vector<std::string> documented;
  const std::regex name(R"(`([a-z_]+)`)");
  while (std::getline(file, line)) {
    if (line.starts_with("## ")) in_table = line == "## Worker object";
    if (!in_table || !line.starts_with("| `")) continue;
    std::string first = line.substr(0, line.find('|', 1));
    for (auto it = std::sregex_iterator(first.begin(), first.end(), name);
         it != std::sregex_iterator(); ++it) {
      documented.push_back((*it)[1]);
    }
  }
  std::vector<std::string> fields(worker_fields().begin(), worker_fields().end());
  EXPECT_EQ(fields, documented);
}

// A command or a field added to the document without support, or supported
// without being documented, fails here.
TEST(CheckRequestTest, TakesOnlyTheDocumentedCommandsAndFields) {
  std::map<std::string, std::set<std::string>> documented;  // command -> fields
  for (const auto& [text, request] : documented_requests()) {
    if (!request.is_object() || !request.contains("cmd")) continue;
    std::set<std::string>& fields = documented[request["cmd"].get<std::string>()];
    for (const auto& [key, value] : request.items()) {
      if (key != "cmd") fields.insert(key);
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, fields] : documented) names.push_back(name);
  EXPECT_EQ(request_commands(), names);
  for (const auto& [name, fields] : documented) {
    EXPECT_EQ(request_fields(name), std::vector<std::string>(fields.begin(), fields.end())) << name;
  }
  EXPECT_THAT(request_fields("fly"), ::testing::IsEmpty());
}

// What the document allows besides its examples: null targets, no optional
// field, timeout_s at its bounds.
TEST(CheckRequestTest, TakesTheVariantsTheDocumentAllows) {
  for (const char* line : {
           R"({"cmd":"status","targets":null})",
           R"({"cmd":"start","targets":["web","web:1","all"]})",
           R"({"cmd":"restart","targets":["web"],"rolling":false})",
           R"({"cmd":"tail","target":"web:0"})",
           R"({"cmd":"submit","job":"primes"})",
           R"({"cmd":"stats"})",
           R"({"cmd":"wait","job":"primes","drained":true,"timeout_s":1e9})",
           R"({"cmd":"wait","job":"primes","running":true,"timeout_s":0})",
       }) {
    EXPECT_EQ(check(line), "") << line;
  }
}

TEST(CheckRequestTest, NamesTheCommandOrFieldThatIsWrong) {
  EXPECT_EQ(check(R"(["status"])"), "a request is a JSON object");
  EXPECT_EQ(check(R"({"cmd":7})"), "a request needs \"cmd\": a string");
  EXPECT_EQ(check(R"({"cmd":"fly"})"), "unknown command: fly");
  EXPECT_EQ(check(R"({"cmd":"status","targetz":[]})"),
            "unknown field \"targetz\" in a status request (it takes fields, targets)");
  EXPECT_EQ(check(R"({"cmd":"version","x":1})"),
            "unknown field \"x\" in a version request (it takes none)");
}

// Each of these used to reach a command that read the field with
// nlohmann's get<>() or value(), which throws on a wrong type: the
// exception left the event loop and ended corrald.
TEST(CheckRequestTest, RefusesFieldsOfTheWrongType) {
  EXPECT_EQ(check(R"({"cmd":"restart","targets":["web"],"rolling":"yes"})"),
            "\"rolling\" must be true or false in a restart request");
  EXPECT_EQ(check(R"({"cmd":"tail","target":"web:0","stderr":1})"),
            "\"stderr\" must be true or false in a tail request");
  EXPECT_EQ(check(R"({"cmd":"tail","target":"web:0","follow":null})"),
            "\"follow\" must be true or false in a tail request");
  EXPECT_EQ(check(R"({"cmd":"tail","target":"web:0","lines":-1})"),
            "\"lines\" must be an integer, 0 or more in a tail request");
  EXPECT_EQ(check(R"({"cmd":"submit","job":"primes","wait":"no"})"),
            "\"wait\" must be true or false in a submit request");
  EXPECT_EQ(check(R"({"cmd":"wait","job":"primes","running":1})"),
            "\"running\" must be true or false in a wait request");
  EXPECT_EQ(check(R"({"cmd":"stats","job":["primes"]})"),
            "\"job\" must be a string in a stats request");
  EXPECT_EQ(check(R"({"cmd":"status","targets":"web"})"),
            "\"targets\" must be a list of strings in a status request");
  EXPECT_EQ(check(R"({"cmd":"status","fields":"name"})"),
            "\"fields\" must be a list of worker fields in a status request");
  EXPECT_EQ(check(R"({"cmd":"status","fields":["name",7]})"),
            "\"fields\" must be a list of worker fields in a status request");
  EXPECT_EQ(check(R"({"cmd":"status","fields":["name","rss"]})"),
            "\"fields\" names no worker field \"rss\" (they are name, job, index, state, pid, "
            "uptime_s, restarts, exit_status, exit_description, spawn_error, description, cgroup, "
            "cgroup_off, paused, limits, tasks_ok, tasks_failed, tasks_held, job_tasks, broker, "
            "cpu_s, rss_bytes, cgroup_memory_bytes, cpu_percent, threads, voluntary_switches, "
            "involuntary_switches, enforced, exits) in a status request");
  EXPECT_EQ(check(R"({"cmd":"status","fields":[]})"), "");
  EXPECT_EQ(check(R"({"cmd":"stop","targets":["web",0]})"),
            "\"targets\" must be a list of strings in a stop request");
  EXPECT_EQ(check(R"({"cmd":"signal","signal":9,"targets":["web"]})"),
            "\"signal\" must be a string in a signal request");
}

// A timeout_s too large for a deadline was multiplied by 1000 and cast to
// int64_t: undefined behaviour, and an overflowing deadline.
TEST(CheckRequestTest, RefusesTimeoutsThatAreNotUsableSeconds) {
  const std::string error =
      "\"timeout_s\" must be a number of seconds from 0 to 1e9 in a wait request";
  EXPECT_EQ(check(R"({"cmd":"wait","job":"j","running":true,"timeout_s":1e999})"),
            "bad JSON in request");  // out of a double's range
  EXPECT_EQ(message_of(check_request({{"cmd", "wait"},
                                      {"job", "j"},
                                      {"running", true},
                                      {"timeout_s", std::numeric_limits<double>::infinity()}})),
            error);
  EXPECT_EQ(check(R"({"cmd":"wait","job":"j","running":true,"timeout_s":1e300})"), error);
  EXPECT_EQ(check(R"({"cmd":"wait","job":"j","running":true,"timeout_s":-1})"), error);
  EXPECT_EQ(check(R"({"cmd":"wait","job":"j","running":true,"timeout_s":"5s"})"), error);
}

TEST(TargetTest, PrintsAndParsesBack) {
  for (const char* text : {"all", "web", "web:0", "a.b-c_d:4294967295"}) {
    auto target = parse_target(text);
    ASSERT_TRUE(target) << text;
    EXPECT_EQ(to_string(*target), text);
  }
  EXPECT_EQ(parse_target("web:007").value_or({}), (Target{"web", 7}));
}

// supervisorctl's GROUP:*: every worker of the job, printed back as JOB.
TEST(TargetTest, JobColonStarIsTheJob) {
  auto target = parse_target("web:*");
  ASSERT_TRUE(target) << target.error().message();
  EXPECT_EQ(*target, (Target{"web", std::nullopt}));
  EXPECT_EQ(to_string(*target), "web");
  EXPECT_EQ(parse_target("a.b-c_d:*").value_or({}), (Target{"a.b-c_d", std::nullopt}));
}

TEST(TargetTest, BadTargetsSayWhatIsWrong) {
  const std::string expected = " (expected JOB, JOB:INDEX, JOB:* or all)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "invalid target ''"},
      {"w b", "invalid target 'w b'"},
      {"*", "invalid target '*'"},
      {":1", "invalid target ':1': no JOB before ':'"},
      {":*", "invalid target ':*': no JOB before ':'"},
      {"*:1", "invalid target '*:1': '*' is not a job name"},
      {"*:*", "invalid target '*:*': '*' is not a job name"},
      {"web:", "invalid target 'web:': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
      {"web:*x", "invalid target 'web:*x': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
      {"web:**", "invalid target 'web:**': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
      {"web:-1", "invalid target 'web:-1': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
      {"web:4294967296",
       "invalid target 'web:4294967296': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
      {"web:1:2", "invalid target 'web:1:2': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
      {"web:1*", "invalid target 'web:1*': after 'web:' comes a worker INDEX (0, 1, ...) or *"},
  };
  for (const auto& [text, message] : cases) {
    auto target = parse_target(text);
    ASSERT_FALSE(target) << text;
    EXPECT_EQ(target.error().message(), message + expected);
  }
}

}  // namespace
}  // namespace corral::protocol

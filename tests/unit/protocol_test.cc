// Tests of protocol/control.h: reading a request line and checking a
// request's command and fields before a command runs.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "protocol/control.h"

namespace corral::protocol {
namespace {

std::string check(std::string_view line) {
  std::string error;
  auto request = parse_request_line(line, error);
  if (!request) return error;
  return check_request(*request);
}

TEST(ParseRequestLineTest, ReadsJsonAndRefusesTheRest) {
  std::string error;
  auto request = parse_request_line(R"({"cmd":"status"})", error);
  ASSERT_TRUE(request);
  EXPECT_EQ(*request, Json({{"cmd", "status"}}));
  EXPECT_FALSE(parse_request_line(R"({"cmd":)", error));
  EXPECT_EQ(error, "bad JSON in request");
  EXPECT_FALSE(parse_request_line(std::string(kMaxLineBytes + 1, ' '), error));
  EXPECT_EQ(error, "request line longer than 1048576 bytes");
}

TEST(CheckRequestTest, TakesEveryDocumentedRequest) {
  for (const char* line : {
           R"({"cmd":"status"})",
           R"({"cmd":"status","targets":null})",
           R"({"cmd":"start","targets":["web","web:1","all"]})",
           R"({"cmd":"restart","targets":["web"],"rolling":true})",
           R"({"cmd":"signal","signal":"HUP","targets":["web:0"]})",
           R"({"cmd":"pid"})",
           R"({"cmd":"tail","target":"web:0","lines":10,"stderr":false,"follow":true})",
           R"({"cmd":"clear","targets":["web"]})",
           R"({"cmd":"reread"})",
           R"({"cmd":"submit","job":"primes","wait":true})",
           R"({"cmd":"stats"})",
           R"({"cmd":"wait","job":"primes","running":true,"drained":true,"timeout_s":0.5})",
           R"({"cmd":"wait","job":"primes","drained":true,"timeout_s":1e9})",
           R"({"cmd":"version"})",
           R"({"cmd":"shutdown"})",
       }) {
    EXPECT_EQ(check(line), "") << line;
  }
}

TEST(CheckRequestTest, NamesTheCommandOrFieldThatIsWrong) {
  EXPECT_EQ(check(R"(["status"])"), "a request is a JSON object");
  EXPECT_EQ(check(R"({"cmd":7})"), "a request needs \"cmd\": a string");
  EXPECT_EQ(check(R"({"cmd":"fly"})"), "unknown command: fly");
  EXPECT_EQ(check(R"({"cmd":"status","targetz":[]})"),
            "unknown field \"targetz\" in a status request (it takes targets)");
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
  EXPECT_EQ(check_request({{"cmd", "wait"},
                           {"job", "j"},
                           {"running", true},
                           {"timeout_s", std::numeric_limits<double>::infinity()}}),
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
  EXPECT_EQ(parse_target("web:007"), (Target{"web", 7}));
  for (const char* text : {"", ":1", "web:", "web:-1", "web:4294967296", "w b", "web:1:2"}) {
    EXPECT_FALSE(parse_target(text)) << text;
  }
}

}  // namespace
}  // namespace corral::protocol

// Tests of ctl/output.h: the exit codes of usage errors and failures, and
// reply fields of the wrong type read as absent instead of throwing.
#include <gtest/gtest.h>

#include "ctl/output.h"
#include "protocol/exit_codes.h"

namespace corral::ctl {
namespace {

TEST(CtlOutputTest, UsageErrorsExit2AndFailuresExit1) {
  EXPECT_EQ(usage_error(nullptr, "unknown command 'fly'"),
            (Output{"",
                    "corralctl: unknown command 'fly'\n"
                    "run 'corralctl help' for the list of commands\n",
                    protocol::kExitUsage}));
  EXPECT_EQ(failed("no such job"), (Output{"", "corralctl: no such job\n", protocol::kExitFailed}));
  EXPECT_EQ(malformed("no \"workers\"").err,
            "corralctl: malformed reply from corrald: no \"workers\"\n");
  EXPECT_EQ(error_reply(Json{{"ok", false}, {"error", "unknown job x"}}).err,
            "corralctl: unknown job x\n");
  EXPECT_EQ(error_reply(Json{{"ok", false}}).err,
            "corralctl: corrald reported an error without a message\n");
}

TEST(CtlOutputTest, FieldsOfTheWrongTypeReadAsAbsent) {
  Json reply = {{"ok", "yes"}, {"name", 5}, {"count", 2.5}, {"pid", 42}, {"workers", {1}}};
  EXPECT_FALSE(ok_field(reply));
  EXPECT_TRUE(ok_field(Json{{"ok", true}}));
  EXPECT_EQ(string_field(reply, "name"), "");
  EXPECT_EQ(int_field(reply, "count"), std::nullopt);
  EXPECT_EQ(int_field(reply, "pid"), 42);
  EXPECT_DOUBLE_EQ(number_field(reply, "count"), 2.5);
  EXPECT_DOUBLE_EQ(number_field(reply, "name"), 5);
  EXPECT_DOUBLE_EQ(number_field(reply, "missing"), 0);
  EXPECT_EQ(workers_of(reply), nullptr);  // a list, but not of objects
  Json good = {{"workers", Json::array({Json{{"name", "web:0"}}, Json{{"name", "db:10"}}})}};
  ASSERT_NE(workers_of(good), nullptr);
  EXPECT_EQ(name_width(*workers_of(good)), 5u);
}

TEST(CtlOutputTest, TextPieces) {
  EXPECT_EQ(dump(Json{{"a", 1}}), "{\n  \"a\": 1\n}\n");
  EXPECT_EQ(one_line("a\nb\rc"), "a\\nb\\rc");
  EXPECT_EQ(value_text(Json("x")), "\"x\"");
  EXPECT_EQ(value_text(Json(0.5)), "0.5");
  EXPECT_EQ(format_micros(850), "850us");
  EXPECT_EQ(format_micros(12'345), "12.3ms");
  EXPECT_EQ(format_micros(1'200'000), "1.20s");
  EXPECT_EQ(plural(1, "task", "tasks"), "1 task");
  EXPECT_EQ(plural(0, "task", "tasks"), "0 tasks");
  EXPECT_EQ(without_ok(Json{{"ok", true}, {"n", 1}}), Json({{"n", 1}}));
  EXPECT_EQ(pad("ab", 4), "ab  ");
  std::string line = "x  ";
  trim_right(line);
  EXPECT_EQ(line, "x");
}

}  // namespace
}  // namespace corral::ctl

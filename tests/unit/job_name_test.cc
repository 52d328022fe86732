// Tests of base/job_name.h: the one rule for job names, and that the config and
// the control protocol both keep to it.
#include "base/job_name.h"

#include <gtest/gtest.h>

#include "config/parse.h"
#include "protocol/control.h"

namespace corral {
namespace {

TEST(ValidJobNameTest, TakesLettersDigitsAndThreeMarks) {
  for (const char* name : {"web", "Web-2", "a_b.c", "...", ".hidden", "a..b", "-", "_"}) {
    EXPECT_TRUE(valid_job_name(name)) << name;
  }
  for (const char* name : {"", ".", "..", "a b", "a/b", "a:b", "é", "all*"}) {
    EXPECT_FALSE(valid_job_name(name)) << name;
  }
}

TEST(ValidJobNameTest, TheConfigRefusesDotAndDotDot) {
  for (const char* name : {".", ".."}) {
    auto result = config::load_string(std::string("jobs:\n  \"") + name + "\": {command: x}\n",
                                      "test.yaml", 1, false);
    ASSERT_FALSE(result.ok()) << name;
    ASSERT_EQ(result.error().size(), 1u) << name;
    EXPECT_EQ(result.error()[0].str(), std::string("test.yaml:2:3: invalid job name \"") + name +
                                           "\": use letters, digits, '_', '.' and '-'");
  }
  EXPECT_TRUE(config::load_string("jobs:\n  a.b: {command: x}\n", "test.yaml", 1, false).ok());
}

TEST(ValidJobNameTest, TheProtocolRefusesDotAndDotDotAsTargets) {
  for (const char* target : {".", "..", ".:0", "..:1"}) {
    EXPECT_FALSE(protocol::parse_target(target)) << target;
  }
  auto target = protocol::parse_target("a.b:2");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->job, "a.b");
  EXPECT_EQ(target->index, 2u);
  EXPECT_FALSE(protocol::valid_job_name(".."));
}

}  // namespace
}  // namespace corral

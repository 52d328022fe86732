// Tests of ctl/arguments.h: how every command splits its words into operands
// and options, and answers --help or a usage error at once.
#include <gtest/gtest.h>

#include <array>

#include "ctl/arguments.h"
#include "ctl/output.h"
#include "protocol/exit_codes.h"

namespace corral::ctl {
namespace {

const Command& tail() { return *find_command("tail"); }

constexpr std::array kOptions = {OptionSpec{"-f", false}, OptionSpec{"--lines", true}};

using Args = std::vector<std::string>;

TEST(CtlGlobalArgsTest, TakesEveryFormOfItsOptionsAndStopsAtTheCommand) {
  for (const Args& args : {Args{"-s", "/run/c.sock", "--json", "status", "-s", "x"},
                           Args{"-s/run/c.sock", "--json", "status", "-s", "x"},
                           Args{"--socket", "/run/c.sock", "--json", "status", "-s", "x"},
                           Args{"--json", "--socket=/run/c.sock", "status", "-s", "x"}}) {
    GlobalArgs global = split_global_args(args);
    ASSERT_FALSE(global.answer) << args[0];
    EXPECT_EQ(global.socket, "/run/c.sock") << args[0];
    EXPECT_FALSE(global.config);
    EXPECT_EQ(global.format, Format::kJson);
    // The command's words are its own, options included.
    EXPECT_EQ(global.words, (Args{"status", "-s", "x"})) << args[0];
  }
  for (const Args& args : {Args{"-c", "/etc/corral.yaml", "tail", "web:0"},
                           Args{"-c/etc/corral.yaml", "tail", "web:0"},
                           Args{"--config=/etc/corral.yaml", "tail", "web:0"}}) {
    GlobalArgs global = split_global_args(args);
    ASSERT_FALSE(global.answer) << args[0];
    EXPECT_EQ(global.config, "/etc/corral.yaml");
    EXPECT_FALSE(global.socket);
    EXPECT_EQ(global.format, Format::kText);
    EXPECT_EQ(global.words, (Args{"tail", "web:0"}));
  }
  // No command: the shell. `--` ends the options; a lone `-` is a word.
  EXPECT_TRUE(split_global_args({"-s", "x"}).words.empty());
  EXPECT_EQ(split_global_args({"--", "--json"}).words, (Args{"--json"}));
  EXPECT_EQ(split_global_args({"-"}).words, (Args{"-"}));
}

TEST(CtlGlobalArgsTest, HelpIsTheOverview) {
  for (const char* help : {"-h", "--help"}) {
    GlobalArgs global = split_global_args({"--json", help, "--bogus"});
    ASSERT_TRUE(global.answer);
    EXPECT_EQ(global.answer->out, overview());
    EXPECT_EQ(global.answer->exit_code, protocol::kExitOk);
  }
}

TEST(CtlGlobalArgsTest, BadOptionsAreUsageErrorsThatNameThem) {
  auto error_of = [](const Args& args) {
    GlobalArgs global = split_global_args(args);
    EXPECT_TRUE(global.answer);
    if (!global.answer) return std::string();
    EXPECT_EQ(global.answer->exit_code, protocol::kExitUsage);
    EXPECT_TRUE(global.answer->out.empty());
    return global.answer->err;
  };
  EXPECT_EQ(error_of({"--bogus", "status"}),
            "corralctl: unknown option '--bogus'\nrun 'corralctl help' for the list of commands\n");
  EXPECT_NE(error_of({"-s"}).find("-s needs a socket path"), std::string::npos);
  EXPECT_NE(error_of({"--socket="}).find("-s needs a socket path"), std::string::npos);
  EXPECT_NE(error_of({"--config"}).find("-c needs a config file"), std::string::npos);
  EXPECT_NE(error_of({"-s", "a", "--socket", "b", "status"}).find("-s is given twice"),
            std::string::npos);
  EXPECT_NE(error_of({"-s", "a", "-c", "b", "status"}).find("-s and -c exclude each other"),
            std::string::npos);
}

TEST(CtlArgumentsTest, SplitsOperandsFromOptionsInTheirOrder) {
  Operands split = split_args(tail(), {"web:0", "--lines", "5", "-f", "--lines=7", "-"},
                              Format::kText, kOptions);
  ASSERT_FALSE(split.answer);
  EXPECT_EQ(split.words, (std::vector<std::string>{"web:0", "-"}));
  using Option = std::pair<std::string_view, std::string>;
  EXPECT_EQ(split.options, (std::vector<Option>{{"--lines", "5"}, {"-f", ""}, {"--lines", "7"}}));
}

TEST(CtlArgumentsTest, DoubleDashEndsOptions) {
  Operands split = split_args(tail(), {"--", "-f", "--help"}, Format::kText, kOptions);
  ASSERT_FALSE(split.answer);
  EXPECT_EQ(split.words, (std::vector<std::string>{"-f", "--help"}));
  EXPECT_TRUE(split.options.empty());
}

TEST(CtlArgumentsTest, HelpIsAnsweredAtOnce) {
  Operands split = split_args(tail(), {"web:0", "--help", "--bogus"}, Format::kText, kOptions);
  ASSERT_TRUE(split.answer);
  EXPECT_EQ(*split.answer, help_of(tail(), Format::kText));
  EXPECT_EQ(split.answer->exit_code, protocol::kExitOk);
}

TEST(CtlArgumentsTest, BadOptionsAreUsageErrorsThatSayWhy) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--bogus"}, "tail: unknown option '--bogus'"},
      {{"--json"}, "tail: unknown option '--json' (global options go before the command)"},
      {{"-s", "/x"}, "tail: unknown option '-s' (global options go before the command)"},
      {{"--lines"}, "tail: --lines needs a value"},
      {{"-f=1"}, "tail: -f takes no value"},
  };
  for (const auto& c : cases) {
    Operands split = split_args(tail(), c.args, Format::kText, kOptions);
    ASSERT_TRUE(split.answer) << c.message;
    EXPECT_EQ(split.answer->exit_code, protocol::kExitUsage);
    EXPECT_EQ(split.answer->err,
              "corralctl: " + c.message + "\nusage: " + command_line(tail()) + "\n");
  }
}

TEST(CtlArgumentsTest, TargetsAreNormalizedOrNameTheBadOne) {
  const Command& start = *find_command("start");
  auto targets = parse_targets(start, {"web:007", "all", "db"});
  ASSERT_TRUE(targets);
  EXPECT_EQ(*targets, Json({"web:7", "all", "db"}));
  auto bad = parse_targets(start, {"web", "w b"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().exit_code, protocol::kExitUsage);
  EXPECT_EQ(bad.error().err,
            "corralctl: start: invalid target 'w b' (expected JOB, JOB:INDEX, JOB:* or all)\n"
            "usage: corralctl start TARGET...\n");
}

}  // namespace
}  // namespace corral::ctl

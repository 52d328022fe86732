// Tests of config/units.h: the small syntaxes of durations, sizes, signals,
// modes, CPU lists and command strings.
#include "config/units.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

namespace corral::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using Words = std::vector<std::string>;

// The value of RESULT, or nullopt when it holds an error.
template <typename T>
std::optional<T> value_of(const Result<T>& result) {
  return result.ok() ? std::optional<T>(*result) : std::nullopt;
}

TEST(ParseDurationTest, AcceptsEachUnit) {
  EXPECT_EQ(value_of(parse_duration("250ms")), milliseconds(250));
  EXPECT_EQ(value_of(parse_duration("30s")), seconds(30));
  EXPECT_EQ(value_of(parse_duration("2m")), minutes(2));
  EXPECT_EQ(value_of(parse_duration("1h")), hours(1));
}

TEST(ParseDurationTest, BareNumberIsSeconds) {
  EXPECT_EQ(value_of(parse_duration("10")), seconds(10));
  EXPECT_EQ(value_of(parse_duration("0")), milliseconds(0));
  EXPECT_EQ(value_of(parse_duration("0s")), milliseconds(0));
}

TEST(ParseDurationTest, AcceptsExactFractionsAndSpaces) {
  EXPECT_EQ(value_of(parse_duration("1.5s")), milliseconds(1500));
  EXPECT_EQ(value_of(parse_duration("0.25m")), seconds(15));
  EXPECT_EQ(value_of(parse_duration("0.100s")), milliseconds(100));
  EXPECT_EQ(value_of(parse_duration(" 5 s ")), seconds(5));
}

TEST(ParseDurationTest, RefusesWhatIsNotADuration) {
  for (const char* text : {"", "abc", "-1s", "+1s", "5 minutes", "1e3s", "10d", "s", "1.s", ".5s",
                           "0.5ms", "1.0001s", "off", "99999999999999999999h", "100000h"}) {
    EXPECT_EQ(value_of(parse_duration(text)), std::nullopt) << text;
  }
}

// The reason given for TEXT, which must be refused.
std::string duration_why(std::string_view text) {
  Result<Duration> duration = parse_duration(text);
  EXPECT_FALSE(duration.ok()) << text;
  return message_of(duration);
}

TEST(ParseDurationTest, SaysWhyItRefuses) {
  EXPECT_EQ(duration_why(""), "it is empty");
  EXPECT_EQ(duration_why("-5s"), "it is negative");
  EXPECT_EQ(duration_why("fast"), "it does not start with a number");
  EXPECT_EQ(duration_why(".5s"), "write a digit before the point, like 0.5");
  EXPECT_EQ(duration_why("1.s"), "write a digit after the point");
  EXPECT_EQ(duration_why("10 parsecs"), R"(unknown unit "parsecs"; use ms, s, m or h)");
  EXPECT_EQ(duration_why("5xs"), R"(unknown unit "xs"; use ms, s, m or h)");
  EXPECT_EQ(duration_why("5min"), R"(unknown unit "min"; write m)");
  EXPECT_EQ(duration_why("30 seconds"), R"(unknown unit "seconds"; write s)");
  EXPECT_EQ(duration_why("10S"), R"(unknown unit "S"; write s)");
  EXPECT_EQ(duration_why("1d"), R"(unknown unit "d"; write hours, like 24h)");
  EXPECT_EQ(duration_why("500us"), R"(unknown unit "us"; the finest unit is ms)");
  EXPECT_EQ(duration_why("5\x01"), "unknown unit; use ms, s, m or h");  // not shown
  EXPECT_EQ(duration_why("1,000ms"), "write the number without separators, like 1000");
  EXPECT_EQ(duration_why("0.5ms"), "not a whole number of milliseconds");
  EXPECT_EQ(duration_why("100000h"), "longer than 10 years, the longest duration");
  EXPECT_EQ(duration_why("99999999999999999999h"), "longer than 10 years, the longest duration");
}

TEST(FormatDurationTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(seconds(90)), "90s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(minutes(2)), "2m");
  EXPECT_EQ(format_duration(seconds(3600)), "1h");
  EXPECT_EQ(format_duration(hours(25)), "25h");
}

TEST(FormatDurationTest, ReadsBackEqual) {
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{61000},
                     int64_t{3600000}, int64_t{86400001}}) {
    EXPECT_EQ(value_of(parse_duration(format_duration(milliseconds(ms)))), milliseconds(ms)) << ms;
  }
}

TEST(ParseSizeTest, AcceptsBinaryAndDecimalLookingUnits) {
  EXPECT_EQ(value_of(parse_size("512")), 512u);
  EXPECT_EQ(value_of(parse_size("512B")), 512u);
  EXPECT_EQ(value_of(parse_size("1KiB")), kKiB);
  EXPECT_EQ(value_of(parse_size("10MiB")), 10 * kMiB);
  EXPECT_EQ(value_of(parse_size("2GiB")), 2 * kGiB);
  EXPECT_EQ(value_of(parse_size("10MB")), 10 * kMiB);  // powers of 1024 too
  EXPECT_EQ(value_of(parse_size("1KB")), kKiB);
  EXPECT_EQ(value_of(parse_size("1GB")), kGiB);
  EXPECT_EQ(value_of(parse_size("10 mib")), 10 * kMiB);
  EXPECT_EQ(value_of(parse_size("1.5KiB")), 1536u);
}

TEST(ParseSizeTest, RefusesWhatIsNotASize) {
  for (const char* text :
       {"", "-1", "1.3B", "10XB", "MiB", "99999999999999999999", "99999999999GiB", "1,000"}) {
    EXPECT_EQ(value_of(parse_size(text)), std::nullopt) << text;
  }
}

TEST(ParseSizeTest, SaysWhyItRefuses) {
  auto why = [](std::string_view text) {
    Result<uint64_t> size = parse_size(text);
    EXPECT_FALSE(size.ok()) << text;
    return message_of(size);
  };
  EXPECT_EQ(why("-10MiB"), "it is negative");
  EXPECT_EQ(why("MiB"), "it does not start with a number");
  EXPECT_EQ(why("10 furlongs"), R"(unknown unit "furlongs"; use B, KiB, MiB, GiB or TiB)");
  EXPECT_EQ(why("1,000"), "write the number without separators, like 1000");
  EXPECT_EQ(why("1.3B"), "not a whole number of bytes");
  EXPECT_EQ(why("99999999999GiB"), "too large");
  EXPECT_EQ(why("99999999999999999999"), "too large");
}

TEST(FormatSizeTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(1), "1B");
  EXPECT_EQ(format_size(1024), "1KiB");
  EXPECT_EQ(format_size(1536), "1536B");
  EXPECT_EQ(format_size(65536), "64KiB");
  EXPECT_EQ(format_size(10 * kMiB), "10MiB");
  EXPECT_EQ(format_size(3 * kGiB), "3GiB");
  for (uint64_t bytes : {uint64_t{0}, uint64_t{7}, kKiB + 1, 5 * kMiB, 1025 * kGiB}) {
    EXPECT_EQ(value_of(parse_size(format_size(bytes))), bytes) << bytes;
  }
}

TEST(ParseSignalTest, AcceptsNamesInAnySpellingAndNumbers) {
  EXPECT_EQ(value_of(parse_signal("TERM")), SIGTERM);
  EXPECT_EQ(value_of(parse_signal("SIGTERM")), SIGTERM);
  EXPECT_EQ(value_of(parse_signal("term")), SIGTERM);
  EXPECT_EQ(value_of(parse_signal("sigint")), SIGINT);
  EXPECT_EQ(value_of(parse_signal("15")), 15);
  EXPECT_EQ(value_of(parse_signal("KILL")), SIGKILL);
  EXPECT_EQ(value_of(parse_signal("USR1")), SIGUSR1);
}

TEST(ParseSignalTest, RefusesUnknownSignals) {
  for (const char* text : {"", "0", "FOO", "SIG", "100", "-15", "TERM2"}) {
    EXPECT_EQ(value_of(parse_signal(text)), std::nullopt) << text;
  }
}

TEST(SignalNameTest, NamesKnownSignalsAndNumbersTheRest) {
  EXPECT_EQ(signal_name(SIGTERM), "TERM");
  EXPECT_EQ(signal_name(SIGKILL), "KILL");
  EXPECT_EQ(signal_name(SIGHUP), "HUP");
  EXPECT_EQ(signal_name(40), "40");
  EXPECT_EQ(value_of(parse_signal(signal_name(40))), 40);
}

TEST(ParseModeTest, ReadsOctal) {
  EXPECT_EQ(value_of(parse_mode("0660")), 0660u);
  EXPECT_EQ(value_of(parse_mode("660")), 0660u);
  EXPECT_EQ(value_of(parse_mode("0755")), 0755u);
  EXPECT_EQ(value_of(parse_mode("0")), 0u);
  for (const char* text : {"", "0888", "abc", "77777", "0x1ff", "-660"}) {
    EXPECT_EQ(value_of(parse_mode(text)), std::nullopt) << text;
  }
}

TEST(ParseCpuListTest, ExpandsRangesSortedAndUnique) {
  EXPECT_EQ(value_of(parse_cpu_list("0-3,6")), (std::vector<int>{0, 1, 2, 3, 6}));
  EXPECT_EQ(value_of(parse_cpu_list("5")), (std::vector<int>{5}));
  EXPECT_EQ(value_of(parse_cpu_list("3,1,1,2-3")), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(value_of(parse_cpu_list(" 1 , 2 ")), (std::vector<int>{1, 2}));
}

TEST(ParseCpuListTest, RefusesMalformedLists) {
  for (const char* text : {"", "3-1", "a", "1,,2", "-1", "1-", "0-100000", "1.5"}) {
    EXPECT_EQ(value_of(parse_cpu_list(text)), std::nullopt) << text;
  }
}

TEST(SplitCommandTest, SplitsOnWhitespace) {
  EXPECT_EQ(value_of(split_command("corral-worker --handler primes")),
            (Words{"corral-worker", "--handler", "primes"}));
  EXPECT_EQ(value_of(split_command("  a \t b\n c  ")), (Words{"a", "b", "c"}));
  EXPECT_EQ(value_of(split_command("")), Words{});
  EXPECT_EQ(value_of(split_command("   ")), Words{});
}

TEST(SplitCommandTest, HonoursQuotesLikeAShell) {
  EXPECT_EQ(value_of(split_command("sh -c 'echo $HOME | wc'")),
            (Words{"sh", "-c", "echo $HOME | wc"}));
  EXPECT_EQ(value_of(split_command(R"(a "b c" d)")), (Words{"a", "b c", "d"}));
  EXPECT_EQ(value_of(split_command(R"("say \"hi\" \$x \\ \n")")), (Words{R"(say "hi" $x \ \n)"}));
  EXPECT_EQ(value_of(split_command(R"('single \ stays')")), (Words{R"(single \ stays)"}));
  EXPECT_EQ(value_of(split_command(R"(a\ b c)")), (Words{"a b", "c"}));
  EXPECT_EQ(value_of(split_command(R"(pre"mid"'post')")), (Words{"premidpost"}));
  EXPECT_EQ(value_of(split_command("a '' \"\"")), (Words{"a", "", ""}));
  EXPECT_EQ(value_of(split_command("a \\\nb")), (Words{"a", "b"}));
  EXPECT_EQ(value_of(split_command("a > out.log")), (Words{"a", ">", "out.log"}));  // no shell
}

TEST(SplitCommandTest, RefusesUnterminatedQuotesAndTrailingBackslash) {
  for (const char* text : {"a 'b", "a \"b", "a \\", R"("a\")"}) {
    EXPECT_EQ(value_of(split_command(text)), std::nullopt) << text;
  }
}

TEST(EditDistanceTest, IsLevenshtein) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("wokers", "workers"), 1u);
  EXPECT_EQ(edit_distance("comand", "command"), 1u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

TEST(UnitsTest, EachParserSaysWhyItRefuses) {
  EXPECT_EQ(message_of(parse_signal("FOO")), "unknown signal name");
  EXPECT_EQ(message_of(parse_signal("100")), "no signal has this number");
  EXPECT_EQ(message_of(parse_mode("0888")), "not an octal file mode from 0 to 7777");
  EXPECT_EQ(message_of(parse_cpu_list("3-1")),
            "not a CPU list of numbers and ranges like 0-3,6 (CPUs from 0 to 4095)");
  EXPECT_EQ(message_of(split_command("a 'b")), "unterminated quote or trailing backslash");
  EXPECT_EQ(message_of(split_command("a \\")), "unterminated quote or trailing backslash");
}

}  // namespace
}  // namespace corral::config

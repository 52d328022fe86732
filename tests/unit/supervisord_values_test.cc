// Tests of migrate/supervisord_values.h: supervisord's datatypes, Python's
// shlex and %-expansion, each against what supervisord 4 (Python 3) does.
#include "migrate/supervisord_values.h"

#include <gtest/gtest.h>

namespace corral::migrate {
namespace {

using Kind = ExpansionValue::Kind;

Expansions table() {
  return {{"program_name", {Kind::kText, "web", 0}},
          {"numprocs", {Kind::kInteger, "", 4}},
          {"process_num", {Kind::kProcessNum, "", 0}},
          {"here", {Kind::kText, "/etc/supervisor", 0}}};
}

// TEXT expanded for process N.
std::string for_process(std::string_view text, int64_t n) {
  auto out = expand(text, table(), "program:web.command", nullptr, n);
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().message());
  return out.ok() ? *out : "";
}

TEST(SupervisordExpandTest, FormatsAsPython) {
  EXPECT_EQ(for_process("%(program_name)s-%(process_num)02d", 3), "web-03");
  EXPECT_EQ(for_process("%(process_num)d of %(numprocs)d", 7), "7 of 4");
  EXPECT_EQ(for_process("100%% %(here)s", 0), "100% /etc/supervisor");
  EXPECT_EQ(for_process("[%(process_num)5s]", 1), "[    1]");
  EXPECT_EQ(for_process("[%(process_num)-4d]", 1), "[1   ]");
  EXPECT_EQ(for_process("%(process_num)+d|%(process_num) d", 1), "+1| 1");
  EXPECT_EQ(for_process("%(process_num)#x %(process_num)#o %(process_num)X", 255), "0xff 0o377 FF");
  EXPECT_EQ(for_process("%(process_num)05.3d", 1), "00001");  // Python, not C ("  001")
  EXPECT_EQ(for_process("%(process_num).3d", 5), "005");
  EXPECT_EQ(for_process("%(program_name).1s|%(program_name)5s", 0), "w|  web");
  EXPECT_EQ(for_process("%(program_name)r", 0), "'web'");
  EXPECT_EQ(for_process("%(process_num)ld", 2), "2");
}

TEST(SupervisordExpandTest, RefusesWhatPythonRefuses) {
  auto message = [](std::string_view text) {
    auto out = expand(text, table(), "program:web.command", nullptr, 0);
    return out.ok() ? std::string("ok: ") + *out : out.error().message();
  };
  EXPECT_EQ(message("%(nope)s"),
            "Format string '%(nope)s' for 'program:web.command' contains names ('nope') which "
            "cannot be expanded. Available names: here, numprocs, process_num, program_name");
  EXPECT_NE(message("50%").find("incomplete format"), std::string::npos);
  EXPECT_NE(message("%(here").find("incomplete format key"), std::string::npos);
  EXPECT_NE(message("%(here)q").find("unsupported format character 'q' (0x71) at index 7"),
            std::string::npos);
  EXPECT_NE(message("%(program_name)d").find("%d format: a real number is required, not str"),
            std::string::npos);
  EXPECT_NE(message("%(process_num)*d").find("badly formatted"), std::string::npos);
  EXPECT_NE(message("%s").find("badly formatted"), std::string::npos);
}

TEST(SupervisordExpandTest, LeavesAMarkPerProcessAndFillsIt) {
  std::vector<Conversion> conversions;
  auto out = expand("--port=80%(process_num)02d", table(), "x", &conversions);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(conversions.size(), 1u);
  EXPECT_EQ(*out, std::string("--port=80") + kMark + "0" + kMarkEnd);
  EXPECT_EQ(conversions[0].flags, "0");
  EXPECT_EQ(conversions[0].width, 2);
  // A second expansion keeps the mark (logfiles are expanded twice).
  auto again = expand(*out, table(), "x", &conversions);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *out);
  EXPECT_EQ(*fill_marks(*out, conversions, 7), "--port=8007");
}

TEST(SupervisordDatatypesTest, Integers) {
  EXPECT_EQ(*integer(" 12 "), 12);
  EXPECT_EQ(*integer("-3"), -3);
  EXPECT_EQ(*integer("1_000"), 1000);
  EXPECT_FALSE(integer("1__0").ok());
  EXPECT_FALSE(integer("0x10").ok());
  EXPECT_EQ(integer("ten").error().message(), "invalid literal for int() with base 10: 'ten'");
}

TEST(SupervisordDatatypesTest, BooleansSizesOctals) {
  EXPECT_TRUE(*boolean("Yes"));
  EXPECT_FALSE(*boolean("off"));
  EXPECT_EQ(boolean("maybe").error().message(), "not a valid boolean value: 'maybe'");
  EXPECT_EQ(*byte_size("50MB"), 50 * 1024 * 1024);
  EXPECT_EQ(*byte_size("1kb"), 1024);
  EXPECT_EQ(*byte_size("1GB"), int64_t{1} << 30);
  EXPECT_EQ(*byte_size("100"), 100);
  EXPECT_FALSE(byte_size("50M").ok());
  EXPECT_FALSE(byte_size("1.5MB").ok());
  EXPECT_EQ(*octal("022"), 022);
  EXPECT_EQ(*octal("0o27"), 027);
  EXPECT_EQ(*octal("777"), 0777);
  EXPECT_EQ(octal("089").error().message(), "089 can not be converted to an octal type");
}

TEST(SupervisordDatatypesTest, SignalsAsPythonsSignalModuleKnowsThem) {
  EXPECT_EQ(*signal_number("TERM"), 15);
  EXPECT_EQ(*signal_number("sigusr1"), 10);
  EXPECT_EQ(*signal_number(" hup "), 1);
  EXPECT_EQ(*signal_number("9"), 9);
  EXPECT_EQ(*signal_number("_DFL"), 0);  // SIG_DFL: a name Python's module has
  EXPECT_EQ(signal_number("BOGUS").error().message(), "value 'BOGUS' is not a valid signal name");
  EXPECT_EQ(signal_number("33").error().message(), "value '33' is not a valid signal number");
}

TEST(SupervisordDatatypesTest, AutorestartExitcodesNames) {
  EXPECT_EQ(*auto_restart("TRUE"), AutoRestart::kAlways);
  EXPECT_EQ(*auto_restart("false"), AutoRestart::kNever);
  EXPECT_EQ(*auto_restart("Unexpected"), AutoRestart::kUnexpected);
  EXPECT_EQ(auto_restart("sometimes").error().message(), "invalid 'autorestart' value 'sometimes'");
  EXPECT_EQ(*exit_codes("0, 2"), (std::vector<int>{0, 2}));
  EXPECT_EQ(*exit_codes(""), std::vector<int>{});
  EXPECT_EQ(exit_codes("0,256").error().message(), "not a valid list of exit codes: '0,256'");
  EXPECT_EQ(*process_or_group_name(" web "), "web");
  EXPECT_EQ(process_or_group_name("a b").error().message(),
            "Invalid name: 'a b' because of character: ' '");
  EXPECT_EQ(*logging_level("WARN"), "warn");
  EXPECT_FALSE(logging_level("warning").ok());
  EXPECT_EQ(logfile_name("NONE").kind, LogfileName::Kind::kNone);
  EXPECT_EQ(logfile_name("Auto").kind, LogfileName::Kind::kAuto);
  EXPECT_EQ(logfile_name("syslog").kind, LogfileName::Kind::kSyslog);
  EXPECT_EQ(logfile_name("/var/log/x.log").path, "/var/log/x.log");
}

TEST(SupervisordShlexTest, SplitsAsShlexSplit) {
  using V = std::vector<std::string>;
  EXPECT_EQ(*shlex_split("a  'b c' \"d\\\"e\" f\\ g"), (V{"a", "b c", "d\"e", "f g"}));
  // In double quotes only \" and \\ are escapes (not \$ as in sh).
  EXPECT_EQ(*shlex_split(R"(x "a\$b" "c\\d")"), (V{"x", R"(a\$b)", R"(c\d)"}));
  EXPECT_EQ(*shlex_split("a '' b"), (V{"a", "", "b"}));
  EXPECT_EQ(*shlex_split("a#b #c"), (V{"a#b", "#c"}));  // no comments
  EXPECT_EQ(*shlex_split("ab\"c d\"e"), (V{"abc de"}));
  EXPECT_EQ(shlex_split("a 'b").error().message(), "No closing quotation");
  EXPECT_EQ(shlex_split("a\\").error().message(), "No escaped character");
  EXPECT_TRUE(shlex_split("   ")->empty());
}

TEST(SupervisordShlexTest, KeyValuePairsAsDictOfKeyValuePairs) {
  using P = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(*key_value_pairs("A=1,B=\"x, y\",C='z'"), (P{{"A", "1"}, {"B", "x, y"}, {"C", "z"}}));
  EXPECT_EQ(*key_value_pairs("PATH=/usr/bin:/bin,URL=http://h:1/p"),
            (P{{"PATH", "/usr/bin:/bin"}, {"URL", "http://h:1/p"}}));
  // Any one token separates pairs; a key given twice keeps its last value.
  EXPECT_EQ(*key_value_pairs("A=1;B=2,A=3"), (P{{"A", "3"}, {"B", "2"}}));
  // '#' starts a comment.
  EXPECT_EQ(*key_value_pairs("A=x#y,B=2"), (P{{"A", "x"}}));
  EXPECT_TRUE(key_value_pairs("")->empty());
  EXPECT_EQ(key_value_pairs("A=1 B=2").error().message(),
            "Unexpected end of key/value pairs in value 'A=1 B=2'");
  EXPECT_FALSE(key_value_pairs("A=").ok());
  EXPECT_FALSE(key_value_pairs("A=x@y").ok());  // '@' is a token of its own
  EXPECT_EQ(*key_value_pairs("K=caf\xC3\xA9"), (P{{"K", "caf\xC3\xA9"}}));  // a Latin-1 letter
}

}  // namespace
}  // namespace corral::migrate

// Tests of config/prescan.h: the guards that read a config's text before
// yaml-cpp does, on their own (the loader's messages built on them are in
// parse_test.cc).
#include "config/prescan.h"

#include <gtest/gtest.h>

#include <string>

namespace corral::config {
namespace {

TEST(FindNonTextTest, PassesUtf8Text) {
  EXPECT_FALSE(find_non_text(""));
  EXPECT_FALSE(find_non_text("jobs:\n  web: {command: x}\n"));
  EXPECT_FALSE(find_non_text("name: \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x84\n"));
}

TEST(FindNonTextTest, PointsAtTheFirstByteThatIsNotUtf8) {
  auto bad = find_non_text("a: 1\nbb: \xFF\n");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->first.line, 1);
  EXPECT_EQ(bad->first.column, 4);
  EXPECT_EQ(bad->second, "not a text file: byte 0xff is not UTF-8");
  // Columns count bytes, as yaml-cpp's marks do: é takes two.
  bad = find_non_text("\xC3\xA9\xC0\x80");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->first.column, 2);
  EXPECT_EQ(bad->second, "not a text file: byte 0xc0 is not UTF-8");
  // A sequence cut short by the end of the file.
  bad = find_non_text("a: \xE2\x82");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->second, "not a text file: byte 0xe2 is not UTF-8");
}

TEST(FindNonTextTest, RefusesANulAndUtf16) {
  auto bad = find_non_text(std::string("ab\0c", 4));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->first.column, 2);
  EXPECT_EQ(bad->second, "not a text file: it contains a NUL byte");
  for (std::string text : {std::string("\xFF\xFEj\0", 4), std::string("\xFE\xFF\0j", 4),
                           std::string("j\0o\0", 4), std::string("\0j\0o", 4)}) {
    bad = find_non_text(text);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->second, "the file is UTF-16 text; save it as UTF-8");
  }
}

TEST(ScanFlowTest, StopsAtTheBracketPastTheLimit) {
  std::string deep = "a: " + std::string(kMaxNesting + 10, '[');
  FlowScan scan = scan_flow(deep);
  ASSERT_TRUE(scan.too_deep);
  EXPECT_EQ(scan.too_deep->line, 0);
  EXPECT_EQ(scan.too_deep->column, 3 + kMaxNesting - 1);
  EXPECT_FALSE(scan_flow("a: " + std::string(kMaxNesting - 1, '[')).too_deep);
}

TEST(ScanFlowTest, BracketsInsideValuesAndCommentsDoNotCount) {
  std::string many(kMaxNesting + 10, '[');
  EXPECT_FALSE(scan_flow("a: \"" + many + "\"\n").too_deep);
  EXPECT_FALSE(scan_flow("a: '" + many + "'\n").too_deep);
  EXPECT_FALSE(scan_flow("# " + many + "\na: 1\n").too_deep);
  EXPECT_FALSE(scan_flow("a: x" + many + "\n").too_deep);  // inside a plain value
  EXPECT_FALSE(scan_flow("a: |\n  " + many + "\nb: 1\n").too_deep);
}

TEST(ScanFlowTest, RemembersWhatIsLeftOpen) {
  FlowScan scan = scan_flow("a: [1, {b: 2}\nc: {d: [3]");
  ASSERT_EQ(scan.unclosed.size(), 2u);
  EXPECT_EQ(scan.unclosed[0].first, '[');
  EXPECT_EQ(scan.unclosed[0].second.line, 0);
  EXPECT_EQ(scan.unclosed[0].second.column, 3);
  EXPECT_EQ(scan.unclosed[1].first, '{');
  EXPECT_EQ(scan.unclosed[1].second.line, 1);
  EXPECT_FALSE(scan.open_quote);

  scan = scan_flow("a: 'it''s'\nb: \"open\n");
  ASSERT_TRUE(scan.open_quote);
  EXPECT_EQ(scan.open_quote->line, 1);
  EXPECT_EQ(scan.open_quote->column, 3);
  EXPECT_TRUE(scan.unclosed.empty());
}

TEST(ScanFlowTest, ABomDoesNotMoveThePlaces) {
  FlowScan scan = scan_flow(
      "\xEF\xBB\xBF"
      "a: [");
  ASSERT_EQ(scan.unclosed.size(), 1u);
  EXPECT_EQ(scan.unclosed[0].second.column, 3);
  EXPECT_EQ(scan.unclosed[0].second.pos, 6);
}

}  // namespace
}  // namespace corral::config

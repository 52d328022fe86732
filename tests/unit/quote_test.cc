// Tests of config/quote.h: the escaping that the loader's messages and the
// emitted YAML share.
#include "config/quote.h"

#include <gtest/gtest.h>

namespace corral::config {
namespace {

TEST(EscapeDoubleQuotedTest, EscapesWhatYamlReadsAsSyntax) {
  EXPECT_EQ(escape_double_quoted(R"(say "hi" \ there)", Invisible::kKeep),
            R"(say \"hi\" \\ there)");
  EXPECT_EQ(escape_double_quoted("a\nb\tc", Invisible::kKeep), R"(a\nb\tc)");
  EXPECT_EQ(escape_double_quoted(std::string("\x01\x7f\0", 3), Invisible::kKeep),
            R"(\x01\x7f\x00)");
  EXPECT_EQ(escape_double_quoted("caf\xC3\xA9", Invisible::kKeep), "caf\xC3\xA9");
}

TEST(EscapeDoubleQuotedTest, ShowsInvisibleCharactersOnlyWhenAsked) {
  const std::string text =
      "work\xC2\xA0"
      "ers\xEF\xBB\xBF";
  EXPECT_EQ(escape_double_quoted(text, Invisible::kKeep), text);
  EXPECT_EQ(escape_double_quoted(text, Invisible::kShow), R"(work\u00a0ers\ufeff)");
  EXPECT_EQ(escape_double_quoted("\xE2\x80\x8B", Invisible::kShow), R"(\u200b)");
}

TEST(QuoteTest, QuotesAndShowsTheInvisible) {
  EXPECT_EQ(quote("web"), R"("web")");
  EXPECT_EQ(quote(""), R"("")");
  EXPECT_EQ(quote("a\"b\xC2\xA0"), R"("a\"b\u00a0")");
}

TEST(QuoteTest, CutsLongTextWithoutSplittingACharacter) {
  EXPECT_EQ(quote("abcdef", 3), R"("abc...")");
  EXPECT_EQ(quote("abc", 3), R"("abc")");
  // The cut falls inside the two bytes of é: the whole character goes.
  EXPECT_EQ(quote("ab\xC3\xA9z", 3), R"("ab...")");
}

}  // namespace
}  // namespace corral::config

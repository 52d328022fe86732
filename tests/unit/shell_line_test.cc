// The shell's lines: sh-style word splitting and tab completion, with a
// fake list of the daemon's workers.
#include "ctl/shell_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SplitWordsTest, BlanksSeparateWords) {
  Words line = split_words("  stop\tweb:0   web:1 ");
  EXPECT_THAT(line.words, ElementsAre("stop", "web:0", "web:1"));
  EXPECT_EQ(line.error, "");
  EXPECT_FALSE(line.open);
  EXPECT_TRUE(split_words("stop web").open);
  EXPECT_THAT(split_words("").words, IsEmpty());
}

TEST(SplitWordsTest, QuotesAndBackslashesAsInSh) {
  EXPECT_THAT(split_words(R"(submit web --data 'a b'"c d"e)").words,
              ElementsAre("submit", "web", "--data", "a bc de"));
  EXPECT_THAT(split_words(R"('it''s' "\"q\" \\ \$ \n" \ x\'y)").words,
              ElementsAre("its", R"("q" \ $ \n)", " x'y"));
  EXPECT_THAT(split_words(R"('' "")").words, ElementsAre("", ""));  // empty words are words
  EXPECT_THAT(split_words(R"('\')").words, ElementsAre("\\"));      // no escapes in '...'
}

TEST(SplitWordsTest, AHashAtTheStartOfAWordStartsAComment) {
  EXPECT_THAT(split_words("status # every worker").words, ElementsAre("status"));
  EXPECT_THAT(split_words("# only a comment").words, IsEmpty());
  EXPECT_THAT(split_words("stop web#1 '#x'").words, ElementsAre("stop", "web#1", "#x"));
}

TEST(SplitWordsTest, UnterminatedQuotesAndTrailingBackslashAreErrors) {
  EXPECT_EQ(split_words("status 'web").error, "unterminated single quote");
  EXPECT_EQ(split_words("status \"web").error, "unterminated double quote");
  EXPECT_EQ(split_words("status \"web\\\"").error, "unterminated double quote");
  EXPECT_EQ(split_words("status web\\").error, "backslash at the end of the line");
}

// The daemon's workers for completion, counting how often they are asked for.
struct FakeDaemon {
  std::vector<std::string> workers = {"web:0", "web:1", "batch:0"};
  int asked = 0;
  std::function<std::vector<std::string>()> names() {
    return [this] {
      ++asked;
      return workers;
    };
  }
};

TEST(CompleteTest, FirstWordIsACommandOrQuitOrExit) {
  FakeDaemon daemon;
  Completion c = complete("sta", daemon.names());
  EXPECT_EQ(c.insert, "");
  EXPECT_THAT(c.choices, ElementsAre("start", "stats", "status"));
  EXPECT_EQ(complete("shu", daemon.names()).insert, "tdown ");
  EXPECT_EQ(complete("qu", daemon.names()).insert, "it ");
  EXPECT_EQ(complete("ex", daemon.names()).insert, "it ");
  // One match of several that share more than what is typed: the shared part.
  EXPECT_EQ(complete("sh", daemon.names()).insert, "");
  EXPECT_THAT(complete("sh", daemon.names()).choices, ElementsAre("shared", "shutdown"));
  EXPECT_EQ(complete("re", daemon.names()).insert, "");
  EXPECT_THAT(complete("bogus", daemon.names()).choices, IsEmpty());
  EXPECT_EQ(daemon.asked, 0);  // commands need no daemon
}

TEST(CompleteTest, GlobalOptionsComeBeforeTheCommand) {
  FakeDaemon daemon;
  EXPECT_EQ(complete("--j", daemon.names()).insert, "son ");
  EXPECT_THAT(complete("-", daemon.names()).choices,
              ElementsAre("--config", "--help", "--json", "--socket", "-c", "-h", "-s"));
  // After global options, the command; quit and exit only come first.
  EXPECT_THAT(complete("--json -s /x.sock sta", daemon.names()).choices,
              ElementsAre("start", "stats", "status"));
  EXPECT_EQ(complete("--json qu", daemon.names()).insert, "");
  EXPECT_THAT(complete("-s ", daemon.names()).choices, IsEmpty());  // a socket path
}

TEST(CompleteTest, OptionsOfTheCommandComeFromItsSynopsis) {
  FakeDaemon daemon;
  EXPECT_EQ(complete("wait web --dr", daemon.names()).insert, "ained ");
  EXPECT_THAT(complete("wait web --", daemon.names()).choices,
              ElementsAre("--drained", "--help", "--running", "--timeout"));
  EXPECT_THAT(complete("submit web -", daemon.names()).choices,
              ElementsAre("--data", "--deadline", "--file", "--help", "--ordered", "--timeout",
                          "--timing", "--wait"));
  // The value of an option is not completed, and does not count as a JOB.
  EXPECT_THAT(complete("submit --file ", daemon.names()).choices, IsEmpty());
  EXPECT_THAT(complete("wait --timeout 5s ", daemon.names()).choices, ElementsAre("batch", "web"));
  EXPECT_EQ(daemon.asked, 1);
}

TEST(CompleteTest, TargetsJobsAndCommandsAsOperands) {
  FakeDaemon daemon;
  EXPECT_THAT(complete("stop ", daemon.names()).choices,
              ElementsAre("all", "batch", "batch:*", "batch:0", "web", "web:*", "web:0", "web:1"));
  // "w" -> "web" in common, then the three are listed on the next tab.
  EXPECT_EQ(complete("stop w", daemon.names()).insert, "eb");
  EXPECT_THAT(complete("stop web", daemon.names()).choices,
              ElementsAre("web", "web:*", "web:0", "web:1"));
  EXPECT_EQ(complete("stop web:1", daemon.names()).insert, " ");
  // TARGET... takes more; JOB takes jobs only, and one.
  EXPECT_EQ(complete("restart web:0 b", daemon.names()).insert, "atch");
  EXPECT_THAT(complete("stats ", daemon.names()).choices, ElementsAre("batch", "web"));
  EXPECT_THAT(complete("stats web ", daemon.names()).choices, IsEmpty());
  EXPECT_EQ(complete("help rest", daemon.names()).insert, "art ");
  // After --, a word starting with - is an operand.
  EXPECT_THAT(complete("stop -- -", daemon.names()).choices, IsEmpty());
  EXPECT_THAT(complete("version ", daemon.names()).choices, IsEmpty());
  EXPECT_THAT(complete("bogus ", daemon.names()).choices, IsEmpty());
}

TEST(CompleteTest, NoDaemonNoTargets) {
  FakeDaemon daemon;
  daemon.workers.clear();
  EXPECT_THAT(complete("stop ", daemon.names()).choices, IsEmpty());
  EXPECT_EQ(complete("stop a", daemon.names()).insert, "");  // not even `all`
}

TEST(CompleteTest, QuotedWordsAreCompletedByTheirValue) {
  FakeDaemon daemon;
  EXPECT_EQ(complete("stop \"we", daemon.names()).insert, "");  // an open quote: nothing
  EXPECT_EQ(complete("\"sta\"tu", daemon.names()).insert, "s ");
}

}  // namespace
}  // namespace corral::ctl

// Tests of migrate/supervisord_ini.h: supervisord's INI reading
// (RawConfigParser with UnhosedConfigParser's settings) and its includes.
#include "migrate/supervisord_ini.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

namespace corral::migrate {
namespace {

struct Parsed {
  IniDocument doc;
  std::vector<Diagnostic> errors;
};

Parsed parse(std::string_view text) {
  Parsed p;
  parse_ini(text, "s.conf", "/etc", p.doc, p.errors);
  return p;
}

std::string value(const Parsed& p, std::string_view section, std::string_view option) {
  const IniSection* s = p.doc.find(section);
  if (s == nullptr) return "<no section>";
  const IniOption* o = p.doc.get(*s, option);
  return o == nullptr ? "<no option>" : o->value;
}

TEST(SupervisordIniTest, CommentsFullLineAndInlineAfterWhitespaceOnly) {
  auto p = parse(
      "; a comment\n"
      "# another\n"
      "[program:x]\n"
      "a=b ;c\n"
      "b=x;y\n"
      "c=x #y\n"
      "d=x#y ;z\n"
      "  ; an indented comment is no continuation\n"
      "e = spaced  \n");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(value(p, "program:x", "a"), "b");
  EXPECT_EQ(value(p, "program:x", "b"), "x;y");
  EXPECT_EQ(value(p, "program:x", "c"), "x");
  EXPECT_EQ(value(p, "program:x", "d"), "x#y");
  EXPECT_EQ(value(p, "program:x", "e"), "spaced");
}

TEST(SupervisordIniTest, ConfigparsersInlineCommentRoundsAreKept) {
  // Round 1 finds ';' at 3 (no blank before it) and '#' at 15 (one): the
  // comment starts at 15, though the ';' at 10 also follows a blank.
  auto p = parse("[s]\na=x;y ;z    #w\n");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(value(p, "s", "a"), "x;y ;z");
}

TEST(SupervisordIniTest, ContinuationLinesAndBlankLinesInValues) {
  auto p = parse(
      "[s]\n"
      "a=1\n"
      "  2\n"
      "\n"
      "\t3\n"
      "b=4\n"
      "\n"
      "c=\n"
      "   tail\n");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(value(p, "s", "a"), "1\n2\n\n3");
  EXPECT_EQ(value(p, "s", "b"), "4");
  EXPECT_EQ(value(p, "s", "c"), "\ntail");
}

TEST(SupervisordIniTest, DelimitersNamesCaseAndHeaders) {
  auto p = parse(
      "[program:x] trailing words\n"
      "Command = /bin/cat\n"
      "url: http://h:1/?a=b\n"
      "a=b:c\n"
      "[a]b]\n"
      "k=v\r\n"
      "[DEFAULT]\n"
      "shared=yes\n");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(value(p, "program:x", "command"), "/bin/cat");
  EXPECT_EQ(value(p, "program:x", "url"), "http://h:1/?a=b");
  EXPECT_EQ(value(p, "program:x", "a"), "b:c");
  EXPECT_EQ(value(p, "a]b", "k"), "v");
  EXPECT_EQ(value(p, "program:x", "shared"), "yes");  // [DEFAULT] is seen everywhere
  EXPECT_EQ(p.doc.sections.size(), 2u);
}

TEST(SupervisordIniTest, DuplicatesMergeAndTheLastValueWins) {
  auto p = parse("[s]\na=1\nb=2\n[t]\n[s]\na=3\n");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(value(p, "s", "a"), "3");
  EXPECT_EQ(value(p, "s", "b"), "2");
  const IniSection* s = p.doc.find("s");
  EXPECT_EQ(s->line, 1);
  EXPECT_EQ(s->find("a")->line, 6);
}

TEST(SupervisordIniTest, RefusesAMissingHeaderAndBadLinesWithTheirLines) {
  auto missing = parse("\na=1\n[s]\n");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].line, 2);
  EXPECT_NE(missing.errors[0].message.find("no section headers"), std::string::npos);
  auto bad = parse("[s]\njunk\nok=1\nmore junk\n=x\n");
  ASSERT_EQ(bad.errors.size(), 3u);
  EXPECT_EQ(bad.errors[0].line, 2);
  EXPECT_EQ(bad.errors[1].line, 4);
  EXPECT_EQ(bad.errors[2].line, 5);
  EXPECT_EQ(bad.errors[0].message, "Source contains parsing errors: 'junk\\n'");
}

TEST(SupervisordIniTest, IncludesInSortedGlobOrderWithTheirOwnHere) {
  testing::TempDir dir("corral-ini");
  ::mkdir(dir.file("conf.d").c_str(), 0755);
  testing::write_file(dir.file("main.conf"),
                      "[supervisord]\n"
                      "[program:a]\n"
                      "command=%(here)s/a\n"
                      "priority=1\n"
                      "[include]\n"
                      "files = conf.d/*.conf  nothing/*.x\n");
  testing::write_file(dir.file("conf.d/b.conf"), "[program:a]\npriority=3\n");
  testing::write_file(dir.file("conf.d/a.conf"),
                      "[program:a]\npriority=2\n[program:b]\ncommand=%(here)s/b\n");
  testing::write_file(dir.file("conf.d/.hidden.conf"), "[program:hidden]\n");
  IniRead read = read_supervisord_files(dir.file("main.conf"), {}, "host");
  ASSERT_TRUE(read.errors.empty()) << read.errors[0].message;
  ASSERT_EQ(read.files.size(), 3u);
  EXPECT_EQ(read.files[1], dir.file("conf.d/a.conf"));
  EXPECT_EQ(read.files[2], dir.file("conf.d/b.conf"));
  const IniSection* a = read.doc.find("program:a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->find("priority")->value, "3");  // b.conf was read last
  EXPECT_EQ(a->find("priority")->file, dir.file("conf.d/b.conf"));
  EXPECT_EQ(a->find("command")->value, dir.path() + "/a");
  EXPECT_EQ(read.doc.find("program:b")->find("command")->value, dir.path() + "/conf.d/b");
  EXPECT_EQ(read.doc.find("program:hidden"), nullptr);  // glob skips dot files
  ASSERT_EQ(read.warnings.size(), 1u);
  EXPECT_EQ(read.warnings[0].line, 6);
  EXPECT_NE(read.warnings[0].message.find("No file matches via include"), std::string::npos);
}

TEST(SupervisordIniTest, IncludeExpansionsAndErrorsInIncludedFiles) {
  testing::TempDir dir("corral-ini");
  testing::write_file(dir.file("main.conf"),
                      "[supervisord]\n[include]\nfiles=%(ENV_CONFD)s/%(host_node_name)s.conf\n");
  testing::write_file(dir.file("box.conf"), "[program:x]\ncommand=x\nbroken line\n");
  IniRead read = read_supervisord_files(dir.file("main.conf"), {{"CONFD", dir.path()}}, "box");
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].file, dir.file("box.conf"));
  EXPECT_EQ(read.errors[0].line, 3);

  testing::write_file(dir.file("main.conf"), "[supervisord]\n[include]\nfiles=%(ENV_NOPE)s\n");
  read = read_supervisord_files(dir.file("main.conf"), {}, "box");
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].line, 3);
  EXPECT_NE(read.errors[0].message.find("cannot be expanded"), std::string::npos);

  testing::write_file(dir.file("main.conf"), "[supervisord]\n[include]\n");
  read = read_supervisord_files(dir.file("main.conf"), {}, "box");
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].message, ".ini file has [include] section, but no files setting");

  read = read_supervisord_files(dir.file("absent.conf"), {}, "box");
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].line, 0);
}

TEST(SupervisordIniTest, AFileIncludedTwiceOrItselfIsReadAgainNotForever) {
  testing::TempDir dir("corral-ini");
  testing::write_file(dir.file("main.conf"),
                      "[supervisord]\n[program:x]\ncommand=x\npriority=1\n[include]\n"
                      "files=main.conf o.conf main.conf\n");
  testing::write_file(dir.file("o.conf"), "[program:x]\npriority=2\n");
  IniRead read = read_supervisord_files(dir.file("main.conf"), {}, "h");
  ASSERT_TRUE(read.errors.empty());
  EXPECT_EQ(read.files.size(), 4u);
  EXPECT_EQ(read.doc.find("program:x")->find("priority")->value, "1");
}

}  // namespace
}  // namespace corral::migrate

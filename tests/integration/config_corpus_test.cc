// Bad configs against the real corrald: every file of tests/config_corpus/
// (one mistake each, named in its header) and a few made here (a FIFO,
// random bytes, files of megabytes). `--check` must exit 2, never crash or
// hang, and say what is wrong and where; a daemon must refuse them before it
// opens its socket; a running daemon asked to reread one keeps its config and
// replies with the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

const std::string kCorpus = std::string(CORRAL_SOURCE_DIR) + "/tests/config_corpus";

// Generous: a hang is what this catches, not slowness.
constexpr auto kTimeout = 60s;

// What a corpus file's header says:
//   # Mistake: what the file gets wrong.
//   # Expect: SUBSTRING | SUBSTRING...   (all on the line of the error)
//   # At: LINE:COLUMN                   (in this file)
//   # At: included/FILE:LINE:COLUMN     (in a file it includes)
struct Case {
  std::string file;
  std::string mistake;
  std::vector<std::string> expect;
  std::string where;  // "PATH:LINE:COLUMN" as corrald prints it
};

std::string without_cr(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Case read_case(const std::string& file) {
  Case c{file, {}, {}, {}};
  std::istringstream in(read_file(file));
  std::string line;
  while (std::getline(in, line) && c.where.empty()) {
    line = without_cr(line);
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // bom-then-mistake.yaml
    if (line.rfind("# Mistake: ", 0) == 0) c.mistake = line.substr(11);
    if (line.rfind("# Expect: ", 0) == 0) {
      std::string rest = line.substr(10);
      for (size_t bar; (bar = rest.find(" | ")) != std::string::npos; rest.erase(0, bar + 3)) {
        c.expect.push_back(rest.substr(0, bar));
      }
      c.expect.push_back(rest);
    }
    if (line.rfind("# At: ", 0) == 0) {
      std::string at = line.substr(6);
      // LINE:COLUMN is in this file; anything before it names an included one.
      bool here = std::count(at.begin(), at.end(), ':') == 1;
      c.where = here ? file + ":" + at : kCorpus + "/" + at;
    }
  }
  return c;
}

std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Whether one line of ERR holds WHERE and every one of EXPECT.
bool reports(const std::string& err, const std::string& where,
             const std::vector<std::string>& expect) {
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.find(where) == std::string::npos) continue;
    if (std::all_of(expect.begin(), expect.end(),
                    [&](const std::string& e) { return line.find(e) != std::string::npos; })) {
      return true;
    }
  }
  return false;
}

RunResult check(const std::string& config) {
  return run({CORRALD_PATH, "-c", config, "--check"}, kTimeout);
}

// How RESULT ended, for failure messages.
std::string ending(const RunResult& result) {
  if (result.exit_code == -1) return "hung (killed after 60 s)";
  if (result.exit_code > 128) return "killed by signal " + std::to_string(result.exit_code - 128);
  return "exit " + std::to_string(result.exit_code);
}

// Expects `corrald --check` to refuse CONFIG with exit 2 and a line naming
// WHERE with EXPECT; the summary line last.
void expect_refused(const std::string& config, const std::string& where,
                    const std::vector<std::string>& expect) {
  RunResult r = check(config);
  EXPECT_EQ(r.exit_code, 2) << ending(r) << "\n" << r.err;
  EXPECT_TRUE(reports(r.err, where, expect)) << "expected a line with " << where << " and "
                                             << ::testing::PrintToString(expect) << ", got:\n"
                                             << r.err;
  EXPECT_THAT(r.err, HasSubstr(config + ": ")) << r.err;
  EXPECT_THAT(r.err, ::testing::ContainsRegex(" [0-9]+ errors?\n$")) << r.err;
  EXPECT_EQ(r.out, "");  // the normalized config only for a good one
}

TEST(ConfigCorpusTest, EveryFileIsRefusedWithWhatAndWhere) {
  std::vector<std::string> files = corpus_files();
  ASSERT_GE(files.size(), 100u) << kCorpus;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    Case c = read_case(file);
    ASSERT_FALSE(c.mistake.empty()) << "no '# Mistake:' line";
    ASSERT_FALSE(c.expect.empty()) << "no '# Expect:' line";
    ASSERT_FALSE(c.where.empty()) << "no '# At:' line";
    expect_refused(file, c.where, c.expect);
  }
}

// The corpus text of NAME with a daemon section at the end that keeps the
// socket and logs in DIR: the mistake stays on its line.
std::string corpus_with_daemon(const std::string& name, const TempDir& dir) {
  std::string text = read_file(kCorpus + "/" + name);
  EXPECT_THAT(text, Not(HasSubstr("\ndaemon:"))) << name;
  return text + "daemon:\n  socket: " + dir.file("corral.sock") +
         "\n  log_dir: " + dir.file("logs") + "\n  metrics: {listen: off}\n";
}

// A copy of the corpus file NAME with its case, pointing into the copy.
Case copied_case(const std::string& name, const std::string& copy) {
  Case c = read_case(kCorpus + "/" + name);
  std::string original = kCorpus + "/" + name;
  if (c.where.rfind(original + ":", 0) == 0) c.where = copy + c.where.substr(original.size());
  return c;
}

TEST(ConfigCorpusTest, TheDaemonRefusesABadConfigBeforeOpeningItsSocket) {
  for (const char* name :
       {"tab-indent.yaml", "workers-string.yaml", "unknown-key-nested.yaml", "missing-command.yaml",
        "duration-parsecs.yaml", "unclosed-double-quote.yaml"}) {
    SCOPED_TRACE(name);
    TempDir dir;
    std::string config = dir.file("corral.yaml");
    // The unclosed quote would swallow an appended section: it goes first.
    std::string text = std::string(name) == "unclosed-double-quote.yaml"
                           ? read_file(kCorpus + "/" + name)
                           : corpus_with_daemon(name, dir);
    write_file(config, text);
    Case c = copied_case(name, config);
    RunResult r = run({CORRALD_PATH, "-c", config}, kTimeout);
    EXPECT_EQ(r.exit_code, 2) << ending(r) << "\n" << r.err;
    EXPECT_TRUE(reports(r.err, c.where, c.expect)) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("corral.sock")));
    EXPECT_FALSE(std::filesystem::exists(dir.file("logs")));
  }
}

TEST(ConfigCorpusTest, RereadOfABadConfigKeepsTheRunningOneAndRepliesWithTheErrors) {
  Daemon d("jobs:\n  keep:\n    command: [sleep, '1000']\n    start: {settle: 0s}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("keep:0", "RUNNING")) << d.daemon_log();
  pid_t worker = d.worker_pid("keep:0");
  for (const char* name : {"duration-5xs.yaml", "duplicate-key-in-job.yaml", "billion-laughs.yaml",
                           "bad-indent-dedent.yaml"}) {
    SCOPED_TRACE(name);
    write_file(d.config(), corpus_with_daemon(name, d.dir()));
    Case c = copied_case(name, d.config());
    RunResult r = d.ctl({"reread"});
    EXPECT_EQ(r.exit_code, 1) << ending(r) << "\n" << r.err;
    EXPECT_TRUE(reports(r.err, c.where, c.expect)) << r.err;
    EXPECT_THAT(r.err, HasSubstr("nothing was changed")) << r.err;
    Json reply = d.request({{"cmd", "reread"}});
    EXPECT_EQ(reply["ok"], false) << reply.dump();
    ASSERT_TRUE(reply["errors"].is_array()) << reply.dump();
    EXPECT_TRUE(reports(reply["errors"][0].get<std::string>(), c.where, c.expect)) << reply.dump();
    EXPECT_TRUE(process_alive(d.pid()));
    EXPECT_EQ(d.state("keep:0"), "RUNNING");
    EXPECT_EQ(d.worker_pid("keep:0"), worker);
  }
  // And a FIFO where the config was: refused at once, nothing waits for a writer.
  std::filesystem::remove(d.config());
  ASSERT_EQ(mkfifo(d.config().c_str(), 0600), 0);
  RunResult r = d.ctl({"reread"});
  EXPECT_EQ(r.exit_code, 1) << ending(r) << "\n" << r.err;
  EXPECT_THAT(r.err, HasSubstr(d.config() + ": cannot read: it is a FIFO")) << r.err;
  EXPECT_EQ(d.worker_pid("keep:0"), worker);
}

TEST(ConfigCorpusTest, FilesThatAreNotRegularFilesAreRefusedWithoutWaiting) {
  TempDir dir;
  std::string fifo = dir.file("fifo.yaml");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // No place in the file: the file itself is the problem.
  expect_refused(fifo, fifo + ": ", {"cannot read: it is a FIFO (named pipe), not a regular file"});
  expect_refused("/dev/zero", "/dev/zero: ", {"it is a character device, not a regular file"});

  std::filesystem::create_directories(dir.file("jobs.d"));
  std::string included = dir.file("jobs.d/pipe.yaml");
  ASSERT_EQ(mkfifo(included.c_str(), 0600), 0);
  std::string main = dir.file("main.yaml");
  write_file(main, "jobs:\n  a: {command: [sleep, '1']}\ninclude: [jobs.d/*.yaml]\n");
  expect_refused(
      main, included + ": ",
      {"it is a FIFO (named pipe), not a regular file", "(included from " + main + ":3:11)"});
}

// A 64-bit LCG: the same "random" bytes on every run.
std::string junk(size_t size, uint64_t seed) {
  std::string bytes(size, '\0');
  for (char& b : bytes) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    b = static_cast<char>(seed >> 56);
  }
  return bytes;
}

TEST(ConfigCorpusTest, BinaryJunkIsNotText) {
  TempDir dir;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    std::string file = dir.file("junk" + std::to_string(seed) + ".yaml");
    write_file(file, junk(64 * 1024, seed));
    RunResult r = check(file);
    SCOPED_TRACE(seed);
    EXPECT_EQ(r.exit_code, 2) << ending(r) << "\n" << r.err;
    EXPECT_TRUE(reports(r.err, file + ":1:", {"not a text file"}) ||
                reports(r.err, file + ":1:1: ", {"the file is UTF-16 text; save it as UTF-8"}))
        << r.err;
  }
  // A UTF-16 file as Windows editors save it.
  std::string utf16 = "\xFF\xFE";
  for (char c : std::string("jobs: {}\n")) utf16 += std::string{c, '\0'};
  write_file(dir.file("utf16.yaml"), utf16);
  expect_refused(dir.file("utf16.yaml"),
                 dir.file("utf16.yaml") + ":1:1: ", {"the file is UTF-16 text; save it as UTF-8"});
}

TEST(ConfigCorpusTest, HugeFilesAreRefusedInBoundedTimeAndMemory) {
  TempDir dir;
  constexpr size_t kTenMiB = 10 << 20;
  // Over the 4 MiB limit: refused by size, before anything reads them.
  std::string huge_string = "jobs:\n  a:\n    command: \"" + std::string(kTenMiB, 'x') + "\"\n";
  std::string million_jobs = "jobs:\n";
  for (int i = 0; i < 1000000; ++i) million_jobs += "  j" + std::to_string(i) + ": {command: x}\n";
  std::string deep_lists = "jobs: " + std::string(kTenMiB / 2, '[') + std::string(kTenMiB / 2, ']');
  for (const auto& [name, text] :
       {std::pair{"huge-string.yaml", &huge_string}, std::pair{"million-jobs.yaml", &million_jobs},
        std::pair{"deep-lists.yaml", &deep_lists}}) {
    SCOPED_TRACE(name);
    write_file(dir.file(name), *text);
    expect_refused(dir.file(name), dir.file(name) + ": ",
                   {"bytes; a config file may hold at most 4MiB"});
  }

  // Just under it: the parser's own limits.
  constexpr size_t kAlmost = (4 << 20) - 1024;
  write_file(dir.file("deep-under.yaml"), "jobs: " + std::string(kAlmost, '[') + "\n");
  expect_refused(dir.file("deep-under.yaml"), dir.file("deep-under.yaml") + ":1:506: ",
                 {"lists and maps are nested too deeply"});
  std::string deep_maps = "jobs: ";
  while (deep_maps.size() < kAlmost) deep_maps += "{a: ";
  write_file(dir.file("deep-maps.yaml"), deep_maps + "\n");
  expect_refused(dir.file("deep-maps.yaml"),
                 dir.file("deep-maps.yaml") + ":1:", {"lists and maps are nested too deeply"});
  std::string deep_blocks;
  for (int level = 0; level < 1000; ++level) deep_blocks += std::string(2 * level, ' ') + "a:\n";
  write_file(dir.file("deep-blocks.yaml"), deep_blocks);
  expect_refused(dir.file("deep-blocks.yaml"), dir.file("deep-blocks.yaml") + ":",
                 {"lists and maps are nested too deeply"});

  std::string long_list = "daemon:\n  allow_users: [";
  while (long_list.size() < kAlmost) long_list += "x, ";
  write_file(dir.file("long-list.yaml"), long_list + "x]\n");
  expect_refused(dir.file("long-list.yaml"),
                 dir.file("long-list.yaml") + ":2:", {"the config holds more than 100000 values"});
  std::string many_jobs = "jobs:\n";
  for (int i = 0; many_jobs.size() < kAlmost; ++i) {
    many_jobs += "  j" + std::to_string(i) + ": {command: []}\n";
  }
  write_file(dir.file("many-jobs.yaml"), many_jobs);
  expect_refused(dir.file("many-jobs.yaml"), dir.file("many-jobs.yaml") + ":",
                 {"the config holds more than 100000 values"});

  // A big value is no mistake: 3 MiB of command line is read and printed.
  std::string big = "jobs:\n  a:\n    command: [echo, \"" + std::string(3 << 20, 'y') + "\"]\n";
  write_file(dir.file("big-value.yaml"), big);
  RunResult r = check(dir.file("big-value.yaml"));
  EXPECT_EQ(r.exit_code, 0) << ending(r) << "\n" << r.err.substr(0, 2000);
  EXPECT_THAT(r.out, HasSubstr(std::string(3 << 20, 'y')));
}

TEST(ConfigCorpusTest, EmptyAndCommentOnlyFilesAreTheDefaultConfig) {
  TempDir dir;
  for (const auto& [name, text] :
       {std::pair{"empty.yaml", ""}, std::pair{"comments.yaml", "# nothing yet\n  # at all\n"},
        std::pair{"bom.yaml", "\xEF\xBB\xBF"}, std::pair{"blank.yaml", "\n\n   \n"}}) {
    SCOPED_TRACE(name);
    write_file(dir.file(name), text);
    RunResult r = check(dir.file(name));
    EXPECT_EQ(r.exit_code, 0) << ending(r) << "\n" << r.err;
    EXPECT_THAT(r.out, HasSubstr("jobs: {}"));
  }
}

}  // namespace
}  // namespace corral::testing

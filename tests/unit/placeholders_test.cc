// Tests of config/placeholders.h: the placeholders of log.stdout and log.stderr.
#include "config/placeholders.h"

#include <gtest/gtest.h>

namespace corral::config {
namespace {

TEST(LogPathTest, PlaceholdersAreReplaced) {
  EXPECT_EQ(expand_log_path("/var/log/{job}/{job}-{index}.log", "web", 7),
            "/var/log/web/web-7.log");
  EXPECT_EQ(expand_log_path("/l/w{index:02}.log", "web", 3), "/l/w03.log");
  EXPECT_EQ(expand_log_path("/l/w{index:03}.log", "web", 1234), "/l/w1234.log");
  EXPECT_EQ(expand_log_path("/l/plain.log", "web", 0), "/l/plain.log");
  EXPECT_EQ(expand_log_path("/l/w{index+1}.log", "web", 0), "/l/w1.log");
  EXPECT_EQ(expand_log_path("/l/w{index+100:04}.log", "web", 5), "/l/w0105.log");
}

TEST(LogPathTest, AnArgumentKeepsWhatIsNoPlaceholder) {
  EXPECT_EQ(expand_placeholders("worker{index:02}@{job}", "celery", 3), "worker03@celery");
  EXPECT_EQ(expand_placeholders("--id={index+1}", "q", 0), "--id=1");
  EXPECT_EQ(expand_placeholders("{\"a\": {index}}", "q", 2), "{\"a\": 2}");
  EXPECT_EQ(expand_placeholders("find . -exec {} ;", "q", 2), "find . -exec {} ;");
  EXPECT_EQ(expand_placeholders("{{index}} {index", "q", 7), "{7} {index");
  EXPECT_EQ(expand_placeholders("}{", "q", 7), "}{");
  EXPECT_EQ(expand_placeholders("", "q", 7), "");
}

TEST(LogPathTest, BadPathsSayWhy) {
  EXPECT_TRUE(check_log_path("/l/{job}-{index:01}.log").ok());
  EXPECT_EQ(check_log_path("logs/x.log").error().message(),
            "must be an absolute path (or auto, off)");
  EXPECT_EQ(check_log_path("/var/log/").error().message(),
            "names a directory; give the file's name too");
  EXPECT_EQ(check_log_path("/l/{index:00}.log").error().message(),
            "'{index:00}' is not {job}, {index}, {index+K} or {index:0N}");
  EXPECT_EQ(check_log_path("/l/{process_num}.log").error().message(),
            "'{process_num}' is not {job}, {index}, {index+K} or {index:0N}");
  EXPECT_EQ(check_log_path("/l/{index+}.log").error().message(),
            "'{index+}' is not {job}, {index}, {index+K} or {index:0N}");
  EXPECT_EQ(check_log_path("/l/{index+1:2}.log").error().message(),
            "'{index+1:2}' is not {job}, {index}, {index+K} or {index:0N}");
  EXPECT_EQ(check_log_path("/l/{index").error().message(),
            "'{index' is not {job}, {index}, {index+K} or {index:0N}");
  EXPECT_EQ(check_log_path("/l/index}").error().message(), "a '}' that closes nothing");
  EXPECT_EQ(check_log_path(std::string_view("/l/a\0b", 6)).error().message(), "has a NUL byte");
}

}  // namespace
}  // namespace corral::config

// Tests of the job keys that shape a worker's process the way supervisord's
// program options do: umask, priority and log (config/schema_job.cc).
#include <gtest/gtest.h>

#include "config/parse.h"
#include "tests/unit/config_diagnostics.h"

namespace corral::config {
namespace {

ParseResult load_process(const std::string& text) { return load_string(text, "test.yaml", 4); }

JobSpec only_job(const ParseResult& result) {
  EXPECT_TRUE(result.ok()) << all_errors(result);
  return result.ok() && result.value().jobs.size() == 1 ? result.value().jobs[0] : JobSpec{};
}

std::string process_error(const std::string& text) {
  ParseResult result = load_process(text);
  EXPECT_EQ(errors_of(result).size(), 1u) << all_errors(result);
  return errors_of(result).empty() ? "" : errors_of(result)[0].str();
}

TEST(ParseProcessTest, Defaults) {
  const JobSpec job = only_job(load_process("jobs:\n  a: {command: x}\n"));
  EXPECT_FALSE(job.umask.has_value());
  EXPECT_EQ(job.priority, 999);
  EXPECT_EQ(job.log.out.kind, LogTarget::Kind::kAuto);
  EXPECT_EQ(job.log.err.kind, LogTarget::Kind::kAuto);
  EXPECT_FALSE(job.log.max_size.has_value());
  EXPECT_FALSE(job.log.keep.has_value());
}

TEST(ParseProcessTest, UmaskIsOctalInEverySpelling) {
  for (const char* spelling : {"027", "\"027\"", "0027", "'27'"}) {
    const JobSpec job =
        only_job(load_process(std::string("jobs:\n  a: {command: x, umask: ") + spelling + "}\n"));
    EXPECT_EQ(job.umask, 027u) << spelling;
  }
  EXPECT_EQ(only_job(load_process("jobs:\n  a: {command: x, umask: 0}\n")).umask, 0u);
  EXPECT_FALSE(
      only_job(load_process("jobs:\n  a: {command: x, umask: inherit}\n")).umask.has_value());
  EXPECT_EQ(process_error("jobs:\n  a: {command: x, umask: 8}\n"),
            "test.yaml:2:26: umask of job \"a\": expected inherit, or an octal umask like "
            "\"027\", got \"8\"");
  EXPECT_NE(process_error("jobs:\n  a: {command: x, umask: 1000}\n").find("octal umask"),
            std::string::npos);
}

TEST(ParseProcessTest, ShmSpinInMicrosecondsOrOff) {
  EXPECT_EQ(only_job(load_process("jobs:\n  a: {command: x}\n")).shm.spin.count(), 30);
  EXPECT_EQ(
      only_job(load_process("jobs:\n  a: {command: x, shm: {spin: 200us}}\n")).shm.spin.count(),
      200);
  EXPECT_EQ(only_job(load_process("jobs:\n  a: {command: x, shm: {spin: 2ms}}\n")).shm.spin.count(),
            2000);
  EXPECT_EQ(only_job(load_process("jobs:\n  a: {command: x, shm: {spin: off}}\n")).shm.spin.count(),
            0);
  EXPECT_EQ(process_error("jobs:\n  a: {command: x, shm: {spin: 11ms}}\n"),
            "test.yaml:2:31: shm.spin of job \"a\": expected off, or a time up to 10ms like 50us "
            "or 1ms, got \"11ms\"");
  EXPECT_NE(process_error("jobs:\n  a: {command: x, shm: {spin: 1s}}\n").find("up to 10ms"),
            std::string::npos);
}

TEST(ParseProcessTest, Priority) {
  EXPECT_EQ(only_job(load_process("jobs:\n  a: {command: x, priority: -3}\n")).priority, -3);
  EXPECT_NE(process_error("jobs:\n  a: {command: x, priority: high}\n").find("priority"),
            std::string::npos);
}

TEST(ParseProcessTest, LogTargets) {
  const JobSpec job =
      only_job(load_process("jobs:\n  a:\n    command: x\n    workers: 2\n    log:\n"
                            "      stdout: /var/log/a/{job}-{index:02}.log\n      stderr: stdout\n"
                            "      max_size: off\n      keep: 0\n"));
  EXPECT_EQ(job.log.out.kind, LogTarget::Kind::kFile);
  EXPECT_EQ(job.log.out.path, "/var/log/a/{job}-{index:02}.log");
  EXPECT_EQ(job.log.err.kind, LogTarget::Kind::kStdout);
  EXPECT_EQ(job.log.max_size, kNeverRotate);
  EXPECT_EQ(job.log.keep, 0);
  const JobSpec off = only_job(load_process(
      "jobs:\n  a: {command: x, log: {stdout: off, stderr: inherit, max_size: 1MiB}}\n"));
  EXPECT_EQ(off.log.out.kind, LogTarget::Kind::kOff);
  EXPECT_EQ(off.log.err.kind, LogTarget::Kind::kInherit);
  // Without {index}, the workers of a job share one file (supervisord's numprocs).
  EXPECT_EQ(
      only_job(load_process("jobs:\n  a: {command: x, workers: 8, log: {stdout: /l/a.log}}\n"))
          .log.out.path,
      "/l/a.log");
  EXPECT_EQ(off.log.max_size, 1024u * 1024u);
}

TEST(ParseProcessTest, BadLogTargetsSayWhy) {
  EXPECT_EQ(process_error("jobs:\n  a: {command: x, log: {stdout: stdout}}\n"),
            "test.yaml:2:33: log.stdout of job \"a\": \"stdout\": must be an absolute path (or "
            "auto, off)");
  EXPECT_EQ(process_error("jobs:\n  a: {command: x, log: {stdout: out.log}}\n"),
            "test.yaml:2:33: log.stdout of job \"a\": \"out.log\": must be an absolute path (or "
            "auto, off)");
  EXPECT_NE(process_error("jobs:\n  a: {command: x, log: {keep: -1}}\n").find("keep"),
            std::string::npos);
  EXPECT_NE(process_error("jobs:\n  a: {command: x, log: {stdot: off}}\n").find("stdout"),
            std::string::npos);
}

}  // namespace
}  // namespace corral::config

// corralctl's two programs (ctl/main.cc, ctl/full_main.cc): corralctl, the
// one-shot client, links nothing that loads code at run time (it is linked
// statically, glibc included, where it can be), and hands the lines that
// need it (the shell, -c's config, import) to corralctl-full beside it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// The names of PROGRAM's symbols (defined or not, versions cut off), by nm.
std::set<std::string> symbols_of(const std::string& program) {
  RunResult nm = run({"/usr/bin/nm", program});
  EXPECT_EQ(nm.exit_code, 0) << nm.err;
  std::set<std::string> names;
  std::istringstream lines(nm.out);
  for (std::string line; std::getline(lines, line);) {
    std::string name = line.substr(line.rfind(' ') + 1);
    names.insert(name.substr(0, name.find('@')));
  }
  return names;
}

// What a statically linked glibc can only do by loading the system's
// modules (NSS's), which crash a static program when they are not of its
// glibc's build.
std::vector<std::string> name_service_calls(const std::set<std::string>& symbols) {
  static const std::set<std::string> kCalls = {
      "getpwnam",    "getpwnam_r",    "getpwuid",        "getpwuid_r",    "getgrnam",
      "getgrnam_r",  "getgrgid",      "getgrgid_r",      "getgrouplist",  "initgroups",
      "getaddrinfo", "gethostbyname", "gethostbyname_r", "getservbyname", "getspnam"};
  std::vector<std::string> found;
  for (const auto& name : symbols) {
    if (kCalls.count(name) > 0) found.push_back(name);
  }
  return found;
}

// yaml-cpp's, which is corralctl-full's.
std::vector<std::string> yaml(const std::set<std::string>& symbols) {
  std::vector<std::string> found;
  for (const auto& name : symbols) {
    if (name.find("4YAML") != std::string::npos) found.push_back(name);
  }
  return found;
}

TEST(CtlProgramTest, CorralctlLinksNoNameServiceNorYaml) {
  std::set<std::string> corralctl = symbols_of(CORRALCTL_PATH);
  ASSERT_GT(corralctl.count("main"), 0u) << "nm found no symbols in " << CORRALCTL_PATH;
  std::set<std::string> full = symbols_of(CORRALCTL_FULL_PATH);
  EXPECT_THAT(yaml(corralctl), ::testing::IsEmpty());
  // The check finds them where they are: corralctl-full's config reads
  // YAML, its shell looks up the user's home.
  EXPECT_THAT(yaml(full), ::testing::Not(::testing::IsEmpty()));
  // Only a static glibc makes them a hazard; a sanitizer's runtime, linked
  // into a sanitized (shared) build, defines them all as interceptors.
  if (!CORRAL_CTL_LINKED_STATICALLY) return;
  EXPECT_THAT(name_service_calls(corralctl), ::testing::IsEmpty());
  EXPECT_THAT(name_service_calls(full), ::testing::Contains("getpwuid"));
}

TEST(CtlProgramTest, ACommandLineThatNeedsCorralctlFullRunsThere) {
  TempDir dir("ctl-program");
  // -c: the config's socket, read there, is the one corralctl cannot reach.
  std::string config = dir.file("corral.yaml");
  write_file(config, "daemon:\n  socket: " + dir.file("elsewhere.sock") + "\n");
  RunResult status = run({CORRALCTL_PATH, "-c", config, "status"});
  EXPECT_EQ(status.exit_code, 3) << status.err;
  EXPECT_THAT(status.err, HasSubstr("cannot reach corrald at " + dir.file("elsewhere.sock")));
  // The shell, with its commands on a pipe.
  RunResult shell = run({"/bin/sh", "-c", "echo 'help version' | " + std::string(CORRALCTL_PATH)});
  EXPECT_EQ(shell.exit_code, 0) << shell.err;
  EXPECT_THAT(shell.out, HasSubstr("corralctl version"));
  // import.
  std::string conf = dir.file("supervisord.conf");
  write_file(conf, "[supervisord]\n[program:web]\ncommand=/bin/sleep 100\n");
  RunResult import = run({CORRALCTL_PATH, "import", "supervisord", conf});
  EXPECT_EQ(import.exit_code, 0) << import.err;
  EXPECT_THAT(import.out, HasSubstr("web:"));
}

TEST(CtlProgramTest, WithoutCorralctlFullItSaysWhereItLookedAndRunsTheRest) {
  if (std::filesystem::exists(CORRAL_CTL_FULL_INSTALLED)) {
    GTEST_SKIP() << "corral is installed here (" << CORRAL_CTL_FULL_INSTALLED
                 << "): a corralctl alone would find corralctl-full there";
  }
  TempDir dir("ctl-program");
  std::string alone = dir.file("corralctl");
  std::filesystem::copy_file(CORRALCTL_PATH, alone);
  std::filesystem::permissions(alone, std::filesystem::perms::owner_all);
  RunResult handed = run({alone, "-c", dir.file("corral.yaml"), "status"});
  EXPECT_EQ(handed.exit_code, 1);
  EXPECT_THAT(handed.err, HasSubstr("run in corralctl-full, which could not be started"));
  EXPECT_THAT(handed.err, HasSubstr(dir.file("corralctl-full") + ": No such file or directory"));
  EXPECT_THAT(handed.err, HasSubstr(std::string(CORRAL_CTL_FULL_INSTALLED) + ": No such file"));
  // What needs no YAML still runs.
  RunResult here = run({alone, "-s", dir.file("none.sock"), "status"});
  EXPECT_EQ(here.exit_code, 3) << here.err;
  EXPECT_THAT(here.err, HasSubstr("cannot reach corrald at " + dir.file("none.sock")));
}

}  // namespace
}  // namespace corral::testing

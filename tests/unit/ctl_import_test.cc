// Tests of ctl/import.h and of import's plan: a local command (no request to
// corrald), its exit codes, -o written atomically, --json.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "ctl/import.h"
#include "protocol/json_text.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/ctl_plan.h"

namespace corral::ctl {
namespace {

TEST(CtlImportPlanTest, IsLocalAndTakesItsWords) {
  Plan plan = text_plan("import", {"supervisord", "/etc/s.conf", "-o", "/tmp/out.yaml"});
  EXPECT_FALSE(plan.request);
  ASSERT_TRUE(plan.import);
  EXPECT_EQ(plan.import->file, "/etc/s.conf");
  EXPECT_EQ(plan.import->out, "/tmp/out.yaml");
  Plan json =
      plan_command("import", {"--json", "supervisord", "f.conf", "--output=o.yaml"}, Format::kText);
  ASSERT_TRUE(json.import);
  EXPECT_EQ(json.format, Format::kJson);
  EXPECT_EQ(json.import->out, "o.yaml");
  EXPECT_FALSE(text_plan("import", {"supervisord", "f.conf"}).import->out);
  for (const auto& args : std::vector<std::vector<std::string>>{{},
                                                                {"supervisord"},
                                                                {"runit", "f"},
                                                                {"supervisord", "a", "b"},
                                                                {"supervisord", "f", "-o"}}) {
    Plan bad = text_plan("import", args);
    EXPECT_FALSE(bad.import);
    EXPECT_EQ(bad.local.exit_code, 2);
  }
}

TEST(CtlImportTest, PrintsWritesAndExitsAsDocumented) {
  testing::TempDir dir("corral-ctl-import");
  testing::write_file(dir.file("ok.conf"), "[supervisord]\n[program:a]\ncommand=/bin/cat\n");
  testing::write_file(dir.file("warn.conf"), "[supervisord]\n[program:a]\ncommand=x\nfoo=1\n");
  testing::write_file(dir.file("bad.conf"), "[supervisord]\n[program:a]\nautostart=perhaps\n");

  Output printed = run_import({"supervisord", dir.file("ok.conf"), std::nullopt}, Format::kText);
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_NE(printed.out.find("jobs:\n"), std::string::npos);
  EXPECT_EQ(printed.err, "");

  Output warned =
      run_import({"supervisord", dir.file("warn.conf"), dir.file("out.yaml")}, Format::kText);
  EXPECT_EQ(warned.exit_code, 1);
  EXPECT_EQ(warned.out, "");
  EXPECT_EQ(warned.err, dir.file("warn.conf") +
                            ":4: warning: unknown option \"foo\" in [program:a]; supervisord "
                            "ignores it\n");
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("out.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_NE(testing::read_file(dir.file("out.yaml")).find("jobs:\n"), std::string::npos);

  Output refused =
      run_import({"supervisord", dir.file("bad.conf"), dir.file("none.yaml")}, Format::kText);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find(dir.file("bad.conf") + ":3: error: [program:a] autostart: not a valid "
                                                    "boolean value: 'perhaps'"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(::access(dir.file("none.yaml").c_str(), F_OK), 0);

  Output json = run_import({"supervisord", dir.file("bad.conf"), std::nullopt}, Format::kJson);
  Json reply = Json::parse(json.out);
  EXPECT_EQ(reply["exit_code"], 2);
  EXPECT_EQ(reply["errors"][0]["line"], 3);
  EXPECT_EQ(reply["errors"][0]["file"], dir.file("bad.conf"));
  EXPECT_FALSE(reply.contains("yaml"));
  EXPECT_EQ(json.err, "");
  Json good = Json::parse(
      run_import({"supervisord", dir.file("ok.conf"), std::nullopt}, Format::kJson).out);
  EXPECT_EQ(good["exit_code"], 0);
  EXPECT_TRUE(good["yaml"].is_string());
  EXPECT_TRUE(good["warnings"].empty());

  Output unreadable =
      run_import({"supervisord", dir.file("absent.conf"), std::nullopt}, Format::kText);
  EXPECT_EQ(unreadable.exit_code, 2);
  EXPECT_NE(unreadable.err.find("absent.conf: error: cannot open"), std::string::npos);
}

TEST(CtlImportTest, WriteAtomicallyReplacesAndLeavesNoTemporaryFile) {
  testing::TempDir dir("corral-ctl-import");
  testing::write_file(dir.file("out.yaml"), "old");
  ASSERT_TRUE(write_atomically(dir.file("out.yaml"), "new\n").ok());
  EXPECT_EQ(testing::read_file(dir.file("out.yaml")), "new\n");
  EXPECT_FALSE(write_atomically(dir.file("missing/out.yaml"), "x").ok());
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++entries;
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace corral::ctl

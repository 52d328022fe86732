// README.md's "Using it", "A minimal config" and "From Python", read from the README
// and run: corrald on the config, and every corralctl command shown, each of
// which must exit 0. So the README's commands and its config cannot drift
// apart again.
//
// What the test changes, and only that:
// - in the config: `daemon.socket` and `daemon.log_dir` become the test's own
//   (a temp dir); `daemon.metrics.listen` gets port 0 (a free port: tests run
//   side by side), and an absolute program path of corral's own binaries
//   (`/usr/bin/corral-worker`) becomes the one just built;
// - the commands run unchanged in `sh -c`, with the built corralctl first
//   in PATH and CORRAL_SOCKET naming the test's socket (corralctl's own way
//   of being told the socket, docs/corralctl.md); in `curl`, the metrics port
//   becomes the one corrald took.
// `corralctl start|stop|restart ...` runs as three commands, in that order.
// Not run: the shell (`corralctl` alone) and `top`, which wait for a person
// at a terminal; `corrald -c /etc/corral/corral.yaml` and `systemctl ...`,
// which the daemon this test starts stands for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;

// The first fenced block of LANGUAGE after HEADING in TEXT, without its fences.
std::string block_after(const std::string& text, const std::string& heading,
                        const std::string& language) {
  size_t at = text.find(heading);
  if (at == std::string::npos) return "";
  const std::string fence = "```" + language + "\n";
  size_t begin = text.find(fence, at);
  if (begin == std::string::npos) return "";
  begin += fence.size();
  size_t end = text.find("```", begin);
  return end == std::string::npos ? "" : text.substr(begin, end - begin);
}

std::string trimmed(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

// The commands of a sh block: comments (from a '#' after a blank) dropped,
// `;` splitting a line into commands.
std::vector<std::string> commands_of(const std::string& block) {
  std::vector<std::string> commands;
  std::istringstream lines(block);
  for (std::string line; std::getline(lines, line);) {
    if (size_t comment = line.find(" #"); comment != std::string::npos) line.resize(comment);
    std::istringstream parts(line);
    for (std::string command; std::getline(parts, command, ';');) {
      if (!trimmed(command).empty()) commands.push_back(trimmed(command));
    }
  }
  return commands;
}

// The README's config with the test's socket, log_dir, a free metrics port
// and the built corral-worker.
std::string rewritten_config(std::string config, const Daemon& d) {
  config = std::regex_replace(config, std::regex(R"((\n  socket: )[^\n]*)"), "$1" + d.socket());
  config = std::regex_replace(config, std::regex(R"((\n  log_dir: )[^\n]*)"), "$1" + d.log_dir());
  config = std::regex_replace(config, std::regex(R"((listen: "?[0-9.a-z]+):[0-9]+)"), "$1:0");
  config =
      std::regex_replace(config, std::regex(R"(/[^\s,\]'"]*/corral-worker\b)"), CORRAL_WORKER_PATH);
  return config;
}

// Whether nothing listens on PORT of 127.0.0.1 now.
bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

TEST(ReadmeTest, TheCommandsOfUsingItRunOnTheMinimalConfig) {
  const std::string readme = read_file(CORRAL_SOURCE_DIR "/README.md");
  const std::string config = block_after(readme, "A minimal config", "yaml");
  const std::string using_it = block_after(readme, "## Using it", "sh");
  ASSERT_THAT(config, HasSubstr("jobs:")) << "no ```yaml block after \"A minimal config\"";
  std::vector<std::string> commands = commands_of(using_it);
  ASSERT_GE(commands.size(), 5u) << "no ```sh block after \"## Using it\"";
  // The web job's workers listen on 8080 + their index, as the README says.
  for (int port : {8080, 8081, 8082}) {
    if (!port_free(port))
      GTEST_SKIP() << "port " << port << " is taken here; the README's web job needs it";
  }

  Daemon d("jobs: {}\n");
  const std::string rewritten = rewritten_config(config, d);
  write_file(d.config(), rewritten);
  ASSERT_THAT(rewritten, HasSubstr(CORRAL_WORKER_PATH)) << rewritten;
  ASSERT_TRUE(d.start()) << d.daemon_log();
  Json stats = d.request({{"cmd", "stats"}});
  ASSERT_TRUE(stats["daemon"]["metrics"].is_string()) << "the README's config serves no metrics";
  const std::string metrics = stats["daemon"]["metrics"];
  const std::string metrics_port = metrics.substr(metrics.rfind(':') + 1);
  Json workers = d.request({{"cmd", "status"}})["workers"];
  for (const auto& worker : workers) {
    ASSERT_TRUE(d.wait_state(worker["name"], "RUNNING")) << worker["name"] << "\n"
                                                         << d.daemon_log();
  }

  const std::string bin = std::filesystem::path(CORRALCTL_PATH).parent_path();
  const std::string env = "PATH=" + bin + ":$PATH; export PATH; CORRAL_SOCKET=" + d.socket() +
                          "; export CORRAL_SOCKET; ";
  auto run_shown = [&](const std::string& command) {
    RunResult r = run({"/bin/sh", "-c", env + command}, 300s);
    EXPECT_EQ(r.exit_code, 0) << command << "\nstdout: " << r.out.substr(0, 2000)
                              << "\nstderr: " << r.err;
    return r;
  };
  size_t ran = 0;
  for (const std::string& command : commands) {
    SCOPED_TRACE(command);
    if (command == "corralctl" || command == "corralctl top") continue;  // a person's terminal
    if (command.starts_with("systemctl ")) continue;                     // the test's daemon is it
    if (command.starts_with("corrald ")) {
      if (command.find("--check") == std::string::npos) continue;  // the test's daemon is it
      RunResult check = run({CORRALD_PATH, "-c", d.config(), "--check"});
      EXPECT_EQ(check.exit_code, 0) << check.err;
      ++ran;
      continue;
    }
    if (command.starts_with("curl ")) {
      RunResult scrape =
          run_shown(std::regex_replace(command, std::regex(R"(:9464\b)"), ":" + metrics_port));
      EXPECT_THAT(scrape.out, HasSubstr("corral_worker_state"));
      ++ran;
      continue;
    }
    ASSERT_THAT(command, HasSubstr("corralctl "))
        << "a command of \"Using it\" this test does not know how to run";
    const std::string verbs = "start|stop|restart";
    if (size_t at = command.find(verbs); at != std::string::npos) {
      for (const char* verb : {"start", "stop", "restart"}) {
        run_shown(std::string(command).replace(at, verbs.size(), verb));
        ++ran;
      }
      continue;
    }
    RunResult r = run_shown(command);
    std::smatch tasks;
    if (command.find("--wait") != std::string::npos &&
        std::regex_search(command, tasks, std::regex(R"(head -n ([0-9]+))"))) {
      // One JSON line per task, each ok.
      EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), std::stol(tasks[1]));
      EXPECT_EQ(r.out.find("\"status\":\"failed\""), std::string::npos);
      EXPECT_EQ(r.out.find("\"status\":\"dead\""), std::string::npos);
    }
    ++ran;
  }
  EXPECT_GE(ran, 10u);

  // The Python example, on the package of the source tree and the build's
  // native module.
  const std::string python = block_after(readme, "From Python", "python");
  ASSERT_THAT(python, HasSubstr("corral.Executor(")) << "no ```python block after \"From Python\"";
  RunResult r = run({"/usr/bin/env", "PYTHONPATH=" CORRAL_SOURCE_DIR "/python:" + bin + "/python",
                     "CORRAL_SOCKET=" + d.socket(), "/usr/bin/python3", "-c", python},
                    120s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::StartsWith("['4', '25', '168']\n")) << r.err;
  EXPECT_THAT(r.out, ::testing::EndsWith(" ok\n"));
}

}  // namespace
}  // namespace corral::testing

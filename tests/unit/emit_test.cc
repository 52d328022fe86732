// Tests of config/emit.h: the normalized YAML is complete, readable, and
// loads back to an equal Config.
#include "config/emit.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "config/parse.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/config_diagnostics.h"

namespace corral::config {
namespace {

// The CPU count every load of these round trips is told.
constexpr unsigned kRoundTripCpus = 6;

// Emits CONFIG, loads the text again and expects CONFIG back.
void expect_round_trip(const Config& config) {
  std::string yaml = to_yaml(config);
  ParseResult again = load_string(yaml, config.file, kRoundTripCpus);
  ASSERT_TRUE(again.ok()) << all_errors(again) << yaml;
  EXPECT_EQ(again.value(), config) << yaml;
}

TEST(EmitToStringTest, SpellsEnumsAsTheConfigDoes) {
  EXPECT_STREQ(to_string(RestartPolicy::kOnFailure), "on-failure");
  EXPECT_STREQ(to_string(RestartPolicy::kAlways), "always");
  EXPECT_STREQ(to_string(RestartPolicy::kNever), "never");
  EXPECT_STREQ(to_string(Channel::kNone), "none");
  EXPECT_STREQ(to_string(Channel::kPipe), "pipe");
  EXPECT_STREQ(to_string(Channel::kShm), "shm");
  EXPECT_STREQ(to_string(LogLevel::kTrace), "trace");
  EXPECT_STREQ(to_string(LogLevel::kWarn), "warn");
  EXPECT_STREQ(to_string(LogLevel::kError), "error");
}

TEST(ToYamlTest, DefaultConfig) {
  Config config;
  config.file = "corral.yaml";
  EXPECT_EQ(to_yaml(config),
            "daemon:\n"
            "  socket: /run/corral/corral.sock\n"
            "  socket_mode: \"0660\"\n"
            "  allow_users: []\n"
            "  allow_groups: []\n"
            "  pass_env: []\n"
            "  log_dir: /var/log/corral\n"
            "  state_dir: /var/lib/corral\n"
            "  private_dirs: true\n"
            "  cgroup: auto\n"
            "  log_level: info\n"
            "  log_rotate: {max_size: 10MiB, keep: 5}\n"
            "  metrics: {listen: \"127.0.0.1:9464\", interval: 1s}\n"
            "jobs: {}\n");
  expect_round_trip(config);
}

TEST(ToYamlTest, WritesEveryKeyOfAJob) {
  ParseResult result = load_string("jobs:\n  primes: {command: [w, --handler, primes]}\n",
                                   "corral.yaml", kRoundTripCpus);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  std::string yaml = to_yaml(result.value());
  EXPECT_NE(yaml.find("jobs:\n"
                      "  primes:\n"
                      "    command: [w, --handler, primes]\n"
                      "    workers: 1\n"
                      "    autostart: true\n"
                      "    channel: none\n"
                      "    pipe: {fds: extra, framing: length}\n"
                      "    shm: {spin: 30us}\n"
                      "    queue:\n"
                      "      capacity: 65536\n"
                      "      max_task_bytes: 64KiB\n"
                      "      prefetch: auto\n"
                      "      max_attempts: 3\n"
                      "      task_timeout: off\n"
                      "      deadline: off\n"
                      "      durable: false\n"
                      "      durability: crash\n"
                      "      keep_results: 10m\n"
                      "    restart:\n"
                      "      policy: on-failure\n"
                      "      exit_codes: [0]\n"
                      "      backoff: {initial: 100ms, max: 30s, multiplier: 2.0, jitter: 0.1}\n"
                      "      reset_after: 1m\n"
                      "      max_restarts: 10\n"
                      "      window: 1m\n"
                      "      cooldown: 1m\n"
                      "    start: {settle: 1s, retries: off}\n"
                      "    stop: {signal: TERM, timeout: 10s, kill_after: 5s}\n"
                      "    health: {heartbeat_timeout: off}\n"
                      "    limits: {memory: off, memory_high: off, cpu: off, pids: off, max_tasks: "
                      "off, cpus: off, "
                      "nice: 0, nofile: off}\n"
                      "    env: {}\n"
                      "    cwd: \"\"\n"
                      "    user: \"\"\n"
                      "    umask: inherit\n"
                      "    priority: 999\n"
                      "    log: {stdout: auto, stderr: auto}\n"
                      "    shared:\n"
                      "      values: {}\n"
                      "      arrays: {}\n"
                      "    source: none\n"
                      "    sink: none\n"),
            std::string::npos)
      << yaml;
}

TEST(ToYamlTest, WorkersAutoStaysAuto) {
  ParseResult result =
      load_string("jobs:\n  j: {command: x, workers: auto}\n", "corral.yaml", kRoundTripCpus);
  ASSERT_TRUE(result.ok()) << all_errors(result);
  EXPECT_NE(to_yaml(result.value()).find("    workers: auto\n"), std::string::npos);
  expect_round_trip(result.value());
}

TEST(ToYamlTest, RoundTripsAFullConfig) {
  Config c;
  c.file = "/etc/corral/corral.yaml";
  c.daemon.socket = "/tmp/corral test.sock";
  c.daemon.socket_mode = 0600;
  c.daemon.allow_users = {"alice", "1000", "yes"};
  c.daemon.allow_groups = {"wheel"};
  c.daemon.pass_env = {"LANG", "http_proxy"};
  c.daemon.log_dir = "/var/log/corral";
  c.daemon.private_dirs = false;
  c.daemon.log_level = LogLevel::kTrace;
  c.daemon.log_rotate = {1536, 0};
  c.daemon.metrics = {std::nullopt, std::chrono::milliseconds(1500)};

  JobSpec j;
  j.name = "123";
  j.command = {"sh",         "-c",        "echo \"$X\" | tr a-z A-Z # not a comment",
               "",           "-",         "--",
               "a,b",        "[x]",       "{y}",
               "key: value", "null",      "~",
               "é",          "tab\there", "line\nbreak",
               "\x01"};
  j.workers = 0;
  j.autostart = false;
  j.channel = Channel::kPipe;
  j.pipe = {PipeFds::kStdio, Framing::kLength};
  j.queue = {1, 1, 1, 1, std::chrono::milliseconds(1)};
  j.restart.policy = RestartPolicy::kNever;
  j.restart.exit_codes = {};
  j.restart.backoff = {std::chrono::milliseconds(0), std::chrono::hours(2), 1.0, 0.0};
  j.restart.reset_after = std::chrono::milliseconds(0);
  j.restart.max_restarts = 0;
  j.restart.window = std::chrono::milliseconds(1);
  j.restart.cooldown = std::chrono::minutes(90);
  j.start.settle = std::chrono::milliseconds(0);
  j.stop = {40, std::chrono::milliseconds(1), std::chrono::milliseconds(0)};
  j.health.heartbeat_timeout = std::chrono::milliseconds(2500);
  j.limits.memory = 3 * kGiB + 1;
  j.limits.max_tasks = 1;
  j.limits.cpus = {CpuSpec::Mode::kList, {0, 1, 2, 4, 6, 7}};
  j.limits.nice = -20;
  j.limits.nofile = 65536;
  j.env = {{"EMPTY", ""}, {"NUM", "0660"}, {"BOOL", "off"}, {"NULL", "null"}, {"a b", "c: d"}};
  j.cwd = "/srv/my app";
  j.user = "root";
  j.umask = 027;
  j.shm.spin = std::chrono::microseconds(2000);
  j.priority = -5;
  j.log.out = {LogTarget::Kind::kFile, "/var/log/my app/{job}-{index:03}.log"};
  j.log.err = {LogTarget::Kind::kStdout, ""};
  j.log.max_size = kNeverRotate;
  j.log.keep = 0;
  j.shared.values = {{"i", SharedType::kI64}, {"f", SharedType::kF64}};
  j.shared.arrays = {{"h", {SharedType::kF64, 1}}, {"-x", {SharedType::kI64, 1 << 20}}};
  j.source = {SourceSpec::Kind::kRange, -5, -5, ""};
  j.sink = {SinkSpec::Kind::kFile, "out #1.jsonl"};
  c.jobs.push_back(j);

  JobSpec k;
  k.name = "-dash.name_";
  k.command = {"/bin/true"};
  k.workers = kRoundTripCpus;
  k.workers_auto = true;
  k.channel = Channel::kShm;
  k.restart.backoff.multiplier = 1.0000001;
  k.restart.backoff.jitter = 0.999;
  k.limits.cpus.mode = CpuSpec::Mode::kAuto;
  k.source = {SourceSpec::Kind::kFile, 0, 0, "in.txt"};
  k.umask = 0;
  k.shm.spin = std::chrono::microseconds(0);
  k.priority = 100;
  k.log.out = {LogTarget::Kind::kOff, ""};
  k.log.err = {LogTarget::Kind::kFile, "/l/{index}"};
  k.log.max_size = 50 * kMiB;
  c.jobs.push_back(k);
  std::sort(c.jobs.begin(), c.jobs.end(),
            [](const JobSpec& a, const JobSpec& b) { return a.name < b.name; });

  expect_round_trip(c);
}

// Random valid configs: the property load(to_yaml(c)) == c over many shapes.
TEST(ToYamlTest, RoundTripsRandomConfigs) {
  std::mt19937_64 random(20240601);
  auto pick = [&](auto... options) {
    std::vector<std::common_type_t<decltype(options)...>> all{options...};
    return all[random() % all.size()];
  };
  auto number = [&](uint64_t min, uint64_t max) { return min + random() % (max - min + 1); };
  const std::vector<std::string> strings = {"a",    "with space", "\"quoted\"", "yes",
                                            "0x10", "1e3",        "#hash",      "a:b",
                                            "",     "ünï",        "-",          "back\\slash"};
  auto text = [&] { return strings[random() % strings.size()]; };
  auto duration = [&] {
    return std::chrono::milliseconds(pick(0, 1, 999, 1000, 60000, 3600000, 1234567));
  };

  for (int round = 0; round < 200; ++round) {
    Config c;
    c.file = "random.yaml";
    c.daemon.socket_mode = static_cast<unsigned>(number(0, 07777));
    c.daemon.log_level = static_cast<LogLevel>(number(0, 4));
    c.daemon.log_rotate.max_size = number(1, 5 * kGiB);
    c.daemon.private_dirs = number(0, 1) == 1;
    c.daemon.allow_users = {"u" + text()};
    int jobs = static_cast<int>(number(0, 4));
    for (int i = 0; i < jobs; ++i) {
      JobSpec j;
      j.name = "job" + std::to_string(i);
      j.command = {"prog" + text(), text()};
      j.workers_auto = number(0, 1) == 1;
      j.workers = j.workers_auto ? kRoundTripCpus : static_cast<uint32_t>(number(0, 10000));
      j.channel = static_cast<Channel>(number(0, 2));
      j.queue.capacity = number(1, uint64_t{1} << 40);
      j.queue.max_task_bytes = number(1, 100 * kMiB);
      j.queue.task_timeout = pick(OptionalDuration(), OptionalDuration(std::chrono::seconds(5)));
      j.queue.prefetch =
          pick(std::optional<uint32_t>(),
               std::optional<uint32_t>(static_cast<uint32_t>(number(1, UINT32_MAX))));
      j.restart.backoff.initial = duration();
      j.restart.backoff.max = j.restart.backoff.initial + duration();
      j.restart.backoff.multiplier = 1.0 + static_cast<double>(number(0, 1000000)) / 7.0;
      j.restart.backoff.jitter = static_cast<double>(number(0, 999)) / 1000.0;
      j.restart.reset_after = duration();
      j.stop.signal = static_cast<int>(number(1, 64));
      j.limits.memory = pick(std::optional<uint64_t>(), std::optional<uint64_t>(number(1, kGiB)));
      j.limits.nice = static_cast<int>(number(0, 39)) - 20;
      j.env["V" + std::to_string(i)] = text();
      j.cwd = text();
      j.umask = pick(std::optional<unsigned>(), std::optional<unsigned>(number(0, 0777)));
      j.priority = static_cast<int>(number(0, 2000)) - 1000;
      j.log.out = pick(LogTarget{}, LogTarget{LogTarget::Kind::kOff, ""},
                       LogTarget{LogTarget::Kind::kFile, "/" + text() + "{index}"});
      j.log.keep = pick(std::optional<int>(), std::optional<int>(static_cast<int>(number(0, 9))));
      c.jobs.push_back(j);
    }
    SCOPED_TRACE(round);
    expect_round_trip(c);
  }
}

TEST(ToYamlTest, IncludedJobsAreMergedAndTheGlobsBecomeAComment) {
  corral::testing::TempDir temp("corral-emit");
  const std::string& dir = temp.path();
  std::filesystem::create_directories(dir + "/jobs.d");
  std::ofstream(dir + "/jobs.d/a.yaml") << "jobs:\n  a: {command: [a]}\n";
  std::ofstream(dir + "/corral.yaml") << "include: [\"jobs.d/*.yaml\"]\njobs:\n  b: {command: b}\n";

  ParseResult loaded = load_file(dir + "/corral.yaml", kRoundTripCpus);
  ASSERT_TRUE(loaded.ok()) << all_errors(loaded);
  std::string yaml = to_yaml(loaded.value());
  EXPECT_NE(yaml.find("# the jobs of include: [\"jobs.d/*.yaml\"] are merged below\n"),
            std::string::npos)
      << yaml;
  EXPECT_EQ(yaml.find("\ninclude:"), std::string::npos) << yaml;

  ParseResult again = load_string(yaml, loaded.value().file, kRoundTripCpus);
  ASSERT_TRUE(again.ok()) << all_errors(again);
  Config expected = loaded.value();
  expected.include.clear();  // merged: the output stands alone
  EXPECT_EQ(again.value(), expected);
}

}  // namespace
}  // namespace corral::config

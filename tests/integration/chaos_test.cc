// Chaos under load. A channel job takes a steady stream of `sum` tasks from
// `corralctl submit JOB - --wait` while, for CORRAL_CHAOS_SECONDS (default
// 8) per channel, its workers are killed with SIGKILL, stopped and continued
// (a stop longer than health.heartbeat_timeout gets the worker killed), and
// restarted one by one, all together or rolling. A sampler checks the
// accounting identity of `corralctl --json stats` all along. At the end every
// task has exactly one result, and a right one; nothing is left behind: no
// worker, no fd of the daemon, no segment, no socket file. scripts/soak runs
// this for as long as asked and adds up the figures each run prints.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/pipe_child.h"

namespace corral::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWorkers = 3;

std::chrono::seconds chaos_duration() {
  const char* text = std::getenv("CORRAL_CHAOS_SECONDS");
  long seconds = text != nullptr ? std::strtol(text, nullptr, 10) : 0;
  return std::chrono::seconds(seconds > 0 ? seconds : 8);
}

// CHANNEL: the job's channel lines; a "# durable" line among them keeps the
// job's tasks in a spool (queue.durable) through the chaos.
std::string chaos_jobs(const std::string& channel) {
  const bool durable = channel.find("# durable") != std::string::npos;
  return "jobs:\n  chaos:\n    command: " + worker_command("--handler, sum") +
         "\n    workers: " + std::to_string(kWorkers) + "\n" + channel +
         "\n"
         // A worker stopped longer than the heartbeat timeout is killed and
         // its tasks redelivered; a shorter stop only delays them.
         "    queue: {capacity: 4096, prefetch: 16, max_attempts: 5, task_timeout: 10s" +
         std::string(durable ? ", durable: true" : "") +
         "}\n"
         "    health: {heartbeat_timeout: 1s}\n"
         "    restart: {max_restarts: 100000, backoff: {initial: 10ms, max: 100ms}}\n"
         "    stop: {timeout: 2s, kill_after: 1s}\n";
}

// A job the chaos must not touch.
const std::string kBystander =
    "  bystander:\n    command: [sleep, '1000']\n    start: {settle: 0}\n";

// Why the counts of one `stats --json` job object do not balance, or "".
std::string unbalanced(const Json& job) {
  auto count = [&](const char* key) { return job.value(key, uint64_t{0}); };
  uint64_t sum = count("ok") + count("failed") + count("dead") + count("cancelled") +
                 count("expired") + count("queued") + count("delayed") + count("in_flight");
  if (sum == count("submitted")) return "";
  return "submitted " + std::to_string(count("submitted")) +
         " != ok + failed + dead + cancelled + expired + queued + delayed + in_flight = " +
         std::to_string(sum) + " in " + job.dump();
}

std::vector<std::string> memfds(const std::vector<std::string>& fds) {
  std::vector<std::string> out;
  for (const auto& fd : fds) {
    if (fd.find("memfd:corral-chaos") != std::string::npos) out.push_back(fd);
  }
  return out;
}

// What the daemon's fds are, without the numbers that change with each new
// worker process (its pid in /proc/PID/stat, pipe inodes): "pipe:[N]".
std::vector<std::string> fd_kinds(pid_t daemon) {
  std::vector<std::string> out;
  for (const std::string& fd : open_fds(daemon)) {
    std::string kind;
    for (char c : fd) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        kind += c;
      } else if (kind.empty() || kind.back() != 'N') {
        kind += 'N';
      }
    }
    out.push_back(kind);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The daemon's fds once they stay the same over a few sampler intervals,
// after a `status` that makes it sample every process now running (corrald
// samples on demand when nothing moves, and opens a process's /proc files at
// its first sample).
std::vector<std::string> steady_fds(Daemon& d) {
  std::this_thread::sleep_for(100ms);  // older than half the test's 100 ms interval
  d.request({{"cmd", "status"}});
  const pid_t daemon = d.pid();
  std::vector<std::string> last = fd_kinds(daemon);
  wait_until(
      [&] {
        std::this_thread::sleep_for(300ms);
        std::vector<std::string> now = fd_kinds(daemon);
        return std::exchange(last, now) == now;
      },
      20s);
  return last;
}

std::string difference(const std::vector<std::string>& before,
                       const std::vector<std::string>& after) {
  // Each kind once, with how many more or fewer there are.
  std::string text;
  std::set<std::string> kinds(before.begin(), before.end());
  kinds.insert(after.begin(), after.end());
  for (const auto& fd : kinds) {
    auto more =
        std::count(after.begin(), after.end(), fd) - std::count(before.begin(), before.end(), fd);
    if (more != 0) text += (more > 0 ? " +" : " -") + std::to_string(std::abs(more)) + " " + fd;
  }
  return text;
}

// The payload of the task at position SEQ: a number below 100000, from a
// mix of SEQ and the run's SEED, so that results are checked as they come
// without keeping the tasks (a soak pushes millions).
uint64_t payload_of(uint64_t seq, uint64_t seed) {
  uint64_t z = seq + seed + 0x9e3779b97f4a7c15ULL;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) % 100000;
}

// What came back, checked line by line.
struct Results {
  std::vector<uint8_t> per_seq;  // results per task position (at most 255 counted)
  std::vector<uint8_t> per_id;   // results per task id
  uint64_t lines = 0, dead = 0, wrong = 0, duplicates = 0, shared_ids = 0;
  std::vector<std::string> samples_of_wrong;

  void take(const std::string& text, uint64_t seed) {
    ++lines;
    Json r = Json::parse(text, nullptr, false);
    if (r.is_discarded() || !r.contains("seq") || !r.contains("id")) {
      note_wrong("not a result line: " + text);
      return;
    }
    auto seq = r["seq"].get<uint64_t>();
    auto id = r["id"].get<uint64_t>();
    if (seq >= (uint64_t{1} << 32) || id >= (uint64_t{1} << 32)) {
      note_wrong("impossible seq or id: " + text);
      return;
    }
    if (per_seq.size() <= seq) per_seq.resize(seq + 1 + seq / 2);
    if (per_id.size() <= id) per_id.resize(id + 1 + id / 2);
    if (per_seq[seq]++ > 0) ++duplicates;
    if (per_id[id]++ > 0) ++shared_ids;
    if (r["status"] == "dead") {
      ++dead;
    } else if (r["status"] != "ok" || r["result"] != sum_below(payload_of(seq, seed))) {
      note_wrong("wrong result for " + std::to_string(payload_of(seq, seed)) + ": " + text);
    }
  }
  uint64_t lost(uint64_t pushed) const {
    uint64_t n = 0;
    for (uint64_t seq = 0; seq < pushed; ++seq) n += seq >= per_seq.size() || per_seq[seq] == 0;
    return n;
  }

 private:
  void note_wrong(std::string what) {
    if (++wrong <= 5) samples_of_wrong.push_back(std::move(what));
  }
};

struct Figures {
  std::atomic<uint64_t> kills{0};
  std::atomic<uint64_t> stops{0};
  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> samples{0};
};

// Stops, kills and restarts workers of `chaos` at random until DEADLINE.
void make_chaos(Daemon& d, Clock::time_point deadline, Figures& figures, std::mutex& failures_mutex,
                std::vector<std::string>& failures) {
  std::mt19937 random(std::random_device{}());
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); };
  struct Stopped {
    ChildHandle process;
    Clock::time_point resume_at;
  };
  std::vector<Stopped> stopped;
  auto resume_due = [&](bool all) {
    std::erase_if(stopped, [&](Stopped& s) {
      if (!all && Clock::now() < s.resume_at) return false;
      s.process.signal(SIGCONT);  // false when it was killed meanwhile
      return true;
    });
  };
  auto ctl = [&](const std::vector<std::string>& args) {
    RunResult r = d.ctl(args);
    ++figures.restarts;
    if (r.exit_code != 0) {
      std::lock_guard lock(failures_mutex);
      failures.push_back("corralctl restart exited " + std::to_string(r.exit_code) + ": " + r.err);
    }
  };
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(100, 400)));
    resume_due(false);
    const std::string worker = "chaos:" + std::to_string(pick(0, kWorkers - 1));
    int action = pick(0, 99);
    if (action < 50) {
      if (auto process = d.worker_process(worker); process && process->signal(SIGKILL)) {
        ++figures.kills;
      }
    } else if (action < 75) {
      auto process = d.worker_process(worker);
      if (process && process->signal(SIGSTOP)) {
        ++figures.stops;
        // Up to 1.5 s: sometimes past health.heartbeat_timeout (1 s).
        stopped.push_back(
            {std::move(*process), Clock::now() + std::chrono::milliseconds(pick(100, 1500))});
      }
    } else if (action < 85) {
      ctl({"restart", worker});
    } else if (action < 93) {
      ctl({"restart", "chaos"});
    } else {
      ctl({"restart", "--rolling", "chaos"});
    }
  }
  resume_due(true);
}

class ChaosTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ChaosTest, EveryTaskComesBackOnceAndNothingIsLeftBehind) {
  // A write to a submitter that died must fail the test, not end it.
  signal(SIGPIPE, SIG_IGN);
  const bool shm = GetParam().find("shm") != std::string::npos;
  const auto duration = chaos_duration();
  // A fast sampler, so that every worker's /proc files are open (they are
  // fds of the daemon) soon after it starts.
  Daemon d(chaos_jobs(GetParam()) + kBystander, "  metrics: {listen: off, interval: 100ms}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  for (int i = 0; i < kWorkers; ++i) {
    ASSERT_TRUE(d.wait_state("chaos:" + std::to_string(i), "RUNNING")) << d.daemon_log();
  }
  ASSERT_TRUE(d.wait_state("bystander:0", "RUNNING"));
  const pid_t bystander = d.worker_pid("bystander:0");
  const std::vector<std::string> fds_before = steady_fds(d);
  EXPECT_EQ(memfds(fds_before).size(), shm ? 1u : 0u);

  Figures figures;
  std::mutex failures_mutex;
  std::vector<std::string> failures;  // from the threads, reported at the end
  auto fail = [&](std::string what) {
    std::lock_guard lock(failures_mutex);
    if (failures.size() < 20) failures.push_back(std::move(what));
  };

  PipeChild submit({CORRALCTL_PATH, "-s", d.socket(), "submit", "chaos", "-", "--wait"}, "lines",
                   {}, /*stdio=*/true);
  std::atomic<bool> load_done{false}, sampling_done{false};
  const uint64_t seed = std::random_device{}();
  uint64_t pushed = 0;  // read only after the writer ended
  std::atomic<uint64_t> received{0};
  std::thread writer([&] {
    while (!load_done) {
      // Steady, not piling up: enough ahead to keep the queue full and
      // every worker at its prefetch, not so much that the end is a long
      // drain of what corralctl buffered.
      if (pushed - received > 8192) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      std::string batch;
      for (int i = 0; i < 64; ++i) batch += std::to_string(payload_of(pushed++, seed)) + "\n";
      submit.send(batch);
      std::this_thread::sleep_for(2ms);
    }
    submit.close_input();
  });
  Results results;
  std::thread reader([&] {
    // Results stop only at EOF; a silence this long is a failure.
    while (auto line = submit.line(120s)) {
      results.take(*line, seed);
      ++received;
    }
  });
  std::thread sampler([&] {
    Json last;
    while (!sampling_done) {
      RunResult r = d.ctl({"--json", "stats", "chaos"});
      if (r.exit_code != 0) {
        fail("stats exited " + std::to_string(r.exit_code) + ": " + r.err);
      } else {
        Json job = Json::parse(r.out, nullptr, false);
        if (job.is_discarded() || !job.contains("jobs") || !job["jobs"].contains("chaos")) {
          fail("stats --json: " + r.out);
        } else {
          job = job["jobs"]["chaos"];
          ++figures.samples;
          if (std::string why = unbalanced(job); !why.empty()) fail(why);
          for (const char* key : {"submitted", "ok", "redelivered"}) {
            if (!last.is_null() && job.value(key, uint64_t{0}) < last.value(key, uint64_t{0})) {
              fail(std::string(key) + " went down: " + last.dump() + " then " + job.dump());
            }
          }
          last = job;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
  });

  make_chaos(d, Clock::now() + duration, figures, failures_mutex, failures);
  load_done = true;
  writer.join();
  reader.join();
  EXPECT_EQ(submit.wait_exit(60s), 0) << submit.stderr_text();
  sampling_done = true;
  sampler.join();

  // Every task exactly once, right, and only ok or dead.
  const uint64_t lost = results.lost(pushed);
  EXPECT_EQ(results.lines, pushed);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(results.duplicates, 0u);
  EXPECT_EQ(results.shared_ids, 0u);  // one task id per submitted line
  EXPECT_EQ(results.wrong, 0u);
  for (const auto& wrong : results.samples_of_wrong) ADD_FAILURE() << wrong;
  const uint64_t dead = results.dead;

  Json stats = d.request({{"cmd", "stats"}, {"job", "chaos"}})["jobs"]["chaos"];
  EXPECT_EQ(unbalanced(stats), "");
  EXPECT_EQ(stats["submitted"], pushed);
  EXPECT_EQ(stats["ok"].get<uint64_t>() + stats["dead"].get<uint64_t>(), pushed);
  EXPECT_EQ(stats["dead"], dead);
  EXPECT_EQ(stats["queued"], 0);
  EXPECT_EQ(stats["in_flight"], 0);
  const auto redelivered = stats["redelivered"].get<uint64_t>();
  uint64_t heartbeat_kills = 0;  // stops that outlasted health.heartbeat_timeout
  const Json status = d.request({{"cmd", "status"}, {"targets", {"chaos"}}});
  for (const Json& w : status["workers"]) {
    heartbeat_kills += w["enforced"].value("heartbeat", uint64_t{0});
  }
  // Workers hold up to `prefetch` tasks under this load: a kill finds some.
  if (figures.kills > 0) {
    EXPECT_GT(redelivered, 0u);
  }
  EXPECT_GT(figures.samples, 0u);
  for (const auto& failure : failures) ADD_FAILURE() << failure;

  std::printf(
      "chaos figures: channel=%s seconds=%lld tasks=%llu kills=%llu stops=%llu "
      "heartbeat_kills=%llu restarts=%llu redelivered=%llu dead=%llu lost=%llu duplicates=%llu "
      "samples=%llu\n",
      shm ? "shm" : "pipe", static_cast<long long>(duration.count()),
      static_cast<unsigned long long>(pushed),
      static_cast<unsigned long long>(figures.kills.load()),
      static_cast<unsigned long long>(figures.stops.load()),
      static_cast<unsigned long long>(heartbeat_kills),
      static_cast<unsigned long long>(figures.restarts.load()),
      static_cast<unsigned long long>(redelivered), static_cast<unsigned long long>(dead),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(results.duplicates),
      static_cast<unsigned long long>(figures.samples.load()));
  std::fflush(stdout);

  // Settled: the pool is whole again, the bystander never noticed, and the
  // daemon's only children are the workers it reports and its spawn server.
  for (int i = 0; i < kWorkers; ++i) {
    EXPECT_TRUE(d.wait_state("chaos:" + std::to_string(i), "RUNNING", 30s)) << d.daemon_log();
  }
  EXPECT_EQ(d.worker_pid("bystander:0"), bystander);
  std::vector<pid_t> expected = {bystander};
  for (int i = 0; i < kWorkers; ++i) expected.push_back(d.worker_pid("chaos:" + std::to_string(i)));
  std::sort(expected.begin(), expected.end());
  int servers = 0;
  EXPECT_TRUE(wait_until([&] {
    std::vector<pid_t> children;
    servers = 0;
    for (pid_t child : children_of(d.pid())) {
      if (comm_of(child) == "corral-spawn") {
        ++servers;
      } else {
        children.push_back(child);
      }
    }
    std::sort(children.begin(), children.end());
    return children == expected;
  }));
  EXPECT_EQ(servers, 1);

  // No fd leaked: the same fds as before the chaos, once the sampler has
  // opened the /proc files of the new processes (each live worker holds the
  // same kinds of fd as its predecessor: pipes with other inodes, /proc
  // files of another pid). Exactly equal, no allowance.
  std::vector<std::string> fds_after = steady_fds(d);
  EXPECT_EQ(fds_after.size(), fds_before.size()) << difference(fds_before, fds_after);
  EXPECT_EQ(difference(fds_before, fds_after), "");

  // The job removed by a reload: its segment is released (no fd, no mapping).
  d.rewrite_config("jobs:\n" + kBystander);
  RunResult update = d.ctl({"update"});
  EXPECT_EQ(update.exit_code, 0) << update.out << update.err;
  EXPECT_TRUE(wait_until([&] {
    return memfds(open_fds(d.pid())).empty() &&
           read_file("/proc/" + std::to_string(d.pid()) + "/maps").find("memfd:corral-chaos") ==
               std::string::npos;
  })) << ::testing::PrintToString(open_fds(d.pid()));
  EXPECT_EQ(d.worker_pid("bystander:0"), bystander);

  const std::string socket = d.socket();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(processes_with_env(d.env_tag()), std::vector<pid_t>{});
  EXPECT_FALSE(std::filesystem::exists(socket));
  EXPECT_FALSE(std::filesystem::exists(socket + ".lock"));
}

INSTANTIATE_TEST_SUITE_P(Channels, ChaosTest,
                         ::testing::Values("    channel: shm", "    channel: shm\n    # durable",
                                           "    channel: pipe\n    pipe: {framing: length}"),
                         channel_test_name);

}  // namespace
}  // namespace corral::testing

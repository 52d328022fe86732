// The validated configuration of corral as plain structs: what a YAML file
// says once parse.h has checked it. Every field has the default that
// docs/configuration.md gives, so a default-constructed spec is a valid one. Nothing here reads
// YAML or touches the system; specs compare with == so that a reload can diff
// them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/redis_url.h"

namespace corral::config {

using Duration = std::chrono::milliseconds;
// A duration that may be `off` (disabled): nullopt.
using OptionalDuration = std::optional<Duration>;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

struct LogRotate {
  uint64_t max_size = 10 * kMiB;
  int keep = 5;  // rotated files kept beside the live one
  bool operator==(const LogRotate&) const = default;
};

struct MetricsSpec {
  std::optional<std::string> listen = "127.0.0.1:9464";  // nullopt: `off`
  Duration interval = std::chrono::seconds(1);
  bool operator==(const MetricsSpec&) const = default;
};

struct DaemonSpec {
  std::string socket = "/run/corral/corral.sock";
  unsigned socket_mode = 0660;
  std::vector<std::string> allow_users;
  std::vector<std::string> allow_groups;
  // Variables of corrald's environment that workers of another user get too
  // (they start from a clean environment otherwise).
  std::vector<std::string> pass_env;
  std::string log_dir = "/var/log/corral";
  // Durable jobs' spools and corrald's lock on them.
  std::string state_dir = "/var/lib/corral";
  // Refuse a log_dir (or a sink's or source's directory) that anyone but
  // root and corrald's user can write; false: warn and go on.
  bool private_dirs = true;
  // Where workers' cgroups go (docs/supervision.md): "auto" (corrald's own
  // cgroup where it may write it and it is not the root), "off", or the
  // absolute path of a directory in a cgroup2 hierarchy.
  std::string cgroup = "auto";
  LogLevel log_level = LogLevel::kInfo;
  LogRotate log_rotate;
  MetricsSpec metrics;
  bool operator==(const DaemonSpec&) const = default;
};

// Whether NAME is one of corrald's own variables: its service manager's
// (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*, JOURNAL_STREAM) or corral's
// (CORRAL_*). Workers never get corrald's values of these; pass_env may not
// name them.
inline bool daemon_only_variable(std::string_view name) {
  return name == "NOTIFY_SOCKET" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID" ||
         name == "LISTEN_FDS" || name == "LISTEN_PID" || name == "LISTEN_FDNAMES" ||
         name == "JOURNAL_STREAM" || name.starts_with("CORRAL_");
}

enum class Channel { kNone, kPipe, kShm };
enum class PipeFds { kExtra, kStdio };  // extra: 3 in, 4 out; stdio: 0 in, 1 out
enum class Framing { kLines, kLength };

struct PipeSpec {
  PipeFds fds = PipeFds::kExtra;
  // Unless given: length where the worker has fds of its own to speak the
  // protocol (extra), lines for a filter on stdin/stdout (stdio).
  Framing framing = Framing::kLength;
  bool operator==(const PipeSpec&) const = default;
};

// `shm:` of a job. spin: how long a worker polls its empty task ring before
// it sleeps, and corrald its result ring after handing it tiny tasks (those
// a worker answers within the spin, on the job's average): a task or a result
// that comes within it costs no wake-up. Zero (`off`): both sleep at once,
// for jobs that must not burn CPU.
struct ShmSpec {
  std::chrono::microseconds spin{30};
  bool operator==(const ShmSpec&) const = default;
};
constexpr std::chrono::microseconds kMaxSpin{10000};

enum class RestartPolicy { kAlways, kOnFailure, kNever };

struct BackoffSpec {
  Duration initial = std::chrono::milliseconds(100);
  Duration max = std::chrono::seconds(30);
  double multiplier = 2.0;
  double jitter = 0.1;  // in [0, 1)
  bool operator==(const BackoffSpec&) const = default;
};

// queue.retry: a task that failed, or whose worker crashed or overran
// task_timeout, runs again after a backoff, up to queue.max_attempts.
struct TaskRetrySpec {
  bool on_failed = true;
  bool on_crashed = true;
  bool on_timeout = true;
  BackoffSpec backoff{std::chrono::seconds(1), std::chrono::minutes(5), 2.0, 0.1};
  bool operator==(const TaskRetrySpec&) const = default;
};

// What a durable job's commit survives: a crash of corrald (the data is in
// the kernel's page cache: SQLite's synchronous=NORMAL in WAL mode), or a
// loss of power (fsync at each commit: synchronous=FULL).
enum class Durability { kCrash, kPower };

struct QueueSpec {
  uint64_t capacity = 65536;
  uint64_t max_task_bytes = 65536;
  // Tasks one worker holds at most; nullopt: `auto` (about 2 ms of work,
  // Dispatcher::held_limit).
  std::optional<uint32_t> prefetch;
  uint32_t max_attempts = 3;
  OptionalDuration task_timeout;
  std::optional<TaskRetrySpec> retry;  // nullopt: a failed task is final
  // A task not handed to a worker within this long of its acceptance ends
  // expired (a submit may give its own).
  OptionalDuration deadline;
  bool durable = false;
  Durability durability = Durability::kCrash;
  Duration keep_results = std::chrono::minutes(10);
  bool operator==(const QueueSpec&) const = default;
};

struct RestartSpec {
  RestartPolicy policy = RestartPolicy::kOnFailure;
  std::vector<int> exit_codes = {0};  // clean exits for on-failure
  BackoffSpec backoff;
  Duration reset_after = std::chrono::seconds(60);
  std::optional<uint64_t> max_restarts = 10;  // nullopt (`off`): no limit
  Duration window = std::chrono::seconds(60);
  // A FATAL worker is tried again after this long, with its restart count
  // cleared (systemd's start-limit interval); nullopt (`off`): FATAL stays.
  OptionalDuration cooldown = std::chrono::seconds(60);
  bool operator==(const RestartSpec&) const = default;
};

struct StartSpec {
  Duration settle = std::chrono::seconds(1);
  // Failed starts in a row (exits before settle or READY, spawn errors)
  // allowed before FATAL: supervisord's startretries. nullopt (`off`): only
  // the restart intensity limits them.
  std::optional<uint64_t> retries;
  bool operator==(const StartSpec&) const = default;
};

struct StopSpec {
  int signal = 15;  // SIGTERM
  Duration timeout = std::chrono::seconds(10);
  Duration kill_after = std::chrono::seconds(5);
  bool operator==(const StopSpec&) const = default;
};

struct HealthSpec {
  OptionalDuration heartbeat_timeout;
  bool operator==(const HealthSpec&) const = default;
};

// `limits.cpus`: off, auto (worker i on CPU i mod N), or a CPU list "0-3,6".
struct CpuSpec {
  enum class Mode { kOff, kAuto, kList } mode = Mode::kOff;
  std::vector<int> cpus;  // for kList, sorted and unique
  bool operator==(const CpuSpec&) const = default;
};

struct LimitsSpec {
  // Bytes: memory.max where the workers' cgroups have the memory
  // controller, else the sampled RSS (docs/configuration.md).
  std::optional<uint64_t> memory;
  std::optional<uint64_t> memory_high;  // memory.high (cgroups only)
  uint32_t cpu = 0;                     // percent of one CPU, 0: off; cpu.max (cgroups only)
  std::optional<uint64_t> pids;         // pids.max (cgroups only)
  std::optional<uint64_t> max_tasks;    // recycle after this many tasks
  CpuSpec cpus;
  int nice = 0;
  std::optional<uint64_t> nofile;
  bool operator==(const LimitsSpec&) const = default;
};

enum class SharedType { kU64, kI64, kF64 };

struct SharedArraySpec {
  SharedType type = SharedType::kU64;
  uint64_t length = 0;
  bool operator==(const SharedArraySpec&) const = default;
};

struct SharedSpec {
  std::map<std::string, SharedType> values;
  std::map<std::string, SharedArraySpec> arrays;
  bool operator==(const SharedSpec&) const = default;
};

struct SourceSpec {
  enum class Kind { kNone, kRange, kFile } kind = Kind::kNone;
  int64_t from = 0;  // range: [from, to)
  int64_t to = 0;
  std::string file;
  bool operator==(const SourceSpec&) const = default;
};

struct SinkSpec {
  enum class Kind { kNone, kFile } kind = Kind::kNone;
  std::string file;
  bool operator==(const SinkSpec&) const = default;
};

// `broker: {redis: ...}`: the job's tasks come from a Redis stream that
// corralds on several machines share through one consumer group
// (docs/scale-out.md). Names left out are derived from the job's name when
// the config is read; the consumer, left out, is the host's name, known
// only to the corrald that runs it.
struct RedisBrokerSpec {
  RedisAddress url;
  std::string stream;    // "corral:JOB"
  std::string group;     // "corral"
  std::string consumer;  // empty: the host name
  std::string results;   // "corral:JOB:results"
  std::string dead;      // "corral:JOB:dead"
  // An entry pending this long with a consumer that does not renew it is
  // taken over by another (its node is taken for dead).
  Duration claim_idle = std::chrono::seconds(30);
  // Results and dead streams are trimmed (about) to this many entries; off:
  // never. The task stream is never trimmed (it would drop pending entries).
  std::optional<uint64_t> results_maxlen = 1000000;
  std::optional<uint64_t> dead_maxlen = 100000;
  // Submits through corrald wait while the group's lag plus its pending
  // entries are above this.
  uint64_t high_water = 100000;
  // The longest a connect or a command may take.
  Duration timeout = std::chrono::seconds(5);
  bool operator==(const RedisBrokerSpec&) const = default;
};

struct BrokerSpec {
  enum class Kind { kNone, kRedis } kind = Kind::kNone;
  RedisBrokerSpec redis;
  bool operator==(const BrokerSpec&) const = default;
};

// Where one output stream of a job's workers goes (`log.stdout`, `log.stderr`).
struct LogTarget {
  // auto: daemon.log_dir/JOB-INDEX.out.log (.err.log); off: read and dropped;
  // inherit: corrald's own stdout (stderr), not captured (a container's
  // output, the journal); stdout (stderr only): the worker's stderr goes
  // where its stdout goes, one stream.
  enum class Kind { kAuto, kFile, kOff, kInherit, kStdout } kind = Kind::kAuto;
  std::string path;  // kFile: an absolute path with {job}, {index}, {index:0N}
  bool operator==(const LogTarget&) const = default;
};

struct JobLogSpec {
  LogTarget out;
  LogTarget err;
  // Rotation of this job's files; unset: daemon.log_rotate's. A max_size of
  // kNeverRotate is `off`.
  std::optional<uint64_t> max_size;
  std::optional<int> keep;
  bool operator==(const JobLogSpec&) const = default;
};

constexpr uint64_t kNeverRotate = UINT64_MAX;
constexpr int kDefaultPriority = 999;  // supervisord's

struct JobSpec {
  std::string name;                  // [A-Za-z0-9_.-]+
  std::vector<std::string> command;  // argv, argv[0] searched in PATH
  uint32_t workers = 1;              // after resolving `auto`
  bool workers_auto = false;         // written as `auto`
  bool autostart = true;
  Channel channel = Channel::kNone;
  PipeSpec pipe;
  ShmSpec shm;
  QueueSpec queue;
  RestartSpec restart;
  StartSpec start;
  StopSpec stop;
  HealthSpec health;
  LimitsSpec limits;
  std::map<std::string, std::string> env;
  std::string cwd;                // empty: the daemon's
  std::string user;               // empty: the daemon's
  std::optional<unsigned> umask;  // unset (`inherit`): corrald's
  // Lower starts first at corrald's start and stops last at its stop.
  int priority = kDefaultPriority;
  JobLogSpec log;
  SharedSpec shared;
  SourceSpec source;
  SinkSpec sink;
  BrokerSpec broker;
  bool operator==(const JobSpec&) const = default;
};

struct Config {
  std::string file;  // the main file, as given
  DaemonSpec daemon;
  std::vector<std::string> include;  // the globs, as written
  std::vector<JobSpec> jobs;         // sorted by name, names unique
  bool operator==(const Config&) const = default;
};

}  // namespace corral::config

// The reader of one job's map (schema.h): its command and workers, channel,
// queue, restart and stop, limits, environment, logs, shared values, where
// its tasks come from and go (source, sink, broker), and the checks across
// them. The daemon: section is read in schema_daemon.cc.
#include "base/job_name.h"
#include "config/placeholders.h"
#include "config/schema.h"

namespace corral::config {
namespace {

std::optional<std::vector<std::string>> read_command(Reader& r, const Item& item) {
  std::vector<std::string> argv;
  if (item.value.IsScalar()) {
    auto text = r.text(item, "");
    if (!text) return std::nullopt;
    auto words = split_command(*text);
    if (!words) {
      r.error(item, words.error().message() + " in " + quote(*text));
      return std::nullopt;
    }
    argv = std::move(*words);
  } else {
    auto elements = r.list(item, "an argv list like [prog, --flag] or a command string");
    if (!elements) return std::nullopt;
    bool ok = true;
    for (const Item& element : *elements) {
      auto arg = r.string(element, true);
      ok = ok && arg;
      if (arg) argv.push_back(std::move(*arg));
    }
    if (!ok) return std::nullopt;
  }
  if (argv.empty()) {
    r.error(item, "must not be empty; it needs at least the program to run");
    return std::nullopt;
  }
  if (argv[0].empty()) {
    r.error(item, "the program (the first word) must not be empty");
    return std::nullopt;
  }
  return argv;
}

void read_backoff(Section& s, BackoffSpec& b);

void read_task_retry(Section& s, TaskRetrySpec& retry) {
  Reader& r = s.reader();
  s.get("on", retry, [&](const Item& item) -> std::optional<TaskRetrySpec> {
    auto elements = r.list(item, "a list of causes like [failed, crashed, timeout]");
    if (!elements) return std::nullopt;
    TaskRetrySpec causes = retry;
    causes.on_failed = causes.on_crashed = causes.on_timeout = false;
    bool ok = true;
    for (const Item& element : *elements) {
      auto cause = r.choice(element, names::kRetryCauses);
      ok = ok && cause;
      if (!cause) continue;
      (*cause == names::RetryCause::kFailed    ? causes.on_failed
       : *cause == names::RetryCause::kCrashed ? causes.on_crashed
                                               : causes.on_timeout) = true;
    }
    if (!ok) return std::nullopt;
    if (!causes.on_failed && !causes.on_crashed && !causes.on_timeout) {
      r.error(item,
              "lists no cause: name at least one of failed, crashed, timeout, or leave "
              "queue.retry out");
      return std::nullopt;
    }
    return causes;
  });
  s.get_section("backoff", [&](Section& backoff) { read_backoff(backoff, retry.backoff); });
}

void read_queue(Section& s, QueueSpec& q) {
  s.get_count("capacity", q.capacity, 1);
  s.get_size("max_task_bytes", q.max_task_bytes, 1);
  s.get_count_or("prefetch", q.prefetch, 1, "auto");
  s.get_count("max_attempts", q.max_attempts, 1);
  s.get_optional_duration("task_timeout", q.task_timeout);
  s.get_section("retry", [&](Section& retry) {
    q.retry.emplace();
    read_task_retry(retry, *q.retry);
  });
  s.get_optional_duration("deadline", q.deadline);
  s.get_bool("durable", q.durable);
  s.get_choice("durability", q.durability, names::kDurabilities);
  s.get_duration("keep_results", q.keep_results);
}

void read_backoff(Section& s, BackoffSpec& b) {
  Reader& r = s.reader();
  size_t errors_before = r.error_count();
  s.get_duration("initial", b.initial);
  s.get_duration("max", b.max);
  s.get("multiplier", b.multiplier,
        [&](const Item& item) { return r.real(item, 1.0, HUGE_VAL, "a number >= 1 like 2.0"); });
  s.get("jitter", b.jitter, [&](const Item& item) {
    return r.real(item, 0.0, 1.0, "a number from 0 up to (not including) 1, like 0.1");
  });
  // Compare only values that were read fine, or a bad one would be blamed twice.
  if (r.error_count() == errors_before && b.initial > b.max) {
    auto at = s.peek("initial");
    if (!at) at = s.peek("max");
    r.error(at ? at->mark() : s.mark(), s.scope().label("initial") + ": " +
                                            format_duration(b.initial) + " is longer than max (" +
                                            format_duration(b.max) + ")");
  }
}

void read_restart(Section& s, RestartSpec& restart) {
  Reader& r = s.reader();
  s.get_choice("policy", restart.policy, names::kRestartPolicies);
  s.get("exit_codes", restart.exit_codes, [&](const Item& item) -> std::optional<std::vector<int>> {
    auto elements = r.list(item, "a list of exit codes like [0, 2]");
    if (!elements) return std::nullopt;
    std::vector<int> codes;
    bool ok = true;
    for (const Item& element : *elements) {
      auto code = r.integer(element, 0, 255);
      ok = ok && code;
      if (code) codes.push_back(static_cast<int>(*code));
    }
    if (!ok) return std::nullopt;
    // A set in meaning: sorted and unique, so that equal configs compare equal.
    std::sort(codes.begin(), codes.end());
    codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    return codes;
  });
  s.get_section("backoff", [&](Section& backoff) { read_backoff(backoff, restart.backoff); });
  s.get_duration("reset_after", restart.reset_after);
  s.get_optional_count("max_restarts", restart.max_restarts, 0);
  s.get_duration("window", restart.window, Duration(1));
  s.get_optional_duration("cooldown", restart.cooldown);
}

void read_stop(Section& s, StopSpec& stop) {
  Reader& r = s.reader();
  s.get("signal", stop.signal, [&](const Item& item) -> std::optional<int> {
    constexpr std::string_view kWhat = "a signal name or number like TERM, INT or 15";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    Result<int> signal = parse_signal(*text);
    if (!signal) {
      r.expected(item, kWhat);
      return std::nullopt;
    }
    return *signal;
  });
  s.get_duration("timeout", stop.timeout);
  s.get_duration("kill_after", stop.kill_after);
}

void read_limits(Section& s, LimitsSpec& limits) {
  Reader& r = s.reader();
  const size_t errors_before = r.error_count();
  s.get_optional_size("memory", limits.memory);
  s.get_optional_size("memory_high", limits.memory_high);
  if (r.error_count() == errors_before && limits.memory && limits.memory_high &&
      *limits.memory_high > *limits.memory) {
    auto at = s.peek("memory_high");
    r.error(at ? at->mark() : s.mark(), s.scope().label("memory_high") + ": " +
                                            format_size(*limits.memory_high) +
                                            " is above memory (" + format_size(*limits.memory) +
                                            "), which the kernel enforces first");
  }
  s.get("cpu", limits.cpu, [&](const Item& item) -> std::optional<uint32_t> {
    constexpr std::string_view kWhat = "a share of one CPU like 50% or 150%, or off";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    if (*text == "off") return 0u;
    std::optional<uint64_t> percent;
    if (text->size() > 1 && text->back() == '%') {
      percent = parse_unsigned(std::string_view(*text).substr(0, text->size() - 1));
    }
    if (!percent || *percent == 0 || *percent > 100000) {
      r.expected(item, kWhat);
      return std::nullopt;
    }
    return static_cast<uint32_t>(*percent);
  });
  s.get_optional_count("pids", limits.pids, 1);
  s.get_optional_count("max_tasks", limits.max_tasks, 1);
  s.get("cpus", limits.cpus, [&](const Item& item) -> std::optional<CpuSpec> {
    constexpr std::string_view kWhat = "off, auto or a CPU list like \"0-3,6\"";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    CpuSpec cpus;
    if (*text == "off") return cpus;
    if (*text == "auto") {
      cpus.mode = CpuSpec::Mode::kAuto;
      return cpus;
    }
    auto list = parse_cpu_list(*text);
    if (!list) {
      r.expected(item, kWhat);
      return std::nullopt;
    }
    cpus.mode = CpuSpec::Mode::kList;
    cpus.cpus = std::move(*list);
    return cpus;
  });
  s.get_integer("nice", limits.nice, -20, 19);
  s.get_optional_count("nofile", limits.nofile, 1);
}

void read_env(Section& s, std::map<std::string, std::string>& env) {
  Reader& r = s.reader();
  for (const Item& variable : s.all()) {
    if (variable.key.empty() || variable.key.find('=') != std::string::npos ||
        variable.key.find('\0') != std::string::npos) {
      r.error(variable.key_mark, "invalid environment variable name " + quote(variable.key));
      continue;
    }
    if (auto value = r.string(variable, true)) env[variable.key] = std::move(*value);
  }
}

void read_shared(Section& s, SharedSpec& shared) {
  Reader& r = s.reader();
  auto check_name = [&](const Item& item) {
    if (valid_job_name(item.key)) return true;
    r.error(item.key_mark,
            "invalid shared name " + quote(item.key) + ": use letters, digits, '_', '.' and '-'");
    return false;
  };
  s.get_section("values", [&](Section& values) {
    for (const Item& value : values.all()) {
      if (!check_name(value)) continue;
      if (auto type = r.choice(value, names::kSharedTypes)) shared.values[value.key] = *type;
    }
  });
  s.get_section("arrays", [&](Section& arrays) {
    for (const Item& array : arrays.all()) {
      if (!check_name(array)) continue;
      if (shared.values.count(array.key)) {
        r.error(array.key_mark,
                "shared name " + quote(array.key) + " is both a value and an array");
        continue;
      }
      Section body(r, array, arrays.scope().child(array.key), "a map like {type: u64, length: 64}");
      SharedArraySpec spec;
      body.get_choice("type", spec.type, names::kSharedTypes);
      if (!body.get_count("length", spec.length, 1, kMaxSharedArrayLength) && body.valid()) {
        r.error(body.mark(), arrays.scope().label(array.key) + " needs length:");
      }
      body.finish();
      shared.arrays[array.key] = spec;
    }
  });
}

void read_source(Section& s, SourceSpec& source) {
  Reader& r = s.reader();
  auto item = s.take("source");
  if (!item) return;
  if (item->value.IsScalar() && item->value.Scalar() == "none") {
    source = SourceSpec{};
    return;
  }
  Section body(r, *item, s.scope().child("source"),
               "none, {range: {from: 0, to: 1000}} or {file: PATH}");
  body.get_section("range", [&](Section& range) {
    size_t errors_before = r.error_count();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    bool has_from = range.get_integer("from", source.from, kMin, kMax);
    bool has_to = range.get_integer("to", source.to, kMin, kMax);
    source.kind = SourceSpec::Kind::kRange;
    if (range.valid() && (!has_from || !has_to)) {
      r.error(range.mark(), s.scope().label("source.range") + " needs both from: and to:");
    } else if (r.error_count() == errors_before && source.from > source.to) {
      r.error(range.peek("from")->mark(),
              s.scope().label("source.range") + ": from (" + std::to_string(source.from) +
                  ") must not be greater than to (" + std::to_string(source.to) + ")");
    }
  });
  bool has_file = body.get("file", source.file, [&](const Item& i) { return r.string(i, false); });
  if (has_file) source.kind = SourceSpec::Kind::kFile;
  if (body.peek("range") && has_file) {
    r.error(body.mark(), s.scope().label("source") + " takes range or file, not both");
  } else if (!body.peek("range") && !has_file && body.valid()) {
    r.error(body.mark(), s.scope().label("source") + " needs range: or file: (or write none)");
  }
  body.finish();
}

void read_sink(Section& s, SinkSpec& sink) {
  Reader& r = s.reader();
  auto item = s.take("sink");
  if (!item) return;
  if (item->value.IsScalar() && item->value.Scalar() == "none") {
    sink = SinkSpec{};
    return;
  }
  Section body(r, *item, s.scope().child("sink"), "none or {file: PATH}");
  if (body.get("file", sink.file, [&](const Item& i) { return r.string(i, false); })) {
    sink.kind = SinkSpec::Kind::kFile;
  } else if (body.valid()) {
    r.error(body.mark(), s.scope().label("sink") + " needs file: (or write none)");
  }
  body.finish();
}

// A key, stream or group name: Redis takes any bytes, corral takes what a
// log line and a shell show without quoting trouble.
std::optional<std::string> redis_name(Reader& r, const Item& item) {
  auto name = r.string(item, false);
  if (!name) return std::nullopt;
  for (unsigned char c : *name) {
    if (c <= ' ' || c == 0x7f) {
      r.expected(item, "a name without spaces or control characters");
      return std::nullopt;
    }
  }
  return name;
}

void read_redis_broker(Section& s, const std::string& job, RedisBrokerSpec& redis) {
  Reader& r = s.reader();
  size_t errors_before = r.error_count();
  bool has_url = s.get("url", redis.url, [&](const Item& item) -> std::optional<RedisAddress> {
    auto text = r.text(item, "a URL like \"unix:///run/redis/redis.sock\"");
    if (!text) return std::nullopt;
    auto address = parse_redis_url(*text);
    if (!address) {
      r.error(item, address.error().message());
      return std::nullopt;
    }
    return std::move(*address);
  });
  if (!has_url && s.valid()) {
    r.error(s.mark(), "broker.redis of job " + quote(job) +
                          " needs url: (unix:///PATH or redis://HOST:PORT/DB)");
  }
  redis.stream = "corral:" + job;
  redis.group = "corral";
  redis.results = redis.stream + ":results";
  redis.dead = redis.stream + ":dead";
  auto name = [&](const Item& item) { return redis_name(r, item); };
  s.get("stream", redis.stream, name);
  s.get("group", redis.group, name);
  s.get("consumer", redis.consumer, name);
  s.get("results", redis.results, name);
  s.get("dead", redis.dead, name);
  s.get_duration("claim_idle", redis.claim_idle, std::chrono::seconds(1));
  s.get_optional_count("results_maxlen", redis.results_maxlen, 1);
  s.get_optional_count("dead_maxlen", redis.dead_maxlen, 1);
  s.get_count("high_water", redis.high_water, 1);
  s.get_duration("timeout", redis.timeout, std::chrono::milliseconds(100));
  if (r.error_count() != errors_before) return;
  // Two roles on one key would mix results into tasks (or worse).
  const std::pair<const char*, const std::string*> keys[] = {
      {"stream", &redis.stream}, {"results", &redis.results}, {"dead", &redis.dead}};
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = i + 1; j < 3; ++j) {
      if (*keys[i].second == *keys[j].second) {
        auto at = s.peek(keys[j].first);
        if (!at) at = s.peek(keys[i].first);
        r.error(at ? at->mark() : s.mark(),
                s.scope().label(keys[i].first) + " and " + keys[j].first + " are both " +
                    quote(*keys[i].second) + "; each needs a stream of its own");
      }
    }
  }
}

void read_broker(Section& s, JobSpec& job) {
  Reader& r = s.reader();
  auto item = s.take("broker");
  if (!item) return;
  if (item->value.IsScalar() && item->value.Scalar() == "none") {
    job.broker = BrokerSpec{};
    return;
  }
  Section body(r, *item, s.scope().child("broker"), "none or {redis: {url: ...}}");
  bool has_redis = body.get_section("redis", [&](Section& redis) {
    job.broker.kind = BrokerSpec::Kind::kRedis;
    read_redis_broker(redis, job.name, job.broker.redis);
  });
  if (!has_redis && body.valid()) {
    r.error(body.mark(), s.scope().label("broker") + " needs redis: (or write none)");
  }
  body.finish();
  if (job.broker.kind == BrokerSpec::Kind::kNone) return;
  auto refuse = [&](const std::string& why) {
    r.error(item->mark(), "broker of job " + quote(job.name) + ": " + why);
  };
  if (job.channel == Channel::kNone) {
    refuse("a job fed by a broker needs a channel (channel: shm or pipe) to hand tasks to");
  }
  if (job.queue.durable) {
    refuse(
        "a broker job keeps its tasks in the broker; queue.durable: true would keep them a "
        "second time (leave one out)");
  }
  if (job.source.kind != SourceSpec::Kind::kNone) {
    refuse(
        "a broker job takes its tasks from the stream; add a source's tasks with "
        "`corralctl submit` or any Redis client instead");
  }
}

// log.stdout / log.stderr: auto, off, an absolute path with placeholders
// (config/placeholders.h), and for stderr also `stdout`.
std::optional<LogTarget> read_log_target(Reader& r, const Item& item, bool is_stderr) {
  const std::string what = is_stderr ? "auto, off, inherit, stdout or an absolute path"
                                     : "auto, off, inherit or an absolute path";
  auto text = r.text(item, what);
  if (!text) return std::nullopt;
  LogTarget target;
  if (*text == "auto") return target;
  if (*text == "off") {
    target.kind = LogTarget::Kind::kOff;
    return target;
  }
  if (*text == "inherit") {
    target.kind = LogTarget::Kind::kInherit;
    return target;
  }
  if (is_stderr && *text == "stdout") {
    target.kind = LogTarget::Kind::kStdout;
    return target;
  }
  if (Status ok = check_log_path(*text); !ok) {
    r.error(item, quote(*text) + ": " + ok.error().message());
    return std::nullopt;
  }
  target.kind = LogTarget::Kind::kFile;
  target.path = std::move(*text);
  return target;
}

void read_job_log(Section& s, JobSpec& job) {
  Reader& r = s.reader();
  s.get("stdout", job.log.out, [&](const Item& item) { return read_log_target(r, item, false); });
  s.get("stderr", job.log.err, [&](const Item& item) { return read_log_target(r, item, true); });
  if (auto item = s.take("max_size")) {
    if (item->value.IsScalar() && item->value.Scalar() == "off") {
      job.log.max_size = kNeverRotate;
    } else if (auto size = r.size(*item, 1)) {
      job.log.max_size = *size;
    }
  }
  if (auto item = s.take("keep")) {
    if (auto keep = r.integer(*item, 0, std::numeric_limits<int>::max())) {
      job.log.keep = static_cast<int>(*keep);
    }
  }
}

}  // namespace

void read_job(Section& s, JobSpec& job, unsigned cpus) {
  Reader& r = s.reader();
  if (auto command = s.take("command")) {
    if (auto argv = read_command(r, *command)) job.command = std::move(*argv);
  } else if (s.valid()) {
    r.error(s.mark(),
            "job " + quote(job.name) + " has no command; add command: [program, args...]");
  }
  s.get("workers", job.workers, [&](const Item& item) -> std::optional<uint32_t> {
    std::string what = "an integer from 0 to " + std::to_string(kMaxWorkers) + " or auto";
    auto text = r.text(item, what);
    if (!text) return std::nullopt;
    if (*text == "auto") {
      job.workers_auto = true;
      // No CPU count known (0) still means one worker, not none.
      return std::max(cpus, 1u);
    }
    auto n = parse_unsigned(*text);
    if (!n || *n > kMaxWorkers) {
      r.expected(item, what);
      return std::nullopt;
    }
    return static_cast<uint32_t>(*n);
  });
  s.get_bool("autostart", job.autostart);
  s.get_choice("channel", job.channel, names::kChannels);
  s.get_section("pipe", [&](Section& pipe) {
    pipe.get_choice("fds", job.pipe.fds, names::kPipeFds);
    job.pipe.framing = job.pipe.fds == PipeFds::kStdio ? Framing::kLines : Framing::kLength;
    pipe.get_choice("framing", job.pipe.framing, names::kFramings);
  });
  s.get_section("shm", [&](Section& shm) {
    shm.get("spin", job.shm.spin,
            [&](const Item& item) -> std::optional<std::chrono::microseconds> {
              constexpr std::string_view kWhat = "off, or a time up to 10ms like 50us or 1ms";
              auto text = r.text(item, kWhat);
              if (!text) return std::nullopt;
              if (*text == "off" || *text == "0") return std::chrono::microseconds(0);
              Result<std::chrono::microseconds> spin = parse_spin(*text);
              if (!spin || *spin > kMaxSpin) {
                r.expected(item, kWhat);
                return std::nullopt;
              }
              return *spin;
            });
  });
  s.get_section("queue", [&](Section& queue) { read_queue(queue, job.queue); });
  s.get_section("restart", [&](Section& restart) { read_restart(restart, job.restart); });
  s.get_section("start", [&](Section& start) {
    start.get_duration("settle", job.start.settle);
    start.get_optional_count("retries", job.start.retries, 0);
  });
  s.get_section("stop", [&](Section& stop) { read_stop(stop, job.stop); });
  s.get_section("health", [&](Section& health) {
    health.get_optional_duration("heartbeat_timeout", job.health.heartbeat_timeout);
    // Heartbeats are frames of the length protocol or a cell of the shm
    // slot: a line worker or a job without a channel has no way to send them.
    const bool can_beat = job.channel == Channel::kShm ||
                          (job.channel == Channel::kPipe && job.pipe.framing == Framing::kLength);
    if (job.health.heartbeat_timeout && !can_beat) {
      r.error(health.mark(), "health.heartbeat_timeout of job " + quote(job.name) +
                                 " needs channel: shm, or channel: pipe with framing: length "
                                 "(its workers have no way to send heartbeats)");
    }
  });
  s.get_section("limits", [&](Section& limits) { read_limits(limits, job.limits); });
  s.get_section("env", [&](Section& env) { read_env(env, job.env); });
  s.get_string("cwd", job.cwd, true);
  s.get_string("user", job.user, true);
  if (auto item = s.take("umask")) {
    constexpr std::string_view kWhat = "inherit, or an octal umask like \"027\"";
    auto text = r.text(*item, kWhat);
    Result<unsigned> mask = text ? parse_mode(*text) : Result<unsigned>(Error(""));
    if (text && *text == "inherit") {
      job.umask.reset();
    } else if (mask && *mask <= 0777) {
      job.umask = *mask;
    } else if (text) {
      r.expected(*item, kWhat);
    }
  }
  s.get_integer("priority", job.priority, -999999, 999999);
  s.get_section("log", [&](Section& log) { read_job_log(log, job); });
  s.get_section("shared", [&](Section& shared) { read_shared(shared, job.shared); });
  read_source(s, job.source);
  read_sink(s, job.sink);
  read_broker(s, job);
  // A source is read again from its start whenever corrald starts: kept in
  // a spool too, each of its tasks would come back twice.
  if (job.queue.durable && job.source.kind != SourceSpec::Kind::kNone) {
    auto at = s.peek("source");
    r.error(at ? at->mark() : s.mark(),
            "source of job " + quote(job.name) +
                ": a durable job (queue.durable: true) takes its tasks from submits; a source is "
                "read again from its start each time corrald starts, so its tasks would run "
                "twice");
  }
}

}  // namespace corral::config

// Prints a Config as YAML in the layout of docs/configuration.md, every key
// present. Strings are written plain when no YAML reader could take them for
// anything else, double-quoted otherwise.
#include "config/emit.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "config/names.h"
#include "config/quote.h"
#include "config/units.h"

namespace corral::config {
namespace {

// Words that YAML 1.1 readers turn into booleans or null.
bool is_reserved_word(std::string_view s) {
  static constexpr std::string_view kWords[] = {"true", "false", "yes", "no",  "on",
                                                "off",  "y",     "n",   "null"};
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return std::find(std::begin(kWords), std::end(kWords), lower) != std::end(kWords);
}

// Plain only for words made of harmless characters that do not start like a
// number, an indicator or a special word; flow lists and maps then need no
// further care because ',', ':', '[', '{', '#' and spaces are all quoted.
bool can_be_plain(std::string_view s) {
  if (s.empty() || is_reserved_word(s)) return false;
  auto letter = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  bool starts_well =
      letter(s[0]) || s[0] == '/' || (s[0] == '-' && s.size() > 1 && (letter(s[1]) || s[1] == '-'));
  if (!starts_well) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return letter(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '/' ||
           c == '-' || c == '+' || c == '=' || c == '@';
  });
}

std::string scalar(std::string_view s) {
  if (can_be_plain(s)) return std::string(s);
  return "\"" + escape_double_quoted(s, Invisible::kKeep) + "\"";
}

std::string log_target(const LogTarget& target) {
  switch (target.kind) {
    case LogTarget::Kind::kAuto:
      return "auto";
    case LogTarget::Kind::kOff:
      return "off";
    case LogTarget::Kind::kInherit:
      return "inherit";
    case LogTarget::Kind::kStdout:
      return "stdout";
    case LogTarget::Kind::kFile:
      break;
  }
  return scalar(target.path);
}

// The shortest text that reads back as the same double, with a ".0" so that
// a multiplier of 2 still looks like a number with a fraction.
std::string real(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string optional_duration(const OptionalDuration& d) { return d ? format_duration(*d) : "off"; }

std::string optional_count(const std::optional<uint64_t>& n) {
  return n ? std::to_string(*n) : "off";
}

std::string backoff(const BackoffSpec& b) {
  return "{initial: " + format_duration(b.initial) + ", max: " + format_duration(b.max) +
         ", multiplier: " + real(b.multiplier) + ", jitter: " + real(b.jitter) + "}";
}

std::string flow_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + scalar(items[i]);
  return out + "]";
}

// "0-3,6": runs of consecutive CPUs as ranges.
std::string cpus(const CpuSpec& spec) {
  if (spec.mode == CpuSpec::Mode::kOff) return "off";
  if (spec.mode == CpuSpec::Mode::kAuto) return "auto";
  std::string list;
  for (size_t i = 0; i < spec.cpus.size();) {
    size_t j = i;
    while (j + 1 < spec.cpus.size() && spec.cpus[j + 1] == spec.cpus[j] + 1) ++j;
    if (!list.empty()) list += ',';
    list += std::to_string(spec.cpus[i]);
    if (j > i) {
      list += '-';
      list += std::to_string(spec.cpus[j]);
    }
    i = j + 1;
  }
  return scalar(list);
}

std::string mode(unsigned m) {
  char buffer[16];
  snprintf(buffer, sizeof buffer, "\"%04o\"", m);
  return buffer;
}

// Appends "KEY: VALUE" lines at an indentation.
class Writer {
 public:
  void line(int indent, std::string_view key, std::string_view value) {
    out_.append(static_cast<size_t>(indent), ' ');
    out_ += key;
    out_ += ':';
    if (!value.empty()) {
      out_ += ' ';
      out_ += value;
    }
    out_ += '\n';
  }
  void comment(std::string_view text) {
    out_ += "# ";
    out_ += text;
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void write_daemon(Writer& w, const DaemonSpec& d) {
  w.line(0, "daemon", "");
  w.line(2, "socket", scalar(d.socket));
  w.line(2, "socket_mode", mode(d.socket_mode));
  w.line(2, "allow_users", flow_list(d.allow_users));
  w.line(2, "allow_groups", flow_list(d.allow_groups));
  w.line(2, "pass_env", flow_list(d.pass_env));
  w.line(2, "log_dir", scalar(d.log_dir));
  w.line(2, "state_dir", scalar(d.state_dir));
  w.line(2, "private_dirs", d.private_dirs ? "true" : "false");
  w.line(2, "cgroup", scalar(d.cgroup));
  w.line(2, "log_level", to_string(d.log_level));
  w.line(2, "log_rotate",
         "{max_size: " + format_size(d.log_rotate.max_size) +
             ", keep: " + std::to_string(d.log_rotate.keep) + "}");
  w.line(2, "metrics",
         "{listen: " + (d.metrics.listen ? scalar(*d.metrics.listen) : std::string("off")) +
             ", interval: " + format_duration(d.metrics.interval) + "}");
}

void write_job(Writer& w, const JobSpec& job) {
  w.line(2, scalar(job.name), "");
  w.line(4, "command", flow_list(job.command));
  w.line(4, "workers", job.workers_auto ? "auto" : std::to_string(job.workers));
  w.line(4, "autostart", job.autostart ? "true" : "false");
  w.line(4, "channel", to_string(job.channel));
  w.line(4, "pipe",
         "{fds: " + std::string(names::text_of(names::kPipeFds, job.pipe.fds)) +
             ", framing: " + std::string(names::text_of(names::kFramings, job.pipe.framing)) + "}");

  w.line(4, "shm", "{spin: " + format_spin(job.shm.spin) + "}");

  const QueueSpec& q = job.queue;
  w.line(4, "queue", "");
  w.line(6, "capacity", std::to_string(q.capacity));
  w.line(6, "max_task_bytes", format_size(q.max_task_bytes));
  w.line(6, "prefetch", q.prefetch ? std::to_string(*q.prefetch) : std::string("auto"));
  w.line(6, "max_attempts", std::to_string(q.max_attempts));
  w.line(6, "task_timeout", optional_duration(q.task_timeout));
  if (q.retry) {
    std::vector<std::string> causes;
    if (q.retry->on_failed) causes.emplace_back("failed");
    if (q.retry->on_crashed) causes.emplace_back("crashed");
    if (q.retry->on_timeout) causes.emplace_back("timeout");
    w.line(6, "retry",
           "{on: " + flow_list(causes) + ", backoff: " + backoff(q.retry->backoff) + "}");
  }
  w.line(6, "deadline", optional_duration(q.deadline));
  w.line(6, "durable", q.durable ? "true" : "false");
  w.line(6, "durability", std::string(names::text_of(names::kDurabilities, q.durability)));
  w.line(6, "keep_results", format_duration(q.keep_results));

  const RestartSpec& r = job.restart;
  std::vector<std::string> codes;
  for (int code : r.exit_codes) codes.push_back(std::to_string(code));
  std::string code_list = "[";
  for (size_t i = 0; i < codes.size(); ++i) code_list += (i ? ", " : "") + codes[i];
  code_list += "]";
  w.line(4, "restart", "");
  w.line(6, "policy", to_string(r.policy));
  w.line(6, "exit_codes", code_list);
  w.line(6, "backoff", backoff(r.backoff));
  w.line(6, "reset_after", format_duration(r.reset_after));
  w.line(6, "max_restarts", optional_count(r.max_restarts));
  w.line(6, "window", format_duration(r.window));
  w.line(6, "cooldown", optional_duration(r.cooldown));

  w.line(4, "start",
         "{settle: " + format_duration(job.start.settle) +
             ", retries: " + optional_count(job.start.retries) + "}");
  w.line(4, "stop",
         "{signal: " + scalar(signal_name(job.stop.signal)) +
             ", timeout: " + format_duration(job.stop.timeout) +
             ", kill_after: " + format_duration(job.stop.kill_after) + "}");
  w.line(4, "health",
         "{heartbeat_timeout: " + optional_duration(job.health.heartbeat_timeout) + "}");

  const LimitsSpec& l = job.limits;
  w.line(
      4, "limits",
      "{memory: " + (l.memory ? format_size(*l.memory) : std::string("off")) +
          ", memory_high: " + (l.memory_high ? format_size(*l.memory_high) : std::string("off")) +
          ", cpu: " + (l.cpu > 0 ? std::to_string(l.cpu) + "%" : std::string("off")) +
          ", pids: " + optional_count(l.pids) + ", max_tasks: " + optional_count(l.max_tasks) +
          ", cpus: " + cpus(l.cpus) + ", nice: " + std::to_string(l.nice) +
          ", nofile: " + optional_count(l.nofile) + "}");

  if (job.env.empty()) {
    w.line(4, "env", "{}");
  } else {
    w.line(4, "env", "");
    for (const auto& [key, value] : job.env) w.line(6, scalar(key), scalar(value));
  }
  w.line(4, "cwd", scalar(job.cwd));
  w.line(4, "user", scalar(job.user));
  if (job.umask) {
    char mask[8];
    std::snprintf(mask, sizeof mask, "%04o", *job.umask);
    w.line(4, "umask", scalar(mask));
  } else {
    w.line(4, "umask", "inherit");
  }
  w.line(4, "priority", std::to_string(job.priority));
  std::string log = "{stdout: " + log_target(job.log.out) + ", stderr: " + log_target(job.log.err);
  // Left out, they are daemon.log_rotate's.
  if (job.log.max_size) {
    log += ", max_size: " + (*job.log.max_size == kNeverRotate ? std::string("off")
                                                               : format_size(*job.log.max_size));
  }
  if (job.log.keep) log += ", keep: " + std::to_string(*job.log.keep);
  w.line(4, "log", log + "}");

  std::string values = "{";
  for (const auto& [name, type] : job.shared.values) {
    values += (values.size() > 1 ? ", " : "") + scalar(name) + ": " +
              std::string(names::text_of(names::kSharedTypes, type));
  }
  std::string arrays = "{";
  for (const auto& [name, array] : job.shared.arrays) {
    arrays += (arrays.size() > 1 ? ", " : "") + scalar(name) +
              ": {type: " + std::string(names::text_of(names::kSharedTypes, array.type)) +
              ", length: " + std::to_string(array.length) + "}";
  }
  w.line(4, "shared", "");
  w.line(6, "values", values + "}");
  w.line(6, "arrays", arrays + "}");

  switch (job.source.kind) {
    case SourceSpec::Kind::kNone:
      w.line(4, "source", "none");
      break;
    case SourceSpec::Kind::kRange:
      w.line(4, "source",
             "{range: {from: " + std::to_string(job.source.from) +
                 ", to: " + std::to_string(job.source.to) + "}}");
      break;
    case SourceSpec::Kind::kFile:
      w.line(4, "source", "{file: " + scalar(job.source.file) + "}");
      break;
  }
  if (job.sink.kind == SinkSpec::Kind::kFile) {
    w.line(4, "sink", "{file: " + scalar(job.sink.file) + "}");
  } else {
    w.line(4, "sink", "none");
  }
  if (job.broker.kind == BrokerSpec::Kind::kNone) {
    w.line(4, "broker", "none");
  } else {
    const RedisBrokerSpec& b = job.broker.redis;
    w.line(4, "broker", "");
    w.line(6, "redis", "");
    w.line(8, "url", scalar(b.url.url));
    w.line(8, "stream", scalar(b.stream));
    w.line(8, "group", scalar(b.group));
    // Left out, it is the host's name where corrald runs.
    if (!b.consumer.empty()) w.line(8, "consumer", scalar(b.consumer));
    w.line(8, "results", scalar(b.results));
    w.line(8, "dead", scalar(b.dead));
    w.line(8, "claim_idle", format_duration(b.claim_idle));
    w.line(8, "results_maxlen", optional_count(b.results_maxlen));
    w.line(8, "dead_maxlen", optional_count(b.dead_maxlen));
    w.line(8, "high_water", std::to_string(b.high_water));
    w.line(8, "timeout", format_duration(b.timeout));
  }
}

}  // namespace

std::string to_yaml(const Config& config) {
  Writer w;
  write_daemon(w, config.daemon);
  // The jobs of included files are already merged into config.jobs. Writing
  // `include:` as well would read them twice (duplicate jobs), and writing
  // `include: []` would claim there were none, so the globs only appear as a
  // comment: the output stands alone and says where its jobs came from.
  if (!config.include.empty()) {
    std::string globs;
    for (const std::string& glob : config.include)
      globs += (globs.empty() ? "" : ", ") + scalar(glob);
    w.comment("the jobs of include: [" + globs + "] are merged below");
  }
  if (config.jobs.empty()) {
    w.line(0, "jobs", "{}");
  } else {
    w.line(0, "jobs", "");
    for (const JobSpec& job : config.jobs) write_job(w, job);
  }
  return w.take();
}

const char* to_string(RestartPolicy policy) {
  return names::text_of(names::kRestartPolicies, policy).data();
}

const char* to_string(Channel channel) { return names::text_of(names::kChannels, channel).data(); }

const char* to_string(LogLevel level) { return names::text_of(names::kLogLevels, level).data(); }

}  // namespace corral::config

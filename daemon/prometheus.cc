#include "daemon/prometheus.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "daemon/proc_stats.h"

namespace corral::daemon {

namespace {

// Label values escape backslash, double quote and newline.
std::string escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

class ExpositionWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  // NAME{LABELS} VALUE; LABELS already rendered ("job=\"a\",worker=\"a:0\"").
  void sample(std::string_view name, const std::string& labels, double value) {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(number(value)).append("\n");
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// NAME="VALUE",... for each pair.
std::string labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += ',';
    out.append(name).append("=\"").append(escape(value)).append("\"");
  }
  return out;
}

constexpr std::array kStates = {State::kStopped, State::kStarting, State::kRunning,
                                State::kBackoff, State::kStopping, State::kExited,
                                State::kFatal};

}  // namespace

std::string render_metrics(const Supervisor& supervisor) {
  ExpositionWriter w;
  std::vector<WorkerStatus> workers;
  for (const auto& job : supervisor.job_names()) {
    for (const auto& id : supervisor.workers_of(job)) workers.push_back(supervisor.status(id));
  }
  auto worker_labels = [](const WorkerStatus& s, std::string_view name = {},
                          std::string_view value = {}) {
    const std::string worker = s.id.str();
    if (name.empty()) return labels({{"job", s.id.job}, {"worker", worker}});
    return labels({{"job", s.id.job}, {"worker", worker}, {name, value}});
  };

  w.family("corral_worker_state", "gauge",
           "1 for the state the worker is in, 0 for the others (supervisord's states)");
  for (const auto& s : workers) {
    for (State state : kStates) {
      w.sample("corral_worker_state", worker_labels(s, "state", to_string(state)),
               s.state == state ? 1 : 0);
    }
  }
  w.family("corral_worker_up", "gauge", "1 while the worker has a process");
  for (const auto& s : workers) w.sample("corral_worker_up", worker_labels(s), s.pid > 0 ? 1 : 0);
  w.family("corral_worker_cpu_seconds_total", "counter",
           "user and system CPU seconds of the worker's current process");
  for (const auto& s : workers)
    w.sample("corral_worker_cpu_seconds_total", worker_labels(s), s.cpu_s);
  w.family("corral_worker_resident_memory_bytes", "gauge",
           "resident memory of the worker's current process");
  for (const auto& s : workers) {
    w.sample("corral_worker_resident_memory_bytes", worker_labels(s),
             static_cast<double>(s.rss_bytes));
  }
  w.family("corral_worker_threads", "gauge", "threads of the worker's current process");
  for (const auto& s : workers) w.sample("corral_worker_threads", worker_labels(s), s.threads);
  w.family("corral_worker_restarts_total", "counter",
           "restarts of the worker after its process ended");
  for (const auto& s : workers) {
    w.sample("corral_worker_restarts_total", worker_labels(s), static_cast<double>(s.restarts));
  }
  w.family("corral_worker_exits_total", "counter",
           "ends of the worker's processes, by how they ended (exit N, or the signal)");
  for (const auto& s : workers) {
    for (const auto& [reason, n] : s.exits) {
      w.sample("corral_worker_exits_total", worker_labels(s, "reason", reason),
               static_cast<double>(n));
    }
  }
  w.family("corral_worker_enforced_total", "counter",
           "kills and restarts corral decided, by reason (memory, max_tasks, heartbeat, "
           "task_timeout, protocol)");
  for (const auto& s : workers) {
    for (const auto& [reason, n] : s.enforced) {
      w.sample("corral_worker_enforced_total", worker_labels(s, "reason", reason),
               static_cast<double>(n));
    }
  }
  w.family("corral_worker_tasks_total", "counter", "tasks the worker finished, by status");
  for (const auto& s : workers) {
    w.sample("corral_worker_tasks_total", worker_labels(s, "status", "ok"),
             static_cast<double>(s.tasks_ok));
    w.sample("corral_worker_tasks_total", worker_labels(s, "status", "failed"),
             static_cast<double>(s.tasks_failed));
  }

  struct JobFeedRef {
    std::string name;
    std::shared_ptr<JobFeed> feed;
  };
  std::vector<JobFeedRef> feeds;
  for (const auto& name : supervisor.job_names()) {
    if (auto feed = supervisor.feed(name)) feeds.push_back({name, std::move(feed)});
  }
  w.family("corral_job_tasks_submitted_total", "counter", "tasks accepted by the job");
  for (const auto& [name, feed] : feeds) {
    w.sample("corral_job_tasks_submitted_total", labels({{"job", name}}),
             static_cast<double>(feed->dispatcher().counts().submitted));
  }
  w.family("corral_job_tasks_finished_total", "counter",
           "tasks that reached their end, by status: ok, failed, dead, cancelled, expired");
  for (const auto& [name, feed] : feeds) {
    const TaskCounts& c = feed->dispatcher().counts();
    for (auto [status, n] :
         {std::pair{"ok", c.ok}, std::pair{"failed", c.failed}, std::pair{"dead", c.dead},
          std::pair{"cancelled", c.cancelled}, std::pair{"expired", c.expired}}) {
      w.sample("corral_job_tasks_finished_total", labels({{"job", name}, {"status", status}}),
               static_cast<double>(n));
    }
  }
  w.family("corral_job_redeliveries_total", "counter",
           "times a task went out again: after its worker died, or after a retry's backoff");
  for (const auto& [name, feed] : feeds) {
    w.sample("corral_job_redeliveries_total", labels({{"job", name}}),
             static_cast<double>(feed->dispatcher().counts().redelivered));
  }
  // Kept for dashboards written against it; a sum over its status label
  // counts each task twice (submitted and its end): the three families
  // above replace it.
  w.family("corral_job_tasks_total", "counter",
           "deprecated (use corral_job_tasks_submitted_total, corral_job_tasks_finished_total "
           "and corral_job_redeliveries_total): tasks by status: submitted, ok, failed, dead, "
           "redelivered");
  for (const auto& [name, feed] : feeds) {
    const TaskCounts& c = feed->dispatcher().counts();
    for (auto [status, n] :
         {std::pair{"submitted", c.submitted}, std::pair{"ok", c.ok}, std::pair{"failed", c.failed},
          std::pair{"dead", c.dead}, std::pair{"redelivered", c.redelivered}}) {
      w.sample("corral_job_tasks_total", labels({{"job", name}, {"status", status}}),
               static_cast<double>(n));
    }
  }
  w.family("corral_job_queue_depth", "gauge", "tasks queued, not yet handed to a worker");
  for (const auto& [name, feed] : feeds) {
    w.sample("corral_job_queue_depth", labels({{"job", name}}),
             static_cast<double>(feed->dispatcher().queued()));
  }
  w.family("corral_job_tasks_delayed", "gauge",
           "tasks waiting for a retry's backoff to end (queue.retry)");
  for (const auto& [name, feed] : feeds) {
    w.sample("corral_job_tasks_delayed", labels({{"job", name}}),
             static_cast<double>(feed->dispatcher().delayed()));
  }
  w.family("corral_job_in_flight", "gauge", "tasks handed to workers and not answered yet");
  for (const auto& [name, feed] : feeds) {
    w.sample("corral_job_in_flight", labels({{"job", name}}),
             static_cast<double>(feed->dispatcher().in_flight()));
  }
  w.family("corral_job_task_duration_seconds", "histogram",
           "from a task's dispatch to a worker until its result");
  for (const auto& [name, feed] : feeds) {
    const Histogram& h = feed->metrics().run_time;
    uint64_t cumulative = 0;
    // Every other bucket: bounds at powers of two microseconds.
    for (size_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
      cumulative += h.bucket(i);
      if (i % 2 != 0) continue;
      w.sample("corral_job_task_duration_seconds_bucket",
               labels({{"job", name}, {"le", number(Histogram::upper_bound_s(i))}}),
               static_cast<double>(cumulative));
    }
    w.sample("corral_job_task_duration_seconds_bucket", labels({{"job", name}, {"le", "+Inf"}}),
             static_cast<double>(h.count()));
    w.sample("corral_job_task_duration_seconds_sum", labels({{"job", name}}), h.sum_s());
    w.sample("corral_job_task_duration_seconds_count", labels({{"job", name}}),
             static_cast<double>(h.count()));
  }
  w.family("corral_job_shared_value", "gauge",
           "the job's shared values, and each element of its shared arrays (label index)");
  for (const auto& [name, feed] : feeds) {
    for (const SharedReading& r : feed->shared()) {
      for (size_t i = 0; i < r.values.size(); ++i) {
        const std::string index = std::to_string(i);
        w.sample("corral_job_shared_value",
                 r.is_array ? labels({{"job", name}, {"name", r.name}, {"index", index}})
                            : labels({{"job", name}, {"name", r.name}}),
                 r.values[i]);
      }
    }
  }

  // Broker jobs (broker:): the broker's state, its group's backlog, and
  // what this node did with it.
  std::vector<std::pair<std::string, BrokerStatus>> brokers;
  for (const auto& [name, feed] : feeds) {
    if (auto broker = feed->broker()) brokers.emplace_back(name, std::move(*broker));
  }
  if (!brokers.empty()) {
    w.family("corral_broker_up", "gauge", "1 when the job's broker is connected and ready");
    for (const auto& [name, b] : brokers) {
      w.sample("corral_broker_up", labels({{"job", name}}), b.state == "ready" ? 1 : 0);
    }
    auto gauge = [&](const char* family, const char* help, auto value) {
      w.family(family, "gauge", help);
      for (const auto& [name, b] : brokers) {
        const double v = static_cast<double>(value(b));
        if (v >= 0) w.sample(family, labels({{"job", name}}), v);
      }
    };
    gauge("corral_broker_lag", "entries of the stream no consumer of the group has read",
          [](const BrokerStatus& b) { return b.lag; });
    gauge("corral_broker_pending", "entries read by a consumer of the group, not acknowledged",
          [](const BrokerStatus& b) { return b.pending; });
    gauge("corral_broker_held", "entries this node holds (delivered, not acknowledged)",
          [](const BrokerStatus& b) { return b.held; });
    auto counter = [&](const char* family, const char* help, auto value) {
      w.family(family, "counter", help);
      for (const auto& [name, b] : brokers) {
        w.sample(family, labels({{"job", name}}), static_cast<double>(value(b)));
      }
    };
    counter("corral_broker_read_total", "entries delivered to this node, claims included",
            [](const BrokerStatus& b) { return b.read; });
    counter("corral_broker_claimed_total",
            "entries this node took over from a consumer that stopped renewing them",
            [](const BrokerStatus& b) { return b.claimed; });
    counter("corral_broker_acked_total", "results recorded and their entries acknowledged",
            [](const BrokerStatus& b) { return b.acked; });
    counter("corral_broker_dead_total", "entries this node moved to the dead stream",
            [](const BrokerStatus& b) { return b.dead; });
    counter("corral_broker_added_total", "entries added through this corrald (corralctl submit)",
            [](const BrokerStatus& b) { return b.added; });
    counter("corral_broker_reconnects_total", "connects after the broker was lost",
            [](const BrokerStatus& b) { return b.reconnects; });
  }

  auto self = read_proc(getpid());
  w.family("corral_daemon_resident_memory_bytes", "gauge", "resident memory of corrald");
  w.sample("corral_daemon_resident_memory_bytes", "",
           self ? static_cast<double>(self->rss_bytes) : 0);
  w.family("corral_daemon_cpu_seconds_total", "counter", "user and system CPU seconds of corrald");
  w.sample("corral_daemon_cpu_seconds_total", "", self ? self->cpu_s : 0);
  return w.take();
}

}  // namespace corral::daemon

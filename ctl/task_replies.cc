// corralctl's text of the task commands' replies: submit's and results'
// acceptance, cancel, dead, retry, shared, wait and stats (ctl/replies.h; the
// rest of the replies are in replies.cc).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <utility>

#include "ctl/output.h"
#include "ctl/replies.h"
#include "protocol/exit_codes.h"

namespace corral::ctl {

using protocol::kExitFailed;

// The submit request's own reply, {"ok": true} before the stream: nothing
// to show. An error ({"ok": false}: no such job, no channel) is the answer.
Output format_submit_reply(const Json&, const Json& reply, Format) {
  if (!ok_field(reply)) return error_reply(reply);
  return Output{};
}

// results' acceptance, {"ok": true}: nothing to show; the result lines follow.
Output format_results_reply(const Json&, const Json& reply, Format) {
  if (!ok_field(reply)) return error_reply(reply);  // not a durable job, no such job
  return Output{};
}

namespace {

// The ids of REPLY[KEY], which must be a list of integers when present.
std::optional<std::vector<uint64_t>> ids_field(const Json& reply, const char* key) {
  std::vector<uint64_t> ids;
  auto it = reply.find(key);
  if (it == reply.end()) return ids;
  if (!it->is_array()) return std::nullopt;
  for (const auto& id : *it) {
    if (!id.is_number_unsigned() && !(id.is_number_integer() && id.get<int64_t>() >= 0)) {
      return std::nullopt;
    }
    ids.push_back(id.get<uint64_t>());
  }
  return ids;
}

std::string id_list(const std::vector<uint64_t>& ids) {
  std::string text;
  for (uint64_t id : ids) text.append(text.empty() ? "" : ", ").append(std::to_string(id));
  return text;
}

}  // namespace

// "JOB: 3 tasks cancelled, 1 stopping; running (use --running to stop them):
// 12; unknown: 40, 41": exit 1 when a named task was not dealt with.
Output format_cancel(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  auto cancelled = int_field(reply, "cancelled");
  auto running = ids_field(reply, "running");
  auto unknown = ids_field(reply, "unknown");
  if (!cancelled || *cancelled < 0 || !running || !unknown) {
    return malformed("cancel reply without a count and lists of ids");
  }
  Output output;
  if (!running->empty() || !unknown->empty()) output.exit_code = kExitFailed;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  std::string line = job_of(request) + ": " +
                     plural(static_cast<uint64_t>(*cancelled), "task", "tasks") + " cancelled";
  if (int64_t stopping = int_field(reply, "stopping").value_or(0); stopping > 0) {
    line += ", " + std::to_string(stopping) + " stopping";
  }
  if (!running->empty()) {
    line += request.value("running", false) ? "; still running: "
                                            : "; running (use --running to stop them): ";
    line += id_list(*running);
  }
  if (!unknown->empty()) line += "; unknown: " + id_list(*unknown);
  output.out = line + "\n";
  return output;
}

Output format_dead(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  if (request.value("clear", false)) {
    auto cleared = int_field(reply, "cleared");
    if (!cleared) return malformed("dead --clear reply without a count");
    Output output;
    output.out = format == Format::kJson
                     ? dump(without_ok(reply))
                     : string_field(request, "job") + ": cleared " +
                           plural(static_cast<uint64_t>(*cleared), "dead letter", "dead letters") +
                           "\n";
    return output;
  }
  const Json* letters = objects_field(reply, "dead");
  if (letters == nullptr) return malformed("dead reply without a list of letters");
  Output output;
  if (format == Format::kJson) {
    output.out = dump(*letters);
  } else if (letters->empty()) {
    output.out = string_field(request, "job") + ": no dead letters\n";
  } else {
    size_t id_width = 0;
    size_t status_width = 0;
    for (const auto& letter : *letters) {
      id_width = std::max(id_width, value_text(letter.value("id", Json())).size());
      status_width = std::max(status_width, string_field(letter, "status").size());
    }
    for (const auto& letter : *letters) {
      std::string line = "id " + pad(value_text(letter.value("id", Json())), id_width) + "  " +
                         pad(string_field(letter, "status"), status_width) + "  attempts " +
                         value_text(letter.value("attempts", Json())) + "  " +
                         one_line(string_field(letter, "reason")) +
                         "  payload: " + one_line(string_field(letter, "payload"));
      output.out += line + "\n";
    }
  }
  if (int64_t dropped = int_field(reply, "dropped").value_or(0); dropped > 0) {
    output.err =
        "corralctl: " + plural(static_cast<uint64_t>(dropped), "older letter", "older letters") +
        " did not fit in the dead-letter list and " + (dropped == 1 ? "was" : "were") +
        " dropped\n";
  }
  return output;
}

Output format_retry(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  auto requeued = int_field(reply, "requeued");
  if (!requeued) return malformed("retry reply without a count");
  Output output;
  // With --wait, only the result lines follow, as after submit --wait.
  if (request.value("wait", false)) return output;
  output.out = format == Format::kJson
                   ? dump(without_ok(reply))
                   : "requeued " + plural(static_cast<uint64_t>(*requeued), "task", "tasks") + "\n";
  return output;
}

Output format_shared(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  static const Json kNone = Json::object();
  auto values = reply.find("values");
  auto arrays = reply.find("arrays");
  if ((values != reply.end() && !values->is_object()) ||
      (arrays != reply.end() && !arrays->is_object())) {
    return malformed("shared reply whose values or arrays are not objects");
  }
  Output output;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  for (const auto& [name, value] : (values != reply.end() ? *values : kNone).items()) {
    output.out += name + " = " + value_text(value) + "\n";
  }
  for (const auto& [name, array] : (arrays != reply.end() ? *arrays : kNone).items()) {
    std::string line = name + " = [";
    if (array.is_array()) {
      bool first = true;
      for (const auto& item : array) {
        if (!first) line += ", ";
        line += value_text(item);
        first = false;
      }
    }
    output.out += line + "]\n";
  }
  return output;
}

Output format_wait(const Json& request, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);  // "timed out after 5s: ..."
  Output output;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  bool running = request.value("running", false);
  bool drained = request.value("drained", false);
  output.out = job_of(request) + ": " + (running ? "every worker RUNNING" : "") +
               (running && drained ? ", " : "") + (drained ? "drained" : "") + "\n";
  return output;
}

Output format_stats(const Json&, const Json& reply, Format format) {
  if (!ok_field(reply)) return error_reply(reply);
  auto jobs = reply.find("jobs");
  if (jobs == reply.end() || !jobs->is_object()) return malformed("stats reply without jobs");
  Output output;
  if (format == Format::kJson) {
    output.out = dump(without_ok(reply));
    return output;
  }
  // One line per job: its name, then "counter N" cells aligned in columns,
  // then its rate and task latencies (dispatch to result, since it began).
  constexpr std::array kCounters = {"submitted", "queued",      "delayed", "in_flight", "ok",
                                    "failed",    "redelivered", "dead",    "cancelled", "expired"};
  constexpr size_t kCells = kCounters.size() + 3;
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  std::vector<size_t> widths(kCells, 0);
  size_t name_width = 0;
  for (const auto& [name, counts] : jobs->items()) {
    std::vector<std::string> cells;
    for (const char* counter : kCounters) {
      auto it = counts.is_object() ? counts.find(counter) : counts.end();
      cells.push_back(std::string(counter) + " " +
                      (counts.is_object() && it != counts.end() ? value_text(*it) : "-"));
    }
    auto rate = counts.is_object() ? counts.find("tasks_per_s") : counts.end();
    cells.push_back("tasks/s " + (counts.is_object() && rate != counts.end() && rate->is_number()
                                      ? std::to_string(std::llround(rate->get<double>()))
                                      : std::string("-")));
    const Json* latency = nullptr;
    if (auto it = counts.is_object() ? counts.find("latency_us") : counts.end();
        counts.is_object() && it != counts.end() && it->is_object()) {
      latency = &*it;
    }
    for (const char* q : {"p50", "p99"}) {
      std::string cell = std::string(q) + " -";
      if (latency != nullptr && number_field(*latency, "count") > 0) {
        cell = std::string(q) + " " + format_micros(number_field(*latency, q));
      }
      cells.push_back(std::move(cell));
    }
    for (size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], cells[i].size());
    name_width = std::max(name_width, name.size());
    rows.emplace_back(name, std::move(cells));
  }
  for (const auto& [name, cells] : rows) {
    std::string line = pad(name, name_width);
    for (size_t i = 0; i < cells.size(); ++i) line += "  " + pad(cells[i], widths[i]);
    trim_right(line);
    output.out += line + "\n";
    if (const Json* broker = broker_of(jobs->at(name))) {
      output.out += pad("", name_width) + "  broker " + broker_text(*broker) + "\n";
    }
  }
  return output;
}

}  // namespace corral::ctl

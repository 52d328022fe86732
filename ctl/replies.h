// How corralctl shows corrald's reply to each command: text tables in the
// style of supervisorctl, or JSON (--json), and the exit code the reply
// means. A reply not of the shape of docs/control-protocol.md is an error.
// The command table (commands.cc) points at these. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctl/commands.h"

namespace corral::ctl {

using ReplyFormatter = Output(const Json& request, const Json& reply, Format format);

ReplyFormatter format_status;
// The worker fields format_status shows as text (the request of a text
// status asks for these alone).
const std::vector<std::string>& status_text_fields();
ReplyFormatter format_action;  // start, stop, restart, signal, clear
ReplyFormatter format_tail;
ReplyFormatter format_fg;      // fg's acceptance, before the stream
ReplyFormatter format_reload;  // reread, update, reload
ReplyFormatter format_avail;
ReplyFormatter format_pid;
ReplyFormatter format_shutdown;
ReplyFormatter format_version;
ReplyFormatter format_submit_reply;
ReplyFormatter format_dead;
ReplyFormatter format_retry;
ReplyFormatter format_shared;
ReplyFormatter format_wait;
ReplyFormatter format_stats;
ReplyFormatter format_cancel;
ReplyFormatter format_results_reply;

// For a submit --wait that gets no results: what corrald's reply to
// {"cmd": "status", "targets": [JOB]} says about why nothing runs
// ("waiting: primes has 0 of 2 workers running: primes:0 BACKOFF exit status
// 2 (exited too quickly); retry in 4.1s"), or nullopt while a worker of JOB
// is RUNNING.
std::optional<std::string> why_waiting(std::string_view job, const Json& status_reply);

}  // namespace corral::ctl

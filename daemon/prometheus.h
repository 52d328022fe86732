// The Prometheus text exposition (format 0.0.4) of everything corrald
// measures: workers, jobs, the daemon itself. Metric names are SPEC
// section 7's; every worker metric has the labels job and worker.
#pragma once

#include <string>

#include "daemon/supervisor.h"

namespace corral::daemon {

std::string render_metrics(const Supervisor& supervisor);

}  // namespace corral::daemon

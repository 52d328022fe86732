// What /proc says of a process: CPU time, resident memory, threads and
// context switches, read by the sampler each metrics.interval. The parsers
// are pure (tests feed them text); read_proc() does the reading.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/unique_fd.h"

namespace corral::daemon {

struct ProcSample {
  double cpu_s = 0;        // user + system; of the whole cgroup where the worker has one
  uint64_t rss_bytes = 0;  // VmRSS
  uint32_t threads = 0;
  uint64_t voluntary_switches = 0;
  uint64_t involuntary_switches = 0;
  // The worker's cgroup's memory.current (its processes' memory, page cache
  // included), where its cgroup has the memory controller.
  std::optional<uint64_t> cgroup_memory_bytes;
};

// /proc/PID/stat: utime and stime (fields 14 and 15, in clock ticks),
// num_threads (field 20) and rss (field 24, in pages). The command name (field 2) may hold spaces
// and parentheses: fields are counted after its last ')'.
bool parse_stat(std::string_view text, long ticks_per_second, ProcSample& sample);
// /proc/PID/status: VmRSS (kB), voluntary_ctxt_switches, nonvoluntary_ctxt_switches.
bool parse_status(std::string_view text, ProcSample& sample);

// Who a process is, from /proc/PID/stat: its parent, process group and
// session (fields 4 to 6), and when it started (field 22, clock ticks since
// boot), which tells it apart from a later process given the same pid.
struct ProcIdentity {
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  uint64_t start_ticks = 0;
  bool operator==(const ProcIdentity&) const = default;
};
std::optional<ProcIdentity> parse_identity(std::string_view stat);
std::optional<ProcIdentity> read_identity(pid_t pid);
// Clock ticks since boot now, as start times count them.
uint64_t boot_ticks_now();

// The variables NAMES of the environment PID started with
// (/proc/PID/environ, read as far as its first MiB); those it lacks are
// missing from the map.
std::map<std::string, std::string> read_environ(pid_t pid,
                                                const std::vector<std::string_view>& names);

// A process's two /proc files, opened at the first read and kept open:
// each later read is one pread per file, a third of open/read/close (the
// sampler reads a thousand workers a second).
class ProcReader {
 public:
  explicit ProcReader(pid_t pid) : pid_(pid) {}
  // nullopt when the process is gone or its files cannot be read. The stat
  // file has CPU, threads and RSS; WITH_STATUS also reads the status file
  // (twice as costly to make) for the context switches, which are otherwise
  // those of the last read that had it.
  std::optional<ProcSample> read(bool with_status = true);

 private:
  pid_t pid_;
  UniqueFd stat_fd_;
  UniqueFd status_fd_;
  std::string buffer_;
  std::pair<uint64_t, uint64_t> switches_{0, 0};
};

// Both files of PID, opened for this one read.
std::optional<ProcSample> read_proc(pid_t pid);

}  // namespace corral::daemon

// What each key of a config means: the readers of the daemon: section and of
// one job, each key read and checked with the Reader's typed readers, and the
// checks across keys (backoff.initial <= backoff.max, heartbeats need a
// channel that can carry them...). A key that no reader asks for is unknown
// to its Section. read_daemon is in schema_daemon.cc, read_job in
// schema_job.cc. Internal to the config library; one loader on one thread
// at a time.
#pragma once

#include "config/reader.h"
#include "config/spec.h"

namespace corral::config {

// A typo of one digit should not start a hundred thousand processes.
constexpr uint64_t kMaxWorkers = 10000;
// Shared arrays live in the job's shared-memory segment: 8 bytes an element.
constexpr uint64_t kMaxSharedArrayLength = uint64_t{1} << 27;  // 1 GiB

// Reads the daemon: map S into D.
void read_daemon(Section& s, DaemonSpec& d);

// Reads the map S of job JOB (its name already set) into JOB; CPUS resolves
// `workers: auto`.
void read_job(Section& s, JobSpec& job, unsigned cpus);

}  // namespace corral::config

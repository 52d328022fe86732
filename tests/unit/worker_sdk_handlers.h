// The handlers that worker_sdk_test.cc serves with, by name. They are
// written against corral/worker.h, whose corral::Result no file that sees
// ipc/ (and so base/result.h) can name: they live in worker_sdk_api_test.cc,
// and this header, free of both, is what the channel tests see.
#pragma once

#include <string_view>

namespace corral::sdk_test {

// Runs corral::serve() with the handler NAME and returns its exit code:
//   upper         upper-cases; "boom" throws, "refuse" fails, "two lines"
//                 answers with a line break, "slow" takes 300 ms
//   echo_or_crash answers the task; "crash" aborts the process
//   oversize      answers 5000 bytes
//   stop_on_last  answers the task; "last" asks to stop after it
//   shm           counts into the job's shared values (processed, total,
//                 histogram); "boom" throws, "wrong type" reads "processed"
//                 as f64, "slow" takes 300 ms, "big..." answers 1000 bytes
int serve_with(std::string_view name);

}  // namespace corral::sdk_test

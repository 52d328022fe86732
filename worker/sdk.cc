// The C++ worker SDK's public entry points (corral/worker.h): serve() over
// the channel corrald describes in the environment, the stop request, and
// the worker's name and index. The work is done by the SDK's insides in
// corral::sdk (serving.h and the channel drivers), which speak base/'s
// Result; this file translates the public corral::Result to their Answer.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "corral/worker.h"
#include "worker/decimal.h"
#include "worker/serving.h"

namespace corral {

int serve(const Handler& handler) {
  return sdk::serve_channel([&handler](std::string_view task) {
    Result result = handler(task);
    // The public Result hands its payload out by const reference only; the
    // object is this call's own and ends here, so the string is moved, not
    // copied (a result can be as large as a task).
    return sdk::Answer{result.ok(), std::move(const_cast<std::string&>(result.payload()))};
  });
}

void stop_after_this_task() { sdk::request_stop(); }

std::string_view job_name() {
  const char* job = std::getenv("CORRAL_JOB");
  return job != nullptr ? job : "";
}

int worker_index() {
  const char* text = std::getenv("CORRAL_WORKER");
  std::optional<uint64_t> index = text != nullptr ? sdk::parse_decimal(text) : std::nullopt;
  return index && *index <= INT32_MAX ? static_cast<int>(*index) : -1;
}

}  // namespace corral

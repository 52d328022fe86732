#include "worker/serving.h"

#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <utility>

#include "base/result.h"
#include "worker/pipe_channel.h"
#include "worker/sdk_env.h"
#include "worker/shm_attachment.h"
#include "worker/shm_channel.h"

namespace corral::sdk {
namespace {

std::atomic<bool> g_stop_requested{false};

int bad_environment(const Error& error) {
  complain(error.message());
  return kExitBadEnvironment;
}

int serve_shm_from_env(const TaskHandler& handler) {
  const ShmAttachment& attachment = shm_attachment();
  if (!attachment) {
    complain(attachment.error().error.message());
    return attachment.error().environment ? kExitBadEnvironment : kExitBroken;
  }
  Result<ShmSettings> settings = shm_settings_from_env();
  if (!settings) return bad_environment(settings.error());
  return serve_shm(handler, attachment->segment, attachment->worker, *settings);
}

// HANDLER's answer, or the failure its exception makes; returned as the
// handler made it (no copy of its payload on the way).
Answer invoke(const TaskHandler& handler, std::string_view task) {
  try {
    return handler(task);
  } catch (const std::exception& e) {
    return Answer{false, e.what()};
  } catch (...) {
    return Answer{false, "the handler threw something that is not a std::exception"};
  }
}

}  // namespace

Answer call_handler(const TaskHandler& handler, std::string_view task, size_t max_result_bytes) {
  Answer answer = invoke(handler, task);
  if (answer.payload.size() > max_result_bytes) {
    std::string message = std::string(answer.ok ? "result" : "failure message") + " of " +
                          std::to_string(answer.payload.size()) + " bytes exceeds the limit of " +
                          std::to_string(max_result_bytes) + " bytes (CORRAL_MAX_TASK_BYTES)";
    if (message.size() > max_result_bytes) message.resize(max_result_bytes);
    answer = Answer{false, std::move(message)};
  }
  return answer;
}

int serve_channel(const TaskHandler& handler) {
  try {
    Result<Channel> channel = channel_from_env();
    if (!channel) return bad_environment(channel.error());
    if (*channel == Channel::kShm) return serve_shm_from_env(handler);
    Result<PipeSettings> settings = pipe_settings_from_env();
    if (!settings) return bad_environment(settings.error());
    return serve_pipe(handler, *settings);
  } catch (const std::exception& e) {  // e.g. no memory, or no thread for heartbeats
    complain(std::string("serving tasks: ") + e.what());
    return kExitBroken;
  }
}

void request_stop() { g_stop_requested.store(true, std::memory_order_relaxed); }

bool stop_requested() { return g_stop_requested.load(std::memory_order_relaxed); }

const char* program_name() { return program_invocation_short_name; }

void complain(std::string_view message) {
  std::string line = std::string(program_name()) + ": " + std::string(message) + "\n";
  // A failed write to stderr has nowhere left to be told.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace corral::sdk

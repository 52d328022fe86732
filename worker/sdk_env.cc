#include "worker/sdk_env.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "worker/decimal.h"
#include "worker/serving.h"

namespace corral::sdk {
namespace {

using namespace std::chrono_literals;

// When the environment does not say (it always does under corrald).
constexpr uint64_t kDefaultMaxTaskBytes = 65536;
constexpr uint64_t kMaxTaskBytesLimit = uint64_t{1} << 32;
constexpr uint64_t kMaxHeartbeatMs = 86'400'000;

// A variable set to "" counts as unset: corrald never sets one empty.
const char* value_of(const Getenv& env, const char* variable) {
  const char* value = env(variable);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// The fd is open in this process. The message is the Python SDK's, word for
// word ("fd 5 is not open (Bad file descriptor)").
Status check_open(int fd) {
  if (::fcntl(fd, F_GETFD) >= 0) return {};
  const int err = errno;
  return Error("fd " + std::to_string(fd) + " is not open (" + std::strerror(err) + ")");
}

// VARIABLE="A,B" (FALLBACK when unset): two open fds.
Result<std::pair<int, int>> fd_pair(const Getenv& env, const char* variable,
                                    std::string_view fallback) {
  const char* text = value_of(env, variable);
  const std::string_view value = text != nullptr ? text : fallback;
  const std::string what = std::string(variable) + "=" + std::string(value);
  const size_t comma = value.find(',');
  std::optional<uint64_t> first, second;
  if (comma != std::string_view::npos) {
    first = parse_decimal(value.substr(0, comma));
    second = parse_decimal(value.substr(comma + 1));
  }
  if (!first || !second || *first > INT32_MAX || *second > INT32_MAX) {
    return Error(what + ": expected two fds, as in \"3,4\"");
  }
  const std::pair<int, int> fds{static_cast<int>(*first), static_cast<int>(*second)};
  for (int fd : {fds.first, fds.second}) {
    if (Status open = check_open(fd); !open) return std::move(open).error().context(what);
  }
  return fds;
}

// The longest spin corrald asks for (shm.spin is at most 10ms).
constexpr uint64_t kMaxSpinUs = 10'000;

Result<Limits> limits(const Getenv& env) {
  Limits limits;
  limits.max_task_bytes = kDefaultMaxTaskBytes;
  if (const char* text = value_of(env, "CORRAL_MAX_TASK_BYTES")) {
    std::optional<uint64_t> value = parse_decimal(text);
    if (!value || *value == 0 || *value > kMaxTaskBytesLimit) {
      return Error(std::string("CORRAL_MAX_TASK_BYTES=") + text +
                   ": expected a number of bytes between 1 and " +
                   std::to_string(kMaxTaskBytesLimit));
    }
    limits.max_task_bytes = *value;
  }
  if (const char* text = value_of(env, "CORRAL_HEARTBEAT_MS")) {
    std::optional<uint64_t> value = parse_decimal(text);
    if (!value || *value > kMaxHeartbeatMs) {
      return Error(std::string("CORRAL_HEARTBEAT_MS=") + text +
                   ": expected a number of milliseconds");
    }
    limits.heartbeat = std::chrono::milliseconds(*value);
  }
  if (const char* text = value_of(env, "CORRAL_CHUNKS")) {
    const std::string_view value = text;
    if (value != "0" && value != "1") {
      return Error(std::string("CORRAL_CHUNKS=") + text + ": expected 0 or 1");
    }
    limits.chunks = value == "1";
  }
  return limits;
}

}  // namespace

Getenv process_environment() {
  return [](const char* variable) { return std::getenv(variable); };
}

Result<Channel> channel_from_env(const Getenv& env) {
  const char* text = value_of(env, "CORRAL_CHANNEL");
  if (text == nullptr) {
    return Error(
        "CORRAL_CHANNEL is not set: this worker runs under corrald, which sets it "
        "(see docs/worker-protocol.md)");
  }
  const std::string_view name = text;
  if (name == "pipe") return Channel::kPipe;
  if (name == "shm") return Channel::kShm;
  if (name == "none") {
    return Error(std::string("CORRAL_CHANNEL=none: ") + program_name() +
                 " needs a task channel (pipe or shm)");
  }
  return Error("CORRAL_CHANNEL=" + std::string(name) + ": expected pipe or shm");
}

Result<PipeSettings> pipe_settings_from_env(const Getenv& env) {
  PipeSettings settings;
  const char* framing = value_of(env, "CORRAL_FRAMING");
  const std::string_view framing_name = framing != nullptr ? framing : "lines";
  if (framing_name == "lines") {
    settings.framing = Framing::kLines;
  } else if (framing_name == "length") {
    settings.framing = Framing::kLength;
  } else {
    return Error("CORRAL_FRAMING=" + std::string(framing_name) + ": expected lines or length");
  }
  Result<std::pair<int, int>> fds = fd_pair(env, "CORRAL_FDS", "3,4");
  if (!fds) return std::move(fds).error();
  std::tie(settings.in, settings.out) = *fds;
  Result<Limits> read_limits = limits(env);
  if (!read_limits) return std::move(read_limits).error();
  settings.limits = *read_limits;
  return settings;
}

Result<ShmPlace> shm_place_from_env(const Getenv& env) {
  const char* channel = value_of(env, "CORRAL_CHANNEL");
  if (channel == nullptr || std::string_view(channel) != "shm") {
    return Error(std::string("the job's shared state needs the shm channel (CORRAL_CHANNEL=") +
                 (channel != nullptr ? channel : "") + ")");
  }
  ShmPlace place;
  const char* shm = value_of(env, "CORRAL_SHM");
  const std::string_view shm_value = shm != nullptr ? shm : "fd:3";
  place.variable = "CORRAL_SHM=" + std::string(shm_value);
  std::optional<uint64_t> fd;
  if (shm_value.starts_with("fd:")) fd = parse_decimal(shm_value.substr(3));
  if (!fd || *fd > INT32_MAX) {
    return Error(place.variable +
                 ": expected fd:N, the inherited segment fd (named segments are not supported)");
  }
  place.fd = static_cast<int>(*fd);
  std::optional<uint64_t> worker;
  if (const char* text = value_of(env, "CORRAL_WORKER")) worker = parse_decimal(text);
  if (!worker) return Error("CORRAL_WORKER is not a worker index");
  place.worker = *worker;
  if (Status open = check_open(place.fd); !open) {
    return std::move(open).error().context(place.variable);
  }
  return place;
}

Result<ShmSettings> shm_settings_from_env(const Getenv& env) {
  ShmSettings settings;
  Result<std::pair<int, int>> fds = fd_pair(env, "CORRAL_FDS", "4,5");
  if (!fds) return std::move(fds).error();
  std::tie(settings.wake_me, settings.wake_daemon) = *fds;
  Result<Limits> read_limits = limits(env);
  if (!read_limits) return std::move(read_limits).error();
  settings.limits = *read_limits;
  if (const char* text = value_of(env, "CORRAL_SPIN_US")) {
    std::optional<uint64_t> value = parse_decimal(text);
    if (!value || *value > kMaxSpinUs) {
      return Error(std::string("CORRAL_SPIN_US=") + text +
                   ": expected a number of microseconds up to " + std::to_string(kMaxSpinUs));
    }
    settings.spin = std::chrono::microseconds(*value);
  }
  return settings;
}

}  // namespace corral::sdk

// How each enum of spec.h is spelled in a config file. Internal to the config
// library: the parser and the emitter share these tables so that what one
// writes the other reads.
#pragma once

#include <array>
#include <string_view>

#include "config/spec.h"

namespace corral::config::names {

template <typename E>
struct Name {
  std::string_view text;
  E value;
};

inline constexpr std::array<Name<LogLevel>, 5> kLogLevels{{
    {"trace", LogLevel::kTrace},
    {"debug", LogLevel::kDebug},
    {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},
    {"error", LogLevel::kError},
}};

inline constexpr std::array<Name<Channel>, 3> kChannels{{
    {"none", Channel::kNone},
    {"pipe", Channel::kPipe},
    {"shm", Channel::kShm},
}};

inline constexpr std::array<Name<PipeFds>, 2> kPipeFds{{
    {"extra", PipeFds::kExtra},
    {"stdio", PipeFds::kStdio},
}};

inline constexpr std::array<Name<Framing>, 2> kFramings{{
    {"lines", Framing::kLines},
    {"length", Framing::kLength},
}};

inline constexpr std::array<Name<Durability>, 2> kDurabilities{{
    {"crash", Durability::kCrash},
    {"power", Durability::kPower},
}};

// What queue.retry's `on` may list.
enum class RetryCause { kFailed, kCrashed, kTimeout };
inline constexpr std::array<Name<RetryCause>, 3> kRetryCauses{{
    {"failed", RetryCause::kFailed},
    {"crashed", RetryCause::kCrashed},
    {"timeout", RetryCause::kTimeout},
}};

inline constexpr std::array<Name<RestartPolicy>, 3> kRestartPolicies{{
    {"always", RestartPolicy::kAlways},
    {"on-failure", RestartPolicy::kOnFailure},
    {"never", RestartPolicy::kNever},
}};

inline constexpr std::array<Name<SharedType>, 3> kSharedTypes{{
    {"u64", SharedType::kU64},
    {"i64", SharedType::kI64},
    {"f64", SharedType::kF64},
}};

// The spelling of VALUE; every enumerator is in its table, so the fallback
// only guards against a table that was not extended with its enum.
template <typename E, size_t N>
constexpr std::string_view text_of(const std::array<Name<E>, N>& table, E value) {
  for (const Name<E>& name : table) {
    if (name.value == value) return name.text;
  }
  return "?";
}

}  // namespace corral::config::names

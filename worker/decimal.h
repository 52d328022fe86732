// Unsigned decimals as corrald writes them into a worker's environment
// (CORRAL_WORKER=3, CORRAL_FDS=4,5, CORRAL_SHM=fd:3): digits only, no sign,
// no spaces, nothing after them.
//
// Header-only and free of base/, so that the SDK's public side (sdk.cc,
// which sees corral/worker.h) can use it too; see serving.h. Thread-safe.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace corral::sdk {

inline std::optional<uint64_t> parse_decimal(std::string_view text) {
  uint64_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace corral::sdk

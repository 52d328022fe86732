// How much load a test puts on corral: all of it in the plain build, a
// fifth under the sanitizers, which check every access on the same code
// paths while running them several times slower, so that a load test costs
// them about what it costs the plain build. Header-only; thread-safe.
#pragma once

namespace corral::testing {

inline constexpr int kSanitizedLoadDivisor = 5;

// N tasks (or iterations) of a load test, for this build.
constexpr int load(int n) { return CORRAL_SANITIZED ? n / kSanitizedLoadDivisor : n; }

}  // namespace corral::testing

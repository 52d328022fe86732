// Waiting in tests: deadlines that stretch under sanitizers, and a poll of a
// condition until it holds. Thread-safe (the scale is read once).
#pragma once

#include <chrono>
#include <functional>

namespace corral::testing {

using namespace std::chrono_literals;

// TIMEOUT times CORRAL_TEST_TIME_SCALE (scripts/test sets it for sanitizer
// builds, which run everything several times slower). Only for deadlines that
// say how long to wait for something, never for a duration being measured.
std::chrono::milliseconds scaled(std::chrono::milliseconds timeout);

// Polls PREDICATE every few milliseconds until it holds or TIMEOUT (scaled)
// passes; whether it held.
bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout = 10s);

}  // namespace corral::testing

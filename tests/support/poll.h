// Waiting in tests: deadlines that stretch under sanitizers, and a poll of a
// condition until it holds, or a child until it ends. Thread-safe (the
// scale is read once).
#pragma once

#include <sys/types.h>

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

// Waits for the child PID to end and reaps it: its exit code, 128 + the
// signal that killed it, or -1 when it did not end within TIMEOUT (scaled;
// it is then left running) or is not a child of this process.
int wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace corral::testing

// corral-worker: the reference worker, built on the C++ SDK. Its handlers
// give demos, tests and benchmarks tasks of a known cost (echo, sum, triangle,
// primes, sleep, leak) and its knobs make it misbehave on purpose (crash, hang, fail,
// exit). SPEC.md section 5; docs/worker-protocol.md.
#include <signal.h>
#include <string.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "corral/worker.h"

namespace {

using Handler = std::function<corral::Result(std::string_view)>;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// The payload as a decimal number; throws (failing the task) otherwise.
uint64_t decimal(std::string_view handler, std::string_view payload) {
  std::string_view text = trim(payload);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    std::string shown(payload.substr(0, 64));
    throw std::invalid_argument(std::string(handler) + ": the payload is not a decimal number: \"" +
                                shown + (payload.size() > 64 ? "...\"" : "\""));
  }
  return value;
}

// N's decimal digits as a result (std::to_string fills the string before
// it writes the digits; this costs a tiny task's handler a third less).
corral::Result number(uint64_t n) {
  char digits[20];  // a u64 has at most 20
  const char* end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  return corral::Result(std::string(digits, static_cast<size_t>(end - digits)));
}

// 0 + 1 + ... + (n-1), modulo 2^64, one addition at a time: the barrier
// keeps the compiler from turning the loop into n(n-1)/2, so that the cost
// of a task grows with n as the seed's loop did.
uint64_t sum_below(uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) {
    sum += i;
    asm volatile("" : "+r"(sum));
  }
  return sum;
}

// n(n-1)/2 modulo 2^64 in O(1): what sum_below(n) adds up, in the one
// expression the benchmarks give Python's pools (`n * (n - 1) // 2`), so that
// both sides run a task of the same constant cost. The even factor is halved
// first, so the wrapped product equals the sum's for every n.
uint64_t triangle(uint64_t n) {
  if (n == 0) return 0;
  return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

// The number of primes below N: a segmented sieve of Eratosthenes over odd
// numbers, so memory stays at O(sqrt(N)) for any N.
uint64_t primes_below(uint64_t n) {
  if (n <= 2) return 0;
  // Odd primes up to sqrt(n), by a plain sieve.
  uint64_t root = static_cast<uint64_t>(std::sqrt(static_cast<double>(n)));
  while (root * root > n) --root;
  while ((root + 1) * (root + 1) <= n) ++root;
  std::vector<uint8_t> small(root + 1, 1);
  std::vector<uint64_t> base;
  for (uint64_t i = 3; i <= root; i += 2) {
    if (!small[i]) continue;
    base.push_back(i);
    for (uint64_t j = i * i; j <= root; j += 2 * i) small[j] = 0;
  }
  // Segments of odd numbers in [low, high): bit k stands for low + 2k.
  constexpr uint64_t kSegmentOdds = 32 * 1024;
  std::vector<uint8_t> segment(kSegmentOdds);
  std::vector<uint64_t> next(base.size());  // the next odd multiple of each base prime
  for (size_t i = 0; i < base.size(); ++i) next[i] = base[i] * base[i];
  uint64_t count = 1;  // 2
  for (uint64_t low = 3; low < n; low += 2 * kSegmentOdds) {
    uint64_t high = std::min(n, low + 2 * kSegmentOdds);
    uint64_t odds = (high - low + 1) / 2;
    std::fill(segment.begin(), segment.begin() + static_cast<ptrdiff_t>(odds), 1);
    for (size_t i = 0; i < base.size(); ++i) {
      uint64_t p = base[i];
      uint64_t m = next[i];
      for (; m < high; m += 2 * p) segment[(m - low) / 2] = 0;
      next[i] = m;
    }
    for (uint64_t k = 0; k < odds; ++k) count += segment[k];
  }
  return count;
}

// Memory the leak handler keeps for the rest of the process's life.
std::vector<std::unique_ptr<char[]>>& leaked() {
  static std::vector<std::unique_ptr<char[]>> blocks;
  return blocks;
}

corral::Result leak_mib(uint64_t mib) {
  constexpr uint64_t kMiB = 1024 * 1024;
  if (mib > (uint64_t{1} << 20)) throw std::invalid_argument("leak: more than 1 TiB asked for");
  for (uint64_t i = 0; i < mib; ++i) {
    auto block = std::make_unique_for_overwrite<char[]>(kMiB);
    // Touch every page, so that the memory is resident, not only reserved.
    for (uint64_t offset = 0; offset < kMiB; offset += 4096) block[offset] = 1;
    asm volatile("" : : "r"(block.get()) : "memory");
    leaked().push_back(std::move(block));
  }
  return "ok";
}

Handler make_handler(const std::string& name) {
  if (name == "echo") {
    return [](std::string_view task) { return corral::Result(std::string(task)); };
  }
  if (name == "sum") {
    return [](std::string_view task) { return number(sum_below(decimal("sum", task))); };
  }
  if (name == "triangle") {
    return [](std::string_view task) { return number(triangle(decimal("triangle", task))); };
  }
  if (name == "primes") {
    return [](std::string_view task) { return number(primes_below(decimal("primes", task))); };
  }
  if (name == "sleep") {
    return [](std::string_view task) {
      std::this_thread::sleep_for(std::chrono::milliseconds(decimal("sleep", task)));
      return corral::Result("ok");
    };
  }
  return [](std::string_view task) { return leak_mib(decimal("leak", task)); };
}

// "500ms", "2s", "1m", "1h", or a bare number of seconds (SPEC.md durations).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || value < 0) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  static const std::map<std::string_view, double> kUnitMs = {
      {"", 1000.0}, {"ms", 1.0}, {"s", 1000.0}, {"m", 60'000.0}, {"h", 3'600'000.0}};
  auto it = kUnitMs.find(unit);
  if (it == kUnitMs.end()) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(value * it->second)));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"corral-worker: the reference worker of corral (docs/worker-protocol.md)",
               "corral-worker"};
  std::string handler_name;
  std::optional<std::string> crash_on, hang_on, fail_on;
  std::optional<uint64_t> exit_after;
  std::optional<int> exit_code;
  std::string startup_delay;
  app.add_option("--handler", handler_name, "what each task does")
      ->required()
      ->check(CLI::IsMember({"echo", "sum", "triangle", "primes", "sleep", "leak"}));
  app.add_option("--crash-on", crash_on, "abort() when a task's payload is P");
  app.add_option("--hang-on", hang_on,
                 "stop the whole process (SIGSTOP, heartbeats too) when a task's payload is P");
  app.add_option("--fail-on", fail_on, "report a failed result when a task's payload is P");
  app.add_option("--exit-after", exit_after, "exit 0 after N tasks, once their results are sent")
      ->check(CLI::PositiveNumber);
  app.add_option("--exit-code", exit_code, "exit with C at start, before READY");
  app.add_option("--startup-delay", startup_delay, "wait this long before READY (500ms, 2s, ...)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (exit_code) return *exit_code;
  if (!startup_delay.empty()) {
    std::optional<std::chrono::milliseconds> delay = parse_duration(startup_delay);
    if (!delay) {
      std::cerr << "corral-worker: --startup-delay " << startup_delay
                << ": expected a duration such as 500ms or 2s\n";
      return 2;
    }
    std::this_thread::sleep_for(*delay);
  }

  // The job's `processed` counter, when it declares one as u64 (shm only).
  std::optional<corral::SharedValue<uint64_t>> processed;
  try {
    processed = corral::shared_value<uint64_t>("processed");
  } catch (const std::exception&) {
    // No shm channel, or no such u64 value: nothing to count into.
  }

  Handler work = make_handler(handler_name);
  uint64_t tasks = 0;
  return corral::serve([&](std::string_view task) -> corral::Result {
    if (crash_on && task == *crash_on) std::abort();
    if (hang_on && task == *hang_on) ::raise(SIGSTOP);
    ++tasks;
    if (exit_after && tasks >= *exit_after) corral::stop_after_this_task();
    if (processed) processed->fetch_add(1);
    if (fail_on && task == *fail_on) {
      return corral::Result::failure("failed on purpose (--fail-on " + *fail_on + ")");
    }
    return work(task);
  });
}

// corrald's program as linked: where it links its libraries in, the code a
// running corrald executes comes first in its text, together, and the
// read-only data it reads after the rest of its read-only data, together
// (cmake/corrald-hot.ld), so that the kernel's fault-around maps those and
// little else.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <sstream>
#include <string>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

struct Range {
  uint64_t start = 0;
  uint64_t size = 0;
  bool holds(uint64_t address) const { return address >= start && address < start + size; }
};

// PROGRAM's sections by name, from readelf's table.
std::map<std::string, Range> sections_of(const std::string& program) {
  RunResult readelf = run({"/usr/bin/readelf", "-SW", program});
  EXPECT_EQ(readelf.exit_code, 0) << readelf.err;
  std::map<std::string, Range> out;
  std::istringstream lines(readelf.out);
  for (std::string line; std::getline(lines, line);) {
    // "  [16] .text.corrald_hot PROGBITS 00000000000071d0 0071d0 0f4ea1 00 AX 0 0 16"
    auto bracket = line.find(']');
    if (line.find('[') == std::string::npos || bracket == std::string::npos) continue;
    std::istringstream fields(line.substr(bracket + 1));
    std::string name, type, address, offset, size;
    if (!(fields >> name >> type >> address >> offset >> size)) continue;
    if (name.rfind(".text", 0) != 0 && name.rfind(".rodata", 0) != 0) continue;
    out[name] = {std::stoull(address, nullptr, 16), std::stoull(size, nullptr, 16)};
  }
  return out;
}

// The address of the first symbol (in nm's order, by name) whose name
// begins with PREFIX: a mangled name without its parameters names a
// function, its ".cold" part sorting after it.
uint64_t address_of(const std::string& program, const std::string& prefix) {
  RunResult nm = run({"/usr/bin/nm", "--defined-only", program});
  EXPECT_EQ(nm.exit_code, 0) << nm.err;
  std::istringstream lines(nm.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string address, type, name;
    if (!(fields >> address >> type >> name)) continue;
    if (name.rfind(prefix, 0) == 0) {
      return std::stoull(address, nullptr, 16);
    }
  }
  ADD_FAILURE() << "no symbol of " << program << " begins with " << prefix;
  return 0;
}

// corrald's hot output section of KIND (".text", ".rodata"), named
// KIND.corrald_hot, and the rest of KIND.
struct Split {
  Range hot;
  Range rest;
};
Split hot_and_rest(const std::map<std::string, Range>& sections, const std::string& kind) {
  EXPECT_EQ(sections.count(kind + ".corrald_hot"), 1u) << "no " << kind << ".corrald_hot";
  EXPECT_EQ(sections.count(kind), 1u);
  auto find = [&](const std::string& name) {
    auto it = sections.find(name);
    return it == sections.end() ? Range{} : it->second;
  };
  return {find(kind + ".corrald_hot"), find(kind)};
}

constexpr const char* kNoHotLayout =
    "corrald is linked without cmake/corrald-hot.ld in this build (sanitized, "
    "CORRAL_DAEMON_STATIC or CORRAL_HOT_LAYOUT off, or a linker without INSERT)";

TEST(DaemonProgramTest, ItsTextBeginsWithTheCodeItRuns) {
  if (!CORRAL_DAEMON_HOT_LAYOUT) GTEST_SKIP() << kNoHotLayout;
  auto [hot, rest] = hot_and_rest(sections_of(CORRALD_PATH), ".text");
  ASSERT_GT(hot.size, 0u);
  EXPECT_LT(hot.start, rest.start);
  // The code of a daemon's every day: its start, its loop, a status.
  for (const char* function :
       {"main", "_ZN6corral6daemon10run_daemonE", "_ZN6corral6daemon10Supervisor5spawnE",
        "_ZN6corral6daemon8Commands6statusE"}) {
    EXPECT_TRUE(hot.holds(address_of(CORRALD_PATH, function))) << function;
  }
  // And not everything: the most of its text is code a daemon seldom runs.
  EXPECT_LT(hot.size, rest.size);
}

TEST(DaemonProgramTest, TheReadOnlyDataItReadsIsTogetherAfterTheRest) {
  if (!CORRAL_DAEMON_HOT_LAYOUT) GTEST_SKIP() << kNoHotLayout;
  auto sections = sections_of(CORRALD_PATH);
  auto [hot, rest] = hot_and_rest(sections, ".rodata");
  ASSERT_GT(hot.size, 0u);
  // After the rest of .rodata, so in the same segment, read-only and not
  // executable (before it, the linker would put it in the text's).
  EXPECT_GE(hot.start, rest.start + rest.size);
  EXPECT_GT(hot.start, sections[".text"].start + sections[".text"].size);
  // The digits std::to_chars writes every number a daemon prints with, and
  // not the tables it seldom reads: those that print floating-point numbers
  // the shortest way.
  EXPECT_TRUE(hot.holds(
      address_of(CORRALD_PATH, "_ZZNSt8__detail18__to_chars_10_implImEEvPcjT_E8__digits")));
  EXPECT_TRUE(rest.holds(address_of(CORRALD_PATH, "_ZN12_GLOBAL__N_13ryuL13POW10_SPLIT_2E")));
  // The most of its read-only data is data a daemon seldom reads.
  EXPECT_LT(hot.size, rest.size / 2);
}

}  // namespace
}  // namespace corral::testing

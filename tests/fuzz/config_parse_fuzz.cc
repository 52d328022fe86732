// Fuzzes the config loader (config/parse.h) with arbitrary text, read twice:
// as the main file (its includes not expanded, so nothing else is read) and
// as a file that a main file in a temp dir includes. Never a throw, every
// problem a diagnostic that says where; a config that loads, written out by
// config/emit.h, loads again to an equal Config (emit.h's promise; its
// include globs become a comment, their jobs being written out).
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "config/emit.h"
#include "config/parse.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using corral::fuzz::check;

constexpr unsigned kCpus = 4;

// A temp dir holding jobs.d/, removed at exit (never destroyed itself, so
// that it outlives the exit handler).
const std::string& temp_dir() {
  static const std::string* dir = [] {
    std::string pattern = std::filesystem::temp_directory_path() / "corral-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) abort();
    std::filesystem::create_directory(pattern + "/jobs.d");
    atexit([] { std::filesystem::remove_all(temp_dir()); });
    return new std::string(pattern);
  }();
  return *dir;
}

void check_result(const corral::config::ParseResult& result) {
  if (!result.ok()) {
    check(!result.error().empty());
    for (const auto& d : result.error()) {
      check(!d.message.empty() && !d.file.empty() && d.line >= 0 && d.column >= 0);
      check(d.line > 0 || d.column == 0);
    }
    return;
  }
  std::string yaml = corral::config::to_yaml(*result);
  auto again = corral::config::load_string(yaml, result->file, kCpus, false);
  // The included jobs are written among the others and the globs only as a
  // comment (emit.cc), so the config read back has no include.
  corral::config::Config expected = *result;
  expected.include.clear();
  if (!again.ok() || !(*again == expected)) {
    fprintf(stderr, "the emitted config does not load back the same:\n%s", yaml.c_str());
    if (!again.ok()) {
      for (const auto& d : again.error()) fprintf(stderr, "%s\n", d.str().c_str());
    }
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  const std::string main_file = temp_dir() + "/corral.yaml";
  check_result(corral::config::load_string(text, main_file, kCpus, false));

  const std::string included = temp_dir() + "/jobs.d/fuzz.yaml";
  FILE* file = fopen(included.c_str(), "wb");
  if (file == nullptr) abort();
  if (fwrite(text.data(), 1, text.size(), file) != text.size()) abort();
  fclose(file);
  auto result = corral::config::load_string("include: [jobs.d/*.yaml]\n", main_file, kCpus, true);
  if (!result.ok()) {
    for (const auto& d : result.error()) check(d.file == main_file || d.file == included);
  }
  check_result(result);
  return 0;
}

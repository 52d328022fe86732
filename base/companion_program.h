// Where one of corral's programs finds another it starts (corrald its spawn
// server, corralctl corralctl-full): beside its own executable first (a
// build tree, or an install that puts them in one directory), then where
// it is installed.
//
// Header-only and dependent on nothing of corral's (base/).
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

namespace corral {

// The paths to try for program NAME, in order: beside /proc/self/exe, then
// INSTALLED (null: none).
inline std::vector<std::string> companion_program_paths(const std::string& name,
                                                        const char* installed) {
  std::vector<std::string> paths;
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    paths.push_back(dir + name);
  }
  if (installed != nullptr) paths.emplace_back(installed);
  return paths;
}

}  // namespace corral

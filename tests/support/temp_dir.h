// A fresh directory under /tmp for one test, removed with everything in it
// when the owner goes away, so that no test leaves files behind even when it
// fails. Not thread-safe to share while one thread destroys it; path() is
// constant and may be read from any thread.
#pragma once

#include <string>

namespace corral::testing {

class TempDir {
 public:
  // A directory /tmp/PREFIX-XXXXXX; throws std::runtime_error when mkdtemp fails.
  explicit TempDir(const std::string& prefix = "corral-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // The path of NAME (which may hold slashes) inside the directory.
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace corral::testing

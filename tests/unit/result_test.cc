#include "base/result.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "base/io.h"
#include "base/unique_fd.h"

namespace corral {
namespace {

Result<int> parse_positive(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return Error("\"" + text + "\" is not a number");
  }
  int n = std::stoi(text);
  if (n == 0) return Error("0 is not positive");
  return n;
}

TEST(ResultTest, HoldsAValueOrAnError) {
  Result<int> ok = parse_positive("42");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(*ok, 42);
  EXPECT_EQ(ok.value_or(7), 42);
  EXPECT_EQ(message_of(ok), "");

  Result<int> bad = parse_positive("4x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "\"4x\" is not a number");
  EXPECT_EQ(bad.value_or(7), 7);
  EXPECT_EQ(message_of(bad), "\"4x\" is not a number");
}

TEST(ResultTest, ContextGoesInFront) {
  Error e = Error("Permission denied").context("exec /x").context("worker a:0");
  EXPECT_EQ(e.message(), "worker a:0: exec /x: Permission denied");
  const Error base("No such file or directory");
  EXPECT_EQ(base.context("open /y").message(), "open /y: No such file or directory");
  EXPECT_EQ(base.message(), "No such file or directory");  // a copy took the context
}

TEST(ResultTest, MoveOnlyValuesAndOtherErrorTypes) {
  Result<std::unique_ptr<int>> owned = std::make_unique<int>(5);
  ASSERT_TRUE(owned.ok());
  std::unique_ptr<int> taken = std::move(owned).value();
  EXPECT_EQ(*taken, 5);

  // A result whose error is a list (the config loader's diagnostics).
  Result<int, std::vector<std::string>> many = std::vector<std::string>{"a:1:2: x", "a:3:4: y"};
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().size(), 2u);
}

TEST(ResultTest, StatusIsNothingOrAnError) {
  Status fine;
  EXPECT_TRUE(fine.ok());
  Status failed = errno_error("open /nowhere", ENOENT);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "open /nowhere: No such file or directory");
  Result<void, std::vector<int>> listed = std::vector<int>{1, 2};
  EXPECT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().size(), 2u);
}

TEST(UniqueFdTest, ClosesOnceAndHandsOver) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b = std::move(a);
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
    EXPECT_EQ(::fcntl(raw, F_GETFD), FD_CLOEXEC);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed when b went
  EXPECT_EQ(errno, EBADF);

  UniqueFd kept(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int released = kept.release();
  EXPECT_FALSE(kept.valid());
  EXPECT_GE(::fcntl(released, F_GETFD), 0);  // still open: it was given up
  ::close(released);
}

TEST(WriteAllTest, WritesEverythingOrSaysWhy) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd in(pipe_fds[0]), out(pipe_fds[1]);
  const std::string text(10000, 'x');
  ASSERT_TRUE(write_all(out.get(), text).ok());
  std::string got(text.size(), '\0');
  size_t have = 0;
  while (have < got.size()) {
    ssize_t n = ::read(in.get(), got.data() + have, got.size() - have);
    ASSERT_GT(n, 0);
    have += static_cast<size_t>(n);
  }
  EXPECT_EQ(got, text);

  in.reset();  // nobody reads: EPIPE (SIGPIPE is ignored for the test)
  auto old = ::signal(SIGPIPE, SIG_IGN);
  Status failed = write_all(out.get(), "y", "the pipe");
  ::signal(SIGPIPE, old);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "the pipe: Broken pipe");
}

}  // namespace
}  // namespace corral

// The public API of the C++ worker SDK (corral/worker.h) as a worker program
// sees it: shared values and arrays on cells of its own, the worker's name
// and index, shared values outside the shm channel; and the handlers that
// worker_sdk_test.cc serves with (worker_sdk_handlers.h).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "corral/worker.h"
#include "gtest/gtest.h"
#include "tests/unit/worker_sdk_handlers.h"

namespace corral {
namespace {

using namespace std::chrono_literals;

Result upper(std::string_view task) {
  if (task == "boom") throw std::runtime_error("it went boom");
  if (task == "refuse") return Result::failure("refused on purpose");
  if (task == "two lines") return "first\nsecond";
  if (task == "slow") std::this_thread::sleep_for(300ms);
  std::string upper(task);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper;
}

Result echo_or_crash(std::string_view task) {
  if (task == "crash") std::abort();
  return std::string(task);
}

Result oversize(std::string_view) { return std::string(5000, 'r'); }

Result stop_on_last(std::string_view task) {
  if (task == "last") stop_after_this_task();
  return std::string(task);
}

Result shm(std::string_view task) {
  shared_value<uint64_t>("processed").fetch_add(1);
  if (task == "boom") throw std::runtime_error("it went boom");
  if (task == "wrong type") shared_value<double>("processed");  // throws: it is u64
  if (task == "slow") std::this_thread::sleep_for(300ms);
  if (task.starts_with("big")) return std::string(1000, 'b');
  shared_value<double>("total").fetch_add(0.5);
  shared_array<int64_t>("histogram")[task.size() % 8].fetch_add(1);
  return "<" + std::string(task) + ">";
}

TEST(WorkerSdkApi, JobNameAndWorkerIndex) {
  ::setenv("CORRAL_JOB", "primes", 1);
  ::setenv("CORRAL_WORKER", "3", 1);
  EXPECT_EQ(job_name(), "primes");
  EXPECT_EQ(worker_index(), 3);
  ::setenv("CORRAL_WORKER", "x", 1);
  EXPECT_EQ(worker_index(), -1);
  ::setenv("CORRAL_WORKER", "4294967296", 1);  // beyond an int
  EXPECT_EQ(worker_index(), -1);
  ::unsetenv("CORRAL_JOB");
  ::unsetenv("CORRAL_WORKER");
  EXPECT_EQ(job_name(), "");
  EXPECT_EQ(worker_index(), -1);
}

TEST(WorkerSdkApi, SharedValuesOfEachType) {
  std::atomic<uint64_t> cells[3] = {0, 0, 0};
  SharedValue<uint64_t> u(&cells[0]);
  EXPECT_EQ(u.fetch_add(5), 0u);
  EXPECT_EQ(u.fetch_add(2), 5u);
  EXPECT_EQ(u.load(), 7u);

  SharedValue<int64_t> i(&cells[1]);
  i.store(3);
  EXPECT_EQ(i.fetch_add(-10), 3);
  EXPECT_EQ(i.load(), -7);

  SharedValue<double> d(&cells[2]);
  d.store(1.5);
  EXPECT_EQ(d.fetch_add(0.25), 1.5);
  EXPECT_EQ(d.load(), 1.75);
}

TEST(WorkerSdkApi, SharedDoubleAddIsAtomicAcrossThreads) {
  std::atomic<uint64_t> cell{0};
  SharedValue<double> total(&cell);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 10000; ++k) total.fetch_add(1.0);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(total.load(), 40000.0);
}

TEST(WorkerSdkApi, SharedArrayIndexIsChecked) {
  std::atomic<uint64_t> cells[4] = {0, 0, 0, 0};
  SharedArray<int64_t> array(cells, 4);
  EXPECT_EQ(array.size(), 4u);
  array[3].store(-1);
  EXPECT_EQ(cells[3].load(), ~uint64_t{0});
  EXPECT_THROW(array[4], std::out_of_range);
}

TEST(WorkerSdkApi, SharedValueOutsideShmThrows) {
  // In a child: the SDK attaches (or fails to) once per process.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("CORRAL_CHANNEL", "pipe", 1);
    try {
      shared_value<uint64_t>("processed");
    } catch (const std::runtime_error& e) {
      ::_exit(std::string_view(e.what()).find("shm channel") != std::string_view::npos ? 0 : 3);
    }
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace

namespace sdk_test {

int serve_with(std::string_view name) {
  if (name == "upper") return serve(upper);
  if (name == "echo_or_crash") return serve(echo_or_crash);
  if (name == "oversize") return serve(oversize);
  if (name == "stop_on_last") return serve(stop_on_last);
  if (name == "shm") return serve(shm);
  throw std::invalid_argument("no test handler " + std::string(name));
}

}  // namespace sdk_test
}  // namespace corral

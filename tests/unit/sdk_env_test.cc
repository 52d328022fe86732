// The worker SDK's reading of its environment (worker/sdk_env.h) on a map
// instead of the process's environment: defaults, the values corrald
// writes, and the message for each kind of bad value.
#include "worker/sdk_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

namespace corral::sdk {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A pipe whose two fds are open for the test's life.
class OpenFds {
 public:
  OpenFds() { EXPECT_EQ(::pipe(fds_), 0); }
  ~OpenFds() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string pair() const { return std::to_string(fds_[0]) + "," + std::to_string(fds_[1]); }
  int first() const { return fds_[0]; }
  int second() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

// An fd number that is not open in this process.
int closed_fd() {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  return fds[0];
}

Getenv map_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const char* name) -> const char* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : it->second.c_str();
  };
}

TEST(SdkEnvTest, ChannelNamesPipeOrShm) {
  EXPECT_EQ(*channel_from_env(map_of({{"CORRAL_CHANNEL", "pipe"}})), Channel::kPipe);
  EXPECT_EQ(*channel_from_env(map_of({{"CORRAL_CHANNEL", "shm"}})), Channel::kShm);
  EXPECT_THAT(channel_from_env(map_of({})).error().message(),
              HasSubstr("CORRAL_CHANNEL is not set"));
  // Set but empty is unset: corrald never writes an empty value.
  EXPECT_THAT(channel_from_env(map_of({{"CORRAL_CHANNEL", ""}})).error().message(),
              HasSubstr("CORRAL_CHANNEL is not set"));
  EXPECT_THAT(channel_from_env(map_of({{"CORRAL_CHANNEL", "none"}})).error().message(),
              HasSubstr("needs a task channel (pipe or shm)"));
  EXPECT_EQ(channel_from_env(map_of({{"CORRAL_CHANNEL", "tcp"}})).error().message(),
            "CORRAL_CHANNEL=tcp: expected pipe or shm");
}

TEST(SdkEnvTest, PipeSettingsAndTheirDefaults) {
  OpenFds fds;
  Result<PipeSettings> settings = pipe_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()}}));
  ASSERT_TRUE(settings) << message_of(settings);
  EXPECT_EQ(settings->framing, Framing::kLines);
  EXPECT_EQ(settings->in, fds.first());
  EXPECT_EQ(settings->out, fds.second());
  EXPECT_EQ(settings->limits.max_task_bytes, 65536u);
  EXPECT_EQ(settings->limits.heartbeat, 0ms);
  EXPECT_FALSE(settings->limits.chunks);

  settings = pipe_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()},
                                            {"CORRAL_FRAMING", "length"},
                                            {"CORRAL_MAX_TASK_BYTES", "4294967296"},
                                            {"CORRAL_HEARTBEAT_MS", "250"},
                                            {"CORRAL_CHUNKS", "1"}}));
  ASSERT_TRUE(settings) << message_of(settings);
  EXPECT_EQ(settings->framing, Framing::kLength);
  EXPECT_EQ(settings->limits.max_task_bytes, uint64_t{1} << 32);
  EXPECT_EQ(settings->limits.heartbeat, 250ms);
  EXPECT_TRUE(settings->limits.chunks);
  settings = pipe_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_CHUNKS", "0"}}));
  ASSERT_TRUE(settings) << message_of(settings);
  EXPECT_FALSE(settings->limits.chunks);
}

TEST(SdkEnvTest, BadPipeSettingsSayWhichVariableAndWhy) {
  OpenFds fds;
  const std::string closed = std::to_string(closed_fd());
  auto error_of = [](std::map<std::string, std::string> env) {
    return message_of(pipe_settings_from_env(map_of(std::move(env))));
  };
  EXPECT_EQ(error_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_FRAMING", "xml"}}),
            "CORRAL_FRAMING=xml: expected lines or length");
  EXPECT_EQ(error_of({{"CORRAL_FDS", "3;4"}}), "CORRAL_FDS=3;4: expected two fds, as in \"3,4\"");
  EXPECT_EQ(error_of({{"CORRAL_FDS", "3,-4"}}), "CORRAL_FDS=3,-4: expected two fds, as in \"3,4\"");
  EXPECT_EQ(error_of({{"CORRAL_FDS", "3,4294967296"}}),
            "CORRAL_FDS=3,4294967296: expected two fds, as in \"3,4\"");
  EXPECT_EQ(error_of({{"CORRAL_FDS", std::to_string(fds.first()) + "," + closed}}),
            "CORRAL_FDS=" + std::to_string(fds.first()) + "," + closed + ": fd " + closed +
                " is not open (Bad file descriptor)");
  EXPECT_EQ(error_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_MAX_TASK_BYTES", "0"}}),
            "CORRAL_MAX_TASK_BYTES=0: expected a number of bytes between 1 and 4294967296");
  EXPECT_THAT(error_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_MAX_TASK_BYTES", "4294967297"}}),
              HasSubstr("CORRAL_MAX_TASK_BYTES=4294967297: expected a number of bytes"));
  EXPECT_EQ(error_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_HEARTBEAT_MS", "86400001"}}),
            "CORRAL_HEARTBEAT_MS=86400001: expected a number of milliseconds");
  EXPECT_EQ(error_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_HEARTBEAT_MS", "1s"}}),
            "CORRAL_HEARTBEAT_MS=1s: expected a number of milliseconds");
  EXPECT_EQ(error_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_CHUNKS", "yes"}}),
            "CORRAL_CHUNKS=yes: expected 0 or 1");
}

TEST(SdkEnvTest, ShmPlaceNeedsTheShmChannelAnInheritedFdAndASlot) {
  OpenFds fds;
  const std::string segment = "fd:" + std::to_string(fds.first());
  Result<ShmPlace> place = shm_place_from_env(
      map_of({{"CORRAL_CHANNEL", "shm"}, {"CORRAL_SHM", segment}, {"CORRAL_WORKER", "7"}}));
  ASSERT_TRUE(place) << message_of(place);
  EXPECT_EQ(place->fd, fds.first());
  EXPECT_EQ(place->worker, 7u);
  EXPECT_EQ(place->variable, "CORRAL_SHM=" + segment);

  auto error_of = [](std::map<std::string, std::string> env) {
    return message_of(shm_place_from_env(map_of(std::move(env))));
  };
  EXPECT_EQ(error_of({{"CORRAL_CHANNEL", "pipe"}}),
            "the job's shared state needs the shm channel (CORRAL_CHANNEL=pipe)");
  EXPECT_EQ(error_of({}), "the job's shared state needs the shm channel (CORRAL_CHANNEL=)");
  EXPECT_EQ(
      error_of({{"CORRAL_CHANNEL", "shm"}, {"CORRAL_SHM", "/dev/shm/x"}, {"CORRAL_WORKER", "0"}}),
      "CORRAL_SHM=/dev/shm/x: expected fd:N, the inherited segment fd (named segments are not "
      "supported)");
  EXPECT_EQ(error_of({{"CORRAL_CHANNEL", "shm"}, {"CORRAL_SHM", segment}, {"CORRAL_WORKER", "x"}}),
            "CORRAL_WORKER is not a worker index");
  const std::string closed = std::to_string(closed_fd());
  EXPECT_EQ(
      error_of({{"CORRAL_CHANNEL", "shm"}, {"CORRAL_SHM", "fd:" + closed}, {"CORRAL_WORKER", "0"}}),
      "CORRAL_SHM=fd:" + closed + ": fd " + closed + " is not open (Bad file descriptor)");
}

TEST(SdkEnvTest, ShmSettingsAreTheTwoEventfdsAndTheLimits) {
  OpenFds fds;
  Result<ShmSettings> settings =
      shm_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_HEARTBEAT_MS", "40"}}));
  ASSERT_TRUE(settings) << message_of(settings);
  EXPECT_EQ(settings->wake_me, fds.first());
  EXPECT_EQ(settings->wake_daemon, fds.second());
  EXPECT_EQ(settings->limits.heartbeat, 40ms);
  EXPECT_EQ(settings->limits.max_task_bytes, 65536u);
  EXPECT_EQ(settings->spin, std::chrono::microseconds(30));  // unset: 30 us
}

TEST(SdkEnvTest, ShmSpinComesFromCorralSpinUs) {
  OpenFds fds;
  Result<ShmSettings> settings =
      shm_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_SPIN_US", "0"}}));
  ASSERT_TRUE(settings) << message_of(settings);
  EXPECT_EQ(settings->spin, std::chrono::microseconds(0));
  settings =
      shm_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_SPIN_US", "2000"}}));
  ASSERT_TRUE(settings) << message_of(settings);
  EXPECT_EQ(settings->spin, std::chrono::microseconds(2000));
  for (const char* bad : {"-1", "10001", "5ms"}) {
    settings = shm_settings_from_env(map_of({{"CORRAL_FDS", fds.pair()}, {"CORRAL_SPIN_US", bad}}));
    ASSERT_FALSE(settings) << bad;
    EXPECT_EQ(settings.error().message(), std::string("CORRAL_SPIN_US=") + bad +
                                              ": expected a number of microseconds up to 10000");
  }
}

}  // namespace
}  // namespace corral::sdk

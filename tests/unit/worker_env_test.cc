// worker_env(): what a worker's environment holds for each kind of `user:`.
#include "daemon/worker_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsSupersetOf;
using ::testing::Not;

// corrald as root under systemd, with a secret of its own.
const std::vector<std::string> kDaemonEnv = {
    "HOME=/root",
    "PATH=/root/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "USER=root",
    "LOGNAME=root",
    "SHELL=/bin/bash",
    "DATABASE_PASSWORD=hunter2",
    "http_proxy=http://proxy:3128",
    "LANG=de_DE.UTF-8",
    "LANGUAGE=de:en",
    "LC_TIME=C.UTF-8",
    "LC_ALL=C.UTF-8",
    "TZ=Europe/Berlin",
    "TERM=xterm",
    "NOTIFY_SOCKET=/run/systemd/notify",
    "WATCHDOG_USEC=30000000",
    "WATCHDOG_PID=1",
    "LISTEN_FDS=1",
    "LISTEN_PID=1",
    "LISTEN_FDNAMES=x",
    "JOURNAL_STREAM=8:1234",
    "CORRAL_SOCKET=/run/corral/corral.sock",
};

const Account kNobody{65534, "nobody", "/nonexistent", "/usr/sbin/nologin"};
const Account kRootAlias{0, "toor", "/root2", "/bin/sh"};

const std::map<std::string, std::string> kCorral = {
    {"CORRAL_JOB", "web"}, {"CORRAL_WORKER", "3"}, {"CORRAL_CHANNEL", "shm"}};

TEST(WorkerEnvTest, AWorkerOfAnotherUserStartsFromThatUsersLogin) {
  auto env = worker_env(kDaemonEnv, 0, JobUser{kNobody}, {}, {}, kCorral);
  EXPECT_THAT(
      env, ElementsAre("CORRAL_CHANNEL=shm", "CORRAL_JOB=web", "CORRAL_WORKER=3",
                       "HOME=/nonexistent", "LANG=de_DE.UTF-8", "LANGUAGE=de:en", "LC_ALL=C.UTF-8",
                       "LC_TIME=C.UTF-8", "LOGNAME=nobody", "PATH=/usr/local/bin:/usr/bin:/bin",
                       "SHELL=/usr/sbin/nologin", "TZ=Europe/Berlin", "USER=nobody"));
}

TEST(WorkerEnvTest, PassEnvAddsNamedVariablesOfTheDaemonToAnotherUsersWorker) {
  auto env = worker_env(kDaemonEnv, 0, JobUser{kNobody}, {},
                        {"http_proxy", "NOT_SET_IN_THE_DAEMON", "PATH"}, kCorral);
  EXPECT_THAT(env, Contains("http_proxy=http://proxy:3128"));
  // A name the daemon lacks is not made up; a listed PATH is the daemon's.
  EXPECT_THAT(env, Not(Contains(::testing::StartsWith("NOT_SET_IN_THE_DAEMON"))));
  EXPECT_THAT(env, Contains("PATH=/root/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  EXPECT_THAT(env, Not(Contains("DATABASE_PASSWORD=hunter2")));
}

TEST(WorkerEnvTest, PassEnvNeverPassesTheDaemonsOwnVariables) {
  auto env =
      worker_env(kDaemonEnv, 0, JobUser{kNobody}, {},
                 {"NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM", "CORRAL_SOCKET"}, kCorral);
  for (const auto& entry : env) {
    EXPECT_FALSE(entry.starts_with("NOTIFY_SOCKET=") || entry.starts_with("WATCHDOG_") ||
                 entry.starts_with("JOURNAL_STREAM=") || entry.starts_with("CORRAL_SOCKET="))
        << entry;
  }
}

TEST(WorkerEnvTest, TheJobsEnvAndThenCorralsOwnComeLastForAnotherUser) {
  auto env = worker_env(kDaemonEnv, 0, JobUser{kNobody},
                        {{"PATH", "/opt/app/bin"}, {"HOME", "/srv/app"}, {"CORRAL_JOB", "fake"}},
                        {"http_proxy"}, kCorral);
  EXPECT_THAT(env, IsSupersetOf({"PATH=/opt/app/bin", "HOME=/srv/app", "CORRAL_JOB=web"}));
}

TEST(WorkerEnvTest, AUserThatCannotBeLookedUpGetsNothingOfTheDaemon) {
  auto env = worker_env(kDaemonEnv, 0, JobUser{}, {{"A", "1"}}, {"http_proxy"}, kCorral);
  EXPECT_THAT(env, ElementsAre("A=1", "CORRAL_CHANNEL=shm", "CORRAL_JOB=web", "CORRAL_WORKER=3",
                               "LANG=de_DE.UTF-8", "LANGUAGE=de:en", "LC_ALL=C.UTF-8",
                               "LC_TIME=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin",
                               "TZ=Europe/Berlin", "http_proxy=http://proxy:3128"));
}

TEST(WorkerEnvTest, AnEmptyHomeOrShellIsWhatLoginUses) {
  auto env = worker_env({}, 0, JobUser{Account{1000, "app", "", ""}}, {}, {}, {});
  EXPECT_THAT(env, IsSupersetOf({"HOME=/", "SHELL=/bin/sh", "USER=app", "LOGNAME=app"}));
}

TEST(WorkerEnvTest, WithoutUserAWorkerGetsTheDaemonsEnvironmentWithoutItsOwnVariables) {
  auto env = worker_env(kDaemonEnv, 0, std::nullopt, {{"TERM", "dumb"}}, {"http_proxy"}, kCorral);
  EXPECT_THAT(env, ElementsAre("CORRAL_CHANNEL=shm", "CORRAL_JOB=web", "CORRAL_WORKER=3",
                               "DATABASE_PASSWORD=hunter2", "HOME=/root", "LANG=de_DE.UTF-8",
                               "LANGUAGE=de:en", "LC_ALL=C.UTF-8", "LC_TIME=C.UTF-8",
                               "LOGNAME=root", "PATH=/root/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "SHELL=/bin/bash", "TERM=dumb", "TZ=Europe/Berlin", "USER=root",
                               "http_proxy=http://proxy:3128"));
}

TEST(WorkerEnvTest, AUserWithTheDaemonsUidIsTheDaemonsOwn) {
  // By uid, not by name: "toor" is root.
  auto env = worker_env(kDaemonEnv, 0, JobUser{kRootAlias}, {}, {}, kCorral);
  EXPECT_THAT(env, IsSupersetOf({"DATABASE_PASSWORD=hunter2", "HOME=/root", "USER=root",
                                 "PATH=/root/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));
  // Where the daemon has no HOME, USER or LOGNAME, the entry's fill them in.
  env = worker_env({"PATH=/bin"}, 0, JobUser{kRootAlias}, {}, {}, {});
  EXPECT_THAT(env, ElementsAre("HOME=/root2", "LOGNAME=toor", "PATH=/bin", "USER=toor"));
  // A daemon of uid 65534 running a `user: nobody` worker: its own.
  env = worker_env(kDaemonEnv, 65534, JobUser{kNobody}, {}, {}, {});
  EXPECT_THAT(env, Contains("DATABASE_PASSWORD=hunter2"));
}

TEST(WorkerEnvTest, TheFirstOfTwoEntriesWithOneNameIsTheDaemonsValue) {
  auto env =
      worker_env({"X=first", "X=second", "=nameless", "no-equals"}, 0, std::nullopt, {}, {}, {});
  EXPECT_THAT(env, ElementsAre("X=first"));
}

}  // namespace
}  // namespace corral::daemon

// corrald runs as root and opens files in directories that others may be
// able to write: worker logs, sinks and sources. These tests plant what a
// worker's user could plant there (symbolic links, dangling links, FIFOs,
// hard links) and check that root never writes, creates, truncates or reads
// through them and never waits on them, that each refusal is logged, and
// that the rest of the daemon goes on. They also check the start-up refusal
// of a log_dir that is not private, and config files owned by someone else.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/integration/harness.h"
#include "tests/support/text.h"
#include "tests/support/users.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

bool is_regular(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Why the test cannot run here, or "".
std::string missing_feature() {
  if (geteuid() != 0) return "needs root: corrald must run as root for files to be root's";
  passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr || nobody->pw_uid != kNobodyUid) return "needs the user nobody (uid 65534)";
  return "";
}

// A directory a worker's user (nobody) owns and so may fill as it likes.
void make_nobodys_dir(const std::string& path) {
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0) << path;
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  ASSERT_EQ(::chown(path.c_str(), kNobodyUid, kNogroupGid), 0);
}

// What nobody could plant in a directory of its own: made here, then given
// to nobody, so that it looks exactly like nobody's work.
void plant_link(const std::string& target, const std::string& at) {
  ASSERT_EQ(::symlink(target.c_str(), at.c_str()), 0) << at;
  ASSERT_EQ(::lchown(at.c_str(), kNobodyUid, kNogroupGid), 0);
}
void plant_fifo(const std::string& at) {
  ASSERT_EQ(::mkfifo(at.c_str(), 0666), 0) << at;
  ASSERT_EQ(::chown(at.c_str(), kNobodyUid, kNogroupGid), 0);
}

// A root-only file (0600) with TEXT, in the root-only VICTIM directory.
std::string root_file(const std::string& victim, const std::string& name, const std::string& text) {
  if (!path_exists(victim)) ::mkdir(victim.c_str(), 0700);
  std::string path = victim + "/" + name;
  write_file(path, text);
  ::chmod(path.c_str(), 0600);
  return path;
}

// private_dirs: false lets corrald start on a log_dir that nobody owns, where
// the files themselves must still be opened safely.
const std::string kOpenDirs = "  private_dirs: false\n  log_rotate: {max_size: 1KiB, keep: 2}\n";

// A daemon with a log_dir that nobody owns and two jobs. w: three workers as
// nobody, each writing a line to stdout and to stderr (short of a rotation),
// then 300 kB to each (more than a pipe holds, many rotations), then
// leaving a mark that it got through; other: a plain worker whose log keeps
// growing. The test plants what it likes in `logs` before start().
class LogScene {
 public:
  LogScene() : d("", kOpenDirs) {
    marks = d.dir().file("marks");
    logs = d.log_dir();
    victim = d.dir().file("victim");
    d.rewrite_config(R"(jobs:
  w:
    command: [sh, -c, 'echo hello; echo hello >&2; sleep 0.3; head -c 300000 /dev/zero | tr "\0" x; echo; head -c 300000 /dev/zero | tr "\0" y >&2; echo >&2; touch "$MARKS/done-$CORRAL_WORKER"; exec sleep 1000']
    workers: 3
    user: nobody
    start: {settle: 0s}
    env: {MARKS: )" + marks +
                     R"(}
  other:
    command: [sh, -c, 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.05; done']
    start: {settle: 0s}
)");
    EXPECT_EQ(::chmod(d.dir().path().c_str(), 0755), 0);  // nobody reaches marks/
    make_nobodys_dir(marks);
    make_nobodys_dir(logs);
  }
  // Whether worker w:INDEX got all its output out: corrald kept reading its
  // pipes, refused files or not.
  bool drained(int index) {
    return wait_until([&] { return path_exists(marks + "/done-" + std::to_string(index)); }, 20s);
  }
  bool other_flows() {
    return wait_until(
        [&] { return read_file(logs + "/other-0.out.log").find("tick 5\n") != std::string::npos; });
  }

  Daemon d;
  std::string marks, logs, victim;
};

TEST(FileSafetyTest, LinksPlantedAtLogNamesAreNeitherWrittenNorCreatedThrough) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  LogScene scene;
  const std::string& logs = scene.logs;
  const std::string& victim = scene.victim;
  const std::string out_target = root_file(victim, "out-target", "ORIGINAL\n");
  const std::string hard_target = root_file(victim, "hard-target", "HARD\n");
  const std::string rotated_target = root_file(victim, "rotated-target", "ROTATED\n");
  plant_link(out_target, logs + "/w-0.out.log");
  plant_link(victim + "/made-by-root", logs + "/w-0.err.log");  // dangling
  ASSERT_EQ(::link(hard_target.c_str(), (logs + "/w-1.out.log").c_str()), 0);
  plant_link(victim + "/err-made-by-root", logs + "/w-1.err.log");  // dangling
  plant_link(rotated_target, logs + "/w-2.out.log.1");
  plant_link(victim + "/rotated-made-by-root", logs + "/w-2.out.log.2");  // dangling
  plant_link(rotated_target, logs + "/w-2.err.log.1");

  ASSERT_TRUE(scene.d.start()) << scene.d.daemon_log();
  for (int worker : {0, 1, 2}) {
    EXPECT_TRUE(scene.drained(worker)) << "w:" << worker << " is blocked on its output\n"
                                       << scene.d.daemon_log();
  }
  EXPECT_TRUE(scene.other_flows()) << scene.d.daemon_log();

  // Nothing was written, created or truncated through a planted name.
  EXPECT_EQ(read_file(out_target), "ORIGINAL\n");
  EXPECT_FALSE(path_exists(victim + "/made-by-root"));
  EXPECT_EQ(read_file(hard_target), "HARD\n");
  EXPECT_FALSE(path_exists(victim + "/err-made-by-root"));
  EXPECT_EQ(read_file(rotated_target), "ROTATED\n");
  EXPECT_FALSE(path_exists(victim + "/rotated-made-by-root"));
  // w:2's own files were rotated over the planted names: the links are
  // replaced, never followed. (The worker's last bytes may still be in its
  // pipe when it says it is done: the last rotation may come a moment later.)
  for (const char* name : {"/w-2.out.log.1", "/w-2.out.log.2", "/w-2.err.log.1"}) {
    EXPECT_TRUE(wait_until([&] { return is_regular(logs + name); })) << name;
  }

  const std::string log = scene.d.daemon_log();
  EXPECT_THAT(log, HasSubstr("log file " + logs + "/w-0.out.log is a symbolic link: refused"));
  EXPECT_THAT(log, HasSubstr("log file " + logs + "/w-0.err.log is a symbolic link: refused"));
  EXPECT_THAT(log, HasSubstr("log file " + logs + "/w-1.out.log has 2 hard links: refused"));
  EXPECT_THAT(log, HasSubstr("log file " + logs + "/w-1.err.log is a symbolic link: refused"));
  // Once per file, not once per read of the worker's 300 kB.
  EXPECT_EQ(count_of(log, "w-0.out.log is a symbolic link"), 1u) << log;
  EXPECT_THAT(log, HasSubstr("daemon.log_dir " + logs + " is not private: " + logs +
                             " is owned by nobody (uid 65534), mode 0755"));
}

TEST(FileSafetyTest, FifosPlantedAtLogNamesNeverHoldTheDaemon) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  LogScene scene;
  const std::string& logs = scene.logs;
  plant_fifo(logs + "/w-0.out.log");
  plant_fifo(logs + "/w-1.err.log");
  plant_fifo(logs + "/w-2.out.log.1");

  ASSERT_TRUE(scene.d.start()) << scene.d.daemon_log();
  // Opened for writing the old way, a FIFO without a reader waits forever,
  // and the whole event loop with it.
  RunResult status = scene.d.ctl({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  for (int worker : {0, 1, 2}) {
    EXPECT_TRUE(scene.drained(worker)) << "w:" << worker << " is blocked on its output\n"
                                       << scene.d.daemon_log();
  }
  EXPECT_TRUE(scene.other_flows()) << scene.d.daemon_log();
  EXPECT_TRUE(is_regular(logs + "/w-2.out.log.1"));  // renamed over, never opened

  const std::string log = scene.d.daemon_log();
  EXPECT_THAT(log, HasSubstr("log file " + logs + "/w-0.out.log is a FIFO (named pipe): refused"));
  EXPECT_THAT(log, HasSubstr("log file " + logs + "/w-1.err.log is a FIFO (named pipe): refused"));
}

TEST(FileSafetyTest, KeepZeroTruncatesTheFileItHoldsNotWhatTheNameLeadsTo) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  Daemon d(R"(jobs:
  w:
    command: [sh, -c, 'i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.002; done']
    user: nobody
    start: {settle: 0s}
)",
           "  private_dirs: false\n  log_rotate: {max_size: 1KiB, keep: 0}\n");
  const std::string logs = d.log_dir();
  make_nobodys_dir(logs);
  const std::string log = logs + "/w-0.out.log";
  const std::string target = root_file(d.dir().file("victim"), "passwd", "root:x:0:0\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(wait_until([&] { return read_file(log).find("line 3\n") != std::string::npos; }));
  // The worker's user moves corrald's file away and puts a link in its place.
  ASSERT_EQ(::rename(log.c_str(), (log + ".held").c_str()), 0);
  plant_link(target, log);
  // corrald keeps writing to the file it holds and truncates that one at
  // max_size: a line 300 lines later means at least one truncation (each
  // line is 8-10 bytes, 1 KiB is a hundred of them).
  std::string held;
  ASSERT_TRUE(wait_until(
      [&] {
        held = read_file(log + ".held");
        auto last = held.rfind("line ", held.size() > 1 ? held.size() - 2 : 0);
        return last != std::string::npos && std::stoi(held.substr(last + 5)) > 400;
      },
      20s))
      << held << d.daemon_log();
  EXPECT_LE(held.size(), 1024u);
  EXPECT_EQ(read_file(target), "root:x:0:0\n");
}

TEST(FileSafetyTest, TailNeverReadsThroughAPlantedLinkNorWaitsOnAFifo) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  Daemon d(R"(jobs:
  s:
    command: [sleep, '1000']
    user: nobody
    start: {settle: 0s}
)",
           kOpenDirs + "  socket_mode: 0666\n  allow_users: [nobody]\n");
  ASSERT_EQ(::chmod(d.dir().path().c_str(), 0755), 0);  // nobody reaches the socket
  const std::string logs = d.log_dir();
  make_nobodys_dir(logs);
  const std::string secret = root_file(d.dir().file("victim"), "shadow", "root:TOPSECRET:1:\n");
  plant_link(secret, logs + "/s-0.out.log");
  plant_fifo(logs + "/s-0.err.log");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  ASSERT_TRUE(d.wait_state("s:0", "RUNNING"));

  RunResult as_root = d.ctl({"tail", "-n", "100", "s:0"});
  EXPECT_EQ(as_root.exit_code, 1);
  EXPECT_THAT(as_root.out + as_root.err, Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(as_root.err,
              HasSubstr("log file " + logs + "/s-0.out.log is a symbolic link: refused"));
  // The same through a user the socket allows, who may not read the file.
  RunResult as_nobody =
      run({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
           CORRALCTL_PATH, "-s", d.socket(), "tail", "-n", "100", "s:0"});
  EXPECT_EQ(as_nobody.exit_code, 1) << as_nobody.err;
  EXPECT_THAT(as_nobody.out + as_nobody.err, Not(HasSubstr("TOPSECRET")));
  // A FIFO without a writer: opened the old way, the daemon's loop waits.
  RunResult fifo = d.ctl({"tail", "--stderr", "s:0"});
  EXPECT_EQ(fifo.exit_code, 1);
  EXPECT_THAT(fifo.err,
              HasSubstr("log file " + logs + "/s-0.err.log is a FIFO (named pipe): refused"));
  RunResult status = d.ctl({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(d.daemon_log(),
              HasSubstr("tail: log file " + logs + "/s-0.out.log is a symbolic link: refused"));
}

TEST(FileSafetyTest, ClearNeverTruncatesThroughAPlantedLink) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  Daemon d(R"(jobs:
  s:
    command: [sleep, '1000']
    user: nobody
    start: {settle: 0s}
)",
           kOpenDirs);
  const std::string logs = d.log_dir();
  make_nobodys_dir(logs);
  const std::string victim = d.dir().file("victim");
  const std::string linked = root_file(victim, "linked", "KEEP ME\n");
  const std::string hard = root_file(victim, "hard", "KEEP ME TOO\n");
  plant_link(linked, logs + "/s-0.out.log");
  ASSERT_EQ(::link(hard.c_str(), (logs + "/s-0.err.log").c_str()), 0);
  ASSERT_TRUE(d.start()) << d.daemon_log();

  RunResult r = d.ctl({"clear", "s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out + r.err,
              HasSubstr("log file " + logs + "/s-0.out.log is a symbolic link: refused"));
  EXPECT_THAT(r.out + r.err,
              HasSubstr("log file " + logs + "/s-0.err.log has 2 hard links: refused"));
  EXPECT_EQ(read_file(linked), "KEEP ME\n");
  EXPECT_EQ(read_file(hard), "KEEP ME TOO\n");
  EXPECT_THAT(d.daemon_log(), HasSubstr("s:0: clear: log file " + logs +
                                        "/s-0.out.log is a symbolic link: refused"));
}

// A daemon whose jobs echo tasks, with their sinks and sources in `data`, a
// directory that nobody owns, where the test plants what it likes.
class FeedScene {
 public:
  FeedScene() : d("", kOpenDirs) {
    data = d.dir().file("data");
    victim = d.dir().file("victim");
    make_nobodys_dir(data);
  }
  // A job that echoes its tasks, with FEED (sink: and source: lines).
  static std::string job(const std::string& name, const std::string& feed) {
    return "  " + name + ":\n    command: " + worker_command("--handler, echo") +
           "\n    channel: pipe\n    start: {settle: 0s}\n" + feed;
  }
  std::string spawn_error(const std::string& worker) {
    Json error = d.worker(worker)["spawn_error"];
    return error.is_string() ? error.get<std::string>() : "";
  }

  Daemon d;
  std::string data, victim;
};

TEST(FileSafetyTest, LinksPlantedAsSinksOrSourcesAreNeitherWrittenNorRead) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  FeedScene scene;
  const std::string& data = scene.data;
  const std::string sink_target = root_file(scene.victim, "sink-target", "ORIGINAL\n");
  const std::string tasks = root_file(scene.victim, "tasks", "SECRET-TASK\n");
  plant_link(sink_target, data + "/link.jsonl");
  plant_link(scene.victim + "/sink-made-by-root", data + "/dangling.jsonl");
  plant_link(tasks, data + "/tasks-link");
  const std::string results = scene.d.dir().file("results.jsonl");  // in root's own dir
  scene.d.rewrite_config(
      "jobs:\n" + FeedScene::job("sink_link", "    sink: {file: " + data + "/link.jsonl}\n") +
      FeedScene::job("sink_dangling", "    sink: {file: " + data + "/dangling.jsonl}\n") +
      FeedScene::job("source_link", "    source: {file: " + data +
                                        "/tasks-link}\n    sink: {file: " + results + "}\n"));
  ASSERT_TRUE(scene.d.start()) << scene.d.daemon_log();

  for (const char* name : {"sink_link", "sink_dangling"}) {
    std::vector<Json> replies = scene.d.submit(name, {"one", "two"}, false);
    ASSERT_FALSE(replies.empty()) << name;
    EXPECT_EQ(replies.back().value("ok", true), false) << replies.back().dump();
  }
  // What the old way would have done by now (the tasks from the source
  // echoed into the results).
  wait_until([&] { return !read_file(results).empty(); }, 2s);
  EXPECT_EQ(read_file(sink_target), "ORIGINAL\n");
  EXPECT_FALSE(path_exists(scene.victim + "/sink-made-by-root"));
  EXPECT_THAT(read_file(results), Not(HasSubstr("SECRET-TASK")));

  EXPECT_THAT(scene.spawn_error("sink_link:0"),
              HasSubstr("sink " + data + "/link.jsonl is a symbolic link: refused"));
  EXPECT_THAT(scene.spawn_error("sink_dangling:0"),
              HasSubstr("sink " + data + "/dangling.jsonl is a symbolic link: refused"));
  EXPECT_THAT(scene.spawn_error("source_link:0"),
              HasSubstr("source " + data + "/tasks-link is a symbolic link: refused"));
  const std::string log = scene.d.daemon_log();
  EXPECT_THAT(log, HasSubstr("job sink_link: sink " + data +
                             "/link.jsonl is a symbolic link: "
                             "refused"));
  EXPECT_THAT(log, HasSubstr("sink directory " + data + " is not private: " + data +
                             " is owned by nobody (uid 65534), mode 0755"));
  // Once per directory, though each spawn tries to make the feeds again.
  EXPECT_EQ(count_of(log, " directory " + data + " is not private"), 1u) << log;
}

TEST(FileSafetyTest, FifosPlantedAsSinksOrSourcesNeverHoldTheDaemon) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  FeedScene scene;
  const std::string& data = scene.data;
  plant_fifo(data + "/fifo.jsonl");
  plant_fifo(data + "/tasks-fifo");
  scene.d.rewrite_config(
      "jobs:\n" + FeedScene::job("sink_fifo", "    sink: {file: " + data + "/fifo.jsonl}\n") +
      FeedScene::job("source_fifo", "    source: {file: " + data + "/tasks-fifo}\n") +
      FeedScene::job("plain", ""));
  ASSERT_TRUE(scene.d.start()) << scene.d.daemon_log();
  // Opened the old way, a FIFO waits for its peer, and the event loop with
  // it. Here corrald answers, and a job beside them works.
  std::vector<Json> results = scene.d.submit("plain", {"hello"});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].value("result", ""), "hello");
  EXPECT_THAT(scene.spawn_error("sink_fifo:0"),
              HasSubstr("sink " + data + "/fifo.jsonl is a FIFO (named pipe): refused"));
  EXPECT_THAT(scene.spawn_error("source_fifo:0"),
              HasSubstr("source " + data + "/tasks-fifo is a FIFO (named pipe): refused"));
}

TEST(FileSafetyTest, ASinkIsMade0640AndASourceIsReadLineByLine) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: corrald's files are root's";
  Daemon d("");
  const std::string data = d.dir().file("data");
  ASSERT_EQ(::mkdir(data.c_str(), 0755), 0);
  ::umask(022);
  // A line over max_task_bytes, and one longer than the 64 KiB the source
  // is read by, are skipped; the last line has no newline.
  write_file(data + "/tasks",
             "one\n\ntwo\n" + std::string(100, 'l') + "\n" + std::string(200000, 'h') + "\nthree");
  d.rewrite_config("jobs:\n  feed:\n    command: " + worker_command("--handler, echo") +
                   "\n    channel: pipe\n    start: {settle: 0s}\n"
                   "    queue: {max_task_bytes: 64}\n"
                   "    source: {file: " +
                   data +
                   "/tasks}\n"
                   "    sink: {file: " +
                   data + "/results.jsonl}\n");
  ASSERT_TRUE(d.start()) << d.daemon_log();
  const std::string results = data + "/results.jsonl";
  ASSERT_TRUE(wait_until([&] { return count_of(read_file(results), "\n") == 4; }))
      << read_file(results) << d.daemon_log();
  std::string text = read_file(results);
  for (const char* payload :
       {R"("result":"one")", R"("result":"")", R"("result":"two")", R"("result":"three")"}) {
    EXPECT_THAT(text, HasSubstr(payload));
  }
  EXPECT_EQ(mode_of(results), 0640u);
  const std::string log = d.daemon_log();
  EXPECT_THAT(log,
              HasSubstr("source " + data +
                        "/tasks:4: task of 100 bytes exceeds queue.max_task_bytes (64); skipped"));
  EXPECT_THAT(log, HasSubstr("source " + data +
                             "/tasks:5: task of 200000 bytes exceeds queue.max_task_bytes (64); "
                             "skipped"));
}

TEST(FileSafetyTest, ALogDirThatIsNotPrivateIsRefusedAtStartAndByCheck) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  Daemon d("jobs: {}\n");
  const std::string logs = d.log_dir();
  make_nobodys_dir(logs);
  const std::string problem = "daemon.log_dir " + logs + " is not private: " + logs +
                              " is owned by nobody (uid 65534), mode 0755";
  const std::string fix = "fix: chown root " + logs + ", or set daemon.private_dirs: false";

  RunResult start = run({CORRALD_PATH, "-c", d.config()}, 10s);
  EXPECT_EQ(start.exit_code, 1) << start.err;
  EXPECT_THAT(start.err, HasSubstr(problem));
  EXPECT_THAT(start.err, HasSubstr(fix));

  RunResult check = run({CORRALD_PATH, "-c", d.config(), "--check"});
  EXPECT_EQ(check.exit_code, 2) << check.err;
  EXPECT_THAT(check.err, HasSubstr(d.config() + ": " + problem));
  EXPECT_THAT(check.err, HasSubstr(d.config() + ": 1 error"));
  EXPECT_EQ(check.out, "");

  // Said explicitly: a warning, and corrald starts.
  Daemon open_dirs("jobs: {}\n", "  private_dirs: false\n");
  make_nobodys_dir(open_dirs.log_dir());
  RunResult warned = run({CORRALD_PATH, "-c", open_dirs.config(), "--check"});
  EXPECT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_THAT(warned.err, HasSubstr(open_dirs.config() + ": warning: daemon.log_dir " +
                                    open_dirs.log_dir() + " is not private"));
  EXPECT_THAT(warned.out, HasSubstr("private_dirs: false\n"));
  ASSERT_TRUE(open_dirs.start()) << open_dirs.daemon_log();
}

TEST(FileSafetyTest, TheLogDirIsMadeWithMode0750) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: corrald's files are root's";
  ::umask(022);
  Daemon d("jobs: {}\n");
  ASSERT_FALSE(path_exists(d.log_dir()));
  ASSERT_TRUE(d.start()) << d.daemon_log();
  EXPECT_EQ(mode_of(d.log_dir()), 0750u);
}

TEST(FileSafetyTest, ConfigFilesOfAnotherUserOrWritableByOthersAreRefused) {
  if (std::string why = missing_feature(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string main = dir.file("corral.yaml");
  ASSERT_EQ(::mkdir(dir.file("jobs.d").c_str(), 0755), 0);
  const std::string theirs = dir.file("jobs.d/theirs.yaml");
  const std::string group = dir.file("jobs.d/group.yaml");
  const std::string fine = dir.file("jobs.d/fine.yaml");
  write_file(main, "daemon:\n  log_dir: " + dir.file("logs") + "\n  socket: " + dir.file("s.sock") +
                       "\ninclude: [\"jobs.d/*.yaml\"]\n");
  write_file(theirs, "jobs:\n  a: {command: [sleep, '1']}\n");
  write_file(group, "jobs:\n  b: {command: [sleep, '1']}\n");
  write_file(fine, "jobs:\n  c: {command: [sleep, '1']}\n");
  ASSERT_EQ(::chmod(fine.c_str(), 0664), 0);  // group-writable, but root's group
  ASSERT_EQ(::chown(theirs.c_str(), kNobodyUid, kNogroupGid), 0);
  ASSERT_EQ(::chown(group.c_str(), 0, kNogroupGid), 0);
  ASSERT_EQ(::chmod(group.c_str(), 0664), 0);

  RunResult check = run({CORRALD_PATH, "-c", main, "--check"});
  EXPECT_EQ(check.exit_code, 2) << check.out;
  EXPECT_THAT(check.err, HasSubstr(theirs +
                                   ": refused: it is owned by nobody (uid 65534), not by "
                                   "root or the user reading the config (root (uid "
                                   "0)); fix: chown root " +
                                   theirs + " (included from " + main + ":4:11)"));
  EXPECT_THAT(check.err, HasSubstr(group + ": refused: it is writable by group "));
  EXPECT_THAT(check.err, HasSubstr("mode 0664); fix: chmod g-w " + group));
  EXPECT_THAT(check.err, Not(HasSubstr(fine)));
  EXPECT_THAT(check.err, HasSubstr(main + ": 2 errors"));

  // The main file too, and corrald does not start on it.
  ASSERT_EQ(::chmod(main.c_str(), 0646), 0);
  RunResult start = run({CORRALD_PATH, "-c", main}, 10s);
  EXPECT_EQ(start.exit_code, 2);
  EXPECT_THAT(start.err, HasSubstr(main +
                                   ": refused: it is writable by others (mode 0646); fix: "
                                   "chmod o-w " +
                                   main));
}

}  // namespace
}  // namespace corral::testing

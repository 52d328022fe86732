// Tests of migrate/supervisord_import.h: a supervisord config turned into a
// corral config, each mapping, what supervisord refuses (with FILE:LINE),
// and the sh -c line that rebuilds a per-process argv, run through /bin/sh.
#include "migrate/supervisord_import.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "config/parse.h"
#include "config/placeholders.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

extern char** environ;  // NOLINT: POSIX

namespace corral::migrate {
namespace {

struct Imported {
  ImportResult result;
  YAML::Node yaml;
  std::string file;
};

class SupervisordImportTest : public ::testing::Test {
 protected:
  Imported run(const std::string& text) {
    std::string file = dir_.file("supervisord.conf");
    testing::write_file(file, text);
    ImportOptions options;
    options.environ = {{"HOME", "/home/me"}, {"STAGE", "prod"}};
    options.host_node_name = "box";
    options.corral_version = "9.9";
    Imported imported{import_supervisord(file, options), {}, file};
    if (!imported.result.yaml.empty()) imported.yaml = YAML::Load(imported.result.yaml);
    return imported;
  }
  testing::TempDir dir_{"corral-import"};
};

// TEXT with its comments unwrapped: a comment line that follows another is
// joined to it with a blank, so that a search does not depend on wrapping.
std::string flat(const std::string& text) {
  std::string out;
  bool in_comment = false;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    size_t first = line.find_first_not_of(' ');
    bool comment = first != std::string_view::npos && line.substr(first).starts_with("# ");
    if (comment && in_comment) {
      out += " ";
      out += line.substr(first + 2);
    } else {
      if (!out.empty()) out += "\n";
      out += line;
    }
    in_comment = comment;
    start = end + 1;
  }
  return out;
}

std::string messages(const std::vector<Diagnostic>& list) {
  std::string out;
  for (const auto& d : list) out += d.file + ":" + std::to_string(d.line) + ": " + d.message + "\n";
  return out;
}

TEST_F(SupervisordImportTest, MapsAProgramOptionByOption) {
  auto imported = run(
      "[supervisord]\n"
      "environment=GLOBAL=1,MODE=\"dev\"\n"
      "[program:web]\n"
      "command=/srv/bin/server --name \"%(program_name)s on %(host_node_name)s\" %(ENV_STAGE)s\n"
      "directory=/srv\n"
      "user=root\n"
      "umask=027\n"
      "priority=100\n"
      "autostart=false\n"
      "autorestart=true\n"
      "exitcodes=0,2\n"
      "startsecs=5\n"
      "startretries=4\n"
      "stopsignal=INT\n"
      "stopwaitsecs=20\n"
      "environment=MODE=\"prod, eu\",PORT=80\n"
      "stdout_logfile=/var/log/web.log\n"
      "stdout_logfile_maxbytes=0\n"
      "stdout_logfile_backups=3\n"
      "redirect_stderr=true\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  EXPECT_EQ(imported.result.exit_code, kImportClean) << messages(imported.result.warnings);
  YAML::Node job = imported.yaml["jobs"]["web"];
  ASSERT_TRUE(job) << imported.result.yaml;
  EXPECT_EQ(job["command"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"/srv/bin/server", "--name", "web on box", "prod"}));
  EXPECT_EQ(job["workers"].as<int>(), 1);
  EXPECT_EQ(job["autostart"].as<std::string>(), "false");
  EXPECT_EQ(job["cwd"].as<std::string>(), "/srv");
  EXPECT_EQ(job["user"].as<std::string>(), "root");
  EXPECT_EQ(job["umask"].as<std::string>(), "0027");
  EXPECT_EQ(job["priority"].as<int>(), 100);
  EXPECT_EQ(job["env"]["GLOBAL"].as<std::string>(), "1");
  EXPECT_EQ(job["env"]["MODE"].as<std::string>(), "prod, eu");
  EXPECT_EQ(job["env"]["PORT"].as<std::string>(), "80");
  EXPECT_EQ(job["start"]["settle"].as<std::string>(), "5s");
  EXPECT_EQ(job["start"]["retries"].as<int>(), 4);
  EXPECT_EQ(job["restart"]["policy"].as<std::string>(), "always");
  EXPECT_EQ(job["restart"]["exit_codes"].as<std::vector<int>>(), (std::vector<int>{0, 2}));
  EXPECT_EQ(job["restart"]["max_restarts"].as<std::string>(), "off");
  EXPECT_EQ(job["restart"]["cooldown"].as<std::string>(), "off");
  EXPECT_EQ(job["restart"]["backoff"]["initial"].as<std::string>(), "1s");
  EXPECT_EQ(job["restart"]["backoff"]["max"].as<std::string>(), "4s");
  EXPECT_EQ(job["stop"]["signal"].as<std::string>(), "INT");
  EXPECT_EQ(job["stop"]["timeout"].as<std::string>(), "20s");
  EXPECT_EQ(job["log"]["stdout"].as<std::string>(), "/var/log/web.log");
  EXPECT_EQ(job["log"]["stderr"].as<std::string>(), "stdout");
  EXPECT_EQ(job["log"]["max_size"].as<std::string>(), "off");
  EXPECT_EQ(job["log"]["keep"].as<int>(), 3);
  // The comments that say where corral differs.
  const std::string text = flat(imported.result.yaml);
  EXPECT_NE(text.find("# corral config imported from supervisord's " + imported.file),
            std::string::npos);
  EXPECT_NE(text.find("CORRAL_WORKER"), std::string::npos);
  EXPECT_NE(text.find("HOME, USER, LOGNAME, SHELL"), std::string::npos);
}

TEST_F(SupervisordImportTest, DefaultsAreSupervisordsNotCorrals) {
  auto imported = run("[supervisord]\n[program:a]\ncommand=/bin/cat\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  YAML::Node job = imported.yaml["jobs"]["a"];
  EXPECT_EQ(job["restart"]["policy"].as<std::string>(), "on-failure");
  EXPECT_EQ(job["start"]["settle"].as<std::string>(), "1s");
  EXPECT_EQ(job["start"]["retries"].as<int>(), 3);
  EXPECT_EQ(job["restart"]["backoff"]["max"].as<std::string>(), "3s");
  EXPECT_EQ(job["stop"]["timeout"].as<std::string>(), "10s");
  EXPECT_EQ(job["priority"].as<int>(), 999);
  EXPECT_EQ(job["umask"].as<std::string>(), "0022");  // supervisord daemonized with 022
  EXPECT_EQ(job["log"]["max_size"].as<std::string>(), "50MiB");
  EXPECT_EQ(job["log"]["keep"].as<int>(), 10);
  EXPECT_FALSE(job["log"]["stdout"]);  // AUTO: corral's own file in log_dir
}

TEST_F(SupervisordImportTest, UmaskFollowsSupervisordsDaemonizing) {
  auto daemonized = run("[supervisord]\numask=007\n[program:a]\ncommand=x\n");
  EXPECT_EQ(daemonized.yaml["jobs"]["a"]["umask"].as<std::string>(), "0007");
  auto foreground = run("[supervisord]\nnodaemon=true\numask=007\n[program:a]\ncommand=x\n");
  EXPECT_FALSE(foreground.yaml["jobs"]["a"]["umask"]) << foreground.result.yaml;
  auto own = run("[supervisord]\nnodaemon=true\n[program:a]\ncommand=x\numask=0o77\n");
  EXPECT_EQ(own.yaml["jobs"]["a"]["umask"].as<std::string>(), "0077");
}

TEST_F(SupervisordImportTest, LogsPerProcessBecomeIndexPlaceholders) {
  auto imported =
      run("[supervisord]\n"
          "[program:w]\n"
          "command=x\n"
          "process_name=%(program_name)s_%(process_num)d\n"
          "numprocs=3\n"
          "stdout_logfile=/var/log/w-%(process_num)02d.log\n"
          "stderr_logfile=NONE\n"
          "[program:v]\n"
          "command=x\n"
          "process_name=%(process_num)s\n"
          "numprocs=2\n"
          "numprocs_start=1\n"
          "stdout_logfile=/var/log/v.log\n"
          "stderr_logfile=/var/log/v-%(process_num)d.err\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  YAML::Node w = imported.yaml["jobs"]["w"];
  EXPECT_EQ(w["workers"].as<int>(), 3);
  EXPECT_EQ(w["log"]["stdout"].as<std::string>(), "/var/log/w-{index:02}.log");
  EXPECT_EQ(w["log"]["stderr"].as<std::string>(), "off");
  YAML::Node v = imported.yaml["jobs"]["v"];
  // One file for both processes, as supervisord wrote it; process_num is
  // the index plus numprocs_start.
  EXPECT_EQ(v["log"]["stdout"].as<std::string>(), "/var/log/v.log");
  EXPECT_EQ(v["log"]["stderr"].as<std::string>(), "/var/log/v-{index+1}.err");
}

TEST_F(SupervisordImportTest, GroupsSetThePriorityAndSayTheyAreGone) {
  auto imported =
      run("[supervisord]\n"
          "[group:site]\n"
          "programs=a, b\n"
          "priority=5\n"
          "[program:a]\ncommand=x\npriority=900\n"
          "[program:b]\ncommand=y\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  EXPECT_EQ(imported.yaml["jobs"]["a"]["priority"].as<int>(), 5);
  EXPECT_EQ(imported.yaml["jobs"]["b"]["priority"].as<int>(), 5);
  EXPECT_NE(flat(imported.result.yaml).find("member of [group:site]"), std::string::npos);
  auto unknown = run("[supervisord]\n[group:site]\nprograms=a,zzz\n[program:a]\ncommand=x\n");
  ASSERT_EQ(unknown.result.errors.size(), 1u);
  EXPECT_EQ(unknown.result.errors[0].line, 3);
  EXPECT_NE(unknown.result.errors[0].message.find("names unknown program or fcgi-program zzz"),
            std::string::npos);
}

TEST_F(SupervisordImportTest, DaemonSectionsMapOrSayWhyNot) {
  auto imported =
      run("[unix_http_server]\n"
          "file=/run/supervisor/s.sock\n"
          "chmod=0770\n"
          "chown=nobody:nogroup\n"
          "username=u\n"
          "password=p\n"
          "[inet_http_server]\n"
          "port=127.0.0.1:9001\n"
          "[supervisord]\n"
          "loglevel=blather\n"
          "logfile=/var/log/supervisord.log\n"
          "pidfile=/run/supervisord.pid\n"
          "nodaemon=true\n"
          "minfds=4096\n"
          "childlogdir=/var/log/super\n"
          "[supervisorctl]\n"
          "serverurl=unix:///run/supervisor/s.sock\n"
          "[rpcinterface:supervisor]\n"
          "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  // [inet_http_server]: the one warning (what used the HTTP interface stops working).
  EXPECT_EQ(imported.result.exit_code, kImportWarnings) << messages(imported.result.warnings);
  ASSERT_EQ(imported.result.warnings.size(), 1u);
  EXPECT_NE(imported.result.warnings[0].message.find("[inet_http_server]"), std::string::npos);
  YAML::Node daemon = imported.yaml["daemon"];
  EXPECT_EQ(daemon["socket"].as<std::string>(), "/run/supervisor/s.sock");
  EXPECT_EQ(daemon["socket_mode"].as<std::string>(), "0770");
  EXPECT_EQ(daemon["log_level"].as<std::string>(), "trace");
  EXPECT_EQ(daemon["log_dir"].as<std::string>(), "/var/log/super");
  const std::string text = flat(imported.result.yaml);
  for (const char* said : {"what nodaemon=true asks", "no pid file", "corrald --log-file",
                           "allow_users", "SO_PEERCRED", "[inet_http_server]", "[supervisorctl]",
                           "[rpcinterface:supervisor]", "RLIMIT_NOFILE"}) {
    EXPECT_NE(text.find(said), std::string::npos) << said;
  }
}

TEST_F(SupervisordImportTest, RefusesWhatSupervisordRefusesWithFileAndLine) {
  struct Case {
    std::string text;
    int line;
    std::string says;
  };
  const Case cases[] = {
      {"[program:a]\ncommand=x\n", 0, ".ini file does not include supervisord section"},
      {"[supervisord]\n[program:a]\ncommand=x\nautostart=maybe\n", 4,
       "not a valid boolean value: 'maybe'"},
      {"[supervisord]\n[program:a]\ncommand=x\nnumprocs=2\n", 4,
       "%(process_num) must be present within process_name when numprocs > 1"},
      {"[supervisord]\n[program:a]\n\ncommand=x %(nope)s\n", 4, "contains names ('nope')"},
      {"[supervisord]\n[program:a]\ncommand=x\nstopasgroup=true\nkillasgroup=false\n", 5,
       "Cannot set stopasgroup=true and killasgroup=false"},
      {"[supervisord]\n[program:a]\nstartsecs=1\n", 2, "does not specify a command"},
      {"[supervisord]\n[program:a]\ncommand=x\nstdout_logfile_maxbytes=5M\n", 4,
       "invalid literal for int()"},
      {"[supervisord]\n[program:a]\ncommand=x\nstopsignal=FOO\n", 4, "not a valid signal name"},
      {"[supervisord]\n[program:a]\ncommand=x\numask=8\n", 4, "can not be converted to an octal"},
      {"[supervisord]\n[program:a]\ncommand=x\nenvironment=A=1 B=2\n", 4,
       "Unexpected end of key/value pairs"},
      {"[supervisord]\n[program:a b]\ncommand=x\n", 2, "Invalid name"},
      {"[supervisord]\n[program:a]\ncommand=x\nstartsecs=%(process_num)d\n", 4,
       "contains names ('process_num')"},
      {"[supervisord]\n[eventlistener:e]\ncommand=x\n", 2, "requires an \"events\" line"},
      {"[supervisord]\nlogfile=%(host_node_name)s.log\n", 2, "contains names ('host_node_name')"},
      {"no header\n", 1, "no section headers"},
  };
  for (const auto& c : cases) {
    auto imported = run(c.text);
    ASSERT_EQ(imported.result.errors.size(), 1u) << c.text << messages(imported.result.errors);
    EXPECT_EQ(imported.result.exit_code, kImportNothingWritten);
    EXPECT_TRUE(imported.result.yaml.empty());
    EXPECT_EQ(imported.result.errors[0].line, c.line) << c.text;
    EXPECT_EQ(imported.result.errors[0].file, imported.file);
    EXPECT_NE(imported.result.errors[0].message.find(c.says), std::string::npos)
        << c.text << "\n"
        << imported.result.errors[0].message;
  }
}

TEST_F(SupervisordImportTest, WarnsOfUnknownsAndWritesListenersCommentedOut) {
  auto imported =
      run("[supervisord]\n"
          "[program:a]\n"
          "command=x\n"
          "colour=blue\n"
          "[mystery]\n"
          "[eventlistener:e]\n"
          "command=listener\n"
          "events=PROCESS_STATE\n"
          "[fcgi-program:f]\n"
          "command=php-cgi\n"
          "socket=unix:///run/php.sock\n"
          "[program:bad]\n"
          "command=x 'unclosed\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  EXPECT_EQ(imported.result.exit_code, kImportWarnings);
  std::string all = messages(imported.result.warnings);
  EXPECT_NE(all.find(":4: unknown option \"colour\""), std::string::npos) << all;
  EXPECT_NE(all.find(":5: unknown section [mystery]"), std::string::npos) << all;
  EXPECT_NE(all.find(":6: [eventlistener:e]"), std::string::npos) << all;
  EXPECT_NE(all.find(":9: [fcgi-program:f]"), std::string::npos) << all;
  EXPECT_NE(all.find(":13: [program:bad] can't parse command"), std::string::npos) << all;
  EXPECT_TRUE(imported.yaml["jobs"]["a"]);
  EXPECT_FALSE(imported.yaml["jobs"]["e"]);
  EXPECT_FALSE(imported.yaml["jobs"]["bad"]);
  EXPECT_NE(imported.result.yaml.find("\n  # e:\n  #   command: [\"listener\"]"), std::string::npos)
      << imported.result.yaml;
}

TEST_F(SupervisordImportTest, SanitizesJobNames) {
  auto imported = run("[supervisord]\n[program:web@1]\ncommand=x\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  EXPECT_TRUE(imported.yaml["jobs"]["web_1"]) << imported.result.yaml;
  EXPECT_NE(flat(imported.result.yaml).find("the job is named web_1"), std::string::npos);
}

// ARGV run with CORRAL_WORKER=WORKER; its stdout.
std::string run_with_worker(const std::vector<std::string>& argv, int worker,
                            const std::vector<std::string>& extra_env = {}) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe(pipe_fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> env = {"CORRAL_WORKER=" + std::to_string(worker), "PATH=/usr/bin:/bin"};
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  pid_t pid = 0;
  EXPECT_EQ(::posix_spawnp(&pid, argp[0], &actions, nullptr, argp.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0)
    out.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

// The argv that the inner sh of the tests below received, each word as [word].
std::string words(std::initializer_list<std::string> list) {
  std::string out;
  for (const auto& w : list) out += "[" + w + "]";
  return out;
}

TEST_F(SupervisordImportTest, ShellRebuildsTheArgvOfEachProcessExactly) {
  // The inner sh prints its $0, its arguments and $PORT, each in brackets.
  auto imported =
      run("[supervisord]\n"
          "[program:p]\n"
          "command=/bin/sh -c 'for a in \"$0\" \"$@\" \"$PORT\"; do printf \"[%%s]\" \"$a\"; done' "
          "prog-%(process_num)02d \"a b\" 'it'\"'\"'s' \"x\\\"y\" $HOME \\back\\\\slash "
          "'%(process_num)d$x' \"`id`\" ''\n"
          "environment=PORT=\"80%(process_num)02d\"\n"
          "process_name=%(process_num)d\n"
          "numprocs=3\n"
          "numprocs_start=5\n"
          "[program:q]\n"
          "command=/bin/sh -c 'printf \"[%%s]\" \"$0\" \"$@\"' \"n=%(process_num)3d\" last\n"
          "process_name=%(process_num)d\n"
          "numprocs=2\n"
          "[program:r]\n"
          "command=/bin/sh -c 'printf \"[%%s]\" \"$0\" \"$(pwd)\"' w-%(process_num)02d\n"
          "directory=/tmp/%(process_num)s/..\n"
          "process_name=%(process_num)d\n"
          "numprocs=2\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  // Formats corral's placeholders write alike: no shell, corrald fills in
  // {index+5:02} and {index+5} per worker, in the argv and in env values.
  auto p = imported.yaml["jobs"]["p"]["command"].as<std::vector<std::string>>();
  ASSERT_EQ(p.size(), 12u) << imported.result.yaml;
  EXPECT_EQ(p[3], "prog-{index+5:02}");
  auto port = imported.yaml["jobs"]["p"]["env"]["PORT"].as<std::string>();
  EXPECT_EQ(port, "80{index+5:02}");
  for (uint32_t worker = 0; worker < 3; ++worker) {
    std::string n = std::to_string(5 + worker);
    std::vector<std::string> argv;
    for (const auto& arg : p) argv.push_back(config::expand_placeholders(arg, "p", worker));
    EXPECT_EQ(run_with_worker(argv, static_cast<int>(worker),
                              {"PORT=" + config::expand_placeholders(port, "p", worker)}),
              words({"prog-0" + n, "a b", "it's", "x\"y", "$HOME", "back\\slash", n + "$x", "`id`",
                     "", "800" + n}));
  }
  // A per-process directory needs the shell: printf rebuilds the argv.
  auto r = imported.yaml["jobs"]["r"]["command"].as<std::vector<std::string>>();
  ASSERT_EQ(r.size(), 3u) << imported.result.yaml;
  EXPECT_EQ(r[0], "sh");
  EXPECT_NE(r[2].find("printf"), std::string::npos) << r[2];
  EXPECT_EQ(run_with_worker(r, 1), words({"w-01", "/tmp"}));
  // A width that pads with blanks splits words differently: each worker's
  // argv is written out.
  auto q = imported.yaml["jobs"]["q"]["command"].as<std::vector<std::string>>();
  ASSERT_EQ(q.size(), 3u);
  EXPECT_NE(q[2].find("case $CORRAL_WORKER"), std::string::npos) << q[2];
  EXPECT_EQ(run_with_worker(q, 0), words({"n=  0", "last"}));
  EXPECT_EQ(run_with_worker(q, 1), words({"n=  1", "last"}));
}

TEST_F(SupervisordImportTest, ShellQuoteSurvivesEveryByte) {
  std::string nasty = "a'b\"c$d`e\\f g\nh*?[i]~!#;&|<>(){}";
  std::vector<std::string> argv = {"/bin/sh", "-c", "printf '[%s]' " + shell_quote(nasty)};
  EXPECT_EQ(run_with_worker(argv, 0), "[" + nasty + "]");
}

TEST_F(SupervisordImportTest, TheOutputIsAValidCorralConfig) {
  auto imported =
      run("[supervisord]\n"
          "environment=A=1\n"
          "[program:web]\n"
          "command=/bin/server --port 80%(process_num)02d\n"
          "process_name=%(program_name)s_%(process_num)02d\n"
          "numprocs=4\n"
          "user=root\n"
          "stdout_logfile=/var/log/web-%(process_num)d.log\n"
          "redirect_stderr=true\n"
          "[program:plain]\n"
          "command=cat\n"
          "stopsignal=0\n"
          "startsecs=0\n"
          "startretries=0\n"
          "exitcodes=\n");
  ASSERT_TRUE(imported.result.errors.empty()) << messages(imported.result.errors);
  auto config = config::load_string(imported.result.yaml, "out.yaml", 1, false);
  ASSERT_TRUE(config.ok()) << (config.ok() ? "" : config.error()[0].str()) << "\n"
                           << imported.result.yaml;
  ASSERT_EQ(config->jobs.size(), 2u);
  EXPECT_EQ(config->jobs[1].name, "web");
  EXPECT_EQ(config->jobs[1].workers, 4u);
  EXPECT_FALSE(config->jobs[1].restart.max_restarts);
  EXPECT_FALSE(config->jobs[1].restart.cooldown);
}

}  // namespace
}  // namespace corral::migrate

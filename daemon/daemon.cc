#include "daemon/daemon.h"

#include <fmt/ranges.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <random>

#include "config/emit.h"
#include "config/parse.h"
#include "config/placeholders.h"
#include "daemon/cgroup.h"
#include "daemon/commands.h"
#include "daemon/control.h"
#include "daemon/metrics_server.h"
#include "daemon/notify.h"
#include "daemon/private_dir.h"
#include "daemon/prometheus.h"
#include "daemon/spawner.h"
#include "daemon/state_dir.h"
#include "daemon/supervisor.h"
#include "daemon/system_host.h"
#include "daemon/task_feed.h"
#include "daemon/test_hooks.h"
#include "daemon/worker_record.h"

extern char** environ;

namespace corral::daemon {

namespace asio = boost::asio;
using protocol::Json;

namespace {

std::vector<std::string> daemon_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

// A thousand workers hold a pidfd and two pipes each: raise the soft limit
// to the hard one. Workers get the original limit back.
rlimit raise_nofile() {
  rlimit original{};
  getrlimit(RLIMIT_NOFILE, &original);
  rlimit raised = original;
  raised.rlim_cur = raised.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
    spdlog::warn("cannot raise RLIMIT_NOFILE: {}", strerror(errno));
  }
  return original;
}

// Signals arrive as reads of a signalfd in the loop: no handlers, nothing
// lost between checks.
class SignalReader {
 public:
  SignalReader(asio::io_context& io, const sigset_t& set, std::function<void(int)> on_signal)
      : fd_(io, signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)), on_signal_(std::move(on_signal)) {
    read();
  }

 private:
  void read() {
    asio::async_read(fd_, asio::buffer(&info_, sizeof info_),
                     [this](boost::system::error_code ec, size_t) {
                       if (ec) return;
                       on_signal_(static_cast<int>(info_.ssi_signo));
                       read();
                     });
  }
  asio::posix::stream_descriptor fd_;
  std::function<void(int)> on_signal_;
  signalfd_siginfo info_{};
};

// "3 jobs, 12/12 workers running, 4,210 tasks/s": systemctl status's line.
std::string status_line(const Supervisor& supervisor) {
  std::string line = supervisor.summary();
  double rate = 0;
  bool feeds = false;
  for (const auto& name : supervisor.job_names()) {
    if (auto feed = supervisor.feed(name)) {
      feeds = true;
      rate += feed->metrics().tasks_per_s;
    }
  }
  if (!feeds) return line;
  // 4,210: a thousands separator, appended digit by digit.
  const std::string digits = std::to_string(static_cast<uint64_t>(rate + 0.5));
  line.append(", ");
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) line.push_back(',');
    line.push_back(digits[i]);
  }
  return line.append(" tasks/s");
}

// The control server's handler from its start, the commands' once they
// exist (before the server takes its first client).
struct ForwardingHandler : CommandHandler {
  void handle(const protocol::Json& request, ConversationPtr conversation) override {
    target->handle(request, std::move(conversation));
  }
  void client_gone() override { target->client_gone(); }
  CommandHandler* target = nullptr;
};

}  // namespace

DirCheck check_private_dirs(const config::Config& config) {
  DirCheck check;
  const bool enforce = config.daemon.private_dirs;
  auto judge = [&](const std::string& path, const std::string& key) {
    PrivateDir dir = open_private_dir(path, key, false, enforce);
    // A missing directory is no problem of its own here: corrald makes the
    // log_dir, and a job without its sink's directory says so when it starts.
    if (!dir.warning.empty()) check.warnings.push_back(dir.warning);
    if (!dir.error.empty() && !dir.missing) check.errors.push_back(dir.error);
  };
  judge(config.daemon.log_dir, "daemon.log_dir");
  judge(split_file_path(config.daemon.socket).first, "daemon.socket's directory");
  for (const auto& job : config.jobs) {
    if (job.sink.kind == config::SinkSpec::Kind::kFile) {
      judge(split_file_path(job.sink.file).first, "job " + job.name + ": sink directory");
    }
    if (job.source.kind == config::SourceSpec::Kind::kFile) {
      judge(split_file_path(job.source.file).first, "job " + job.name + ": source directory");
    }
    for (const auto* target : {&job.log.out, &job.log.err}) {
      if (target->kind != config::LogTarget::Kind::kFile) continue;
      const std::string path = config::expand_log_path(target->path, job.name, 0);
      judge(split_file_path(path).first,
            "job " + job.name + ": " + (target == &job.log.out ? "log.stdout" : "log.stderr") +
                "'s directory");
    }
  }
  return check;
}

int run_daemon(const config::Config& config, LogFile* log_file,
               std::shared_ptr<const LogRing> log_ring) {
  rlimit nofile_default = raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  // Under RLIMIT_FSIZE (systemd's LimitFSIZE=) a job's segment or a log file
  // that would grow past it must fail with EFBIG, reported for that job or
  // file; by default SIGXFSZ would end the daemon and every worker with it.
  signal(SIGXFSZ, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&handled, sig);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  // Made when missing (0750), checked to be private (daemon.private_dirs),
  // and held open: every worker log is opened relative to it.
  PrivateDirs private_dirs(config.daemon.private_dirs);
  Result<std::shared_ptr<SafeDir>> log_dir =
      private_dirs.open(config.daemon.log_dir, "daemon.log_dir", true);
  if (!log_dir) {
    spdlog::error("{}", log_dir.error().message());
    return protocol::kExitFailed;
  }

  asio::io_context io;
  // The control socket first: its lock is the one that says whether another
  // corrald runs on this config, before anything here touches the cgroups,
  // the state_dir or a process. It takes clients only once every start-up
  // step has passed (listen() below), by then through the commands.
  ForwardingHandler handler;
  // Clients, control and /metrics together, hold at most a quarter of the
  // fds: the rest stay for spawning workers.
  auto clients = std::make_shared<ClientBudget>();
  ControlServer control(io, handler, clients);
  if (Status opened = control.open(config.daemon); !opened) {
    spdlog::error("control socket: {}", opened.error().message());
    return protocol::kExitFailed;
  }

  // This corrald's id, which its workers get as CORRAL_INSTANCE and pass on
  // to what they start: the next corrald finds what a killed one left by it.
  const std::string instance = new_instance_id();

  // A worker's orphans come back to corrald (they are reaped, and ended
  // with their worker), not to init.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    spdlog::warn("prctl(PR_SET_CHILD_SUBREAPER): {}", strerror(errno));
  }
  // The workers' cgroups, before anything is started: what an earlier
  // corrald left there is ended first.
  std::optional<CgroupTree> cgroups;
  CgroupChoice cgroup = choose_cgroup(config.daemon.cgroup);
  if (!cgroup.dir.empty()) {
    std::vector<Leftover> leftovers;
    Result<CgroupTree> taken = CgroupTree::take(cgroup.dir, &leftovers);
    if (!taken) {
      spdlog::error("{}", taken.error().message());
      return protocol::kExitFailed;
    }
    cgroups.emplace(std::move(*taken));
    for (const Leftover& left : leftovers) {
      spdlog::warn("ended what an earlier corrald left in {}/{}: {}", cgroup.dir, left.cgroup,
                   fmt::join(left.processes, ", "));
    }
    spdlog::info("workers in cgroups under {} (controllers: {})", cgroup.dir,
                 cgroups->controllers().empty()
                     ? std::string("none")
                     : fmt::format("{}", fmt::join(cgroups->controllers(), ", ")));
  } else if (!cgroup.why_off.empty()) {
    spdlog::info("workers without cgroups: {}", cgroup.why_off);
  }
  // Without cgroups, the record of the workers in daemon.state_dir: what an
  // earlier corrald's left in their groups is ended first.
  std::optional<StateDir> state_dir;
  if (!cgroups) {
    Result<StateDir> opened = StateDir::open(config.daemon.state_dir, config.daemon.private_dirs);
    const bool durable = std::any_of(config.jobs.begin(), config.jobs.end(),
                                     [](const config::JobSpec& job) { return job.queue.durable; });
    if (opened) {
      if (!opened->warning().empty()) spdlog::warn("{}", opened->warning());
      state_dir.emplace(std::move(*opened));
      const std::string boot = boot_id();
      for (const std::string& ended :
           end_leftovers(parse_record(state_dir->read("workers"), boot))) {
        spdlog::warn("ended what an earlier corrald left: {}", ended);
      }
    } else if (durable) {
      spdlog::error("{}", opened.error().message());
      return protocol::kExitFailed;
    } else {
      // Only the record needs it here: corrald goes on without one.
      spdlog::warn(
          "{}; no record of the workers is kept, so what a kill -9 of this corrald "
          "leaves is not ended at the next start",
          opened.error().message());
    }
  }

  SystemHost host(io, nofile_default, cgroups ? &*cgroups : nullptr);
  if (state_dir && !cgroups) {
    std::optional<ProcIdentity> self = read_identity(::getpid());
    host.keep_record(
        [&state_dir, boot = boot_id(), instance,
         started = self ? self->start_ticks : 0](const std::vector<RecordedWorker>& live) {
          const Record record{instance, started, live};
          if (Status kept = state_dir->replace("workers", format_record(boot, record)); !kept) {
            spdlog::error("the record of the workers: {}", kept.error().message());
          }
        });
  }
  SupervisorOptions options;
  options.log_dir = config.daemon.log_dir;
  options.log_files = *log_dir;
  options.log_rotate = config.daemon.log_rotate;
  options.open_log_dir = [&private_dirs](
                             const std::string& dir,
                             const std::string& key) -> Result<std::shared_ptr<const SafeDir>> {
    Result<std::shared_ptr<SafeDir>> opened = private_dirs.open(dir, key, true);
    if (!opened) return std::move(opened).error();
    return std::shared_ptr<const SafeDir>(*opened);
  };
  options.daemon_env = daemon_environment();
  options.daemon_uid = geteuid();
  options.pass_env = config.daemon.pass_env;
  options.find_account = find_account;
  options.seed = std::random_device{}();
  options.metrics_interval = config.daemon.metrics.interval;
  options.instance = instance;
  if (cgroups) {
    options.cgroup_dir = cgroups->dir();
    options.cgroup_controllers = cgroups->controllers();
  } else {
    options.cgroup_off = cgroup.why_off.empty() ? "daemon.cgroup: off" : cgroup.why_off;
  }
  // daemon.state_dir, opened and locked at start (above) or when the first
  // durable job needs it (at start, when the config has one: a second
  // corrald on the same state_dir does not start), then held for corrald's
  // life.
  auto spool_path = [&state_dir, &config](const std::string& job) -> Result<std::string> {
    if (!state_dir) {
      Result<StateDir> opened = StateDir::open(config.daemon.state_dir, config.daemon.private_dirs);
      if (!opened) return std::move(opened).error();
      if (!opened->warning().empty()) spdlog::warn("{}", opened->warning());
      state_dir.emplace(std::move(*opened));
    }
    return state_dir->spool_path(job);
  };
  if (std::any_of(config.jobs.begin(), config.jobs.end(),
                  [](const config::JobSpec& job) { return job.queue.durable; })) {
    Result<std::string> ready = spool_path("");
    if (!ready) {
      spdlog::error("{}", ready.error().message());
      return protocol::kExitFailed;
    }
  }
  // A job's sink and source are opened in directories PRIVATE_DIRS judges;
  // it remembers those it warned about, for the daemon's whole life.
  FeedFactory feeds = [&io, &host, &private_dirs, &spool_path](
                          const config::JobSpec& job,
                          FeedEvents events) -> Result<std::unique_ptr<JobFeed>> {
    Result<std::unique_ptr<TaskFeed>> feed =
        TaskFeed::create(io, host, job, std::move(events), private_dirs, spool_path);
    if (!feed) return feed.error();
    return std::unique_ptr<JobFeed>(std::move(*feed));
  };
  Supervisor supervisor(host, options, std::move(feeds));

  ServiceNotifier notifier(host);
  auto shutdown = [&] {
    if (supervisor.shutting_down()) return;
    notifier.stopping();
    spdlog::info("shutting down: stopping every worker");
    supervisor.shutdown([&] {
      spdlog::info("every worker has stopped");
      io.stop();
    });
  };
  const std::string config_file = config.file;
  auto load = [config_file] {
    unsigned cpus = static_cast<unsigned>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    return config::load_file(config_file, cpus);
  };
  Commands commands(
      supervisor, host, [&] { asio::post(io, shutdown); }, load, config.daemon);
  commands.set_log_ring(std::move(log_ring));
  commands.set_reload_observer([&](bool applying) {
    if (applying) {
      notifier.reloading();
    } else {
      notifier.reloaded();
    }
  });
  // The control socket reaches the test hooks only when the environment
  // asks for them at start.
  std::unique_ptr<TestHooks> test_hooks;
  if (TestHooks::wanted(std::getenv(TestHooks::kEnvironment))) {
    spdlog::warn("CORRAL_TEST_HOOKS=1: test hooks are on");
    test_hooks = std::make_unique<TestHooks>(commands);
  }
  handler.target = test_hooks ? static_cast<CommandHandler*>(test_hooks.get()) : &commands;

  std::unique_ptr<MetricsServer> metrics;
  if (const auto& listen = config.daemon.metrics.listen) {
    metrics = std::make_unique<MetricsServer>(
        io,
        [&] {
          supervisor.refresh();
          return render_metrics(supervisor);
        },
        clients);
    if (Status opened = metrics->open(*listen); !opened) {
      spdlog::error("{} (set daemon.metrics.listen to another HOST:PORT, or off)",
                    opened.error().message());
      return protocol::kExitFailed;
    }
    commands.set_metrics_address(metrics->address());
    spdlog::info("metrics on http://{}/metrics", metrics->address());
  }
  // Clients only once every fallible start-up step has passed.
  if (Status listening = control.listen(); !listening) {
    spdlog::error("control socket: {}", listening.error().message());
    return protocol::kExitFailed;
  }

  SignalReader signals(io, handled, [&](int sig) {
    switch (sig) {
      case SIGTERM:
      case SIGINT:
        spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        shutdown();
        break;
      case SIGHUP:
        spdlog::info("received SIGHUP: reloading {}", config_file);
        commands.handle(Json{{"cmd", "reload"}}, [](const Json& reply) {
          if (reply.value("ok", false)) {
            spdlog::info("reload done: {} added, {} changed, {} removed", reply["added"].size(),
                         reply["changed"].size(), reply["removed"].size());
            return;
          }
          spdlog::error("reload: {}", reply.value("error", "failed"));
          if (auto errors = reply.find("errors"); errors != reply.end()) {
            for (const auto& error : *errors) spdlog::error("  {}", error.get<std::string>());
          }
        });
        break;
      case SIGUSR1:
        spdlog::info("received SIGUSR1: reopening log files");
        host.output().reopen();
        if (log_file != nullptr) {
          if (Status reopened = log_file->reopen(); !reopened) {
            spdlog::error("{} (still writing to the file it had)", reopened.error().message());
          }
        }
        break;
    }
  });

  for (const auto& job : config.jobs) supervisor.add_job(job);
  supervisor.start_autostart();
  spdlog::info("corrald {} running: {}; control socket {}", protocol::kVersion,
               supervisor.summary(), config.daemon.socket);
  notifier.ready([&] { return status_line(supervisor); });
  if (notifier.watchdog().count() > 0) {
    spdlog::info(
        "systemd watchdog: {} ms; pinging at half of it",
        std::chrono::duration_cast<std::chrono::milliseconds>(notifier.watchdog()).count());
  }

  io.run();
  host.output().drain();
  if (size_t ended = host.end_adopted()) {
    spdlog::info("ended {} orphaned process{} of workers", ended, ended == 1 ? "" : "es");
  }
  if (cgroups) cgroups->remove_all();
  host.write_record();
  control.close();
  spdlog::info("corrald stopped");
  return protocol::kExitOk;
}

}  // namespace corral::daemon

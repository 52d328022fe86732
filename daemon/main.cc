// corrald: the corral daemon. Reads the config, then supervises its jobs in
// the foreground until SIGTERM (systemd style: no self-daemonizing).
#include <malloc.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "config/emit.h"
#include "config/parse.h"
#include "daemon/daemon.h"
#include "daemon/log_file.h"
#include "daemon/log_ring.h"
#include "daemon/socket_access.h"
#include "protocol/control.h"

namespace {

spdlog::level::level_enum to_spdlog(corral::config::LogLevel level) {
  using corral::config::LogLevel;
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

// %* in a log pattern: the syslog priority of the message's level (journald).
class SyslogPriority : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    char digit = '6';  // info
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        digit = '7';
        break;
      case spdlog::level::warn:
        digit = '4';
        break;
      case spdlog::level::err:
        digit = '3';
        break;
      case spdlog::level::critical:
        digit = '2';
        break;
      default:
        break;
    }
    dest.push_back(digit);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriority>();
  }
};

int main(int argc, char** argv) {
  // A fixed mmap threshold: buffers of 256 KiB and more (a busy control
  // session's input and replies) get their own mappings and go back to the
  // kernel when freed. glibc's default raises the threshold after the first
  // such free, after which they stay in the heap and the daemon's RSS keeps
  // the high-water mark of every burst.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  CLI::App app{"corrald: keeps pools of worker processes alive and feeds them tasks"};
  std::string config_path = corral::protocol::kDefaultConfig;
  bool check = false;
  std::string log_level;
  std::string log_file_path;
  app.add_option("-c,--config", config_path, "config file")->capture_default_str();
  app.add_flag("--check", check, "validate the config, print it normalized, and exit");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-file", log_file_path,
                 "also append corrald's own log to FILE (SIGUSR1 reopens it)");
  app.set_version_flag("--version", std::string("corrald ") + corral::protocol::kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : corral::protocol::kExitUsage;
  }

  // Synchronous logging to stderr: async loggers do not survive fork, and
  // systemd's journal reads stderr. Under journald (JOURNAL_STREAM) each line
  // starts with its syslog priority, "<4>", so that `journalctl -p warning`
  // sees the levels, and carries no timestamp (the journal has its own).
  auto logger = spdlog::stderr_logger_st("corrald");
  const char* journal = std::getenv("JOURNAL_STREAM");
  if (journal != nullptr && *journal != '\0') {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPriority>('*').set_pattern("<%*>%v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  // A ring of the last lines beside stderr: `corralctl maintail` reads them
  // wherever stderr goes. Its lines always carry the time and level.
  auto log_ring = std::make_shared<corral::daemon::LogRing>();
  log_ring->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  logger->sinks().push_back(log_ring);
  spdlog::set_default_logger(logger);

  unsigned cpus = static_cast<unsigned>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  corral::config::ParseResult parsed = corral::config::load_file(config_path, cpus);
  if (!parsed.ok()) {
    for (const auto& error : parsed.error()) std::fprintf(stderr, "%s\n", error.str().c_str());
    std::fprintf(stderr, "%s: %zu error%s\n", config_path.c_str(), parsed.error().size(),
                 parsed.error().size() == 1 ? "" : "s");
    return corral::protocol::kExitUsage;
  }
  if (check) {
    // As nginx -t: a config passes only if corrald would start on it here,
    // and what corrald would warn of at start (users the socket keeps out,
    // directories that are not private but allowed) is said too.
    for (const auto& warning : corral::daemon::plan_socket_access(parsed->daemon).warnings) {
      std::fprintf(stderr, "%s: warning: %s\n", config_path.c_str(), warning.c_str());
    }
    auto dirs = corral::daemon::check_private_dirs(*parsed);
    for (const auto& warning : dirs.warnings) {
      std::fprintf(stderr, "%s: warning: %s\n", config_path.c_str(), warning.c_str());
    }
    if (!dirs.errors.empty()) {
      for (const auto& error : dirs.errors) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), error.c_str());
      }
      std::fprintf(stderr, "%s: %zu error%s\n", config_path.c_str(), dirs.errors.size(),
                   dirs.errors.size() == 1 ? "" : "s");
      return corral::protocol::kExitUsage;
    }
    std::cout << corral::config::to_yaml(*parsed);
    std::fprintf(stderr, "%s: ok\n", config_path.c_str());
    return 0;
  }
  // The file gets every line stderr gets, with its time: a file has no
  // journal to add one.
  std::unique_ptr<corral::daemon::LogFile> log_file;
  if (!log_file_path.empty()) {
    std::string warning;
    auto opened =
        corral::daemon::LogFile::open(log_file_path, parsed->daemon.private_dirs, &warning);
    if (!opened) {
      spdlog::error("{}", opened.error().message());
      return corral::protocol::kExitFailed;
    }
    log_file = std::move(*opened);
    auto sink = corral::daemon::make_log_file_sink(*log_file);
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
    logger->sinks().push_back(std::move(sink));
    if (!warning.empty()) spdlog::warn("{}", warning);
  }
  spdlog::set_level(to_spdlog(parsed->daemon.log_level));
  if (!log_level.empty()) spdlog::set_level(spdlog::level::from_str(log_level));
  int code = corral::daemon::run_daemon(*parsed, log_file.get(), log_ring);
  // The logger outlives main() in spdlog's registry; the file and the ring
  // do not.
  logger->sinks().resize(1);
  return code;
}

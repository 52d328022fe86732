// The YamlWriter (supervisord_yaml.h): the header comment, daemon: from
// [supervisord] and [unix_http_server] with a comment for each option that
// corrald does otherwise, and the whole text; each job is written by
// supervisord_yaml_job.cc.
#include "migrate/supervisord_yaml.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "config/quote.h"
#include "config/units.h"

namespace corral::migrate::detail {

std::string q(std::string_view text) {
  return "\"" + config::escape_double_quoted(text, config::Invisible::kKeep) + "\"";
}

std::string seconds(int64_t n) {
  return config::format_duration(std::chrono::seconds(std::max<int64_t>(0, n)));
}

std::string octal_text(int64_t mode) {
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "0%03llo", static_cast<unsigned long long>(mode));
  return buffer.data();
}

bool shared_directory(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  for (bool last = true;; last = false) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      const bool sticky = !last && (st.st_mode & S_ISVTX) != 0;
      const bool writable =
          (st.st_mode & S_IWOTH) != 0 || ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0);
      if (st.st_uid != 0 || (writable && !sticky)) return true;
    }
    if (dir == "/") return false;
    size_t up = dir.rfind('/');
    dir = up == 0 ? "/" : dir.substr(0, up);
  }
}

void YamlWriter::emit_header(Yaml& y) {
  std::string files;
  for (size_t i = 1; i < config_.read.files.size(); ++i)
    files += (i > 1 ? ", " : "") + config_.read.files[i];
  y.comment(0, "corral config imported from supervisord's " + file_ +
                   (files.empty() ? std::string() : " (and its includes: " + files + ")") +
                   " by corralctl import supervisord (corral " + options_.corral_version + ").");
  y.comment(0, "Check it with: corrald -c FILE --check. What differs for every job:");
  y.comment(0,
            "- Workers get CORRAL_JOB and CORRAL_WORKER (the index, from 0) instead of "
            "SUPERVISOR_ENABLED, SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME and "
            "SUPERVISOR_SERVER_URL.");
  y.comment(0,
            "- %(ENV_X)s and %(host_node_name)s were expanded at import time, from the "
            "importing environment and host (" +
                options_.host_node_name + "); import again where they differ.");
  y.comment(0,
            "- A worker of corrald's own user gets corrald's environment, as supervisord's "
            "children got supervisord's; corrald's own variables (NOTIFY_SOCKET...) excepted.");
  y.comment(0,
            "- Stop and kill signals go to each worker's whole process group (its own "
            "session), and what is left of the group is killed when the worker ends.");
  y.comment(0, "- Workers are named JOB:INDEX; supervisord's GROUP:PROCESS names do not exist.");
  y.blank();
}

void YamlWriter::emit_daemon(Yaml& y) {
  y.line(0, "daemon:");
  const IniSection& s = *config_.supervisord;
  auto written = [&](std::string_view option) -> const IniOption* { return s.find(option); };
  auto note = [&](std::string_view option, const std::string& why) {
    if (const IniOption* o = written(option)) {
      y.comment(2, "[supervisord] " + std::string(option) + "=" + o->value + ": " + why);
    }
  };
  note("logfile",
       "corrald logs to stderr (the journal under systemd), or to corrald --log-file "
       "FILE; corralctl maintail shows its last lines");
  note("logfile_maxbytes", "corrald does not rotate its own log (journald or logrotate does)");
  note("logfile_backups", "corrald does not rotate its own log (journald or logrotate does)");
  note("pidfile", "no pid file: corralctl pid, or systemd's MAINPID");
  note("nodaemon",
       "corrald always runs in the foreground (systemd Type=notify), which is what "
       "nodaemon=true asks");
  note("silent", "corrald's log goes to stderr; under systemd, to the journal only");
  note("minfds",
       "corrald raises its own RLIMIT_NOFILE to the hard limit; workers keep the "
       "original one unless limits.nofile");
  note("minprocs", "no equivalent: LimitNPROC= in corrald's systemd unit");
  note("nocleanup", "corral never removes worker logs at start");
  note("identifier", "no equivalent: a corrald is known by its socket");
  note("strip_ansi", "no equivalent: worker output is written as it comes");
  note("user",
       "run corrald as that user: User= in its systemd unit (jobs with user: need "
       "corrald as root)");
  note("directory",
       "corrald does not change directory: WorkingDirectory= in its systemd unit; "
       "a job without cwd runs in corrald's");
  note("umask", config_.nodaemon
                    ? "supervisord with nodaemon=true does not set it; jobs keep corrald's"
                    : "written as each job's umask below");
  note("environment", "merged into each job's env below");
  if (const IniOption* level = written("loglevel")) {
    std::string l = *logging_level(level->value);
    std::string mapped = l == "critical" ? "error" : l == "blather" ? "trace" : l;
    if (mapped != l) y.comment(2, "loglevel=" + l + ": corral's nearest level is " + mapped);
    y.line(2, "log_level: " + mapped);
  }
  if (config_.childlogdir) {
    y.comment(2, "[supervisord] childlogdir: where AUTO logs go");
    if (shared_directory(*config_.childlogdir + "/x")) shared_dirs_.push_back(*config_.childlogdir);
    y.line(2, "log_dir: " + q(*config_.childlogdir));
  }
  if (const IniSection* unix_server = config_.read.doc.find("unix_http_server")) {
    static constexpr std::string_view kKnown[] = {"file", "chmod", "chown", "username", "password"};
    check_known_options(*unix_server, kKnown, warnings_);
    const IniOption* file = unix_server->find("file");
    if (file != nullptr) {
      std::string path = file->value;
      for (size_t at = path.find("%(here)s"); at != std::string::npos; at = path.find("%(here)s")) {
        path.replace(at, 8, file->here);
      }
      if (path.empty() || path.front() != '/' || path.size() > 107) {
        y.comment(2, "[unix_http_server] file=" + path +
                         ": not an absolute path of at most 107 "
                         "bytes; corral's default socket is kept");
      } else {
        y.comment(2, "[unix_http_server] file: corralctl finds it with -s, CORRAL_SOCKET or -c");
        if (shared_directory(path)) shared_dirs_.push_back(path);
        y.line(2, "socket: " + q(path));
      }
    }
    const IniOption* chmod = unix_server->find("chmod");
    auto mode = octal(chmod != nullptr ? chmod->value : "0700");
    if (mode && *mode >= 0 && *mode <= 07777) {
      if (chmod == nullptr) y.comment(2, "[unix_http_server] chmod: supervisord's default 0700");
      y.line(2, "socket_mode: " + q(octal_text(*mode)));
    }
    if (const IniOption* chown = unix_server->find("chown")) {
      y.comment(2, "[unix_http_server] chown=" + chown->value +
                       ": the socket belongs to "
                       "corrald's user; let others in with daemon.allow_users / allow_groups (and "
                       "socket_mode)");
    }
    if (unix_server->find("username") != nullptr || unix_server->find("password") != nullptr) {
      y.comment(2,
                "[unix_http_server] username/password: corral has no passwords; it checks "
                "each client's uid and groups (SO_PEERCRED) against daemon.allow_users and "
                "allow_groups");
    }
  }
  for (const auto& section : config_.read.doc.sections) {
    std::string kind = section.name.substr(0, section.name.find(':'));
    if (kind == "inet_http_server") {
      y.comment(2, "[" + section.name +
                       "]: no control over the network: corralctl speaks over "
                       "the Unix socket only; daemon.metrics.listen serves read-only Prometheus "
                       "metrics");
      // Whatever used the HTTP interface (a remote supervisorctl, a dashboard) stops working.
      warn(section.file, section.line,
           "[" + section.name +
               "]: corral has no control over the network (corralctl uses the Unix socket; "
               "metrics are on daemon.metrics.listen); left out");
    } else if (kind == "supervisorctl") {
      y.comment(2,
                "[supervisorctl]: corralctl finds the socket with -s, CORRAL_SOCKET or -c "
                "CONFIG (daemon.socket); it has no username or password");
    } else if (kind == "rpcinterface") {
      y.comment(2, "[" + section.name +
                       "]: no plugins; corral's control protocol is "
                       "docs/control-protocol.md");
    } else if (kind == "include") {
      y.comment(2, "[include]: its files were read now; their sections are below");
    }
  }
  if (!shared_dirs_.empty()) {
    std::string list;
    for (const auto& path : shared_dirs_) list += (list.empty() ? "" : ", ") + path;
    y.comment(2, "private_dirs: false: others may write the directory of " + list +
                     " (supervisord does not mind; corral refuses such directories unless "
                     "private_dirs is false, and then warns)");
    y.line(2, "private_dirs: false");
  }
  y.blank();
}

std::string YamlWriter::write() {
  Yaml jobs;
  jobs.line(0, "jobs:");
  if (config_.programs.empty()) jobs.comment(2, "(no [program:x] section)");
  for (const auto& p : config_.programs) emit_job(jobs, p);
  Yaml y;
  emit_header(y);
  emit_daemon(y);
  y.line(0, std::string_view(jobs.text()).substr(0, jobs.text().size() - 1));
  return y.text();
}

}  // namespace corral::migrate::detail

// A job of the YamlWriter (supervisord_yaml.h): a program's options as a
// corral job, its log: section, and a comment for each option that corral
// does otherwise or not at all; the job's command is built by
// supervisord_command.cc.
#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "config/units.h"
#include "migrate/supervisord_command.h"
#include "migrate/supervisord_yaml.h"

namespace corral::migrate::detail {
namespace {

std::string sanitize_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out == "." || out == "..") out = "program" + out;
  return out;
}

}  // namespace

std::optional<std::string> YamlWriter::log_path(const Program& p, const StreamLog& log,
                                                const std::string& stream,
                                                std::vector<std::string>& notes) {
  std::string key = stream + "_logfile";
  switch (log.name.kind) {
    case LogfileName::Kind::kAuto:
      return std::nullopt;
    case LogfileName::Kind::kNone:
    case LogfileName::Kind::kSyslog:
      return std::string("off");
    case LogfileName::Kind::kPath:
      break;
  }
  std::string path = log.raw;
  // A container's habit: the worker writes to supervisord's own output.
  // corral's `inherit` is corrald's own stdout for stdout, stderr for stderr.
  const bool to_stdout = path == "/dev/stdout" || path == "/proc/self/fd/1";
  const bool to_stderr = path == "/dev/stderr" || path == "/proc/self/fd/2";
  if (to_stdout || to_stderr) {
    if (to_stderr != (stream == "stderr")) {
      notes.push_back(key + "=" + path + ": inherit gives the worker corrald's own " + stream +
                      ", not its " + (to_stdout ? "stdout" : "stderr"));
    }
    return std::string("inherit");
  }
  if (path == "/dev/null") return std::string("off");
  // existing_dirpath's os.path.expanduser.
  if (path == "~" || path.starts_with("~/")) {
    auto home = options_.environ.find("HOME");
    if (home != options_.environ.end()) path = home->second + path.substr(1);
  }
  if (path.empty() || path.front() != '/') {
    std::string base = config_.directory ? *config_.directory : config_.here;
    notes.push_back(key + "=" + log.raw +
                    " is relative to supervisord's working directory; taken as " + "relative to " +
                    base);
    path = base + "/" + path;
  }
  std::string out;
  bool marked = false;
  for (const auto& piece : pieces_of(path)) {
    if (!piece.mark) {
      out += piece.text;
      continue;
    }
    marked = true;
    auto placeholder = placeholder_of(p.conversions[piece.index], p.numprocs_start);
    if (!placeholder) {
      placeholder = placeholder_of(Conversion{"", std::nullopt, std::nullopt, 'd'}, 0);
      notes.push_back(key + ": this %(process_num) format has no corral counterpart; " +
                      *placeholder + " stands for it");
    }
    out += *placeholder;
  }
  if (marked && (p.numprocs_start < 0 || p.numprocs_start > 999999)) {
    notes.push_back(key +
                    ": {index} counts from 0, so the files are numbered from 0 where "
                    "supervisord numbered them from numprocs_start=" +
                    std::to_string(p.numprocs_start));
  }
  // Without a per-process part, the workers share the file, as supervisord's
  // processes did (corral appends each worker's output in chunks to it).
  if (shared_directory(out)) shared_dirs_.push_back(out);
  return out;
}

void YamlWriter::emit_log(Yaml& y, const Program& p, const std::string& job) {
  std::vector<std::string> notes;
  auto out = log_path(p, p.out, "stdout", notes);
  std::optional<std::string> err;
  if (p.redirect_stderr) {
    err = "stdout";
  } else {
    err = log_path(p, p.err, "stderr", notes);
  }
  if (p.out.name.kind == LogfileName::Kind::kAuto ||
      (!p.redirect_stderr && p.err.name.kind == LogfileName::Kind::kAuto)) {
    notes.push_back("AUTO: corral's own files in daemon.log_dir (" + job + "-INDEX.out.log, " +
                    job +
                    "-INDEX.err.log), kept across restarts of corrald where supervisord removed "
                    "its AUTO files at start (nocleanup=false)");
  }
  for (const auto& [stream, log] : {std::pair<std::string, const StreamLog*>{"stdout", &p.out},
                                    std::pair<std::string, const StreamLog*>{"stderr", &p.err}}) {
    if (log->syslog) {
      notes.push_back(stream +
                      "_syslog=true: corral has no syslog copy of a worker's output; its "
                      "files, or corralctl tail -f");
    }
  }
  if (p.stdout_capture != 0 || p.stderr_capture != 0 || p.stdout_events || p.stderr_events) {
    notes.push_back(
        "*_capture_maxbytes, *_events_enabled: corral has no event listeners (no "
        "PROCESS_COMMUNICATION or PROCESS_LOG events); corralctl tail -f, /metrics");
  }
  const StreamLog& rotation = p.out;
  bool stderr_logged = !p.redirect_stderr && p.err.name.kind != LogfileName::Kind::kNone &&
                       p.err.name.kind != LogfileName::Kind::kSyslog;
  if (stderr_logged && (p.err.maxbytes != p.out.maxbytes || p.err.backups != p.out.backups)) {
    notes.push_back("stderr_logfile_maxbytes/backups (" + std::to_string(p.err.maxbytes) + ", " +
                    std::to_string(p.err.backups) +
                    ") differ from stdout's: corral rotates both files of a job alike, with "
                    "stdout's values");
  }
  for (const auto& note : notes) y.comment(4, note);
  y.line(4, "log:");
  if (out) y.line(6, "stdout: " + q(*out));
  if (err) y.line(6, "stderr: " + q(*err));
  y.line(6, "max_size: " + (rotation.maxbytes <= 0
                                ? std::string("off")
                                : config::format_size(static_cast<uint64_t>(rotation.maxbytes))));
  y.line(6, "keep: " + std::to_string(std::max<int64_t>(0, rotation.backups)));
}

void YamlWriter::emit_job(Yaml& top, const Program& p) {
  std::string job = sanitize_name(p.name);
  while (job_names_.contains(job)) job += "_";
  job_names_.insert(job);
  Yaml y;
  bool commented_out = p.kind != "program";
  std::string where = p.section->file + ":" + std::to_string(p.section->line);
  top.comment(2, "[" + p.section->name + "] (" + where + ")");
  if (job != p.name) {
    top.comment(2, "the job is named " + job +
                       ": corral's names are letters, digits, '_', '.' "
                       "and '-' (supervisord's: " +
                       p.name + ")");
  }
  if (p.kind == "eventlistener") {
    warn(p.section->file, p.section->line,
         "[" + p.section->name +
             "]: an event listener has no corral equivalent (supervisord's "
             "event protocol on its stdin/stdout); written commented out");
    top.comment(2,
                "no equivalent: an event listener speaks supervisord's event protocol on "
                "stdin/stdout; corral has no events (see /metrics and corralctl status --json). "
                "The job below is commented out");
  } else if (p.kind == "fcgi-program") {
    warn(p.section->file, p.section->line,
         "[" + p.section->name +
             "]: a FastCGI program has no corral equivalent (a socket that "
             "supervisord opens and hands over on fd 0); written commented out");
    top.comment(2,
                "no equivalent: supervisord opened the FastCGI socket and gave it to each "
                "process as fd 0; corral hands no socket to workers. The job below is "
                "commented out");
  }
  if (!p.group.empty() && !p.group_section.empty()) {
    top.comment(2,
                "member of [" + p.group_section +
                    "]: corral has no groups of jobs (name "
                    "several jobs at once: corralctl restart web api); priority is the group's (" +
                    std::to_string(*p.group_priority) + ")");
  }
  y.line(2, job + ":");
  std::vector<std::string> notes;
  bool in_shell = false;
  std::vector<std::string> argv;
  if (p.numprocs > 0) argv = command_of(p, notes, in_shell);
  if (p.numprocs > 0 && argv.empty()) {
    auto split = shlex_split(p.command);
    std::string why = split
                          ? "command is empty"
                          : "can't parse command " + q(p.command) + ": " + split.error().message();
    const IniOption* option = config_.read.doc.get(*p.section, "command");
    warn(option->file, option->line,
         "[" + p.section->name + "] " + why +
             ": supervisord accepts the file but each start fails (FATAL); the job is written "
             "commented out");
    commented_out = true;
    top.comment(2, "supervisord: " + why + " (each start fails); commented out");
    argv = {"false"};
  }
  if (p.numprocs <= 0) argv = {"false"};
  for (const auto& note : notes) y.comment(4, note);
  std::string command = "command: [";
  for (size_t i = 0; i < argv.size(); ++i) command += (i > 0 ? ", " : "") + q(argv[i]);
  y.line(4, command + "]");
  if (p.process_name_written) {
    y.comment(4, "process_name=" + p.process_name + ": corral names workers " + job +
                     ":INDEX (0.." + std::to_string(std::max<int64_t>(p.numprocs, 1) - 1) + ")");
  }
  if (p.numprocs < 0) y.comment(4, "numprocs=" + std::to_string(p.numprocs) + ": no process");
  y.line(4, "workers: " + std::to_string(std::max<int64_t>(0, p.numprocs)));
  y.line(4, "autostart: " + std::string(p.autostart ? "true" : "false"));
  if (p.directory && !(in_shell && has_mark(*p.directory))) {
    y.line(4, "cwd: " + q(*p.directory));
  } else if (p.directory) {
    y.comment(4, "directory differs per process: the sh -c above changes to it");
  }
  if (p.user) {
    y.comment(4,
              "user: unlike supervisord, corral gives a worker of another user that user's "
              "HOME, USER, LOGNAME, SHELL and PATH=/usr/local/bin:/usr/bin:/bin instead of "
              "corrald's environment (docs/coming-from-supervisord.md); name more in "
              "daemon.pass_env or env");
    y.line(4, "user: " + q(*p.user));
  }
  if (p.umask) {
    y.line(4, "umask: " + q(octal_text(*p.umask)));
  } else if (!config_.nodaemon) {
    y.comment(4, "umask: supervisord set its own umask (" + octal_text(config_.umask) +
                     (config_.umask_written ? ", [supervisord] umask" : ", its default") +
                     ") when it daemonized, and its processes inherited it");
    y.line(4, "umask: " + q(octal_text(config_.umask)));
  } else {
    y.comment(4,
              "umask: with nodaemon=true supervisord kept the umask it was started with; "
              "the worker keeps corrald's (0022 under systemd)");
  }
  int64_t priority = p.group_priority ? *p.group_priority : p.priority;
  if (priority < 0 || priority > 999999) {
    y.comment(4, "priority " + std::to_string(priority) + " is beyond corral's 0..999999");
    priority = std::clamp<int64_t>(priority, 0, 999999);
  }
  y.line(4, "priority: " + std::to_string(priority));
  // The environment: [supervisord]'s, then the program's over it.
  std::vector<std::pair<std::string, std::string>> env = config_.environment;
  for (const auto& pair : p.env) {
    const std::string& k = pair.first;
    std::string v = pair.second;
    if (in_shell && (has_mark(k) || has_mark(v))) continue;
    // Not in the shell: command_of found each process_num expressible.
    if (has_mark(v)) v = with_placeholders(v, p.conversions, p.numprocs_start).value_or(v);
    auto same = std::find_if(env.begin(), env.end(), [&](const auto& kv) { return kv.first == k; });
    if (same != env.end()) {
      same->second = v;
    } else {
      env.emplace_back(k, v);
    }
  }
  std::vector<std::pair<std::string, std::string>> kept;
  for (const auto& [k, v] : env) {
    if (k.empty() || k.find('=') != std::string::npos) {
      y.comment(4, "environment: the name " + q(k) + " cannot be a corral env name; left out");
      warn(p.section->file, p.section->line,
           "[" + p.section->name + "] environment: the name " + q(k) + " is left out");
      continue;
    }
    kept.emplace_back(k, v);
  }
  if (!config_.environment.empty())
    y.comment(4, "env: [supervisord] environment, then the program's");
  if (kept.empty()) {
    y.line(4, "env: {}");
  } else {
    y.line(4, "env:");
    for (const auto& [k, v] : kept) y.line(6, q(k) + ": " + q(v));
  }
  y.line(4, "start:");
  y.line(6, "settle: " + seconds(p.startsecs));
  y.line(6, "retries: " + std::to_string(std::max<int64_t>(0, p.startretries)));
  y.line(4, "restart:");
  const char* policy = p.autorestart == AutoRestart::kAlways  ? "always"
                       : p.autorestart == AutoRestart::kNever ? "never"
                                                              : "on-failure";
  y.line(6, std::string("policy: ") + policy);
  std::string codes = "exit_codes: [";
  for (size_t i = 0; i < p.exitcodes.size(); ++i) {
    codes += (i > 0 ? ", " : "") + std::to_string(p.exitcodes[i]);
  }
  y.line(6, codes + "]");
  int64_t retries = std::max<int64_t>(1, p.startretries);
  y.comment(6,
            "supervisord waits 1 s, 2 s, 3 s... after failed starts; corral's backoff grows "
            "1 s, 2 s, 4 s... up to max (" +
                std::to_string(retries) +
                " s, startretries), and a worker that crashed while RUNNING waits 1 s where "
                "supervisord restarts it at once");
  y.line(6, "backoff: {initial: 1s, max: " + seconds(retries) + ", multiplier: 2.0, jitter: 0}");
  y.line(6, "reset_after: " + seconds(std::max<int64_t>(1, p.startsecs)));
  y.comment(6,
            "supervisord restarts a worker that started well forever, and leaves a FATAL one "
            "FATAL");
  y.line(6, "max_restarts: off");
  y.line(6, "cooldown: off");
  y.line(4, "stop:");
  int signal = p.stopsignal == 0 ? 15 : p.stopsignal;
  if (p.stopsignal == 0) y.comment(6, "stopsignal 0 sends nothing in supervisord; TERM here");
  y.line(6, "signal: " + config::signal_name(signal));
  y.line(6, "timeout: " + seconds(p.stopwaitsecs));
  if (p.group_options_written) {
    y.comment(6, std::string("stopasgroup=") + (p.stopasgroup ? "true" : "false") +
                     ", killasgroup=" + (p.killasgroup ? "true" : "false") +
                     ": corral always signals the worker's whole process group" +
                     (p.stopasgroup && p.killasgroup ? " (as written)" : ""));
  }
  emit_log(y, p, job);
  if (p.serverurl) {
    y.comment(4, "serverurl=" + *p.serverurl +
                     ": no equivalent (no SUPERVISOR_SERVER_URL; a "
                     "worker reaches corrald with corralctl and CORRAL_SOCKET)");
  }
  if (commented_out) {
    std::string text = y.text();
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      std::string_view line(text.data() + start, end - start);
      size_t indent = line.find_first_not_of(' ');
      if (indent == std::string_view::npos) indent = line.size();
      top.line(2, "# " + std::string(line.substr(std::min<size_t>(2, indent))));
      start = end + 1;
    }
  } else {
    top.line(0, std::string_view(y.text()).substr(0, y.text().size() - 1));
  }
}

}  // namespace corral::migrate::detail

// The reader of the daemon: section (schema.h): its socket and who may
// connect, what reaches the workers (pass_env), corrald's logs, cgroups and
// metrics. A job's keys are read in schema_job.cc.
#include <sys/un.h>

#include "config/schema.h"

namespace corral::config {
namespace {

// HOST:PORT, HOST possibly a bracketed IPv6 address; port 0 lets the kernel pick.
bool valid_listen(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = text.substr(0, colon);
  if (host.front() == '[' && host.back() != ']') return false;
  auto port = parse_unsigned(text.substr(colon + 1));
  return port && *port <= 65535;  // 0: any free port
}

// A name a shell could export: letters, digits and '_', not starting with a digit.
bool shell_variable_name(std::string_view name) {
  return !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
         });
}

// daemon.pass_env: shell variable names, none of corrald's own.
std::optional<std::vector<std::string>> read_pass_env(Reader& r, const Item& item) {
  auto elements = r.list(item, "a list of environment variable names like [LANG, http_proxy]");
  if (!elements) return std::nullopt;
  std::vector<std::string> names;
  bool ok = true;
  for (const Item& element : *elements) {
    auto name = r.string(element, false);
    if (!name) {
      ok = false;
    } else if (!shell_variable_name(*name)) {
      r.expected(element,
                 "an environment variable name (letters, digits and '_', not "
                 "starting with a digit)");
      ok = false;
    } else if (daemon_only_variable(*name)) {
      r.error(element, quote(*name) + " belongs to corrald itself (its service manager or " +
                           "corral) and is never passed on to workers");
      ok = false;
    } else {
      names.push_back(std::move(*name));
    }
  }
  if (!ok) return std::nullopt;
  return names;
}

}  // namespace

void read_daemon(Section& s, DaemonSpec& d) {
  Reader& r = s.reader();
  s.get("socket", d.socket, [&](const Item& item) -> std::optional<std::string> {
    auto path = r.string(item, false);
    if (path && path->size() >= sizeof(sockaddr_un::sun_path)) {
      r.error(item, "is " + std::to_string(path->size()) + " bytes long; a Unix socket path " +
                        "holds at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1));
      return std::nullopt;
    }
    return path;
  });
  s.get("socket_mode", d.socket_mode, [&](const Item& item) -> std::optional<unsigned> {
    constexpr std::string_view kWhat = "an octal file mode like \"0660\"";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    Result<unsigned> mode = parse_mode(*text);
    if (!mode) {
      r.expected(item, kWhat);
      return std::nullopt;
    }
    return *mode;
  });
  s.get_string_list("allow_users", d.allow_users);
  s.get_string_list("allow_groups", d.allow_groups);
  s.get("pass_env", d.pass_env, [&](const Item& item) { return read_pass_env(r, item); });
  s.get_string("log_dir", d.log_dir, false);
  s.get_string("state_dir", d.state_dir, false);
  s.get_bool("private_dirs", d.private_dirs);
  s.get("cgroup", d.cgroup, [&](const Item& item) -> std::optional<std::string> {
    constexpr std::string_view kWhat =
        "auto, off, or the absolute path of a cgroup2 directory like /sys/fs/cgroup/corral";
    auto text = r.text(item, kWhat);
    if (!text) return std::nullopt;
    if (*text == "auto" || *text == "off") return *text;
    const bool dots = text->find("/../") != std::string::npos || text->ends_with("/..") ||
                      text->find("/./") != std::string::npos || text->ends_with("/.");
    if (!text->starts_with("/") || dots || text->size() < 2) {
      r.expected(item, kWhat);
      return std::nullopt;
    }
    while (text->size() > 1 && text->ends_with("/")) text->pop_back();
    return *text;
  });
  s.get_choice("log_level", d.log_level, names::kLogLevels);
  s.get_section("log_rotate", [&](Section& rotate) {
    rotate.get_size("max_size", d.log_rotate.max_size, 1);
    rotate.get_integer("keep", d.log_rotate.keep, 0, std::numeric_limits<int>::max());
  });
  s.get_section("metrics", [&](Section& metrics) {
    metrics.get("listen", d.metrics.listen,
                [&](const Item& item) -> std::optional<std::optional<std::string>> {
                  constexpr std::string_view kWhat = "HOST:PORT like \"127.0.0.1:9464\", or off";
                  auto text = r.text(item, kWhat);
                  if (!text) return std::nullopt;
                  if (*text == "off") return std::optional<std::string>();
                  if (!valid_listen(*text)) {
                    r.expected(item, kWhat);
                    return std::nullopt;
                  }
                  return std::optional<std::string>(*text);
                });
    metrics.get_duration("interval", d.metrics.interval, Duration(1));
  });
}

}  // namespace corral::config

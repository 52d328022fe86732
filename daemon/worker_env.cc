#include "daemon/worker_env.h"

#include <algorithm>

#include "config/spec.h"

namespace corral::daemon {
namespace {

using config::daemon_only_variable;

// A variable one layer of the environment sets. Of the settings of one name
// the highest rank wins, and of equal ranks the first: of two entries with
// one name in corrald's environment, the one getenv() finds.
struct Setting {
  std::string_view name;
  std::string_view value;
  int rank;
};

// The variables sudo's env_reset keeps for the locale and the time zone.
bool locale_variable(std::string_view name) {
  return name == "LANG" || name == "LANGUAGE" || name.starts_with("LC_") || name == "TZ";
}

}  // namespace

std::vector<std::string> worker_env(const std::vector<std::string>& daemon_env, uid_t daemon_uid,
                                    const std::optional<JobUser>& user,
                                    const std::map<std::string, std::string>& job_env,
                                    const std::vector<std::string>& pass_env,
                                    const std::map<std::string, std::string>& corral_env) {
  // Views and one sort rather than maps of copies: a spawn decides this for
  // each worker, and corrald's environment may have dozens of entries.
  std::vector<Setting> settings;
  settings.reserve(daemon_env.size() + job_env.size() + corral_env.size() + 5);
  auto from_daemon = [&](int rank, auto wanted) {
    for (const std::string& entry : daemon_env) {
      size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      std::string_view name(entry.data(), eq);
      if (wanted(name)) settings.push_back({name, std::string_view(entry).substr(eq + 1), rank});
    }
  };
  // passwd(5): an empty home is "/", an empty shell /bin/sh.
  auto account = [&](const Account& a, int rank, bool with_shell) {
    settings.push_back({"HOME", a.home.empty() ? std::string_view("/") : a.home, rank});
    settings.push_back({"USER", a.name, rank});
    settings.push_back({"LOGNAME", a.name, rank});
    if (with_shell) {
      settings.push_back({"SHELL", a.shell.empty() ? std::string_view("/bin/sh") : a.shell, rank});
    }
  };
  const bool own_user = !user || (user->entry && user->entry->uid == daemon_uid);
  if (own_user) {
    // The daemon's own, its user's account where it lacks one.
    if (user) account(*user->entry, 0, /*with_shell=*/false);
    from_daemon(1, [](std::string_view name) { return !daemon_only_variable(name); });
  } else {
    // The user's login, then the daemon's locale and what pass_env names.
    if (user->entry) account(*user->entry, 1, /*with_shell=*/true);
    settings.push_back({"PATH", kUserPath, 1});
    from_daemon(2, [&](std::string_view name) {
      return locale_variable(name) ||
             (!daemon_only_variable(name) &&
              std::find(pass_env.begin(), pass_env.end(), name) != pass_env.end());
    });
  }
  for (const auto& [name, value] : job_env) settings.push_back({name, value, 3});
  for (const auto& [name, value] : corral_env) settings.push_back({name, value, 4});

  std::stable_sort(settings.begin(), settings.end(), [](const Setting& a, const Setting& b) {
    return a.name != b.name ? a.name < b.name : a.rank > b.rank;
  });
  std::vector<std::string> out;
  out.reserve(settings.size());
  for (size_t i = 0; i < settings.size(); ++i) {
    if (i > 0 && settings[i].name == settings[i - 1].name) continue;
    std::string& line = out.emplace_back();
    line.reserve(settings[i].name.size() + 1 + settings[i].value.size());
    line.append(settings[i].name).append(1, '=').append(settings[i].value);
  }
  return out;
}

}  // namespace corral::daemon

#include "daemon/worker_env.h"

#include "config/spec.h"

namespace corral::daemon {
namespace {

using config::daemon_only_variable;
using Variables = std::map<std::string, std::string>;

Variables to_map(const std::vector<std::string>& env) {
  Variables out;
  for (const auto& entry : env) {
    size_t eq = entry.find('=');
    // The first of two entries with one name is the one getenv() finds.
    if (eq != std::string::npos && eq > 0) out.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return out;
}

// The variables sudo's env_reset keeps for the locale and the time zone.
bool locale_variable(std::string_view name) {
  return name == "LANG" || name == "LANGUAGE" || name.starts_with("LC_") || name == "TZ";
}

// Fills the account's variables; with ONLY_MISSING the ones already set stay.
void set_account(Variables& env, const Account& account, bool only_missing) {
  auto set = [&](const std::string& name, const std::string& value) {
    if (only_missing) {
      env.emplace(name, value);
    } else {
      env[name] = value;
    }
  };
  // passwd(5): an empty home is "/", an empty shell /bin/sh.
  set("HOME", account.home.empty() ? "/" : account.home);
  set("USER", account.name);
  set("LOGNAME", account.name);
  if (!only_missing) env["SHELL"] = account.shell.empty() ? "/bin/sh" : account.shell;
}

}  // namespace

std::vector<std::string> worker_env(const std::vector<std::string>& daemon_env, uid_t daemon_uid,
                                    const std::optional<JobUser>& user,
                                    const std::map<std::string, std::string>& job_env,
                                    const std::vector<std::string>& pass_env,
                                    const std::map<std::string, std::string>& corral_env) {
  const Variables daemon = to_map(daemon_env);
  const bool own_user = !user || (user->entry && user->entry->uid == daemon_uid);
  Variables env;
  if (own_user) {
    for (const auto& [name, value] : daemon) {
      if (!daemon_only_variable(name)) env.emplace(name, value);
    }
    if (user) set_account(env, *user->entry, /*only_missing=*/true);
  } else {
    if (user->entry) set_account(env, *user->entry, /*only_missing=*/false);
    env["PATH"] = std::string(kUserPath);
    for (const auto& [name, value] : daemon) {
      if (locale_variable(name)) env[name] = value;
    }
    for (const auto& name : pass_env) {
      auto found = daemon.find(name);
      if (found != daemon.end() && !daemon_only_variable(name)) env[name] = found->second;
    }
  }
  for (const auto& [name, value] : job_env) env[name] = value;
  for (const auto& [name, value] : corral_env) env[name] = value;

  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

}  // namespace corral::daemon

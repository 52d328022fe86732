#include "daemon/private_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>

namespace corral::daemon {

std::optional<DirProblem> private_dir_problem(const std::vector<PathStep>& steps, uid_t euid,
                                              gid_t egid) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const PathStep& step = steps[i];
    DirProblem problem;
    problem.step = i;
    // Whoever owns a step can chmod it, or replace what a link says.
    problem.foreign_owner = step.uid != 0 && step.uid != euid;
    if (S_ISDIR(step.mode)) {
      // Above the last step a sticky directory lets no one else rename or
      // remove the entry we pass through, which is owned by root or EUID.
      const bool last = i + 1 == steps.size();
      const bool sticky_above = !last && (step.mode & S_ISVTX) != 0;
      const bool trusted_group = step.gid == 0 || step.gid == egid;
      problem.group_writable = (step.mode & S_IWGRP) != 0 && !trusted_group && !sticky_above;
      problem.other_writable = (step.mode & S_IWOTH) != 0 && !sticky_above;
    }
    if (problem.foreign_owner || problem.group_writable || problem.other_writable) return problem;
  }
  return std::nullopt;
}

std::string describe_problem(const DirProblem& problem, const PathStep& step,
                             std::string_view owner, std::string_view group) {
  const bool link = S_ISLNK(step.mode);
  auto id = [](std::string_view name, const char* kind, unsigned number) {
    std::string number_text = std::string(kind) + " " + std::to_string(number);
    return name.empty() ? number_text : std::string(name) + " (" + number_text + ")";
  };
  std::string text = (link ? "the symbolic link " : "") + step.path;
  if (problem.foreign_owner) text += " is owned by " + id(owner, "uid", step.uid);
  if (problem.group_writable || problem.other_writable) {
    text += problem.foreign_owner ? " and is writable by " : " is writable by ";
    if (problem.group_writable) text += "group " + id(group, "gid", step.gid);
    if (problem.group_writable && problem.other_writable) text += " and ";
    if (problem.other_writable) text += "others";
  }
  if (!link) {
    char mode[16];
    snprintf(mode, sizeof mode, ", mode %04o", static_cast<unsigned>(step.mode & 07777));
    text += mode;
  }
  return text;
}

std::string fix_for_problem(const DirProblem& problem, const PathStep& step) {
  std::string fix;
  if (problem.foreign_owner) {
    fix = (S_ISLNK(step.mode) ? "chown -h root " : "chown root ") + step.path;
  }
  if (problem.group_writable || problem.other_writable) {
    const char* who = problem.group_writable && problem.other_writable ? "go"
                      : problem.group_writable                         ? "g"
                                                                       : "o";
    fix += (fix.empty() ? "chmod " : " and chmod ") + std::string(who) + "-w " + step.path;
  }
  return fix;
}

namespace {

std::string user_name(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return "";
  }
  return found->pw_name;
}

std::string group_name(gid_t gid) {
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  if (getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return "";
  }
  return found->gr_name;
}

PathStep step_of(const std::string& path, const struct stat& st) {
  return PathStep{path, st.st_uid, st.st_gid, st.st_mode};
}

std::string join(const std::vector<std::string>& parts) {
  if (parts.empty()) return "/";
  std::string path;
  for (const auto& part : parts) path += "/" + part;
  return path;
}

// The directories and links passed through from / to PATH, and the
// directory's fd; ERROR (and MISSING for ENOENT) when the walk stopped.
struct Walk {
  UniqueFd fd;
  std::vector<PathStep> steps;
  std::string error;
  bool missing = false;
};

// Walks PATH one name at a time with O_PATH fds, reading each link and
// walking what it says, so that every directory the kernel would pass
// through is looked at. Missing directories are made with exactly MODE when
// CREATE.
Walk walk(const std::string& path, bool create, mode_t mode = 0750) {
  Walk result;
  std::string absolute = path;
  if (absolute.empty() || absolute[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == nullptr) {
      result.error = std::string("cannot find the current directory: ") + strerror(errno);
      return result;
    }
    absolute = std::string(cwd) + "/" + absolute;
  }
  std::deque<std::string> names;
  auto push_front_all = [&](const std::string& text) {
    std::vector<std::string> parts;
    size_t begin = 0;
    while (begin <= text.size()) {
      size_t end = text.find('/', begin);
      if (end == std::string::npos) end = text.size();
      if (end > begin) parts.push_back(text.substr(begin, end - begin));
      begin = end + 1;
    }
    names.insert(names.begin(), parts.begin(), parts.end());
  };
  push_front_all(absolute);

  std::vector<std::string> at;  // where the walk is, as names from /
  UniqueFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat st {};
  if (!dir.valid() || ::fstat(dir.get(), &st) != 0) {
    result.error = std::string("/: ") + strerror(errno);
    return result;
  }
  result.steps.push_back(step_of("/", st));
  int links = 0;
  while (!names.empty()) {
    std::string name = std::move(names.front());
    names.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      UniqueFd parent(::openat(dir.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!parent.valid() || ::fstat(parent.get(), &st) != 0) {
        result.error = join(at) + "/..: " + strerror(errno);
        return result;
      }
      if (!at.empty()) at.pop_back();
      dir = std::move(parent);
      result.steps.push_back(step_of(join(at), st));
      continue;
    }
    const std::string here = join(at) == "/" ? "/" + name : join(at) + "/" + name;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) {
        result.error = here + ": " + strerror(errno);
        return result;
      }
      if (!create) {
        result.error = here + ": " + strerror(ENOENT);
        result.missing = true;
        return result;
      }
      // Another process may make it at the same time: EEXIST is fine.
      if (::mkdirat(dir.get(), name.c_str(), mode) == 0) {
        // The umask may have taken bits that MODE gives (the socket's
        // directory must let allowed users through).
        UniqueFd made(
            ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!made.valid() || ::fchmod(made.get(), mode) != 0) {
          result.error = "cannot set the mode of " + here + ": " + strerror(errno);
          return result;
        }
      } else if (errno != EEXIST) {
        result.error = "cannot create " + here + ": " + strerror(errno);
        return result;
      }
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        result.error = here + ": " + strerror(errno);
        return result;
      }
    }
    if (S_ISLNK(st.st_mode)) {
      result.steps.push_back(step_of(here, st));
      if (++links > 40) {  // the kernel's own limit
        result.error = path + ": " + strerror(ELOOP);
        return result;
      }
      std::vector<char> target(PATH_MAX + 1);
      ssize_t n = ::readlinkat(dir.get(), name.c_str(), target.data(), target.size() - 1);
      if (n < 0) {
        result.error = here + ": " + strerror(errno);
        return result;
      }
      std::string text(target.data(), static_cast<size_t>(n));
      if (!text.empty() && text[0] == '/') {
        dir.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        at.clear();
      }
      push_front_all(text);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      result.error = here + ": " + strerror(ENOTDIR);
      return result;
    }
    UniqueFd next(::openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    // What was opened is what counts, not what fstatat saw a moment before.
    if (!next.valid() || ::fstat(next.get(), &st) != 0) {
      result.error = here + ": " + strerror(errno);
      return result;
    }
    at.push_back(name);
    dir = std::move(next);
    result.steps.push_back(step_of(here, st));
  }
  result.fd.reset(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!result.fd.valid()) result.error = join(at) + ": " + strerror(errno);
  return result;
}

}  // namespace

PrivateDir open_private_dir(const std::string& path, std::string_view key, bool create,
                            bool enforce, mode_t create_mode) {
  PrivateDir out;
  const uid_t euid = ::geteuid();
  const gid_t egid = ::getegid();
  Walk walked = walk(path, false);
  // Nothing is made below a directory that is refused.
  if (create && walked.missing && !(enforce && private_dir_problem(walked.steps, euid, egid))) {
    walked = walk(path, true, create_mode);
  }
  if (auto problem = private_dir_problem(walked.steps, euid, egid)) {
    const PathStep& step = walked.steps[problem->step];
    std::string user = user_name(euid);
    std::string text =
        std::string(key) + " " + path + " is not private: " +
        describe_problem(*problem, step, user_name(step.uid), group_name(step.gid)) +
        "; only root and corrald's user (" + (user.empty() ? "" : user + ", ") + "uid " +
        std::to_string(euid) +
        ") may own or write it and every directory above it, or someone else could plant links "
        "there to files that corrald opens; fix: " +
        fix_for_problem(*problem, step);
    if (enforce) {
      out.error = text + ", or set daemon.private_dirs: false";
      return out;
    }
    out.warning = text + "; daemon.private_dirs is false: going on";
  }
  if (!walked.error.empty()) {
    out.error = std::string(key) + " " + path + ": " + walked.error;
    out.missing = walked.missing;
    return out;
  }
  out.dir = std::make_shared<SafeDir>(path, std::move(walked.fd));
  return out;
}

Result<std::shared_ptr<SafeDir>> PrivateDirs::open(const std::string& path, std::string_view key,
                                                   bool create, mode_t create_mode) {
  PrivateDir dir = open_private_dir(path, key, create, enforce_, create_mode);
  if (!dir.warning.empty() && warned_.insert(path).second) spdlog::warn("{}", dir.warning);
  if (!dir.dir) return Error(std::move(dir.error));
  return std::move(dir.dir);
}

}  // namespace corral::daemon

#include "daemon/spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace corral::daemon {
namespace {

// What the child needs, prepared by the parent: the child shares the
// parent's memory and must not allocate, so every array is built here.
struct ChildArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  const FdMapping* fds;
  int* scratch;  // one int per mapping
  size_t fd_count;
  int max_target;
  const char* cwd;  // nullptr: stay
  bool switch_user;
  uid_t uid;
  gid_t gid;
  const gid_t* groups;
  size_t group_count;
  int nice;
  int umask;  // -1: corrald's
  rlimit nofile;
  const cpu_set_t* cpus;  // nullptr: leave
  // Where clone3() could not put the child into its cgroup: the cgroup's
  // cgroup.procs, which the child writes itself into before anything else.
  int cgroup_procs;  // -1: nothing to do
  pid_t parent;
  // Written by the child when a step fails; read by the parent after clone
  // returns (CLONE_VFORK keeps the parent waiting until exec or exit).
  int error;
  const char* step;
};

// The child runs on a borrowed stack in the parent's memory until it execs,
// so sanitizers keep out of it: ASan would take its _exit() from a foreign
// stack for a stack switch and warn, and their bookkeeping is the parent's.
#define CORRAL_CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined")))

// The kernel's struct sigaction (rt_sigaction(2)), which libc's differs from.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

// The signals whose disposition is not the default in this process,
// ignored or caught (/proc/self/status: SigIgn, SigCgt), bit N-1 for
// signal N; every signal when that cannot be read. On this project's VM a
// system call takes about 1.1 us: a rt_sigaction for each of 62 signals
// was 65 us of every spawn, the read is 9 us and the eight that
// corral-spawn ignores another 9.
CORRAL_CHILD_CODE uint64_t non_default_signals() {
  constexpr uint64_t kAll = ~uint64_t{0};
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kAll;
  char text[4096];
  size_t size = 0;
  ssize_t n;
  while (size < sizeof text && (n = read(fd, text + size, sizeof text - size)) > 0) {
    size += static_cast<size_t>(n);
  }
  close(fd);
  uint64_t ignored = 0;
  uint64_t caught = 0;
  if (!signal_mask_in_status(text, size, "SigIgn:", ignored) ||
      !signal_mask_in_status(text, size, "SigCgt:", caught)) {
    return kAll;
  }
  return ignored | caught;
}

[[noreturn]] CORRAL_CHILD_CODE void child_fail(ChildArgs* args, const char* step) {
  args->error = errno;
  args->step = step;
  _exit(127);
}

// Runs in the child, on a borrowed stack, sharing the parent's memory: only
// async-signal-safe calls, no allocation.
CORRAL_CHILD_CODE int child_main(void* raw) {
  auto* args = static_cast<ChildArgs*>(raw);
  // Into its cgroup before anything else runs (CLONE_INTO_CGROUP's
  // fallback): nothing of the worker ever runs outside it.
  if (args->cgroup_procs >= 0 && write(args->cgroup_procs, "0", 1) != 1) {
    child_fail(args, "joining its cgroup");
  }

  // Dispositions first (handlers would run on the parent's memory), then the
  // mask the parent blocked around clone() and for its signalfd. Through the
  // system call: libc's sigaction() refuses the signals it keeps for itself
  // (32 and 33 in glibc), and those may be ignored here and inherited, since
  // posix_spawn ignores them in the children of a threaded program.
  // Only those not at their default already.
  KernelSigaction dfl{};
  dfl.handler = SIG_DFL;
  const uint64_t reset = non_default_signals();
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP && (reset >> (sig - 1) & 1) != 0) {
      syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
    }
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // A session of its own, without a controlling terminal: a worker in the
  // daemon's session could open its terminal as /dev/tty and type into the
  // shell that started it (TIOCSTI), or get its job-control signals. The
  // session leader leads its own process group too, which it cannot leave,
  // so the daemon's signals to the group always reach it.
  if (setsid() < 0) child_fail(args, "setsid");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(args, "prctl(PR_SET_PDEATHSIG)");
  // The daemon may have died before the death signal was armed.
  if (getppid() != args->parent) _exit(127);

  // Move every source above every target first, so that no dup2 clobbers a
  // source still to be mapped (and so that no source is its own target,
  // which would keep its close-on-exec flag).
  int above = std::max(args->max_target + 1, 3);
  for (size_t i = 0; i < args->fd_count; ++i) {
    args->scratch[i] = fcntl(args->fds[i].source, F_DUPFD, above);
    if (args->scratch[i] < 0) child_fail(args, "fcntl(F_DUPFD)");
  }
  for (size_t i = 0; i < args->fd_count; ++i) {
    if (dup2(args->scratch[i], args->fds[i].target) < 0) child_fail(args, "dup2");
  }
  if (close_range(static_cast<unsigned>(args->max_target + 1), ~0U, 0) < 0) {
    child_fail(args, "close_range");
  }

  if (setrlimit(RLIMIT_NOFILE, &args->nofile) < 0) child_fail(args, "setrlimit(RLIMIT_NOFILE)");
  if (args->nice != 0 && setpriority(PRIO_PROCESS, 0, args->nice) < 0) {
    child_fail(args, "setpriority");
  }
  if (args->cpus != nullptr && sched_setaffinity(0, sizeof(cpu_set_t), args->cpus) < 0) {
    child_fail(args, "sched_setaffinity");
  }
  if (args->switch_user) {
    if (setgroups(args->group_count, args->groups) < 0) child_fail(args, "setgroups");
    if (setgid(args->gid) < 0) child_fail(args, "setgid");
    if (setuid(args->uid) < 0) child_fail(args, "setuid");
    // A change of credentials clears the parent-death signal: arm it again,
    // or a worker with `user:` would outlive a kill -9 of the daemon.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(args, "prctl(PR_SET_PDEATHSIG)");
    if (getppid() != args->parent) _exit(127);
  }
  // After the user switch: the directory must be one the worker may enter.
  if (args->umask >= 0) ::umask(static_cast<mode_t>(args->umask));
  if (args->cwd != nullptr && chdir(args->cwd) < 0) child_fail(args, "chdir");

  execve(args->path, args->argv, args->envp);
  child_fail(args, "exec");
}

#if defined(__x86_64__)
// clone3(ARGS) with the child running FN(ARG) on ARGS's stack, as glibc's
// clone() does for clone(2) (glibc 2.36 has no clone3 wrapper): with
// CLONE_VM the child cannot return from the system call into C++ frames,
// which live on the parent's stack. The child never returns: FN execs or
// exits, and its value is the exit status otherwise. The parent gets the
// pid, or -errno.
long clone3_run(clone_args* args, int (*fn)(void*), void* arg) {
  long ret;
  register int (*r8)(void*) asm("r8") = fn;
  register void* r9 asm("r9") = arg;
  asm volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      // The child, on its own stack (16-byte aligned at the top): FN(ARG),
      // then exit with its value.
      "xorl %%ebp, %%ebp\n\t"
      "movq %%r9, %%rdi\n\t"
      "callq *%%r8\n\t"
      "movl %%eax, %%edi\n\t"
      "movl $60, %%eax\n\t"  // SYS_exit
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof(clone_args)), "r"(r8), "r"(r9)
      : "rcx", "r11", "memory", "cc");
  return ret;
}
#endif

// Set by the first clone3() the kernel refused (older than 5.7): later
// children join their cgroup by writing cgroup.procs.
bool g_clone3_refused = false;

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& entry : env) {
    if (entry.size() > key.size() && entry[key.size()] == '=' && entry.starts_with(key)) {
      return entry.substr(key.size() + 1);
    }
  }
  return {};
}

}  // namespace

std::string find_executable(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return name;
  std::string dirs = path.empty() ? "/usr/local/bin:/usr/bin:/bin" : path;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return {};
}

void use_clone3(bool use) { g_clone3_refused = !use; }

Launched launch_as(const SpawnRequest& request, const std::optional<UserIds>& user,
                   const std::vector<FdMapping>& fds, const rlimit& nofile_default,
                   ParentOf parent) {
  Launched out;
  if (request.argv.empty() || request.argv[0].empty()) {
    out.error = "empty command";
    return out;
  }

  std::string path = find_executable(request.argv[0], env_value(request.env, "PATH"));
  if (path.empty()) {
    out.error = "exec " + request.argv[0] + ": not found in PATH";
    return out;
  }

  std::vector<char*> argv;
  for (const auto& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : request.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (int cpu : request.cpus) {
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &cpus);
  }

  std::vector<int> scratch(fds.size());
  int max_target = 2;
  for (const auto& m : fds) max_target = std::max(max_target, m.target);

  ChildArgs args{};
  args.path = path.c_str();
  args.argv = argv.data();
  args.envp = envp.data();
  args.fds = fds.data();
  args.scratch = scratch.data();
  args.fd_count = fds.size();
  args.max_target = max_target;
  args.cwd = request.cwd.empty() ? nullptr : request.cwd.c_str();
  // As supervisord does, a worker of corrald's own uid keeps corrald's
  // groups: there are no privileges to drop.
  args.switch_user = user.has_value() && user->uid != geteuid();
  if (user) {
    args.uid = user->uid;
    args.gid = user->gid;
    args.groups = user->groups.data();
    args.group_count = user->groups.size();
  }
  args.nice = request.nice;
  args.umask = request.umask ? static_cast<int>(*request.umask) : -1;
  args.nofile = nofile_default;
  if (request.nofile) {
    args.nofile.rlim_cur = args.nofile.rlim_max = static_cast<rlim_t>(*request.nofile);
  }
  args.cpus = request.cpus.empty() ? nullptr : &cpus;
  const bool sibling = parent == ParentOf::kCallersParent;
  args.parent = sibling ? getppid() : getpid();

  // One stack serves every child: CLONE_VFORK suspends this thread until the
  // child has exec'd or exited, and only this thread spawns.
  alignas(64) static char stack[256 * 1024];

  // No signal may reach the child before it has reset the dispositions.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
  if (sibling) flags |= CLONE_PARENT;
  pid_t pid = -1;
  int clone_errno = 0;
  UniqueFd cgroup_procs;
  args.cgroup_procs = -1;
  bool cloned = false;
#if defined(__x86_64__)
  if (request.cgroup_fd >= 0 && !g_clone3_refused) {
    clone_args cl{};
    cl.flags = static_cast<uint64_t>(flags) | CLONE_INTO_CGROUP;
    cl.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    // With CLONE_PARENT the child takes its parent's exit signal (the
    // spawn server's, SIGCHLD): clone3() wants none given.
    cl.exit_signal = sibling ? 0 : SIGCHLD;
    cl.stack = reinterpret_cast<uint64_t>(stack);
    cl.stack_size = sizeof stack;
    cl.cgroup = static_cast<uint64_t>(request.cgroup_fd);
    long rc = clone3_run(&cl, child_main, &args);
    if (rc == -ENOSYS || rc == -E2BIG) {
      g_clone3_refused = true;  // a kernel before 5.7: cgroup.procs from now on
    } else {
      cloned = true;
      pid = rc < 0 ? -1 : static_cast<pid_t>(rc);
      clone_errno = rc < 0 ? static_cast<int>(-rc) : 0;
    }
  }
#endif
  if (!cloned) {
    if (request.cgroup_fd >= 0) {
      cgroup_procs.reset(::openat(request.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
      if (!cgroup_procs) {
        clone_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        out.error = std::string("opening its cgroup's cgroup.procs: ") + strerror(clone_errno);
        return out;
      }
      args.cgroup_procs = cgroup_procs.get();
    }
    pid = clone(child_main, stack + sizeof stack, flags | SIGCHLD, &args, &pidfd);
    clone_errno = errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  if (pid < 0) {
    out.error =
        std::string(cloned ? "clone3 into its cgroup: " : "clone: ") + strerror(clone_errno);
    return out;
  }
  if (args.step != nullptr) {
    // The child failed before exec and has exited: reap it here, or leave
    // that to its parent.
    UniqueFd child(pidfd);
    if (sibling) {
      out.pidfd = std::move(child);
    } else {
      siginfo_t info{};
      waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child.get()), &info, WEXITED);
    }
    std::string what = args.step;
    if (what == "exec") what += " " + path;
    if (what == "chdir") what += " " + request.cwd;
    out.error = what + ": " + strerror(args.error);
    return out;
  }
  out.pid = pid;
  out.pidfd.reset(pidfd);
  return out;
}

CORRAL_CHILD_CODE bool signal_mask_in_status(const char* status, size_t size, const char* key,
                                             uint64_t& mask) {
  size_t key_size = 0;
  while (key[key_size] != '\0') ++key_size;
  // KEY at the start of a line, then blanks, then hex digits up to '\n'.
  for (size_t line = 0; line < size;) {
    size_t at = line;
    size_t matched = 0;
    while (matched < key_size && at < size && status[at] == key[matched]) {
      ++at;
      ++matched;
    }
    if (matched == key_size) {
      while (at < size && (status[at] == '\t' || status[at] == ' ')) ++at;
      uint64_t value = 0;
      size_t digits = 0;
      for (; at < size && status[at] != '\n'; ++at, ++digits) {
        char c = status[at];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0 || digits == 16) return false;
        value = value << 4 | static_cast<uint64_t>(digit);
      }
      if (at == size || digits == 0) return false;  // no '\n': the line may go on
      mask = value;
      return true;
    }
    while (line < size && status[line] != '\n') ++line;
    ++line;
  }
  return false;
}

}  // namespace corral::daemon

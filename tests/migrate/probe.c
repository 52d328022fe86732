/* A stand-in for the programs of tests/supervisord_corpus (gunicorn, celery,
 * nginx, php-fpm, queue-worker, ...): copies of it are installed under those
 * names. It writes one line to stdout and one to stderr, naming its argv, then
 * waits for a signal without starting anything, so that /proc/PID shows the
 * argv, cwd, environment, ids and umask its supervisor gave it, argv[0]
 * included (a script would show its interpreter instead). With PROBE_EXIT=N in
 * its environment it exits N after the two lines (a one-shot program). It dies
 * with its parent, so that a killed test leaves nothing behind, and never
 * dumps core (stopsignal=QUIT). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 111; /* the parent was gone already */
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
  /* Each line in one write: processes that share a log file (numprocs)
   * then never split each other's lines. */
  for (int fd = 1; fd <= 2; ++fd) {
    char line[4096];
    int n = snprintf(line, sizeof line, "probe %s:", fd == 1 ? "stdout" : "stderr");
    for (int i = 0; i < argc && n < (int)sizeof line; ++i) {
      n += snprintf(line + n, sizeof line - (size_t)n, " %s", argv[i]);
    }
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(fd, line, (size_t)n) != n) return 112;
  }
  const char *code = getenv("PROBE_EXIT");
  if (code) return atoi(code);
  for (;;) pause();
}

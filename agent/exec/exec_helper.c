/* muster-exec: the tiny program the supervisor spawns in front of every task process.
 * It does what libuv cannot do between fork and exec: join the task's cgroups, set rlimits,
 * drop to the run-as user (after joining, while still allowed to write cgroup.procs), then
 * forks the real program and waits for it with wait4() so the agent gets rusage (CPU, max RSS)
 * on the report fd. It exits the way the program did (same code, or re-raises the signal).
 *   muster-exec [--join FILE]... [--rlimit as|nproc|cpu=N]... [--gid N] [--uid N]
 *               [--report-fd N] [--sb-net none] [--sb-ro-root] [--sb-rw PATH]...
 *               [--sb-hide PATH]... [--sb-pid] [--sb-seccomp] -- PROGRAM [ARGS...]
 *   muster-exec --server     the long-lived form: requests on fd 3 (helper_server.c)
 * The --sb-* options set up a task sandbox (sandbox_enter.h) before the uid switch; tasks
 * with a sandbox always come through the one-shot form. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/exec/helper_server.h"
#include "agent/exec/sandbox_enter.h"
#include "lib/seccomp/default_filter.h"

static void die(const char *what, const char *arg) {
  dprintf(2, "muster-exec: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  _exit(126);
}

static void join_cgroup(const char *procs) {
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open", procs);
  if (write(fd, pid, (size_t)len) != len) die("cannot join cgroup", procs);
  close(fd);
}

static void set_rlimit(const char *spec) {
  const char *eq = strchr(spec, '=');
  if (eq == NULL) {
    errno = EINVAL;
    die("bad --rlimit", spec);
  }
  int res;
  if (strncmp(spec, "as=", 3) == 0) res = RLIMIT_AS;
  else if (strncmp(spec, "nproc=", 6) == 0) res = RLIMIT_NPROC;
  else if (strncmp(spec, "cpu=", 4) == 0) res = RLIMIT_CPU;
  else {
    errno = EINVAL;
    die("bad --rlimit", spec);
  }
  rlim_t v = (rlim_t)strtoull(eq + 1, NULL, 10);
  struct rlimit rl = {v, v};
  if (setrlimit(res, &rl) != 0) die("setrlimit", spec);
}

/* Closes every fd from 3 up but keep: close_range, not a thousand close()s (a loop on
 * kernels before 5.9). */
static void close_span(unsigned lo, unsigned hi) {
  if (lo > hi || close_range(lo, hi, 0) == 0) return;
  for (unsigned fd = lo; fd <= hi && fd < 1024; fd++) close((int)fd);
}

/* Closes every fd from 3 up but a and b (-1: none). */
static void close_others(int a, int b) {
  if (a > b) {
    int t = a;
    a = b;
    b = t;
  }
  unsigned lo = 3;
  if (a >= 3) {
    close_span(lo, (unsigned)a - 1);
    lo = (unsigned)a + 1;
  }
  if (b >= 3) {
    close_span(lo, (unsigned)b - 1);
    lo = (unsigned)b + 1;
  }
  close_span(lo, ~0U);
}

static const int forwarded_ignored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};

/* --sb-rw / --sb-hide: one more path for the sandbox. */
static void sb_add(const char **list, size_t *n, const char *path) {
  if (*n >= MU_SB_MAX) {
    errno = E2BIG;
    die("too many sandbox paths at", path);
  }
  list[(*n)++] = path;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--server") == 0) return mu_helper_server();
  int report_fd = -1;
  long uid = -1, gid = -1;
  mu_sb_opts sb = {0};
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "--sb-ro-root") == 0) {
      sb.on = sb.ro_root = true;
      continue;
    }
    if (strcmp(argv[i], "--sb-pid") == 0) {
      sb.on = sb.pid_ns = true;
      continue;
    }
    if (strcmp(argv[i], "--sb-seccomp") == 0) {
      sb.on = sb.seccomp = true;
      continue;
    }
    if (i + 1 >= argc) {
      errno = EINVAL;
      die("missing value for", argv[i]);
    }
    if (strcmp(argv[i], "--join") == 0) join_cgroup(argv[++i]);
    else if (strcmp(argv[i], "--rlimit") == 0) set_rlimit(argv[++i]);
    else if (strcmp(argv[i], "--uid") == 0) uid = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--gid") == 0) gid = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--report-fd") == 0) report_fd = (int)strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--sb-net") == 0) sb.on = true, sb.net_none = strcmp(argv[++i], "none") == 0;
    else if (strcmp(argv[i], "--sb-rw") == 0) sb.on = true, sb_add(sb.rw, &sb.n_rw, argv[++i]);
    else if (strcmp(argv[i], "--sb-hide") == 0) sb.on = true, sb_add(sb.hide, &sb.n_hide, argv[++i]);
    else {
      errno = EINVAL;
      die("unknown option", argv[i]);
    }
  }
  if (i >= argc) {
    errno = EINVAL;
    die("no program given", NULL);
  }
  int status_fd = -1; /* pid 1 of a sandbox's pid namespace: the program's status goes here */
  if (sb.on) {
    char msg[768];
    if (mu_sandbox_enter(&sb, msg, sizeof msg) != 0) {
      dprintf(2, "muster-exec: %s\n", msg);
      _exit(126);
    }
    if (sb.pid_ns) mu_sandbox_pid_init(&status_fd);
    if (sb.seccomp && mu_seccomp_default_load(msg, sizeof msg) != 0) {
      dprintf(2, "muster-exec: sandbox: %s\n", msg);
      _exit(126);
    }
  }
  if (gid >= 0) {
    gid_t g = (gid_t)gid;
    if (setgroups(1, &g) != 0) die("setgroups", NULL);
    if (setgid(g) != 0) die("setgid", NULL);
  }
  if (uid >= 0) {
    if (setuid((uid_t)uid) != 0) die("setuid", NULL);
    if (uid != 0 && setuid(0) == 0) {
      errno = EPERM;
      die("could regain root after setuid", NULL);
    }
  }
  if (report_fd >= 0) fcntl(report_fd, F_SETFD, FD_CLOEXEC);

  /* The group's TERM/INT/... must not kill us before we can report, and must reach the program
   * even when sent while we fork: block them across the fork; the child restores the defaults
   * and unblocks (a signal sent after the fork is then delivered to it); we ignore them and
   * pass on any that arrived before the child existed. */
  size_t n_fwd = sizeof forwarded_ignored / sizeof *forwarded_ignored;
  sigset_t fwd, old_mask, pend;
  sigemptyset(&fwd);
  for (size_t k = 0; k < n_fwd; k++) sigaddset(&fwd, forwarded_ignored[k]);
  sigprocmask(SIG_BLOCK, &fwd, &old_mask);

  pid_t pid = fork();
  if (pid < 0) die("fork", NULL);
  if (pid == 0) {
    for (size_t k = 0; k < n_fwd; k++) signal(forwarded_ignored[k], SIG_DFL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    execvp(argv[i], &argv[i]);
    int e = errno;
    dprintf(2, "muster-exec: cannot run \"%s\": %s\n", argv[i], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  sigemptyset(&pend);
  sigpending(&pend);
  for (size_t k = 0; k < n_fwd; k++) signal(forwarded_ignored[k], SIG_IGN);
  for (size_t k = 0; k < n_fwd; k++)
    if (forwarded_ignored[k] != SIGPIPE && sigismember(&pend, forwarded_ignored[k])) kill(pid, forwarded_ignored[k]);
  sigprocmask(SIG_SETMASK, &old_mask, NULL);

  /* Hold nothing the task's reader waits on: only the report fd stays open. */
  int devnull = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; fd++) dup2(devnull, fd);
  if (devnull > 2) close(devnull);
  close_others(report_fd, status_fd);

  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      status = 127 << 8;
      break;
    }
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (report_fd >= 0) {
    dprintf(report_fd, "exit %d %d %lld %lld %ld %ld %ld\n", code, sig,
            (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
            (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, ru.ru_maxrss, ru.ru_inblock, ru.ru_oublock);
    close(report_fd);
  }
  mu_sandbox_pid_status(status_fd, status);
  if (sig != 0) mu_exit_as(status);
  return code;
}

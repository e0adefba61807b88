/* A RUN step in the container runtime (see build_run.h). */
#define _GNU_SOURCE
#include "plugins/container/build_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugins/container/launch.h"

static const char *const build_caps[] = {
    "CHOWN",   "DAC_OVERRIDE",     "FOWNER", "FSETID",     "KILL",        "SETGID",  "SETUID",
    "SETPCAP", "NET_BIND_SERVICE", "MKNOD",  "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP", NULL};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void keep_tail(mu_build_run *r, size_t *len, const char *buf, size_t n) {
  size_t cap = sizeof r->tail - 1;
  if (n >= cap) {
    memcpy(r->tail, buf + n - cap, cap);
    *len = cap;
  } else {
    if (*len + n > cap) {
      size_t drop = *len + n - cap;
      memmove(r->tail, r->tail + drop, *len - drop);
      *len -= drop;
    }
    memcpy(r->tail + *len, buf, n);
    *len += n;
  }
  r->tail[*len] = '\0';
}

int mu_build_run_step(mu_build_run *r, mu_err *err) {
  FILE *out = r->out ? r->out : stdout;
  r->tail[0] = '\0';
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return mu_err_set(err, MU_EIO, "pipe: %s", strerror(errno));
  fflush(out);
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return mu_err_set(err, MU_EIO, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0) _exit(125);
    mu_launch_spec spec = {
        .rootfs = r->rootfs,
        .state_dir = r->state_dir,
        .argv = r->argv,
        .env = r->env,
        .cwd = r->cwd,
        .user = r->user && *r->user ? r->user : "0:0",
        .allow_root = true,
        .host_network = r->host_network,
        .read_only_root = false,
        .hostname = "build",
        .cap_add = build_caps,
    };
    int st = mu_launch_run(&spec);
    if (st < 0) _exit(125);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  }
  close(p[1]);
  int64_t limit = r->timeout_ms > 0 ? r->timeout_ms : 30 * 60 * 1000;
  int64_t deadline = now_ms() + limit;
  size_t tail_len = 0;
  bool at_line_start = true, timed_out = false;
  char buf[8192];
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int pr = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    keep_tail(r, &tail_len, buf, (size_t)n);
    for (ssize_t i = 0; i < n; i++) {
      if (at_line_start) fputs("  | ", out);
      fputc(buf[i], out);
      at_line_start = buf[i] == '\n';
    }
    fflush(out);
  }
  if (!at_line_start) fputc('\n', out);
  close(p[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  if (timed_out) return mu_err_set(err, MU_ETIMEDOUT, "over the step time limit of %lld ms (killed)", (long long)limit);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFEXITED(st)) return mu_err_set(err, MU_EIO, "exit %d", WEXITSTATUS(st));
  return mu_err_set(err, MU_EIO, "killed by signal %d", WTERMSIG(st));
}

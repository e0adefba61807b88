/* The helper's shim (shim.h): relays the container's output to the agent while it lives and
 * into the shim dir's files after it died, and leaves the pid and exit files the restarted
 * agent re-adopts the container by. */
#define _GNU_SOURCE
#include "plugins/container/shim.h"

#include "lib/base/atomic_file.h"
#include "lib/base/procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mu_shim_open(mu_shim *s, const char *dir) {
  s->in[0] = s->in[1] = -1;
  s->child[0] = s->child[1] = -1;
  s->out[0] = 1;
  s->out[1] = 2;
  s->detached = false;
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    dprintf(2, "muster-container: shim dir %s: %s\n", dir, strerror(errno));
    s->dir[0] = '\0';
    return -1;
  }
  int p[2][2];
  if (pipe2(p[0], O_CLOEXEC) != 0) goto fail;
  if (pipe2(p[1], O_CLOEXEC) != 0) {
    close(p[0][0]);
    close(p[0][1]);
    goto fail;
  }
  for (int i = 0; i < 2; i++) {
    s->in[i] = p[i][0];
    s->child[i] = p[i][1];
  }
  /* a write to the dead agent's pipe must fail with EPIPE, not kill the shim */
  signal(SIGPIPE, SIG_IGN);
  char text[96];
  snprintf(text, sizeof text, "%d %llu\n", (int)getpid(), mu_proc_start_time(getpid()));
  if (mu_atomic_file_write(dir, "pid", text) != 0) {
    dprintf(2, "muster-container: shim dir %s: cannot write the pid file: %s\n", dir, strerror(errno));
    for (int i = 0; i < 2; i++) {
      close(s->in[i]);
      close(s->child[i]);
      s->in[i] = s->child[i] = -1;
    }
    s->dir[0] = '\0';
    return -1;
  }
  return 0;
fail:
  dprintf(2, "muster-container: pipe: %s\n", strerror(errno));
  s->dir[0] = '\0';
  return -1;
}

void mu_shim_close_child(mu_shim *s) {
  for (int i = 0; i < 2; i++) {
    if (s->child[i] >= 0) close(s->child[i]);
    s->child[i] = -1;
  }
}

void mu_shim_detach(mu_shim *s) {
  if (s->dir[0] == '\0' || s->detached) return;
  s->detached = true;
  static const char *const names[2] = {"stdout", "stderr"};
  for (int i = 0; i < 2; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
    s->out[i] = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
}

static void relay(mu_shim *s, int i, const char *buf, size_t len) {
  while (len > 0) {
    if (s->out[i] < 0) return; /* the file could not be made: dropped */
    ssize_t w = write(s->out[i], buf, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {.fd = s->out[i], .events = POLLOUT};
      (void)poll(&pf, 1, 100);
      continue;
    }
    if (w <= 0) {
      if (s->detached) return;
      mu_shim_detach(s); /* EPIPE: the agent is gone, the rest goes to the file */
      continue;
    }
    buf += w;
    len -= (size_t)w;
  }
}

void mu_shim_pump(mu_shim *s, int i) {
  if (s->in[i] < 0) return;
  char buf[65536];
  ssize_t n = read(s->in[i], buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close(s->in[i]);
    s->in[i] = -1;
    return;
  }
  relay(s, i, buf, (size_t)n);
}

void mu_shim_drain(mu_shim *s) {
  for (;;) {
    struct pollfd fds[2];
    int n = 0, which[2];
    for (int i = 0; i < 2; i++)
      if (s->in[i] >= 0) {
        which[n] = i;
        fds[n++] = (struct pollfd){.fd = s->in[i], .events = POLLIN};
      }
    if (n == 0) return;
    int r = poll(fds, (nfds_t)n, 5000);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return; /* a process outside the pid namespace holding the pipe: stop waiting */
    for (int k = 0; k < n; k++)
      if (fds[k].revents != 0) mu_shim_pump(s, which[k]);
  }
}

void mu_shim_close(mu_shim *s, int exit_code) {
  if (s->dir[0] == '\0') return;
  for (int i = 0; i < 2; i++) {
    if (s->in[i] >= 0) close(s->in[i]);
    s->in[i] = -1;
    if (s->detached && s->out[i] >= 0) close(s->out[i]);
  }
  char text[32];
  snprintf(text, sizeof text, "%d\n", exit_code);
  if (mu_atomic_file_write(s->dir, "exit", text) != 0)
    dprintf(2, "muster-container: shim dir %s: cannot write the exit file: %s\n", s->dir, strerror(errno));
}

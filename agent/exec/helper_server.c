/* `muster-exec --server`: the long-lived form of the helper (exec_server_proto.h). Started once
 * by the agent, it reads spawn requests from fd 3 and starts each task with vfork from its own
 * small address space: the child takes the task's pipes as fds 0-3, makes its own session,
 * enters the cwd, joins the cgroups, sets rlimits and the run-as user, and execs the program
 * (looked up in the task's PATH). The server then reaps it with wait4() and replies with the
 * status and rusage: what the one-shot helper does, without its fork and exec per task.
 * Single-threaded (vfork shares its memory with the child until exec); exits when the agent
 * closes the socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/exec/exec_server_proto.h"
#include "agent/exec/helper_server.h"

extern char **environ;

typedef struct running {
  pid_t pid;
  uint32_t id;
} running;

typedef struct server {
  int sock;
  running *run;
  size_t n_run, cap_run;
  unsigned char buf[MU_XS_MAX_REQ];
} server;

static void reply(server *s, const mu_xs_rep *r) {
  while (send(s->sock, r, sizeof *r, MSG_NOSIGNAL) < 0) {
    if (errno == EINTR) continue;
    _exit(errno == EPIPE || errno == ECONNRESET ? 0 : 1); /* the agent is gone */
  }
}

/* ---- the vfork child: syscalls only, no allocation, no stdio ---- */

static void child_fail(const char *what, const char *arg, int err, int code) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "muster-exec: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(err));
  if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  _exit(code);
}

static void child_run(const mu_xs_req *r, const int *fds, const char *cwd, char **joins, char **argv, char **env) {
  int k = 0;
  if (r->has_stdin && dup2(fds[k++], 0) < 0) _exit(126);
  for (int target = 1; target <= 3; target++)
    if (dup2(fds[k++], target) < 0) _exit(126);
  if (setsid() < 0) child_fail("setsid", NULL, errno, 126);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (chdir(cwd) != 0) child_fail("cannot enter", cwd, errno, 126);
  for (uint32_t i = 0; i < r->n_join; i++) {
    int fd = open(joins[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) child_fail("cannot open", joins[i], errno, 126);
    if (write(fd, "0\n", 2) != 2) child_fail("cannot join cgroup", joins[i], errno, 126);
    close(fd);
  }
  const struct {
    int res;
    int64_t v;
  } lims[] = {{RLIMIT_AS, r->rl_as}, {RLIMIT_NPROC, r->rl_nproc}, {RLIMIT_CPU, r->rl_cpu}};
  for (size_t i = 0; i < sizeof lims / sizeof *lims; i++) {
    struct rlimit rl = {(rlim_t)lims[i].v, (rlim_t)lims[i].v};
    if (lims[i].v >= 0 && setrlimit(lims[i].res, &rl) != 0) child_fail("setrlimit", NULL, errno, 126);
  }
  /* Raw syscalls: glibc's set*id would try to reach other threads, and this child borrows the
   * parent's memory. */
  if (r->gid >= 0) {
    gid_t g = (gid_t)r->gid;
    if (syscall(SYS_setgroups, 1, &g) != 0) child_fail("setgroups", NULL, errno, 126);
    if (syscall(SYS_setgid, g) != 0) child_fail("setgid", NULL, errno, 126);
  }
  if (r->uid >= 0) {
    if (syscall(SYS_setuid, (uid_t)r->uid) != 0) child_fail("setuid", NULL, errno, 126);
    if (r->uid != 0 && syscall(SYS_setuid, 0) == 0) child_fail("could regain root after setuid", NULL, EPERM, 126);
  }
  environ = env; /* execvp looks the program up in the task's PATH; the parent restores it */
  execvp(argv[0], argv);
  int e = errno;
  char msg[512];
  int n = snprintf(msg, sizeof msg, "muster-exec: cannot run \"%s\": %s\n", argv[0], strerror(e));
  if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  _exit(e == ENOENT ? 127 : 126);
}

/* ---- the server ---- */

/* Splits the string block into cwd and the three lists (pointers into s->buf, NULL-ended). */
static int parse(const mu_xs_req *r, char *strings, size_t len, char **ret_cwd, char ***ret_lists) {
  size_t want = 1 + (size_t)r->n_join + r->n_argv + r->n_env;
  if (r->n_argv == 0 || want > len) return -EINVAL;
  char **all = calloc(want + 3, sizeof *all);
  if (all == NULL) return -ENOMEM;
  size_t n = 0, off = 0;
  while (n < want && off < len) {
    char *e = memchr(strings + off, '\0', len - off);
    if (e == NULL) break;
    all[n++] = strings + off;
    off = (size_t)(e - strings) + 1;
  }
  if (n != want) {
    free(all);
    return -EINVAL;
  }
  /* all: cwd, joins..., NULL, argv..., NULL, env..., NULL */
  char **lists = calloc(want + 3, sizeof *lists);
  if (lists == NULL) {
    free(all);
    return -ENOMEM;
  }
  size_t k = 0, i = 1;
  for (uint32_t j = 0; j < r->n_join; j++) lists[k++] = all[i++];
  lists[k++] = NULL;
  for (uint32_t j = 0; j < r->n_argv; j++) lists[k++] = all[i++];
  lists[k++] = NULL;
  for (uint32_t j = 0; j < r->n_env; j++) lists[k++] = all[i++];
  lists[k++] = NULL;
  *ret_cwd = all[0];
  free(all);
  *ret_lists = lists;
  return 0;
}

static int track(server *s, pid_t pid, uint32_t id) {
  if (s->n_run == s->cap_run) {
    size_t cap = s->cap_run ? 2 * s->cap_run : 16;
    running *n = realloc(s->run, cap * sizeof *n);
    if (n == NULL) return -ENOMEM;
    s->run = n;
    s->cap_run = cap;
  }
  s->run[s->n_run++] = (running){pid, id};
  return 0;
}

static void handle_request(server *s, ssize_t len, int *fds, int n_fds) {
  mu_xs_req r;
  mu_xs_rep rep = {.magic = MU_XS_MAGIC, .kind = MU_XS_REFUSED};
  int err = EINVAL;
  char *cwd = NULL, **lists = NULL;
  if ((size_t)len < sizeof r) goto refuse;
  memcpy(&r, s->buf, sizeof r);
  rep.id = r.id;
  if (r.magic != MU_XS_MAGIC || r.strings_len != (size_t)len - sizeof r || n_fds != (r.has_stdin ? 4 : 3)) goto refuse;
  err = -parse(&r, (char *)s->buf + sizeof r, r.strings_len, &cwd, &lists);
  if (err != 0) goto refuse;
  char **joins = lists, **argv = lists + r.n_join + 1, **env = argv + r.n_argv + 1;
  char **saved_env = environ;
  pid_t pid = vfork();
  if (pid == 0) child_run(&r, fds, cwd, joins, argv, env);
  environ = saved_env;
  err = errno;
  free(lists);
  if (pid >= 0) err = -track(s, pid, r.id);
  if (pid < 0 || err != 0) {
    if (pid > 0) kill(pid, SIGKILL); /* untracked: it would never be reported */
    goto refuse;
  }
  rep.kind = MU_XS_STARTED;
  rep.pid = pid;
  for (int i = 0; i < n_fds; i++) close(fds[i]);
  reply(s, &rep);
  return;
refuse:
  for (int i = 0; i < n_fds; i++) close(fds[i]);
  rep.err = err;
  reply(s, &rep);
}

static void reap(server *s) {
  int status;
  struct rusage ru;
  pid_t pid;
  while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
    for (size_t i = 0; i < s->n_run; i++) {
      if (s->run[i].pid != pid) continue;
      mu_xs_rep rep = {.magic = MU_XS_MAGIC, .kind = MU_XS_EXITED, .id = s->run[i].id, .pid = pid};
      rep.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      rep.sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      rep.utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
      rep.stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
      rep.maxrss_kb = ru.ru_maxrss;
      rep.inblock = ru.ru_inblock;
      rep.oublock = ru.ru_oublock;
      s->run[i] = s->run[--s->n_run];
      reply(s, &rep);
      break;
    }
  }
}

static void read_requests(server *s) {
  for (;;) {
    union {
      struct cmsghdr h;
      char space[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    struct iovec iov = {s->buf, sizeof s->buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.space, .msg_controllen = sizeof cm.space};
    ssize_t n = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) _exit(0); /* the agent closed its end, or died */
    int fds[4], n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (n_fds < 4) fds[n_fds++] = fd;
        else close(fd);
      }
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      for (int i = 0; i < n_fds; i++) close(fds[i]);
      n_fds = 0; /* refused below for the fd count */
    }
    handle_request(s, n, fds, n_fds);
  }
}

int mu_helper_server(void) {
  static server s; /* the buffer is large: not on the stack */
  s.sock = MU_XS_FD;
  if (fcntl(s.sock, F_SETFD, FD_CLOEXEC) != 0) {
    dprintf(2, "muster-exec --server: fd %d is not open: %s\n", MU_XS_FD, strerror(errno));
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    dprintf(2, "muster-exec --server: signalfd: %s\n", strerror(errno));
    return 2;
  }
  mu_xs_rep ready = {.magic = MU_XS_MAGIC, .kind = MU_XS_READY};
  reply(&s, &ready);
  for (;;) {
    struct pollfd pf[2] = {{s.sock, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (pf[1].revents) {
      struct signalfd_siginfo si[16];
      while (read(sfd, si, sizeof si) > 0) {}
      reap(&s);
    }
    if (pf[0].revents) read_requests(&s);
  }
}

/* The agent's side of the exec server (exec_server.h): starts `muster-exec --server` with
 * posix_spawn on a socketpair, sends spawn requests with the task's pipe ends, reads STARTED /
 * EXITED / REFUSED replies on a uv_poll_t and hands them to the supervisor (mu_proc_xs_*),
 * fails the processes in flight when the server dies and starts a new one on the next request,
 * and reaps every server it started. */
#define _GNU_SOURCE
#include "agent/exec/exec_server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/exec/exec_server_proto.h"
#include "agent/exec/supervisor_int.h"
#include "lib/base/log.h"

#define MU_XS_ZOMBIES 16 /* dead servers not reaped yet */

struct mu_exec_server {
  uv_loop_t *loop;
  char *helper;
  int fd; /* our end; -1 while no server runs */
  pid_t pid;
  uv_poll_t *poll; /* per server; freed in its close callback */
  uv_signal_t chld;
  pid_t zombies[MU_XS_ZOMBIES];
  mu_proc *procs; /* requests in flight and processes running */
  uint32_t next_id;
  mu_exec_server_stats st;
  bool ready;    /* the current server said READY */
  bool disabled; /* one died before READY: not an exec server; one-shot only */
  bool closing;
  void (*close_cb)(void *);
  void *close_arg;
  unsigned char buf[MU_XS_MAX_REQ];
};

static void on_poll_closed(uv_handle_t *h) { free(h); }

static void reap_zombies(mu_exec_server *s) {
  for (int i = 0; i < MU_XS_ZOMBIES; i++)
    if (s->zombies[i] > 0 && waitpid(s->zombies[i], NULL, WNOHANG) != 0) s->zombies[i] = 0;
}

static bool has_zombies(const mu_exec_server *s) {
  for (int i = 0; i < MU_XS_ZOMBIES; i++)
    if (s->zombies[i] > 0) return true;
  return false;
}

static void on_chld_closed(uv_handle_t *h) {
  mu_exec_server *s = h->data;
  void (*cb)(void *) = s->close_cb;
  void *arg = s->close_arg;
  free(s->helper);
  free(s);
  if (cb != NULL) cb(arg);
}

static void maybe_closed(mu_exec_server *s) {
  if (!s->closing || s->fd >= 0 || has_zombies(s) || uv_is_closing((uv_handle_t *)&s->chld)) return;
  uv_close((uv_handle_t *)&s->chld, on_chld_closed);
}

static void on_chld(uv_signal_t *h, int signum) {
  (void)signum;
  mu_exec_server *s = h->data;
  reap_zombies(s);
  maybe_closed(s);
}

/* Stops talking to the current server, kills it (it may be alive but broken) and keeps its pid
 * for reaping. The processes it had are lost. */
static void drop_server(mu_exec_server *s, const char *why) {
  if (s->fd < 0) return;
  uv_close((uv_handle_t *)s->poll, on_poll_closed);
  s->poll = NULL;
  close(s->fd);
  s->fd = -1;
  if (s->pid > 0) {
    (void)kill(s->pid, SIGKILL);
    int slot = -1;
    for (int i = 0; i < MU_XS_ZOMBIES && slot < 0; i++)
      if (s->zombies[i] == 0) slot = i;
    if (slot >= 0) s->zombies[slot] = s->pid;
    else (void)waitpid(s->pid, NULL, 0); /* full: only after 16 deaths in a row; it was SIGKILLed */
    s->pid = 0;
  }
  reap_zombies(s);
  bool never_ready = !s->ready && !s->closing;
  s->ready = false;
  if (never_ready) {
    s->disabled = true;
    mu_warn("exec-server",
            "%s --server exited before it was ready (a muster-exec without --server?); "
            "a one-shot helper per process from now on",
            s->helper);
  }
  if (!s->closing || s->procs != NULL)
    mu_warn("exec-server", "%s%s", why, s->procs != NULL ? "; failing the tasks it had started" : "");
  mu_proc *lost = s->procs; /* detached: their callbacks may already start a new server */
  s->procs = NULL;
  while (lost != NULL) {
    mu_proc *p = lost;
    lost = p->xs_next;
    p->xs = NULL;
    p->xs_next = NULL;
    if (never_ready) {
      mu_proc_xs_refused(p, ENOEXEC); /* it read no request: nothing started */
    } else {
      s->st.lost++;
      mu_proc_xs_lost(p);
    }
  }
}

static mu_proc *take(mu_exec_server *s, uint32_t id, bool unlink) {
  for (mu_proc **pp = &s->procs; *pp != NULL; pp = &(*pp)->xs_next) {
    mu_proc *p = *pp;
    if (p->xs_id != id) continue;
    if (unlink) {
      *pp = p->xs_next;
      p->xs = NULL;
      p->xs_next = NULL;
    }
    return p;
  }
  return NULL;
}

static void on_reply(mu_exec_server *s, const mu_xs_rep *r) {
  if (r->magic != MU_XS_MAGIC) return;
  if (r->kind == MU_XS_READY) {
    s->ready = true;
    return;
  }
  mu_proc *p = take(s, r->id, r->kind != MU_XS_STARTED);
  if (p == NULL) return;
  if (r->kind == MU_XS_STARTED) mu_proc_xs_started(p, r->pid);
  else if (r->kind == MU_XS_EXITED) {
    mu_xs_usage u = {r->utime_us, r->stime_us, r->maxrss_kb, r->inblock, r->oublock};
    mu_proc_xs_exited(p, r->code, r->sig, &u);
  } else mu_proc_xs_refused(p, r->err);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  mu_exec_server *s = h->data;
  (void)events;
  if (status < 0) {
    drop_server(s, "exec server socket failed");
    return;
  }
  for (;;) {
    mu_xs_rep r;
    ssize_t n = recv(s->fd, &r, sizeof r, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      drop_server(s, "exec server exited");
      return;
    }
    if ((size_t)n == sizeof r) on_reply(s, &r);
    if (s->fd < 0) return; /* a callback closed it */
  }
}

static int start_server(mu_exec_server *s, mu_err *err) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return mu_err_set(err, MU_EIO, "exec server: socketpair: %s", strerror(errno));
  int buf = MU_XS_MAX_REQ * 4;
  (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  /* Its own session: a terminal's ^C for the agent must not take the server down first. */
  int rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, sv[1], MU_XS_FD);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, MU_XS_FD + 1);
  char *argv[] = {s->helper, "--server", NULL};
  char *env[] = {NULL};
  pid_t pid = 0;
  if (rc == 0) rc = posix_spawnp(&pid, s->helper, &fa, &attr, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    return mu_err_set(err, rc == ENOENT ? MU_ENOENT : MU_EIO, "exec server: cannot start %s --server: %s", s->helper,
                      strerror(rc));
  }
  s->poll = malloc(sizeof *s->poll);
  if (s->poll == NULL || uv_poll_init(s->loop, s->poll, sv[0]) != 0) {
    free(s->poll);
    s->poll = NULL;
    close(sv[0]);
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    return mu_err_set(err, MU_EIO, "exec server: cannot watch its socket");
  }
  s->poll->data = s;
  s->fd = sv[0];
  s->pid = pid;
  s->st.starts++;
  uv_poll_start(s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  return 0;
}

int mu_exec_server_new(uv_loop_t *loop, const char *helper_path, mu_exec_server **ret, mu_err *err) {
  mu_exec_server *s = calloc(1, sizeof *s);
  if (s != NULL) s->helper = strdup(helper_path);
  if (s == NULL || s->helper == NULL) {
    free(s);
    return mu_err_set(err, MU_ENOMEM, "exec server: out of memory");
  }
  s->loop = loop;
  s->fd = -1;
  uv_signal_init(loop, &s->chld);
  s->chld.data = s;
  /* The server itself starts with the first spawn: an agent that runs nothing has none. */
  int rc = uv_signal_start(&s->chld, on_chld, SIGCHLD);
  if (rc != 0) rc = mu_err_set(err, MU_EIO, "exec server: SIGCHLD watch: %s", uv_strerror(rc));
  else if (access(helper_path, X_OK) != 0)
    rc = mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "exec server: %s: %s", helper_path, strerror(errno));
  if (rc != 0) {
    s->closing = true;
    maybe_closed(s); /* frees s on the loop */
    return rc;
  }
  *ret = s;
  return 0;
}

pid_t mu_exec_server_pid(const mu_exec_server *s) { return s->pid; }

void mu_exec_server_stats_get(const mu_exec_server *s, mu_exec_server_stats *ret) { *ret = s->st; }

void mu_exec_server_close(mu_exec_server *s, void (*cb)(void *arg), void *arg) {
  s->closing = true;
  s->close_cb = cb;
  s->close_arg = arg;
  drop_server(s, "exec server closed");
  maybe_closed(s);
}

static bool put(mu_exec_server *s, size_t *off, const char *str) {
  size_t n = strlen(str) + 1;
  if (*off + n > sizeof s->buf) return false;
  memcpy(s->buf + *off, str, n);
  *off += n;
  return true;
}

/* Packs the header, cwd, joins, argv and env in s->buf; returns the length or 0 when it does
 * not fit. */
static size_t pack(mu_exec_server *s, mu_xs_req *h, const mu_launch *l, const char *const *argv, char *const env[],
                   const char *cwd) {
  size_t off = sizeof *h;
  bool ok = put(s, &off, cwd);
  for (int i = 0; ok && i < l->n_join; i++) ok = put(s, &off, l->joins[i]);
  h->n_join = (uint32_t)l->n_join;
  for (h->n_argv = 0; ok && argv[h->n_argv] != NULL; h->n_argv++) ok = put(s, &off, argv[h->n_argv]);
  for (h->n_env = 0; ok && env[h->n_env] != NULL; h->n_env++) ok = put(s, &off, env[h->n_env]);
  if (!ok) return 0;
  h->strings_len = (uint32_t)(off - sizeof *h);
  memcpy(s->buf, h, sizeof *h);
  return off;
}

int mu_proc_spawn_via_server(mu_proc *p, mu_exec_server *s, const mu_launch *l, const char *const *argv,
                             char *const env[], const char *cwd) {
  if (s->closing) return -ECANCELED;
  if (s->disabled) {
    s->st.fallbacks++;
    return -ENOEXEC;
  }
  if (s->fd < 0) {
    mu_err err = {0};
    if (start_server(s, &err) != 0) {
      mu_warn("exec-server", "%s; using the one-shot helper", err.msg);
      s->st.fallbacks++;
      return -EIO;
    }
  }
  mu_xs_req h = {.magic = MU_XS_MAGIC,
                 .id = ++s->next_id,
                 .uid = l->uid,
                 .gid = l->gid,
                 .rl_as = l->rl_as,
                 .rl_nproc = l->rl_nproc,
                 .rl_cpu = l->rl_cpu,
                 .has_stdin = p->stdin_copy != NULL};
  size_t len = pack(s, &h, l, argv, env, cwd);
  if (len == 0) {
    s->st.fallbacks++;
    return -EMSGSIZE;
  }
  int parent[MU_PIPE_COUNT];
  int rc = mu_proc_make_pipes(p, false, p->xs_child, parent);
  if (rc != 0) return rc;
  int fds[4], n_fds = 0;
  for (int i = MU_PIPE_STDIN; i <= MU_PIPE_CONTROL; i++)
    if (p->xs_child[i] >= 0) fds[n_fds++] = p->xs_child[i];
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof fds)];
  } cm;
  memset(&cm, 0, sizeof cm);
  struct iovec iov = {s->buf, len};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.space, .msg_controllen = CMSG_SPACE(n_fds * sizeof(int))};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
  memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
  ssize_t n;
  do n = sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)len) {
    /* Socket full or server gone (its death is seen on the poll): the one-shot helper makes
     * its own pipes. */
    rc = n < 0 ? -errno : -EIO;
    mu_proc_close_fds(p->xs_child);
    mu_proc_close_fds(parent);
    s->st.fallbacks++;
    return rc;
  }
  mu_proc_open_pipes(p, parent);
  p->xs = s;
  p->xs_id = h.id;
  p->xs_next = s->procs;
  s->procs = p;
  s->st.spawns++;
  return 0;
}

void mu_exec_server_forget(mu_exec_server *s, mu_proc *p) { (void)take(s, p->xs_id, true); }

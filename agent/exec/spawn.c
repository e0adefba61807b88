/* Starts muster-exec for the supervisor with posix_spawn (a vfork-like clone that shares the
 * agent's address space until exec) instead of libuv's uv_spawn, which forks the whole agent
 * and copies its page tables for every task. The child gets a new session, the task's cwd,
 * default signal dispositions, an empty signal mask, and only fds 0-4 (stdin, stdout, stderr,
 * control, report). It is reaped by a SIGCHLD watcher per process (waitpid of that pid only,
 * so libuv's own children and anyone else's are left alone). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/exec/supervisor_int.h"

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* The child's end of a pipe must not sit on 0-4, where dup2 of another pipe could replace it
 * before its own dup2 runs. */
static int lift_fd(int *fd) {
  if (*fd >= MU_PIPE_COUNT) return 0;
  int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 16);
  if (nfd < 0) return -errno;
  close(*fd);
  *fd = nfd;
  return 0;
}

static void on_sigchld(uv_signal_t *h, int signum) {
  mu_proc *p = h->data;
  (void)signum;
  int status = 0;
  pid_t r = waitpid(p->pid, &status, WNOHANG);
  if (r != p->pid) return;
  uv_signal_stop(h);
  mu_proc_exited(p, WIFEXITED(status) ? WEXITSTATUS(status) : 0, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void mu_proc_close_fds(int fds[MU_PIPE_COUNT]) {
  for (int i = 0; i < MU_PIPE_COUNT; i++) close_fd(&fds[i]);
}

int mu_proc_make_pipes(mu_proc *p, bool with_report, int child[MU_PIPE_COUNT], int parent[MU_PIPE_COUNT]) {
  for (int i = 0; i < MU_PIPE_COUNT; i++) child[i] = parent[i] = -1;
  int rc = 0;
  for (int i = 0; i < MU_PIPE_COUNT; i++) {
    if ((i == MU_PIPE_STDIN && p->stdin_copy == NULL) || (i == MU_PIPE_REPORT && !with_report)) continue;
    int fds[2];
    rc = uv_pipe(fds, 0, 0);
    if (rc != 0) goto fail; /* both ends close-on-exec */
    child[i] = i == MU_PIPE_STDIN ? fds[0] : fds[1];
    parent[i] = i == MU_PIPE_STDIN ? fds[1] : fds[0];
    rc = lift_fd(&child[i]);
    if (rc != 0) goto fail;
  }
  return 0;
fail:
  mu_proc_close_fds(child);
  mu_proc_close_fds(parent);
  return rc;
}

void mu_proc_open_pipes(mu_proc *p, int parent[MU_PIPE_COUNT]) {
  for (int i = 0; i < MU_PIPE_COUNT; i++) {
    if (parent[i] < 0 || uv_pipe_open(&p->pipes[i], parent[i]) != 0) {
      close_fd(&parent[i]);
      if (i != MU_PIPE_STDIN) p->pipe_eof[i] = true; /* nothing will come: no report pipe */
    }
    parent[i] = -1; /* the handle owns it now */
  }
}

int mu_proc_spawn_helper(mu_proc *p, const char *file, char *const argv[], char *const env[], const char *cwd) {
  int child[MU_PIPE_COUNT], parent[MU_PIPE_COUNT];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  bool have_fa = false, have_attr = false;
  int rc = mu_proc_make_pipes(p, true, child, parent);
  if (rc != 0) return rc;
  rc = -posix_spawn_file_actions_init(&fa);
  if (rc != 0) goto fail;
  have_fa = true;
  rc = -posix_spawnattr_init(&attr);
  if (rc != 0) goto fail;
  have_attr = true;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  rc = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0) rc = -posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = -posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = -posix_spawn_file_actions_addchdir_np(&fa, cwd);
  if (rc == 0 && child[MU_PIPE_STDIN] < 0)
    rc = -posix_spawn_file_actions_addopen(&fa, MU_PIPE_STDIN, "/dev/null", O_RDONLY, 0);
  for (int i = 0; i < MU_PIPE_COUNT && rc == 0; i++)
    if (child[i] >= 0) rc = -posix_spawn_file_actions_adddup2(&fa, child[i], i);
  if (rc == 0) rc = -posix_spawn_file_actions_addclosefrom_np(&fa, MU_PIPE_COUNT);
  if (rc != 0) goto fail;

  uv_signal_init(p->loop, &p->sigchld);
  p->sigchld.data = p;
  p->spawned = true;
  p->open_handles++;
  /* Watch before the child exists, so an exit right away is not missed. */
  rc = uv_signal_start(&p->sigchld, on_sigchld, SIGCHLD);
  if (rc != 0) goto fail;
  pid_t pid = 0;
  rc = -posix_spawnp(&pid, file, &fa, &attr, argv, env);
  if (rc != 0) {
    uv_signal_stop(&p->sigchld);
    goto fail;
  }
  p->pid = pid;
  mu_proc_open_pipes(p, parent);
fail:
  mu_proc_close_fds(child);
  mu_proc_close_fds(parent);
  if (have_fa) posix_spawn_file_actions_destroy(&fa);
  if (have_attr) posix_spawnattr_destroy(&attr);
  return rc;
}

/* The supervisor's private state, shared by supervisor.c (spawn, kill, exit) and output.c
 * (pipe reading, output bounds, control and report channels). Not part of the API. */
#ifndef MU_SUPERVISOR_INT_H
#define MU_SUPERVISOR_INT_H

#include "agent/exec/supervisor.h"

enum { MU_PIPE_STDIN = 0, MU_PIPE_STDOUT, MU_PIPE_STDERR, MU_PIPE_CONTROL, MU_PIPE_REPORT, MU_PIPE_COUNT };

struct mu_proc {
  uv_loop_t *loop;
  uv_signal_t sigchld;           /* reaps pid (spawn.c) */
  uv_pipe_t pipes[MU_PIPE_COUNT];
  bool pipe_eof[MU_PIPE_COUNT];
  uv_timer_t timeout_timer, grace_timer, drain_timer, rmdir_timer;
  uv_write_t wreq;
  int open_handles;             /* freed when the last close callback runs */
  bool spawned;                 /* sigchld initialised */

  mu_proc_callbacks cb;
  void *arg;
  mu_cgroup *cg;
  mu_cgroup_limits limits;
  const char *limits_via;
  mu_ctl_reader ctl;
  char *stdin_copy;
  size_t stdin_len;

  int64_t timeout_ms, grace_ms, drain_ms;
  int64_t start_ms, end_ms;
  uint64_t out_limit, out_bytes, dropped;
  pid_t pid;
  bool exited, done, killing;
  mu_kill_reason killed_for;
  int64_t exit_status;
  int term_signal;
  int rmdir_tries;

  char report[256];
  size_t report_len;
  bool have_report;
  int64_t rep_user_us, rep_sys_us, rep_maxrss_kb;
  bool have_cg_stats;
  mu_cgroup_stats cg_stats;

  char read_buf[MU_PROC_CHUNK_MAX];
};

/* Starts muster-exec as pid with the pipes in p (spawn.c); p->stdin_copy set means a stdin
 * pipe. Returns 0 or a negative errno (e.g. -ENOENT for a missing helper or cwd). */
int mu_proc_spawn_helper(mu_proc *p, const char *file, char *const argv[], char *const env[], const char *cwd);
/* The helper exited (status as from waitpid); called once. */
void mu_proc_exited(mu_proc *p, int64_t exit_status, int term_signal);
void mu_proc_start_reading(mu_proc *p);
void mu_proc_pipe_eof(mu_proc *p, int idx);
void mu_proc_maybe_done(mu_proc *p);
void mu_strv_free(char **v);

#endif

/* The supervisor's private state, shared by supervisor.c (spawn, kill, exit) and output.c
 * (pipe reading, output bounds, control and report channels). Not part of the API. */
#ifndef MU_SUPERVISOR_INT_H
#define MU_SUPERVISOR_INT_H

#include "agent/exec/exec_server.h"
#include "agent/exec/supervisor.h"

enum { MU_PIPE_STDIN = 0, MU_PIPE_STDOUT, MU_PIPE_STDERR, MU_PIPE_CONTROL, MU_PIPE_REPORT, MU_PIPE_COUNT };

/* What the helper does before exec (supervisor.c plans it; the one-shot helper gets it as
 * options, the exec server in its request). */
typedef struct mu_launch {
  const char *joins[MU_CG_COUNT]; /* cgroup.procs files, borrowed from the mu_cgroup */
  int n_join;
  int64_t rl_as, rl_nproc, rl_cpu; /* -1: none */
  int32_t uid, gid;                /* -1: the agent's */
} mu_launch;

struct mu_proc {
  uv_loop_t *loop;
  uv_signal_t sigchld; /* reaps pid (spawn.c) */
  uv_pipe_t pipes[MU_PIPE_COUNT];
  bool pipe_eof[MU_PIPE_COUNT];
  uv_timer_t timeout_timer, grace_timer, drain_timer, rmdir_timer;
  uv_write_t wreq;
  int open_handles; /* freed when the last close callback runs */
  bool spawned;     /* sigchld initialised */

  mu_proc_callbacks cb;
  void *arg;
  mu_cgroup *cg;
  mu_cgroup_pool *cg_pool; /* cg came from (and goes back to) this pool */
  mu_cgroup_limits limits;
  const char *limits_via;
  mu_ctl_reader ctl;
  char *stdin_copy;
  size_t stdin_len;

  int64_t timeout_ms, grace_ms, drain_ms;
  int64_t start_ms, end_ms;
  uint64_t out_limit, out_bytes, dropped;
  pid_t pid;
  int last_sig; /* the last signal sent to the group (0: none) */
  bool exited, done, killing;

  /* through the exec server (exec_server.c) */
  mu_exec_server *xs; /* set while registered there */
  uint32_t xs_id;
  struct mu_proc *xs_next;
  int xs_child[MU_PIPE_COUNT]; /* the task's pipe ends, held until the server has them */
  bool xs_lost;                /* the server died under it */
  int xs_refused;              /* errno: the server could not start it */
  mu_kill_reason killed_for;
  int64_t exit_status;
  int term_signal;
  int rmdir_tries;

  char report[256];
  size_t report_len;
  bool have_report;
  int64_t rep_user_us, rep_sys_us, rep_maxrss_kb;
  int64_t rep_in_blocks, rep_out_blocks; /* rusage ru_inblock / ru_oublock (512 B), -1 unknown */
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
void mu_proc_kill_group(mu_proc *p, int sig);

/* Creates the pipes, close-on-exec, the child's ends above fd 4 (-1 for none: stdin without
 * data, the report pipe unless with_report). Returns 0 or a negative errno, with none left. */
int mu_proc_make_pipes(mu_proc *p, bool with_report, int child[MU_PIPE_COUNT], int parent[MU_PIPE_COUNT]);
/* Hands the parent ends to p's pipe handles (a missing one reads as EOF at once). */
void mu_proc_open_pipes(mu_proc *p, int parent[MU_PIPE_COUNT]);
void mu_proc_close_fds(int fds[MU_PIPE_COUNT]);

/* Sends the spawn to the exec server (exec_server.c). 0: sent, and p hears back through
 * mu_proc_xs_*; else a negative errno and nothing happened (use the one-shot helper). */
int mu_proc_spawn_via_server(mu_proc *p, mu_exec_server *s, const mu_launch *l, const char *const *argv,
                             char *const env[], const char *cwd);
/* Unregisters p (freed while still waiting for the server: only on teardown). */
void mu_exec_server_forget(mu_exec_server *s, mu_proc *p);
void mu_proc_xs_started(mu_proc *p, pid_t pid);
/* rusage of the exited task: CPU, max RSS, block counts (512-byte units) */
typedef struct mu_xs_usage {
  int64_t utime_us, stime_us, maxrss_kb, inblock, oublock;
} mu_xs_usage;
void mu_proc_xs_exited(mu_proc *p, int code, int sig, const mu_xs_usage *u);
void mu_proc_xs_refused(mu_proc *p, int err);
void mu_proc_xs_lost(mu_proc *p);
void mu_proc_pipe_eof(mu_proc *p, int idx);
void mu_proc_maybe_done(mu_proc *p);
void mu_strv_free(char **v);

#endif

/* The task supervisor: runs one process on a libuv loop, in its own session and process group,
 * started by muster-exec, which joins the per-process cgroup and sets rlimits and the run-as
 * user before exec, and reports wait4() rusage: either the long-lived exec server when opts
 * give one (exec_server.h), or a one-shot helper in front of the process (exec_helper.c).
 *
 * - stdin is fed from opts->stdin_data (or /dev/null); stdout and stderr are read separately
 *   and handed to on_output as chunks (at most 64 KiB each), up to output_limit bytes in total;
 *   the rest is read and dropped, and counted.
 * - fd 3 in the process is the control channel (MUSTER_CONTROL=3, see control.h).
 * - Timeout and mu_proc_kill(): SIGTERM to the whole group, grace_ms, then SIGKILL to the whole
 *   group and everything left in the cgroup. When the main process exits on its own, whatever
 *   it left behind in its group/cgroup is killed too: no orphan outlives its task.
 * - Metrics: wall time; user/sys CPU and max RSS from muster-exec's wait4(), or from the
 *   cgroup's cpuacct when the helper was killed before reporting; cgroup memory peak.
 *
 * The process using this must ignore SIGPIPE (a task that closes stdin early must not kill the
 * agent). All calls and callbacks run on the loop thread. */
#ifndef MU_SUPERVISOR_H
#define MU_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "agent/exec/cgroup.h"
#include "agent/exec/cgroup_pool.h"
#include "agent/exec/control.h"
#include "agent/exec/runas.h"
#include "lib/base/err.h"

#define MU_PROC_CONTROL_FD 3
#define MU_PROC_CHUNK_MAX 65536

typedef struct mu_proc mu_proc;

typedef enum { MU_KILL_NONE = 0, MU_KILL_TIMEOUT, MU_KILL_CANCEL, MU_KILL_REQUEST } mu_kill_reason;

typedef struct mu_proc_result {
  int exit_code;             /* -1 when killed by a signal */
  int signal;                /* 0 unless killed by a signal */
  mu_kill_reason killed_for; /* why the agent ended it, or MU_KILL_NONE */
  bool oom_killed;
  int64_t wall_ms;
  int64_t user_cpu_us, sys_cpu_us;  /* -1 when unknown */
  int64_t max_rss_bytes;            /* -1 when unknown */
  int64_t cgroup_memory_peak_bytes; /* -1 without a memory cgroup */
  /* block IO: the cgroup's v2 io.stat, else wait4 rusage blocks x 512; -1 when unknown */
  int64_t io_read_bytes, io_write_bytes;
  uint64_t output_bytes;  /* delivered to on_output */
  uint64_t dropped_bytes; /* past output_limit */
  const char *limits_via; /* "cgroup-v1", "cgroup-v2", "rlimit" or "none" */
  char message[256];      /* "exit code 3", "killed by signal 9 (Killed): memory limit..." */
} mu_proc_result;

typedef struct mu_proc_callbacks {
  /* stream: 1 stdout, 2 stderr. data valid during the call. */
  void (*on_output)(mu_proc *p, void *arg, int stream, const char *data, size_t len);
  /* A control line (progress / param / bad). May be NULL: lines are then dropped. */
  void (*on_control)(mu_proc *p, void *arg, const mu_ctl_line *line);
  /* Once, after the process exited and its pipes are drained. p is freed after return. */
  void (*on_exit)(mu_proc *p, void *arg, const mu_proc_result *res);
} mu_proc_callbacks;

typedef struct mu_exec_server mu_exec_server;

typedef struct mu_proc_opts {
  const char *helper_path;     /* muster-exec; required */
  mu_exec_server *exec_server; /* borrowed; NULL: a one-shot helper per process (exec_server.h) */
  const char *const *argv;     /* NULL-terminated; argv[0] looked up in env's PATH */
  const char *const *env;      /* NULL-terminated K=V, used as the whole environment;
                                 * MU_PROC_CONTROL_FD's MUSTER_CONTROL=3 is appended */
  const char *cwd;             /* required, must exist */
  const void *stdin_data;      /* copied; NULL = /dev/null */
  size_t stdin_len;
  mu_runas run_as;                   /* .set = false: same user as the agent */
  const mu_cgroup_root *cgroup_root; /* NULL or mode NONE: rlimit fallback */
  const char *cgroup_leaf;           /* unique group name, required with a cgroup root */
  mu_cgroup_pool *cgroup_pool;       /* borrowed, may be NULL: a process without limits takes its
                                 * group from here instead of a fresh cgroup_leaf */
  mu_cgroup_limits limits;
  int64_t timeout_ms;         /* 0 = none */
  int64_t limit_window_ms;    /* without a cpu cgroup, RLIMIT_CPU = cores x this (or
                                 * x timeout_ms when 0); no RLIMIT_CPU when both are 0 */
  int64_t grace_ms;           /* TERM -> KILL; 0 = 5000 */
  int64_t drain_ms;           /* max wait for pipe EOF after exit; 0 = 2000 */
  uint64_t output_limit;      /* stdout+stderr bytes delivered; 0 = unlimited */
  size_t control_max_line;    /* 0 = 4096 */
  uint32_t control_max_lines; /* 0 = 10000 */
  mu_proc_callbacks cb;
  void *arg;
  const char *const *helper_args; /* NULL-terminated muster-exec options added before "--"
                                   * (the task sandbox's --sb-*); NULL = none */
} mu_proc_opts;

/* Starts the process. On success *ret is owned by the supervisor (freed after on_exit
 * returns and its handles close; keep the loop running) and on_exit will be called once.
 * On failure nothing runs and on_exit is never called: MU_EINVAL (bad opts), MU_EIO
 * (cgroup), or the spawn error (e.g. helper missing) with a message. */
int mu_proc_spawn(uv_loop_t *loop, const mu_proc_opts *opts, mu_proc **ret, mu_err *err);

/* TERM to the group now, KILL after the grace period. The first reason sticks. No-op once
 * the process exited. */
void mu_proc_kill(mu_proc *p, mu_kill_reason reason);

pid_t mu_proc_pid(const mu_proc *p);

#endif

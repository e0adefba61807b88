/* The agent-side task runner: what the agent binary calls when the control plane assigns or
 * cancels a task. It parses the spec's common fields, picks the plugin for the task type,
 * gives each attempt a fresh task dir, runs the plugin on the loop (its processes through the
 * supervisor, with the spec's timeout, limits, run-as user and env), and reports every state
 * change, output chunk, progress report and output param to the agent's sink.
 *
 * Concurrency: `slots` attempts run at once, at most `max` of a type listed in `type_slots`.
 * An assign that finds no room waits in a bounded local queue, highest spec `priority` first
 * and FIFO within a priority, and starts when a slot (of its type) frees; a queued attempt
 * whose type is at its cap does not hold back others behind it.
 *
 * Events per attempt: STARTING (when it gets a slot: at assign, or later when queued),
 * RUNNING (plugin started), output/progress/param while it runs, then one final state
 * (SUCCEEDED/FAILED/TIMED_OUT/CANCELLED) with metrics. A queued attempt sends nothing until it
 * starts; cancelled while queued it sends only CANCELLED. All calls and callbacks run on the
 * loop thread. The process must ignore SIGPIPE. */
#ifndef MU_RUNNER_H
#define MU_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "agent/exec/event.h"
#include "agent/exec/plugin_host.h"
#include "agent/exec/sandbox.h"
#include "lib/base/err.h"

typedef struct mu_runner mu_runner;

typedef enum {
  MU_RETAIN_NEVER = 0,      /* remove the task dir when the attempt ends */
  MU_RETAIN_ON_FAILURE = 1, /* keep it when the attempt did not succeed */
  MU_RETAIN_ALWAYS = 2,
} mu_retention;

/* A cap on the running attempts of one task type. */
typedef struct mu_runner_type_slot {
  const char *type; /* "python", ... */
  uint32_t max;     /* at least 1 */
} mu_runner_type_slot;

#define MU_RUNNER_MAX_TYPE_SLOTS 64

typedef struct mu_runner_config {
  uint32_t slots;                        /* concurrent attempts; 0 = 4 */
  uint32_t queue_max;                    /* attempts waiting for a slot; 0 = 1024 */
  const mu_runner_type_slot *type_slots; /* per-type caps (copied); NULL = none */
  size_t n_type_slots;                   /* at most MU_RUNNER_MAX_TYPE_SLOTS */
  const char *spool_dir;                 /* required; task dirs go in <spool_dir>/work */
  const char *agent_id;                  /* required */
  const char *helper_path;               /* muster-exec; required to run processes */
  const char *run_as;                    /* default user[:group] when the spec has none; NULL = agent's;
                                    resolved per task (a missing user fails the task) */
  mu_retention retention;
  uint64_t output_limit;      /* default per-attempt output cap; 0 = 16 MiB */
  int64_t grace_ms;           /* TERM -> KILL; 0 = 5000 */
  bool inherit_env;           /* pass the agent's environment to tasks (default: PATH only) */
  bool no_cgroups;            /* skip cgroups, use rlimits only */
  bool no_cgroup_pool;        /* a fresh cgroup leaf for every process, also without limits
                                  * (cgroup_pool.h) */
  bool no_exec_server;        /* a one-shot muster-exec per process instead of one long-lived
                                  * `muster-exec --server` (exec_server.h) */
  const char *cgroup_name;    /* sub-group name under the agent's cgroup; NULL = "muster" */
  size_t control_max_line;    /* 0 = 4096 */
  uint32_t control_max_lines; /* 0 = 10000 */
  uint32_t max_params;        /* per attempt; 0 = 256 */
  uint32_t dedup_history;     /* finished (task, attempt) pairs remembered; 0 = 4096 */
  /* Optional: runs right after an attempt's fresh task dir is made, before anything else is
   * put in it (the agent moves the task's unpacked bundle in). Non-zero refuses the assign
   * with err. */
  int (*prepare_dir)(void *arg, const char *task_id, uint32_t attempt, const char *task_dir, mu_err *err);
  void *prepare_arg;
  /* Optional: called once per attempt that really started, right after its plugin's start
   * succeeded (for a process: it was spawned); never for one refused or failed before that.
   * The agent raises a bundle's rollback floor here. arg is prepare_arg. */
  void (*started)(void *arg, const char *task_id, uint32_t attempt);
  /* Optional: the agent's task sandbox policy (sandbox.h); borrowed, it must outlive the
   * runner. NULL: only specs with a sandbox section are sandboxed, with the defaults. */
  const mu_sandbox_policy *sandbox;
  /* Processes whose cgroups the start-up sweep leaves alone (the shims of attempts the agent
   * re-adopts, adopt.h); copied while mu_runner_new runs, may be NULL. */
  const pid_t *sweep_keep;
  size_t n_sweep_keep;
} mu_runner_config;

typedef struct mu_runner_sink {
  mu_event_cb on_event; /* required */
  void *arg;
} mu_runner_sink;

typedef struct mu_kv {
  const char *key;
  const char *value;
} mu_kv;

/* Creates a runner. plugins and loop are borrowed; cfg's strings and type_slots are copied.
 * *ret is owned by the caller and released with mu_runner_close. MU_EINVAL when a required
 * field is missing or a type_slots entry is bad (no type, max 0, repeated type). */
int mu_runner_new(uv_loop_t *loop, mu_plugin_host *plugins, const mu_runner_config *cfg, const mu_runner_sink *sink,
                  mu_runner **ret, mu_err *err);

/* Starts an attempt, or queues it when no slot (of its type) is free. Returns 0 when started
 * or queued, and also (doing nothing) when (task_id, attempt) is queued, running or finished
 * recently: a repeated assign never runs a task twice. The spec, plugin validation and run-as
 * are checked here, so a queued attempt is a valid one. Errors, with nothing started or
 * queued and no event sent: MU_ENOSPC (no free slot and the queue is full), MU_ENOTSUP (no
 * plugin for the type), MU_EINVAL (bad spec; the message names the field), MU_EPERM (run-as
 * refused), MU_EIO (task dir), MU_EAGAIN (closing). A queued attempt whose task dir cannot be
 * made when its turn comes ends FAILED with the reason. params are earlier tasks' output
 * params (copied). */
int mu_runner_assign(mu_runner *r, const char *job_id, const char *task_id, uint32_t attempt, const char *spec_json,
                     const mu_kv *params, size_t n_params, mu_err *err);

/* Takes back an attempt a previous agent process was running, whose shim a probe found
 * (adopt.h): it counts as running (RUNNING is not sent again), follows the shim until the
 * container ends and reports the real exit code; cancel and the rest of the spec's timeout
 * apply. MU_EEXIST when it runs already, MU_EINVAL for a bad spec (its group is then killed
 * and removed here; the caller reports it LOST), MU_EAGAIN when closing. */
struct mu_adoptee;
int mu_runner_adopt(mu_runner *r, const char *job_id, const char *task_id, uint32_t attempt, const struct mu_adoptee *a,
                    mu_err *err);

/* Cancels an attempt. Running: its processes get TERM, grace, KILL; the plugin is asked to
 * stop; the final state is CANCELLED (unless it had already succeeded). Queued: it leaves the
 * queue and ends CANCELLED at once, without running. MU_ENOENT when neither. */
int mu_runner_cancel(mu_runner *r, const char *task_id, uint32_t attempt, const char *reason, mu_err *err);

/* The same, skipping the plugin's graceful stop (MUSTER_CANCEL_FORCED); also for an attempt
 * whose (graceful) cancel is under way. */
int mu_runner_cancel_force(mu_runner *r, const char *task_id, uint32_t attempt, const char *reason, mu_err *err);

/* Hands action to a running attempt's plugin (its set_action_handler). MU_ENOENT not running
 * here, MU_ENOTSUP no handler, MU_EINVAL refused (err says why). */
int mu_runner_action(mu_runner *r, const char *task_id, uint32_t attempt, const char *action, mu_err *err);

/* Attempts holding a slot (STARTING or later) and not yet finished; queued ones excluded. */
uint32_t mu_runner_running_count(const mu_runner *r);

/* Attempts waiting in the queue for a slot. */
uint32_t mu_runner_queued_count(const mu_runner *r);

/* The descriptor serving an attempt (an out-of-process plugin's proxy finds itself by it). */
const muster_plugin *mu_runner_task_plugin(const muster_task *t);

/* How processes are limited here: "cgroup-v1", "cgroup-v2" or "rlimit". */
const char *mu_runner_limits_mode(const mu_runner *r);

/* Cancels everything, queued attempts included (reason: agent shutting down), waits for the final events and the task
 * dir removals, frees the runner, then calls cb(arg) on the loop. */
void mu_runner_close(mu_runner *r, void (*cb)(void *arg), void *arg);

#endif

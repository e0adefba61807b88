/* muster_plugin.h as SDK v1 (ABI 1) shipped it, frozen (only its include guard renamed, so the two headers do not share one): a test builds a plugin against it to prove that an
 * agent speaking ABI 2 never reads past an ABI 1 descriptor (ASan would see it). The original opening:
 * muster_plugin.h — the one header a Muster task-type plugin includes.
 *
 * A plugin is a shared object that exports one symbol, `muster_plugin_descriptor`, of type
 * `muster_plugin`. The agent dlopen()s every *.so in its plugin directory, checks the ABI
 * version, and calls the descriptor's callbacks on its libuv loop thread. A plugin talks to the
 * agent only through the `muster_host_api` function table it is handed in start(); it never
 * touches the agent's globals and needs no other Muster header. See docs/plugins.md.
 *
 * Threading: every callback runs on the agent's loop thread, and every host function must be
 * called from that thread. Nothing a plugin does may block the loop (no sleep(), no blocking
 * I/O): use the host's timers and supervised processes, or libuv directly through loop().
 *
 * Versioning: MUSTER_PLUGIN_ABI_VERSION changes when any struct below changes incompatibly.
 * Members are only ever appended; `size` fields let either side detect an older peer. */
#ifndef MUSTER_PLUGIN_V1_FROZEN_H
#define MUSTER_PLUGIN_V1_FROZEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MUSTER_PLUGIN_ABI_VERSION 1u

/* The name of the exported descriptor symbol the agent looks up with dlsym(). */
#define MUSTER_PLUGIN_SYMBOL "muster_plugin_descriptor"

/* Size of the error buffer handed to validate() and spawn(). Messages are truncated to it. */
#define MUSTER_ERRBUF_SIZE 512

/* Opaque handles owned by the agent. A muster_task lives from start() until cleanup() returns;
 * a muster_proc until its exit callback returns; a muster_timer until it fires (one-shot),
 * is stopped, or the task ends. */
typedef struct muster_task muster_task;
typedef struct muster_proc muster_proc;
typedef struct muster_timer muster_timer;

/* Final states, numbered as muster.v1.TaskState. */
typedef enum {
  MUSTER_STATE_SUCCEEDED = 5,
  MUSTER_STATE_FAILED = 6,
  MUSTER_STATE_TIMED_OUT = 7,
  MUSTER_STATE_CANCELLED = 8,
} muster_state;

typedef enum { MUSTER_STDOUT = 1, MUSTER_STDERR = 2 } muster_stream;

typedef enum { MUSTER_LOG_DEBUG = 0, MUSTER_LOG_INFO, MUSTER_LOG_WARN, MUSTER_LOG_ERROR } muster_log_level;

/* Why cancel() was called. */
typedef enum {
  MUSTER_CANCEL_REQUESTED = 1, /* an operator or the control plane cancelled the task */
  MUSTER_CANCEL_TIMEOUT = 2,   /* the task's wall-clock timeout passed */
  MUSTER_CANCEL_SHUTDOWN = 3,  /* the agent is stopping */
  MUSTER_CANCEL_FORCED = 4,    /* an operator cancelled with --force: stop now, skipping any
                                * graceful stop (a savepoint); may follow a REQUESTED cancel
                                * still under way */
} muster_cancel_reason;

/* An action asked of a running task without ending it (muster flink savepoint: "savepoint").
 * Returns 0 when under way (the outcome goes to the task's output, events and params), or
 * non-zero with errbuf (MUSTER_ERRBUF_SIZE bytes) saying why not. */
struct muster_host_api;
typedef int (*muster_action_cb)(muster_task *task, const struct muster_host_api *host, const char *action,
                                char *errbuf);

/* What the agent knows about the task. All strings are owned by the agent and valid until
 * cleanup() returns. */
typedef struct muster_task_context {
  const char *job_id;
  const char *task_id;
  uint32_t attempt; /* 1 for the first run, 2 for the first retry, ... */
  const char *agent_id;
  const char *task_dir;          /* fresh, empty-but-for-the-bundle directory for this attempt */
  const char *spec_json;         /* the whole muster.v1.TaskSpec in its proto3 JSON form; its
                                * "secrets" entries hold their values ("value"), delivered for
                                * this attempt only: use them, never log or store them (the
                                * agent redacts them from output, progress, params, results) */
  const char *config_json;       /* the task type's own part: the "shell"/"http"/... object as
                                * JSON, or PluginTask.config_json for third-party types;
                                * "{}" when absent */
  size_t n_params;               /* output params of earlier tasks on this host */
  const char *const *param_keys; /* "task.key" */
  const char *const *param_values;
} muster_task_context;

/* How a task ends. `message` is copied by the agent. */
typedef struct muster_result {
  muster_state state;
  int exit_code;       /* the process's exit code, or -1 when none */
  int signal;          /* the signal that ended the process, or 0 */
  const char *message; /* short human text; may be NULL */
} muster_result;

/* Handed to a process's exit callback. `suggested_state` is what a plugin that ran one process
 * usually wants: SUCCEEDED for exit 0, TIMED_OUT / CANCELLED when the agent ended it, else
 * FAILED. `message` (agent-owned, valid during the callback) explains signals, limits hit and
 * dropped output. */
typedef struct muster_proc_exit {
  int exit_code;  /* -1 when killed by a signal */
  int signal;     /* 0 unless killed by a signal */
  int timed_out;  /* 1 when the agent killed it for the task timeout */
  int cancelled;  /* 1 when the agent killed it for a cancel */
  int oom_killed; /* 1 when the memory limit killed it */
  muster_state suggested_state;
  const char *message;
  int64_t wall_ms;
  int64_t user_cpu_us;
  int64_t sys_cpu_us;
  int64_t max_rss_bytes;
} muster_proc_exit;

typedef void (*muster_proc_exit_cb)(muster_task *task, muster_proc *proc, const muster_proc_exit *exit, void *user);
typedef void (*muster_timer_cb)(muster_task *task, muster_timer *timer, void *user);
/* Sees a process's output as it becomes the task's output (a chunk, not a line; the bytes are
 * the process's own, before the agent redacts secrets). Called on the loop thread. */
typedef void (*muster_proc_output_cb)(muster_task *task, muster_proc *proc, muster_stream stream, const void *data,
                                      size_t len, void *user);

/* A process to run under the agent's supervisor. Its stdout/stderr become the task's output,
 * its control fd (MUSTER_CONTROL) feeds progress and params, and the task's limits (timeout,
 * memory, cpu, pids, run-as user, output cap) apply to it. All pointers are borrowed for the
 * duration of spawn() only. */
typedef struct muster_spawn_opts {
  size_t size;             /* sizeof(muster_spawn_opts) */
  const char *const *argv; /* NULL-terminated; argv[0] is looked up in the task's PATH */
  const char *const *env;  /* NULL-terminated "K=V" added on top of the task's env; may be NULL */
  const char *cwd;         /* relative to the task dir, or absolute; NULL = the task dir */
  const char *stdin_data;  /* bytes fed to stdin, then closed; NULL = /dev/null */
  size_t stdin_len;
  muster_proc_exit_cb on_exit; /* required */
  void *user;
  /* Appended (an agent older than this member ignores it, seen from `size`): */
  muster_proc_output_cb on_output; /* optional: watch the output (e.g. for an id it prints) */
} muster_spawn_opts;

/* The agent's function table. Every function returns 0 on success or a negative errno value
 * (-EINVAL bad argument, -ENOSPC a bound was hit, -EALREADY the task already finished). */
typedef struct muster_host_api {
  uint32_t abi_version; /* MUSTER_PLUGIN_ABI_VERSION of the agent */
  uint32_t size;        /* sizeof(muster_host_api) as the agent was built */

  /* Appends output to the task's stdout or stderr stream. Past the task's output limit the
   * bytes are dropped and counted (still returns 0). */
  int (*emit_output)(muster_task *task, muster_stream stream, const void *data, size_t len);

  /* Reports progress: percent in [0,100] (clamped), message may be NULL. */
  int (*report_progress)(muster_task *task, double percent, const char *message);

  /* Sets an output param visible to later tasks as ${task.key}. Keys are [A-Za-z0-9_.-],
   * at most 128 bytes; values at most 4096 bytes; at most 256 params per task. */
  int (*set_param)(muster_task *task, const char *key, const char *value);

  /* Ends the task. Called once; later calls return -EALREADY. Any process still running is
   * killed. After a cancel or timeout the agent records CANCELLED / TIMED_OUT whatever state
   * is passed here. cleanup() follows once every process and timer is gone. */
  int (*finish)(muster_task *task, const muster_result *result);

  /* Starts a supervised process (see muster_spawn_opts). On success *ret_proc is set (may be
   * NULL if the caller does not need it) and on_exit will be called exactly once. On failure
   * errbuf (MUSTER_ERRBUF_SIZE bytes) holds the reason and on_exit is never called. Allowed
   * after cancel() too (a cleanup command such as `spark-submit --kill`), not after finish(). */
  int (*spawn)(muster_task *task, const muster_spawn_opts *opts, muster_proc **ret_proc, char *errbuf);

  /* Asks a running process to stop: SIGTERM to its process group, then SIGKILL after the
   * agent's grace period. Its exit callback still runs. */
  int (*proc_kill)(muster_task *task, muster_proc *proc);

  /* The agent's loop, for plugins that use libuv directly. Handles a plugin opens on it are
   * the plugin's to close before it calls finish(). */
  uv_loop_t *(*loop)(muster_task *task);

  /* Starts a timer: cb after timeout_ms, then every repeat_ms when repeat_ms > 0. */
  int (*timer_start)(muster_task *task, uint64_t timeout_ms, uint64_t repeat_ms, muster_timer_cb cb, void *user,
                     muster_timer **ret_timer);
  /* Stops and releases a timer; its callback will not run again. */
  void (*timer_stop)(muster_task *task, muster_timer *timer);

  /* The task's context (never NULL). */
  const muster_task_context *(*context)(muster_task *task);

  /* Per-task plugin state: set in start(), read in callbacks, freed by the plugin in
   * cleanup(). */
  void (*set_user_data)(muster_task *task, void *data);
  void *(*user_data)(muster_task *task);

  /* Logs a line to the agent's log, tagged with the plugin type and task id (the task's
   * secret values replaced by "***"). */
  void (*log)(muster_task *task, muster_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

  /* Appended members: check `size` (offsetof) before calling them on an older agent. */

  /* For a task being cancelled whose stop takes remote work longer than the agent's grace
   * period (a Flink stop-with-savepoint): moves the agent's forced end of the task to ms from
   * now. -EINVAL when the task is not being cancelled, -EALREADY after finish(). */
  int (*cancel_extend)(muster_task *task, uint64_t ms);
  /* The cancel did not happen (the remote system refused it and the work goes on): the task
   * is no longer being cancelled, the forced end is dropped, the task's own timeout still
   * applies, and a later cancel is delivered to cancel() again. Not for MUSTER_CANCEL_TIMEOUT
   * or SHUTDOWN (-EINVAL). -EALREADY after finish(). */
  int (*cancel_withdraw)(muster_task *task);

  /* Graceful agent stop (only from cancel() with MUSTER_CANCEL_SHUTDOWN): the task's remote
   * work goes on without this agent. The task ends here (like finish(); cleanup() follows) but
   * no final state is reported and the attempt stays marked running, so the next agent process
   * reports it LOST and the control plane's retry re-attaches (docs/plugins.md "Detaching").
   * For plugins that can find their work again by an id; -EINVAL outside a shutdown,
   * -EALREADY after finish(). message goes to the agent's log. */
  int (*detach)(muster_task *task, const char *message);
  /* Registers the handler of actions asked of the running task (TaskAction); NULL removes it.
   * Without one an action is refused ("task type X takes no actions"). */
  int (*set_action_handler)(muster_task *task, muster_action_cb cb);
} muster_host_api;

/* The exported descriptor. Strings must be static. */
typedef struct muster_plugin {
  uint32_t abi_version;    /* MUSTER_PLUGIN_ABI_VERSION the plugin was built with */
  const char *type;        /* task type served: [a-z0-9-]+, unique among loaded plugins */
  const char *version;     /* the plugin's own version, e.g. "1.0.0" */
  const char *description; /* one line, may be NULL */

  /* Checks a spec before anything runs (no side effects, no I/O). Returns 0, or non-zero
   * with errbuf (MUSTER_ERRBUF_SIZE bytes) naming the bad field, e.g.
   * "shell.interpreter: unknown interpreter \"fish\"". May be NULL. */
  int (*validate)(const char *spec_json, const char *config_json, char *errbuf);

  /* Starts the task. Returns 0 when under way (the plugin will call host->finish later, or
   * already did), or non-zero: the task fails with errbuf's text. `host` stays valid for the
   * task's life. */
  int (*start)(muster_task *task, const muster_host_api *host, char *errbuf);

  /* Asks the task to stop early. The agent has already signalled the task's processes; the
   * plugin stops its own work (timers, requests) and calls finish(). May be NULL. */
  void (*cancel)(muster_task *task, const muster_host_api *host, muster_cancel_reason reason);

  /* Frees the plugin's per-task state (user_data as set with set_user_data, or NULL). Called
   * exactly once after finish(), when no process or host timer of the task is left; not
   * called when start() never ran. May be NULL. */
  void (*cleanup)(muster_task *task, const muster_host_api *host, void *user_data);
} muster_plugin;

/* Each plugin defines this (with default visibility):
 *   const muster_plugin muster_plugin_descriptor = { MUSTER_PLUGIN_ABI_VERSION, "my-type", ... }; */
extern const muster_plugin muster_plugin_descriptor;

#ifdef __cplusplus
}
#endif

#endif /* MUSTER_PLUGIN_V1_FROZEN_H */

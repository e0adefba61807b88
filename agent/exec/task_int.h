/* The runner's private state: one attempt (struct muster_task, opaque to plugins) and the
 * runner itself, shared by runner.c (life cycle, slots, dedup, cancel, timeout) and
 * host_api.c (the function table plugins call). Not part of the API. */
#ifndef MU_TASK_INT_H
#define MU_TASK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/exec/cgroup.h"
#include "agent/exec/cgroup_pool.h"
#include "agent/exec/event.h"
#include "agent/exec/exec_server.h"
#include "agent/exec/redact.h"
#include "agent/exec/runas.h"
#include "agent/exec/secret_dir.h"
#include "agent/exec/runner.h"
#include "agent/exec/spec.h"
#include "agent/exec/supervisor.h"
#include "plugins/sdk/muster_plugin.h"

#define MU_PARAM_VALUE_MAX 4096

/* A supervised process of a task, as plugins see it. */
struct muster_proc {
  struct muster_proc *next;
  muster_task *task;
  mu_proc *proc; /* NULL once exited */
  muster_proc_exit_cb on_exit;
  muster_proc_output_cb on_output; /* NULL unless the plugin watches the output */
  void *user;
};

struct muster_timer {
  struct muster_timer *next;
  uv_timer_t h;
  muster_task *task;
  muster_timer_cb cb;
  void *user;
  bool stopped;
};

struct muster_task {
  muster_task *next;          /* runner's list of live attempts */
  muster_task *qprev, *qnext; /* runner's queue, while queued */
  bool queued;
  int type_slot; /* index into the runner's type caps, or -1 */
  mu_runner *runner;
  const muster_plugin *plugin;
  char *job_id, *task_id;
  uint32_t attempt;
  char *spec_json;
  mu_task_spec *spec;
  char *task_dir;
  char *cwd; /* task_dir or task_dir/working_dir */
  mu_runas run_as;
  char **secret_env;          /* "NAME=value" / "NAME_FILE=path", NULL-terminated */
  mu_secret_dir *secret_dir;  /* file secrets, NULL when none (task_secrets.c) */
  mu_redactor *redactor;      /* the secret values; NULL when none to redact */
  mu_redact_stream redact[2]; /* stdout, stderr: output held back while it may be a value */
  muster_task_context ctx;
  char **param_keys, **param_values;
  void *user_data;

  uint64_t seq;
  uint64_t output_limit, out_bytes, dropped;
  uint32_t params_set;
  int proc_counter;
  struct muster_proc *procs;
  int n_procs; /* not yet exited */
  struct muster_timer *timers;
  int n_timers; /* not yet closed */

  bool launched, started, running_sent, finished, final_sent, timed_out, cancelled;
  bool in_start;              /* the plugin's start() is running (hold_running is allowed) */
  bool running_held;          /* hold_running: RUNNING waits for report_running (or never comes) */
  bool detached;              /* left running at a graceful stop: no final state reported */
  muster_action_cb action_cb; /* set_action_handler */
  muster_cancel_reason cancel_reason;
  char cancel_msg[256];
  muster_result result;
  char result_msg[512];
  int64_t start_mono_ms;
  mu_task_metrics m;
  bool oom;

  uv_timer_t defer;    /* runs start / completion outside plugin callbacks */
  uv_timer_t deadline; /* the spec's timeout */
  uv_timer_t force;    /* finishes for the plugin if it ignores a cancel */
  int own_handles;
};

struct mu_runner {
  uv_loop_t *loop;
  mu_plugin_host *plugins;
  mu_runner_config cfg;
  char *spool_dir, *agent_id, *helper_path, *run_as_default, *cgroup_name;
  mu_runner_sink sink;
  mu_cgroup_root cg_root;
  mu_cgroup_pool *cg_pool;     /* limitless leaves reused (v1); NULL: a fresh leaf each time */
  mu_exec_server *exec_server; /* NULL: a one-shot helper per process */
  bool exec_server_closing;
  muster_task *tasks;
  uint32_t running;
  muster_task *queue_head, *queue_tail; /* priority desc, FIFO within a priority */
  uint32_t queued;
  mu_runner_type_slot *type_slots; /* copied config; type strings owned */
  uint32_t *type_running;          /* per type_slots entry */
  char **history;                  /* ring of "task_id\nattempt" finished recently */
  uint32_t history_next;
  int pending_removals;
  int unfreed_tasks; /* assigned and not yet freed (handles may still be closing) */
  bool closing;
  void (*close_cb)(void *);
  void *close_arg;
};

/* runner.c */
void mu_task_emit_state(muster_task *t, mu_task_state state);
void mu_task_emit_output(muster_task *t, int stream, const void *data, size_t len);
/* The same for bytes that went through the attempt's redaction already. */
void mu_task_emit_output_redacted(muster_task *t, int stream, const void *data, size_t len);
void mu_task_emit_progress(muster_task *t, double pct, const char *msg);
int mu_task_set_param(muster_task *t, const char *key, const char *value);
int mu_task_finish(muster_task *t, muster_state state, int exit_code, int sig, const char *msg);
void mu_task_schedule(muster_task *t);
int mu_task_detach(muster_task *t, const char *message);
int mu_task_set_action_handler(muster_task *t, muster_action_cb cb);
/* The host API's hold_running / report_running (muster_plugin.h). */
int mu_task_hold_running(muster_task *t);
int mu_task_report_running(muster_task *t);

/* task_secrets.c: env entries, files and redaction of the spec's secrets (values delivered
 * with the assign); release wipes them all and is safe to call twice. */
int mu_task_secrets_prepare(muster_task *t, bool chown_to, mu_err *err);
void mu_task_secrets_release(muster_task *t);
/* Sends what the redaction streams hold back (the task's output is over). */
void mu_task_secrets_flush(muster_task *t);

/* host_api.c */
void mu_task_release_timers(muster_task *t);
/* The host API's cancel_extend / cancel_withdraw (muster_plugin.h). */
int mu_task_cancel_extend(muster_task *t, uint64_t ms);
int mu_task_cancel_withdraw(muster_task *t);

#endif

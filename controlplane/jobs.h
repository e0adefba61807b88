/* Jobs in the control plane: each job is a task list run on every target (a "host run"),
 * with per-task attempts, bounded output tails, a bounded event history for late watchers,
 * and the watchers themselves. The scheduler (scheduler.c) moves them forward; the admin
 * service (admin_jobs.c) creates, reads, watches and cancels them. Loop thread only. */
#ifndef MU_CP_JOBS_H
#define MU_CP_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/jobspec.h"
#include "controlplane/resources.h"
#include "controlplane/stages.h"
#include "lib/rpc/rpc.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/job.pb-c.h"

typedef enum {
  MU_HOST_PENDING = 0,
  MU_HOST_RUNNING,
  MU_HOST_SUCCEEDED,
  MU_HOST_FAILED,
  MU_HOST_CANCELLED,
  MU_HOST_UNREACHABLE,
  MU_HOST_SKIPPED, /* unreachable with rollout.skip_unreachable (stored as 6) */
} mu_host_state;

typedef struct mu_kv_pair {
  char *key;
  char *value;
} mu_kv_pair;

/* The last bytes of a task's output: a ring of cap bytes, plus totals. buf grows on demand
 * (alloc bytes) and only wraps once it holds cap bytes, so a short output costs little. */
typedef struct mu_tail {
  char *buf;
  size_t cap, len, start;
  size_t alloc;
  uint64_t total;
} mu_tail;

typedef struct mu_task_run {
  char *task_id;    /* "<job>/<agent>/<task name>" */
  uint32_t attempt; /* 0 until first assigned */
  Muster__V1__TaskState state;
  int32_t exit_code;
  int32_t signal;
  char *message;
  int64_t started_at_ms, finished_at_ms;
  Muster__V1__TaskMetrics metrics;
  int has_metrics;
  mu_kv_pair *params;
  size_t n_params;
  mu_tail tail;
  int64_t retry_at_mono; /* >0: waiting to retry at this time */
  int64_t lost_at_mono;  /* >0: its agent went away at this time */
  uint8_t dirty;         /* etcd mode: changed since last written (persist.c) */
  /* metrics (meters.c): the attempt last counted, how far (1 assigned, 2 started, 3 ended),
   * and when it was assigned */
  uint8_t metered_stage;
  uint32_t metered_attempt;
  int64_t assigned_at_ms;
  /* run history (run_history.c): the attempt last recorded, and that attempt's anomaly flag
   * names (static strings, lib/anomaly) */
  uint32_t history_attempt;
  uint32_t n_anomalies;
  char *anomalies[8];
} mu_task_run;

typedef struct mu_job mu_job;

/* One stage of a job with stages (stage_run.h): its state, and why it was skipped or could not
 * start (owned; NULL when nothing to say). Stored in the job record (JobRecord.stages). */
typedef struct mu_stage_run {
  mu_stage_state state;
  char *message;
} mu_stage_run;

typedef struct mu_host_run {
  mu_job *job;
  char *agent_id; /* NULL for an "any" target not yet placed */
  mu_host_state state;
  size_t current;             /* index of the task running or next */
  mu_task_run *tasks;         /* job->spec->n_tasks */
  int64_t waiting_since_mono; /* first seen disconnected while pending */
  size_t batch;               /* batch number (batch mode) */
} mu_host_run;

/* A WatchJob or TaskLogs stream. It is the call's user data and is freed by the call's
 * on_done (admin_jobs.c); the job only links and unlinks it (job = NULL once unlinked). */
typedef struct mu_watcher {
  struct mu_watcher *next;
  struct mu_job *job;
  mu_rpc_call *call;
  char *task_id; /* TaskLogs: only this task's output; NULL = WatchJob */
  uint32_t attempt;
  int follow;
  /* A watcher inside musterd (the web console) has no call: on_event gets each packed
   * JobEvent as WatchJob would (nonzero: unlink it and run on_end), on_end runs once when
   * the job ends, is dropped, or the watcher is cut off; the owner frees it there. */
  int (*on_event)(struct mu_watcher *w, const uint8_t *event, size_t len);
  void (*on_end)(struct mu_watcher *w, int code, const char *message);
  void *ud;
} mu_watcher;

struct mu_job {
  mu_job *next; /* in the daemon's job list, newest first */
  char *id;
  Muster__V1__JobSpec *spec; /* owned (unpacked or built with the default allocator) */
  mu_rollout rollout;
  Muster__V1__JobState state;
  int64_t created_at_ms, finished_at_ms;
  mu_host_run *hosts;
  size_t n_hosts;
  size_t *host_order; /* indices of hosts with an agent id, sorted by it (lookups) */
  size_t n_host_order;
  uint32_t concurrency;
  int64_t error_budget;
  uint32_t running, succeeded, failed, cancelled, unreachable, skipped;
  size_t batch_current;
  int user_cancelled;
  int held_by_user; /* `muster hold`: no new hosts until released (JobRecord.held) */
  char *end_reason;
  /* history for late watchers: packed JobEvent messages, bounded by bytes */
  uint8_t **history;
  size_t *history_len;
  size_t n_history, cap_history, history_bytes;
  uint64_t history_dropped;
  mu_watcher *watchers;
  /* etcd mode (persist.c) */
  int ready;            /* all its records are in etcd (its ready marker exists) */
  int submit_pending;   /* the submission's write is in flight: not dispatched yet */
  int dirty;            /* the job record changed since last written */
  size_t n_dirty_tasks; /* task runs with dirty set */
  int needs_recount;    /* loaded records changed host states: recount */
  /* dependencies (job_deps.h): spec->after all ended as spec->on asks, or why not yet */
  int deps_done;
  char *waiting_for;
  /* placement (scheduler.c): what each running host reserves, from the spec (resources.h) */
  mu_res need;
  int need_known;
  /* a job with stages (spec->n_stages > 0): one entry per stage, in order; NULL otherwise */
  mu_stage_run *stage_runs;
};

/* Creates a job for targets (agent ids; NULL entries for "any" placement). Takes spec. */
mu_job *mu_job_new(const char *id, Muster__V1__JobSpec *spec, const mu_rollout *rollout, char **agent_ids,
                   size_t n_targets, size_t tail_cap);
void mu_job_free(mu_job *job);

int mu_job_finished(const mu_job *job);
/* The host run of agent_id: a binary search of host_order (built by mu_job_new), plus a scan
 * for "any" jobs, whose one host is placed (renamed) later. NULL when the agent is no target. */
mu_host_run *mu_job_host(mu_job *job, const char *agent_id);
/* Task ids are "<job>/<agent>/<task name>", unique across jobs (agents dedup on them);
 * "<agent>/<task name>" is accepted within a job. */
int mu_task_id_matches(const mu_job *job, const char *full, const char *given);
/* Finds the task by task id; sets *ret_host. Parses "<job>/<agent>/<task>" to look the host up
 * (mu_job_host) and the task by name; falls back to a scan of every task run. */
mu_task_run *mu_job_task(mu_job *job, const char *task_id, mu_host_run **ret_host);

/* Fills a TaskRun view of tr (borrowed pointers; params built into storage of
 * n_params entries). */
void mu_task_run_view(const mu_job *job, const mu_host_run *h, size_t index, Muster__V1__TaskRun *out,
                      Muster__V1__TaskRun__OutputParamsEntry *storage, Muster__V1__TaskRun__OutputParamsEntry **ptrs,
                      char *tail_buf, size_t tail_size);

/* The job's targets by state (lib/jobcounts: the one definition) into *ret_counts. */
void mu_job_counts_of(const mu_job *job, Muster__V1__JobCounts *ret_counts);

/* Job summary view (borrowed; tasks included when with_tasks). Free with mu_job_view_free. A
 * job with stages has its stages (counts zero: the scheduler fills them, stage_run.h); a
 * stage's job names its job and stage (parent_job, stage). */
Muster__V1__Job *mu_job_view(const mu_job *job, int with_tasks);
void mu_job_view_free(Muster__V1__Job *view);

/* Tail helpers. */
void mu_tail_append(mu_tail *t, const void *data, size_t len);
size_t mu_tail_copy(const mu_tail *t, char *out, size_t size);

/* Records an event (packed into history, bounded by max_bytes) and sends it to watchers.
 * For output events task_id names the task (for TaskLogs watchers). */
void mu_job_publish(mu_job *job, const Muster__V1__JobEvent *ev, const char *task_id, size_t max_history_bytes);
/* Ends every watcher (job finished or daemon stopping). */
void mu_job_close_watchers(mu_job *job, int code, const char *message);
void mu_job_add_watcher(mu_job *job, mu_watcher *w);
/* Unlinks w from its job (if still linked); does not free it. */
void mu_watcher_unlink(mu_watcher *w);

#endif

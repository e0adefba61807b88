/* The scheduler: turns a validated job into host runs, starts them within the rollout limits
 * (max concurrency, batches, max errors, per-agent slots), assigns each host's tasks in order,
 * applies task events from agents, retries with backoff, gives a vanished agent a grace period
 * before its tasks are LOST, and finishes jobs. It owns the job list (mu_scheduler.jobs) and
 * reads the agent registry; it never waits on an agent and touches no network itself: what it
 * sends and what it marks changed goes through mu_sched_hooks, which musterd wires to the
 * gateway and to persist.c (wiring.c) and a test wires to a table. Loop thread only. */
#ifndef MU_CP_SCHEDULER_H
#define MU_CP_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "controlplane/authz.h"
#include "controlplane/job_retention.h"
#include "controlplane/jobs.h"
#include "controlplane/queues.h"
#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

#define MU_SCHED_DIGEST_SIZE 72 /* = MU_BUNDLE_DIGEST_SIZE: "sha256:" + 64 hex + NUL */

/* What the scheduler asks of the rest of the daemon. Every member may be NULL (then: not
 * leading never happens, nothing is sent, nothing is stored, no extra checks). */
typedef struct mu_sched_hooks {
  void *ud;
  /* 1 when this member may dispatch (SINGLE, or a leader with its state loaded). */
  int (*leading)(void *ud);
  /* Sends one control message down agent's stream: 0, or MU_EAGAIN when not connected. */
  int (*send)(void *ud, mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err);
  /* The digest a task's bundle reference resolves to ("" when none) for an Assign. */
  void (*bundle_digest)(void *ud, const char *ref, char digest[MU_SCHED_DIGEST_SIZE]);
  /* A task's secrets decrypted for agent (into the Assign only), and their release. A
   * non-zero return other than MU_ENOMEM ends the attempt FAILED with err's message. */
  int (*secrets_resolve)(void *ud, const Muster__V1__TaskSpec *task, const mu_agent *agent,
                         Muster__V1__ResolvedSecret ***ret, size_t *ret_n, mu_err *err);
  void (*secrets_free)(Muster__V1__ResolvedSecret **r, size_t n);
  /* Submit checks beyond the spec itself, in this order: a bundle reference is stored
   * (jobspec.h bundle_resolve), caller may run on the resolved ids, the job's secrets exist
   * and may go to those agents. */
  int (*bundle_resolve)(void *ud, const char *ref, char *msg, size_t msg_size);
  int (*check_targets)(void *ud, const mu_caller *caller, char *const *ids, size_t n, mu_err *err);
  int (*check_secrets)(void *ud, Muster__V1__JobSpec *spec, char *const *ids, size_t n, mu_err *err);
  /* Changes to store (persist.c): a task run, every task of a host, a job record, a job
   * forgotten by retention; pass_done after every dispatch pass (a flush soon). */
  void (*task_changed)(void *ud, mu_job *job, mu_host_run *h, size_t idx);
  void (*job_changed)(void *ud, mu_job *job);
  void (*job_forgotten)(void *ud, const char *job_id);
  void (*pass_done)(void *ud);
  /* An output param of a task run changed (the savepoint catalogue: savepoints.h). */
  void (*param_set)(void *ud, mu_job *job, mu_host_run *h, size_t idx, const char *key, const char *value);
  /* job_deps.h: the latest job of the schedule `name` (an `after` entry that is no job id)
   * into job_id: 1 found, 0 the schedule has made no job yet, -1 no such schedule. */
  int (*schedule_latest_job)(void *ud, const char *name, char *job_id, size_t size);
  /* A job the scheduler created itself (a stage's job, stage_run.h) is to be stored: etcd
   * mode writes it like a submission (it is dispatched once stored; dropped, and freed, if
   * the write fails). NULL: nothing to store. */
  void (*job_submitted)(void *ud, mu_job *job);
} mu_sched_hooks;

#define MU_SCHED_MAX_TYPE_LIMITS 32
#define MU_SCHED_TYPE_NAME 64
/* At most max attempts of tasks of type run at once, fleet-wide (musterd type_limits). */
typedef struct mu_sched_type_limit {
  char type[MU_SCHED_TYPE_NAME];
  uint32_t max;
} mu_sched_type_limit;

typedef struct mu_sched_config {
  uv_loop_t *loop;
  mu_registry *registry;        /* borrowed: the agents jobs run on */
  int durable;                  /* etcd mode: new jobs wait for their write, acks for
                                     what etcd holds (agent durable_seq) */
  int64_t heartbeat_timeout_ms; /* a vanished agent's tasks are LOST after this */
  size_t tail_bytes;            /* output tail kept per task run */
  size_t history_bytes;         /* WatchJob history kept per job */
  uint32_t max_tasks;           /* tasks per job */
  uint32_t max_task_runs;       /* targets x tasks per job */
  mu_retention retention;       /* which finished jobs are kept (job_retention.h) */
  int64_t priority_aging_ms;    /* a job gains 1 priority per this much age; 0: no aging */
  uint32_t hold_above;          /* % of the connected fleet's slots busy past which jobs */
  int32_t hold_priority_floor;  /* below this (aged) priority start no new hosts; 0%: never */
  mu_sched_type_limit type_limits[MU_SCHED_MAX_TYPE_LIMITS];
  size_t n_type_limits;
  mu_queue_table queues; /* named queues (queues.h); mu_sched_set_queues replaces them */
} mu_sched_config;

/* The scheduler's state. Others read jobs and the counters; only scheduler.c and the record
 * loader (persist.c, through mu_sched_insert/mu_sched_remove) change the list. */
typedef struct mu_scheduler {
  mu_sched_config cfg;
  mu_sched_hooks hooks;
  mu_job *jobs; /* newest first */
  size_t n_jobs;
  uint64_t job_seq; /* the last "j-<secs>-<seq>" number handed out or loaded */
  uint64_t term;    /* leader term handed to agents as the fencing term */
  uv_timer_t timer;
  int armed, stopping;
  mu_evicted_ring evicted;                   /* ids of jobs retention forgot, for "was evicted" answers */
  uint64_t jobs_evicted, jobs_evicted_young; /* young: past max_jobs_kept_hard before min age */
  uint64_t placements;                       /* `any` hosts placed by resource-aware placement */
} mu_scheduler;

/* Starts the scheduler (its timer on cfg.loop). cfg and hooks are copied. */
void mu_sched_init(mu_scheduler *s, const mu_sched_config *cfg, const mu_sched_hooks *hooks);
/* Stops the timer and frees every job (the handle closes on the loop). */
void mu_sched_close(mu_scheduler *s);
/* Frees what close left (the evicted ring) once the loop has stopped. */
void mu_sched_free(mu_scheduler *s);

/* Runs a dispatch pass soon (coalesced). */
void mu_sched_kick(mu_scheduler *s);
/* One dispatch pass now (what the timer runs; tests call it directly). */
void mu_sched_pass(mu_scheduler *s);
/* Stops pending passes (deposed: nothing is dispatched until kicked again). */
void mu_sched_pause(mu_scheduler *s);

/* Validates spec (taken in every case), checks that caller (NULL: no check) may run it on
 * those targets (authz.h), resolves its targets and creates a running job. */
int mu_sched_submit(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller, mu_job **ret_job, mu_err *err);
/* The checks of mu_sched_submit without creating a job: validation (defaults filled in),
 * permissions, targets (caller owns *ret_ids, an array of borrowed ids; NULL for an `any`
 * target), task types, secrets and the task-run limit. On error spec is freed. */
int mu_sched_admit(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller, mu_rollout *ret_rollout,
                   char ***ret_ids, size_t *ret_n, mu_err *err);
/* mu_sched_admit of the job spec of stage `stage` of the job with stages `parent` (its
 * ${stages.*} references are checked against parent); parent NULL checks a job with stages
 * itself (validation, dependencies, queue; no targets: ret_ids may be NULL). stage_run.h. */
int mu_sched_admit_stage(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller,
                         const Muster__V1__JobSpec *parent, size_t stage, mu_rollout *ret_rollout, char ***ret_ids,
                         size_t *ret_n, mu_err *err);
/* mu_sched_submit with a job id given (NULL: a new one), for jobs whose id was recorded
 * before they were created (a schedule's slot claim). MU_EEXIST when the id is held. */
int mu_sched_submit_id(mu_scheduler *s, const char *job_id, Muster__V1__JobSpec *spec, const mu_caller *caller,
                       mu_job **ret_job, mu_err *err);
/* A new job id "j-<hex secs>-<seq>" (what mu_sched_submit gives a job). */
#define MU_SCHED_ID_SIZE 64
void mu_sched_new_id(mu_scheduler *s, char id[MU_SCHED_ID_SIZE]);
mu_job *mu_sched_find(mu_scheduler *s, const char *job_id);
/* Answers call NOT_FOUND for a job id not held: "job X was evicted (finished at T;
 * retention: ...)" when retention forgot it, else "no job 'X'". */
void mu_sched_fail_not_found(const mu_scheduler *s, mu_rpc_call *call, const char *job_id);
/* Cancels what has not finished; MU_EINVAL when the job already ended (message says how). */
int mu_sched_cancel(mu_scheduler *s, mu_job *job, const char *reason, uint32_t *ret_cancelled, mu_err *err);
/* The same; force: the agents skip the task type's graceful stop (Cancel.force). A job being
 * cancelled may be cancelled again (with force) until it has ended. */
int mu_sched_cancel_ex(mu_scheduler *s, mu_job *job, const char *reason, int force, uint32_t *ret_cancelled,
                       mu_err *err);

/* Replaces the named queues (config and cluster-set, queues_admin.h) from the next pass on. */
void mu_sched_set_queues(mu_scheduler *s, const mu_queue_table *t);

/* An operator's hold (hold 1) or release (hold 0) of an unfinished job: a held job starts no
 * new hosts (its running ones go on) and is JOB_HELD; released, it is RUNNING again at the
 * next pass. MU_EINVAL when the job ended or already is as asked (the message says so). */
int mu_sched_hold(mu_scheduler *s, mu_job *job, int hold, mu_err *err);

/* Agent events (the gateway's, events.h). */
void mu_sched_on_event(mu_scheduler *s, mu_agent *agent, const Muster__V1__TaskEvent *ev);
void mu_sched_on_agent_up(mu_scheduler *s, mu_agent *agent);
void mu_sched_on_agent_down(mu_scheduler *s, mu_agent *agent);
/* A heartbeat from agent saying it runs running_tasks tasks. */
void mu_sched_on_heartbeat(mu_scheduler *s, mu_agent *agent, uint32_t running_tasks);

/* Publishes task idx of host h to the job's watchers. */
void mu_sched_publish_task(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx);
/* Publishes the job's state (a JobEvent with job_state and counts) to its watchers. */
void mu_sched_publish_job_state(mu_scheduler *s, mu_job *job);
/* Publishes the job's state and ends its watchers once it finished. */
void mu_sched_publish_job_end(mu_scheduler *s, mu_job *job);
/* Recomputes a job's counters from its host states (after loading records). */
void mu_sched_recount(mu_job *job);

/* The record loader's access to the list: insert keeps newest-first order and job_seq past
 * the id's number; remove unlinks (does not free). */
void mu_sched_insert(mu_scheduler *s, mu_job *job);
void mu_sched_remove(mu_scheduler *s, mu_job *job);
/* Frees every job (a fresh snapshot follows). */
void mu_sched_reset(mu_scheduler *s);
/* A job deleted by another member's retention: remembered as evicted when it had finished. */
void mu_sched_note_evicted(mu_scheduler *s, const mu_job *job);
/* A new term's takeover: ready jobs' running tasks get until now + grace to be reported
 * (else LOST), pending hosts start waiting then; jobs without a ready marker are dropped
 * (job_forgotten). Counts what it saw. */
void mu_sched_takeover(mu_scheduler *s, int64_t grace_ms, size_t *ret_jobs, size_t *ret_running, size_t *ret_dropped);

#endif

/* The one daemon context of musterd: its loop, configuration, rpc server and the agent
 * registry. Owned by main; every handler reaches state only through it. */
#ifndef MU_CP_DAEMON_H
#define MU_CP_DAEMON_H

#include <uv.h>

#include "controlplane/bundles.h"
#include "controlplane/ha/leader.h"
#include "controlplane/ha/store.h"
#include "controlplane/job_retention.h"
#include "controlplane/jobs.h"
#include "controlplane/registry.h"
#include "lib/config/server_config.h"
#include "lib/metrics/httpd.h"
#include "lib/reflect/reflect.h"
#include "lib/rpc/rpc.h"

#define MU_VERSION "0.1.0"

/* The member's role. SINGLE: --no-etcd, state in memory, always leads. With etcd a member is
 * a FOLLOWER (redirects agents and writes, serves reads from its watched copy) until elected;
 * a LEADER schedules and writes, once its state is loaded (state_ready). */
typedef enum { MU_ROLE_SINGLE = 0, MU_ROLE_FOLLOWER, MU_ROLE_LEADER } mu_role;

struct mu_daemon;
typedef struct mu_log_fetch mu_log_fetch; /* task_logs.c */

/* etcd mode bookkeeping (cluster.c, persist.c). */
typedef struct mu_ha_state {
  int active;                  /* mu_cluster_start ran (its timers exist) */
  mu_etcd_client *etcd;
  mu_leader *leader;
  mu_store *store;
  mu_etcd_watch *watch;        /* follower: the prefix watch keeping its copy hot */
  uint64_t gen;                /* bumps on every role change: late loads are dropped */
  int loading;                 /* a prefix load is in flight */
  uv_timer_t retry_timer;      /* retries a failed load */
  int64_t takeover_until_mono; /* leader: agents may reconnect until then */
  char leader_address[300];    /* known leader ("" unknown) */
  /* writes (persist.c) */
  uv_timer_t flush_timer;
  int flush_armed, flush_in_flight, submits_in_flight;
  char **deleted_jobs;         /* job ids whose keys must be deleted */
  size_t n_deleted, cap_deleted;
  int write_failing;           /* the last write failed (etcd unreachable): health */
  char write_error[300];
  uint64_t writes, write_ops;  /* batches and ops committed */
  /* agent presence (presence.c): one lease per term, kept alive by the leader */
  int64_t presence_lease;      /* etcd lease id; 0 while none is granted */
  uint64_t presence_gen;       /* ha.gen the lease (or the call in flight) belongs to */
  int presence_busy;           /* a grant or keep-alive is in flight */
  uv_timer_t presence_timer;   /* keep-alive every TTL/3, retries */
  void (*stop_cb)(struct mu_daemon *d); /* mu_cluster_stop's callback */
} mu_ha_state;

typedef struct mu_daemon {
  uv_loop_t *loop;
  mu_server_config cfg;
  mu_rpc_engine *engine;
  mu_rpc_server *server;
  mu_registry registry;
  mu_reflect_index *reflect;
  uv_timer_t sweep_timer;     /* marks agents silent past the heartbeat timeout */
  uv_signal_t sigint, sigterm;
  int64_t started_at_ms;
  int port;                   /* the port actually bound */
  int stopping;

  /* jobs (scheduler.c) */
  mu_job *jobs;               /* newest first */
  size_t n_jobs;
  uint64_t job_seq;
  uv_timer_t sched_timer;
  int sched_armed;
  uint64_t term;              /* leader term handed to agents as the fencing term */
  size_t tail_bytes;          /* output tail kept per task run */
  size_t history_bytes;       /* WatchJob history kept per job */
  mu_retention retention;     /* which finished jobs are kept (job_retention.h) */
  mu_evicted_ring evicted;    /* ids of jobs retention forgot, for "was evicted" answers */
  uint64_t jobs_evicted, jobs_evicted_young; /* young: past max_jobs_kept_hard before min age */
  uint32_t max_tasks;         /* tasks per job */
  uint32_t max_task_runs;     /* targets x tasks per job */

  /* bundles (bundles.c) */
  mu_bundles_config bundle_cfg;
  mu_bundles *bundles;
  mu_role role;
  int state_ready;            /* leader: state loaded from etcd (SINGLE: always 1) */
  mu_ha_state ha;

  /* TaskLogs calls (task_logs.c) */
  mu_log_fetch *log_fetches;
  size_t n_log_fetches;
  uint64_t log_seq;           /* request ids of agent reads */
  uv_timer_t *log_pump;       /* timeouts and paused reads; exists while calls do */

  /* security (authz.c, tokens.c, secrets.c, audit.c); each module owns its state */
  struct mu_crl_state *crl;      /* --tls-crl, reloaded when the file changes; NULL: none */
  struct mu_tokens *tokens;      /* bearer tokens */
  struct mu_secrets *secrets;    /* the secret store */
  struct mu_audit_log *audit_log; /* audit records kept in etcd / memory */

  /* /metrics (metrics.c); NULL without --metrics-listen */
  mu_metrics_server *metrics;
  uv_timer_t metrics_timer;
} mu_daemon;

/* cluster.c: etcd, election, follower watch, takeover, health. */
/* Starts etcd mode (client, election, store, follower load). */
int mu_cluster_start(mu_daemon *d, mu_err *err);
/* Resigns and closes everything; done_cb runs once all is closed (maybe from inside). */
void mu_cluster_stop(mu_daemon *d, void (*done_cb)(mu_daemon *d));
/* True when this member may schedule, accept agents and write (SINGLE, or a loaded leader). */
int mu_cluster_leading(const mu_daemon *d);
/* For mutating admin calls: 0 when this member may write now; otherwise the call has been
 * answered UNAVAILABLE (with muster-leader trailing metadata when another member leads). */
int mu_cluster_check_write(mu_daemon *d, mu_rpc_call *call);
/* etcd health for GetCluster and the health service; msg gets the error ("" when healthy). */
int mu_cluster_etcd_healthy(const mu_daemon *d, char *msg, size_t size);
/* gateway.c: ends every agent stream: with NotLeader(leader_address) when it is non-NULL
 * (agents go there), else with UNAVAILABLE reason (agents reconnect and resend). */
void mu_gateway_end_all(mu_daemon *d, const char *leader_address, const char *reason);

/* persist.c: records in etcd. */
void mu_persist_init(mu_daemon *d);
void mu_persist_close(mu_daemon *d);
/* Mark records changed; written by the next (coalesced) flush. No-ops in SINGLE mode. */
void mu_persist_task(mu_daemon *d, mu_job *job, mu_host_run *h, size_t idx);
void mu_persist_host(mu_daemon *d, mu_job *job, mu_host_run *h);
void mu_persist_job(mu_daemon *d, mu_job *job);
void mu_persist_agent(mu_daemon *d, mu_agent *a);
void mu_persist_forget_job(mu_daemon *d, const char *job_id);
/* Schedules a flush soon (also snapshots event sequences for durable acks). */
void mu_persist_kick(mu_daemon *d);
/* Writes a new job with all its task records and its ready marker; answers call with the
 * SubmitJobResponse (or UNAVAILABLE) once etcd has it. The job must be submit_pending. */
void mu_persist_submit(mu_daemon *d, mu_job *job, mu_rpc_call *call);
/* Applies one record read from etcd (key relative to the prefix). leading: this member is the
 * leader loading its state (no watcher events are published). Bad records are logged and
 * skipped. */
void mu_persist_apply(mu_daemon *d, const char *rel_key, const char *value, size_t len,
                      int leading);
void mu_persist_apply_delete(mu_daemon *d, const char *rel_key);
/* Recounts jobs whose host states changed through mu_persist_apply. */
void mu_persist_settle(mu_daemon *d);
/* Frees every job and forgets the secret records (a new snapshot follows). */
void mu_persist_reset_jobs(mu_daemon *d);

/* presence.c: <prefix>presence/<agent-id> under a lease the leader keeps alive. */
void mu_presence_init(mu_daemon *d);
/* Elected: grants this term's lease (presence is written once it exists). */
void mu_presence_on_elected(mu_daemon *d);
/* Deposed: stops the keep-alive and revokes the lease (its keys vanish at once). */
void mu_presence_on_deposed(mu_daemon *d);
/* Revokes the lease (if any) and closes the timer; done runs once (maybe from inside). */
void mu_presence_stop(mu_daemon *d, void (*done)(mu_daemon *d));
/* Adds a put (connected, under the lease) or delete (disconnected) for every agent whose
 * presence changed to the flush batch b. Agents wait while no lease is granted. */
int mu_presence_add_ops(mu_daemon *d, mu_store_batch *b, mu_err *err);
/* A flush failed: presence is re-marked; MU_ENOENT (lease gone) grants a new lease. */
void mu_presence_write_failed(mu_daemon *d, const mu_err *err);
/* Follower: a presence key put (value) or deleted (value NULL). Bad values are logged with
 * the key and skipped. */
void mu_presence_apply(mu_daemon *d, const char *id, const char *value, size_t len);
/* Follower: recomputes every agent's state from presence (after a leader change). */
void mu_presence_refresh(mu_daemon *d);
void mu_presence_refresh_agent(mu_daemon *d, mu_agent *a);
/* A fresh snapshot follows: forget every presence seen. */
void mu_presence_reset(mu_daemon *d);

/* gateway.c: sends one control message down an agent's stream. MU_EAGAIN when the agent is
 * not connected. */
int mu_gateway_send(mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err);
/* Tells a connected agent whether it is draining (a Drain message); no-op when disconnected. */
void mu_gateway_send_drain(mu_agent *agent);
/* gateway.c: bytes queued on the agent's stream not yet handed to gRPC; SIZE_MAX when the
 * agent is not connected (flow control for bundle chunks). */
size_t mu_gateway_queued_bytes(const mu_agent *agent);

/* scheduler.c */
void mu_sched_init(mu_daemon *d);
void mu_sched_close(mu_daemon *d);
/* Runs a dispatch pass soon (coalesced). */
void mu_sched_kick(mu_daemon *d);
/* Validates spec (taken in every case), checks that caller (NULL: no check) may run it on
 * those targets (authz.h), resolves its targets and creates a running job. */
struct mu_caller;
int mu_sched_submit(mu_daemon *d, Muster__V1__JobSpec *spec, const struct mu_caller *caller,
                    mu_job **ret_job, mu_err *err);
/* The checks of mu_sched_submit without creating a job: validation (defaults filled in),
 * permissions, targets (caller owns *ret_ids, an array of borrowed ids; NULL for an `any`
 * target), task types, secrets and the task-run limit. On error spec is freed. */
int mu_sched_admit(mu_daemon *d, Muster__V1__JobSpec *spec, const struct mu_caller *caller,
                   mu_rollout *ret_rollout, char ***ret_ids, size_t *ret_n, mu_err *err);

/* plan.c: a dry run. Admits spec (taken in every case) as mu_sched_submit would and answers
 * what the job would do (targets in rollout order, batches, concurrency, error budget, hosts
 * disconnected now); nothing is stored or started. *ret_plan is the caller's
 * (muster__v1__job_plan__free_unpacked). */
int mu_sched_plan(mu_daemon *d, Muster__V1__JobSpec *spec, const struct mu_caller *caller,
                  Muster__V1__JobPlan **ret_plan, mu_err *err);
mu_job *mu_sched_find(mu_daemon *d, const char *job_id);
/* Answers call NOT_FOUND for a job id not held: "job X was evicted (finished at T;
 * retention: ...)" when retention forgot it, else "no job 'X'". */
void mu_sched_fail_not_found(mu_daemon *d, mu_rpc_call *call, const char *job_id);
/* Cancels what has not finished; MU_EINVAL when the job already ended (message says how). */
int mu_sched_cancel(mu_daemon *d, mu_job *job, const char *reason, uint32_t *ret_cancelled,
                    mu_err *err);
void mu_sched_on_event(mu_daemon *d, mu_agent *agent, const Muster__V1__TaskEvent *ev);
void mu_sched_on_agent_up(mu_daemon *d, mu_agent *agent);
void mu_sched_on_agent_down(mu_daemon *d, mu_agent *agent);
/* A heartbeat from agent saying it runs running_tasks tasks. */
void mu_sched_on_heartbeat(mu_daemon *d, mu_agent *agent, uint32_t running_tasks);
/* Publishes task idx of host h to the job's watchers. */
void mu_sched_publish_task(mu_daemon *d, mu_job *job, mu_host_run *h, size_t idx);
/* Publishes the job's state and ends its watchers once it finished. */
void mu_sched_publish_job_end(mu_daemon *d, mu_job *job);
/* Recomputes a job's counters from its host states (after loading records). */
void mu_sched_recount(mu_job *job);

/* targets.c: the agent ids a target names (borrowed from the registry; a NULL entry is an
 * "any" target placed at dispatch). Caller frees the array. MU_EINVAL names the field when
 * nothing matches. */
int mu_targets_resolve(mu_daemon *d, const Muster__V1__Target *t, char ***ret_ids, size_t *ret_n,
                       mu_err *err);
/* A mu_jobspec_limits.type_known callback: 1 when a known agent reports a plugin for type. */
int mu_targets_type_known(void *ud, const char *type);
/* MU_EINVAL when a task's type is served by none of the resolved targets ids (n of them; an
 * "any" target is not checked), naming the task, the type and up to 10 of the hosts. */
int mu_targets_check_types(mu_daemon *d, const Muster__V1__JobSpec *spec, char *const *ids,
                           size_t n, mu_err *err);

/* admin_jobs.c */
int mu_admin_jobs_register(mu_daemon *d, mu_err *err);

/* task_logs.c: Admin/TaskLogs, reading the agent's output spool through its stream. */
int mu_task_logs_register(mu_daemon *d, mu_err *err);
/* A LogRequestReply from agent (routed by request_id; unknown ids are dropped). */
void mu_task_logs_on_reply(mu_daemon *d, mu_agent *agent, const Muster__V1__LogRequestReply *rep);
/* agent's stream ended: its reads fall back to the tail kept here. */
void mu_task_logs_on_agent_down(mu_daemon *d, mu_agent *agent);

/* gateway.c: muster.v1.AgentGateway/Connect */
int mu_gateway_register(mu_daemon *d, mu_err *err);
/* Disconnects agents whose last heartbeat is older than the timeout. */
void mu_gateway_sweep(mu_daemon *d);

/* admin.c: muster.v1.Admin */
int mu_admin_register(mu_daemon *d, mu_err *err);

/* metrics.c: /metrics and /healthz when cfg.metrics_listen is set (else nothing). */
int mu_metrics_start(mu_daemon *d, mu_err *err);
void mu_metrics_stop(mu_daemon *d);

/* health.c: grpc.health.v1.Health and server reflection (v1 and v1alpha) */
int mu_health_register(mu_daemon *d, mu_err *err);
int mu_reflection_register(mu_daemon *d, mu_err *err);

#endif

/* The one daemon context of musterd: its loop, configuration, rpc server, the agent registry
 * and the modules (each with its own header and state). Owned by main; every handler reaches
 * state only through it. docs/architecture.md draws the modules and their events. */
#ifndef MU_CP_DAEMON_H
#define MU_CP_DAEMON_H

#include <uv.h>

#include "controlplane/events.h"
#include "controlplane/registry.h"
#include "lib/config/server_config.h"
#include "lib/metrics/httpd.h"
#include "lib/reflect/reflect.h"
#include "lib/rpc/rpc.h"

#define MU_VERSION "0.1.0"

struct mu_scheduler;   /* scheduler.h */
struct mu_persist;     /* persist.h */
struct mu_cluster;     /* cluster.h */
struct mu_presence;    /* presence.h */
struct mu_gateway;     /* gateway.h */
struct mu_task_logs;   /* task_logs.h */
struct mu_schedules;   /* schedules/schedules.h */
struct mu_savepoints;  /* savepoints.h */
struct mu_run_history; /* run_history.h */
struct mu_bundles;     /* bundles.h */
struct mu_agent_gc;    /* agent_gc.h */
struct mu_bundles_config;

typedef struct mu_daemon {
  uv_loop_t *loop;
  mu_server_config cfg;
  mu_rpc_engine *engine;
  mu_rpc_server *server;
  mu_registry registry;
  mu_reflect_index *reflect;
  uv_signal_t sigint, sigterm;
  int64_t started_at_ms;
  int port; /* the port actually bound */
  int stopping;

  /* what agents do and what happens to this member (events.h); modules subscribe at start */
  mu_events events;

  /* the modules; each owns its state (see its header) and is reached through its API */
  struct mu_scheduler *sched;              /* jobs and dispatch */
  struct mu_persist *persist;              /* records in etcd */
  struct mu_cluster *cluster;              /* role, election, etcd */
  struct mu_presence *presence;            /* presence keys */
  struct mu_gateway *gateway;              /* agent streams */
  struct mu_task_logs *logs;               /* TaskLogs calls */
  struct mu_agent_gc *agent_gc;            /* forgetting agents: agents rm, agent_gc_after */
  struct mu_schedules *schedules;          /* cron schedules (fired by the leader) */
  struct mu_templates *templates;          /* job templates (templates/templates.h) */
  struct mu_cp_queues *queues;             /* named queues: config and stored (queues_admin.h) */
  struct mu_cp_imgpolicy *imgpolicy;       /* the cluster image policy (imagepolicy/) */
  struct mu_cp_pluginconfig *pluginconfig; /* central plugin configs (pluginconfig/) */
  struct mu_savepoints *savepoints;        /* the savepoint catalogue (savepoints.h) */
  struct mu_run_history *run_history;      /* finished runs per task name (run_history.h) */
  struct mu_images_req *images_pending;    /* ListImages calls waiting for agents (images.c) */
  uint64_t images_seq;

  /* bundles (bundles.h) */
  struct mu_bundles_config *bundle_cfg; /* main's */
  struct mu_bundles *bundles;

  /* security (authz.c, tokens.c, secrets.c, audit.c); each module owns its state */
  struct mu_crl_state *crl;       /* --tls-crl, reloaded when the file changes; NULL: none */
  struct mu_tokens *tokens;       /* bearer tokens */
  struct mu_secrets *secrets;     /* the secret store */
  struct mu_audit_log *audit_log; /* audit records kept in etcd / memory */

  /* the web console (controlplane/console); NULL without --web-listen */
  struct mu_console *console;

  /* /metrics (metrics.c); NULL without --metrics-listen */
  mu_metrics_server *metrics;
  uv_timer_t metrics_timer;
  struct mu_meters *meters; /* the operator metrics (meters.h); NULL without it */
} mu_daemon;

/* admin_jobs.c */
int mu_admin_jobs_register(mu_daemon *d, mu_err *err);
/* Submits spec (taken in every case) as SubmitJob does and answers call with its
 * SubmitJobResponse (a plan when dry_run); used by Dispatch (templates/templates.c). */
void mu_admin_submit_spec(mu_daemon *d, mu_rpc_call *call, Muster__V1__JobSpec *spec, int dry_run);

/* plan.c: a dry run. Admits spec (taken in every case) as mu_sched_submit would and answers
 * what the job would do (targets in rollout order, batches, concurrency, error budget, hosts
 * disconnected now); nothing is stored or started. *ret_plan is the caller's
 * (protobuf_c_message_free_unpacked). */
struct mu_caller;
int mu_sched_plan(mu_daemon *d, Muster__V1__JobSpec *spec, const struct mu_caller *caller,
                  Muster__V1__JobPlan **ret_plan, mu_err *err);

/* admin.c: muster.v1.Admin */
int mu_admin_register(mu_daemon *d, mu_err *err);
/* The agent a mutating admin call names, once this member may write (else the call is
 * answered with the leader), the agent is known (else NOT_FOUND) and the caller may act on it
 * (else PERMISSION_DENIED, audited as action). NULL when the call was answered here. */
mu_agent *mu_admin_agent_for_write(mu_daemon *d, mu_rpc_call *call, const char *agent_id, const char *action);
/* task_action.c: TaskAction and (savepoints.c) ListSavepoints. */
int mu_task_action_register(mu_daemon *d, mu_err *err);

/* images.c: ListImages, and the agents' ImagesReply (from the gateway) */
int mu_images_register(mu_daemon *d, mu_err *err);
void mu_images_on_reply(mu_daemon *d, mu_agent *a, Muster__V1__ImagesReply *rep);
/* Answers the calls still waiting UNAVAILABLE (musterd stopping). */
void mu_images_stop(mu_daemon *d);

/* metrics.c: /metrics and /healthz when cfg.metrics_listen is set (else nothing). */
int mu_metrics_start(mu_daemon *d, mu_err *err);
void mu_metrics_stop(mu_daemon *d);

/* health.c: grpc.health.v1.Health and server reflection (v1 and v1alpha) */
int mu_health_register(mu_daemon *d, mu_err *err);
int mu_reflection_register(mu_daemon *d, mu_err *err);

#endif

/* The one daemon context of musterd: its loop, configuration, rpc server and the agent
 * registry. Owned by main; every handler reaches state only through it. */
#ifndef MU_CP_DAEMON_H
#define MU_CP_DAEMON_H

#include <uv.h>

#include "controlplane/bundles.h"
#include "controlplane/jobs.h"
#include "controlplane/registry.h"
#include "lib/config/server_config.h"
#include "lib/reflect/reflect.h"
#include "lib/rpc/rpc.h"

#define MU_VERSION "0.1.0"

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
  size_t max_jobs_kept;       /* finished jobs kept in memory */
  uint32_t max_tasks;         /* tasks per job */
  uint32_t max_task_runs;     /* targets x tasks per job */

  /* bundles (bundles.c) */
  mu_bundles_config bundle_cfg;
  mu_bundles *bundles;
} mu_daemon;

/* gateway.c: sends one control message down an agent's stream. MU_EAGAIN when the agent is
 * not connected. */
int mu_gateway_send(mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err);
/* gateway.c: bytes queued on the agent's stream not yet handed to gRPC; SIZE_MAX when the
 * agent is not connected (flow control for bundle chunks). */
size_t mu_gateway_queued_bytes(const mu_agent *agent);

/* scheduler.c */
void mu_sched_init(mu_daemon *d);
void mu_sched_close(mu_daemon *d);
/* Runs a dispatch pass soon (coalesced). */
void mu_sched_kick(mu_daemon *d);
/* Validates spec (taken in every case), resolves its targets and creates a running job. */
int mu_sched_submit(mu_daemon *d, Muster__V1__JobSpec *spec, mu_job **ret_job, mu_err *err);
mu_job *mu_sched_find(mu_daemon *d, const char *job_id);
/* Cancels what has not finished; MU_EINVAL when the job already ended (message says how). */
int mu_sched_cancel(mu_daemon *d, mu_job *job, const char *reason, uint32_t *ret_cancelled,
                    mu_err *err);
void mu_sched_on_event(mu_daemon *d, mu_agent *agent, const Muster__V1__TaskEvent *ev);
void mu_sched_on_agent_up(mu_daemon *d, mu_agent *agent);
void mu_sched_on_agent_down(mu_daemon *d, mu_agent *agent);

/* admin_jobs.c */
int mu_admin_jobs_register(mu_daemon *d, mu_err *err);

/* gateway.c: muster.v1.AgentGateway/Connect */
int mu_gateway_register(mu_daemon *d, mu_err *err);
/* Disconnects agents whose last heartbeat is older than the timeout. */
void mu_gateway_sweep(mu_daemon *d);

/* admin.c: muster.v1.Admin */
int mu_admin_register(mu_daemon *d, mu_err *err);

/* health.c: grpc.health.v1.Health and server reflection (v1 and v1alpha) */
int mu_health_register(mu_daemon *d, mu_err *err);
int mu_reflection_register(mu_daemon *d, mu_err *err);

#endif

/* musterd's operator metrics (docs/observability.md lists each): the registry of lib/metrics
 * and the families the daemon updates as things happen — task attempts started and ended by
 * type, state and reason class, their durations, queue waits and dispatch latencies, admin
 * RPCs by method and code, etcd requests by operation, leader changes. metrics.c renders them
 * with the gauges it reads from state at each snapshot. Only with --metrics-listen: without
 * it d->meters is NULL and every function here returns at once. Loop thread only. */
#ifndef MU_CP_METERS_H
#define MU_CP_METERS_H

#include <stddef.h>

#include "controlplane/jobs.h"
#include "lib/base/err.h"
#include "lib/metrics/registry.h"

typedef struct mu_meters {
  mu_metrics *reg;
  mu_metric *tasks_started, *tasks_finished, *task_duration, *queue_wait, *dispatch_latency;
  mu_metric *flagged, *anomalies;
  mu_metric *rpc_requests, *rpc_duration, *etcd_duration, *etcd_errors, *leader_changes;
  /* gauges set from state at each snapshot (metrics.c) */
  mu_metric *jobs_by_state, *tasks_by_state, *queue_depth, *send_queue_bytes, *send_queue_max;
  mu_metric *queue_hosts; /* per named queue: hosts running, waiting (queues_admin.h) */
} mu_meters;

/* A new set of families, all registered; caller frees with mu_meters_free. */
int mu_meters_new(mu_meters **ret, mu_err *err);
void mu_meters_free(mu_meters *m);

/* Task run idx of host h changed (the scheduler's task_changed hook): counts each attempt's
 * assignment, start and end once, whatever the number of calls. */
void mu_meters_task(mu_meters *m, const mu_job *job, mu_host_run *h, size_t idx);
/* lib/rpc's server observer (ud: the mu_meters). */
void mu_meters_rpc(const char *method, int code, double seconds, void *ud);
/* lib/etcd's observer (ud: the mu_meters). */
void mu_meters_etcd(void *ud, const char *op, double seconds, int failed);
void mu_meters_leader_changed(mu_meters *m);
/* A run of task idx ended with anomaly flags (lib/anomaly bits; run_history.c). */
void mu_meters_anomalies(mu_meters *m, const mu_job *job, size_t idx, unsigned flags);

#endif

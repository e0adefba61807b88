/* musterd's /metrics and /healthz (only with --metrics-listen): a snapshot published from the
 * loop every MU_METRICS_EVERY_MS — role, agents, jobs, etcd writes and the bundle figures
 * (how much the bundle store was read: the distribution bench's "read once" check). The HTTP
 * thread of lib/metrics only serves the last snapshot. The operator metrics (meters.h) are
 * rendered after these, their state gauges set from the jobs and streams at each snapshot. */
#include <stdio.h>

#include "controlplane/audit.h"
#include "controlplane/cluster.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/meters.h"
#include "controlplane/persist.h"
#include "controlplane/queues_admin.h"
#include "controlplane/scheduler.h"
#include "lib/base/clock.h"
#include "lib/jobcounts/reason.h"
#include "controlplane/schedules/schedules.h"

#define MU_METRICS_EVERY_MS 500

/* The gauges read from state: jobs by state, task runs of unfinished jobs by state, the
 * scheduler's queue, the agents' send queues. */
static void set_state_gauges(mu_daemon *d, mu_meters *m) {
  static const char *const job_states[] = {"unspecified", "pending",   "running", "succeeded",
                                           "failed",      "cancelled", "held"};
  double jobs[7] = {0}, waiting = 0; /* [6]: JOB_HELD (20) */
  double runs[MUSTER__V1__TASK_STATE__LOST + 1] = {0};
  for (const mu_job *j = d->sched->jobs; j != NULL; j = j->next) {
    if ((int)j->state >= 0 && (int)j->state < 6) jobs[j->state]++;
    if (j->state == MUSTER__V1__JOB_STATE__JOB_HELD) jobs[6]++;
    if (mu_job_finished(j)) continue;
    for (size_t h = 0; h < j->n_hosts; h++) {
      if (j->hosts[h].state == MU_HOST_PENDING) waiting++;
      for (size_t t = 0; t < j->spec->n_tasks; t++) {
        int s = (int)j->hosts[h].tasks[t].state;
        if (s >= 0 && s <= MUSTER__V1__TASK_STATE__LOST) runs[s]++;
      }
    }
  }
  for (size_t s = 1; s < 7; s++) mu_metric_set(m->jobs_by_state, (const char *[]){job_states[s]}, jobs[s]);
  for (int s = 1; s <= MUSTER__V1__TASK_STATE__LOST; s++)
    mu_metric_set(m->tasks_by_state, (const char *[]){mu_task_state_label((Muster__V1__TaskState)s)}, runs[s]);
  mu_metric_set(m->queue_depth, NULL, waiting);
  mu_queue_load loads[MU_QUEUE_MAX + 1];
  size_t nq = mu_queues_load(d, loads);
  mu_metric_clear(m->queue_hosts); /* a removed queue's series go */
  for (size_t i = 0; i < nq; i++) {
    mu_metric_set(m->queue_hosts, (const char *[]){loads[i].def.name, "running"}, loads[i].running);
    mu_metric_set(m->queue_hosts, (const char *[]){loads[i].def.name, "waiting"}, loads[i].waiting);
  }
  double queued = 0, max = 0;
  for (size_t i = 0; i < d->registry.n; i++) {
    const mu_agent *a = d->registry.agents[i];
    if (a->session == NULL) continue;
    double q = (double)mu_gateway_queued_bytes(a);
    queued += q;
    if (q > max) max = q;
  }
  mu_metric_set(m->send_queue_bytes, NULL, queued);
  mu_metric_set(m->send_queue_max, NULL, max);
}

static void publish(uv_timer_t *t) {
  mu_daemon *d = t->data;
  mu_prom p = {0};
  mu_bundles_stats bs;
  mu_bundles_stats_get(d, &bs);
  mu_prom_add(&p, "muster_metrics_snapshot_timestamp_seconds", "gauge",
              "When this snapshot was taken (time() minus this: how stale a scrape is).", "",
              (double)mu_now_ms() / 1000.0);
  mu_prom_add(&p, "muster_leader", "gauge", "1 when this member schedules and writes.", "",
              mu_cluster_leading(d) ? 1 : 0);
  mu_prom_add(&p, "muster_agents_known", "gauge", "Agents in the registry.", "", (double)d->registry.n);
  mu_prom_add(&p, "muster_agents_connected", "gauge", "Agents with an open stream.", "", (double)d->registry.connected);
  mu_prom_add(&p, "muster_jobs", "gauge", "Jobs held in memory.", "", (double)d->sched->n_jobs);
  mu_prom_add(&p, "muster_jobs_evicted_total", "counter",
              "Finished jobs forgotten by retention (max_jobs_kept, jobs_kept_min_age).", "",
              (double)d->sched->jobs_evicted);
  mu_prom_add(&p, "muster_jobs_evicted_young_total", "counter",
              "Finished jobs forgotten before jobs_kept_min_age because more than "
              "max_jobs_kept_hard jobs were held.",
              "", (double)d->sched->jobs_evicted_young);
  mu_prom_add(&p, "muster_etcd_write_batches_total", "counter",
              "Fenced write batches committed to etcd (jobs, tasks, agents).", "", (double)d->persist->writes);
  mu_prom_add(&p, "muster_bundles_stored", "gauge", "Bundles in the index.", "", (double)bs.bundles);
  mu_prom_add(&p, "muster_bundles_stored_bytes", "gauge", "Total size of the stored bundles.", "", (double)bs.bytes);
  mu_prom_add(&p, "muster_bundle_store_reads_total", "counter",
              "Whole bundles read from the bundle store (etcd or memory) to serve agents.", "", (double)bs.store_reads);
  mu_prom_add(&p, "muster_bundle_store_read_bytes_total", "counter",
              "Bytes read from the bundle store to serve agents.", "", (double)bs.store_read_bytes);
  mu_prom_add(&p, "muster_bundle_transfers", "gauge", "Agents being sent a bundle now.", "", (double)bs.transfers);
  mu_prom_add(&p, "muster_bundle_serve_cache_bytes", "gauge", "Bundle bytes held in memory for serving.", "",
              (double)bs.serve_cache_bytes);
  mu_prom_add(&p, "muster_bundle_served_bytes_total", "counter",
              "Bundle bytes sent to agents (chunks queued on their streams).", "", (double)bs.served_bytes);
  mu_prom_add(&p, "muster_bundles_served_total", "counter", "Bundle transfers to agents that sent the last chunk.", "",
              (double)bs.served_bundles);
  mu_audit_metrics(d, &p);
  if (d->meters != NULL) {
    set_state_gauges(d, d->meters);
    mu_metrics_render(d->meters->reg, &p);
  }
  mu_schedules_metrics(d, &p);
  char why[400];
  int healthy = mu_cluster_etcd_healthy(d, why, sizeof why);
  mu_metrics_server_publish(d->metrics, p.buf, healthy, healthy ? NULL : why);
  mu_prom_free(&p);
}

int mu_metrics_start(mu_daemon *d, mu_err *err) {
  if (d->cfg.metrics_listen[0] == '\0') return 0;
  mu_metrics_options opts = {.listen = d->cfg.metrics_listen,
                             .tls_cert = d->cfg.metrics_tls_cert,
                             .tls_key = d->cfg.metrics_tls_key,
                             .tls_ca = d->cfg.metrics_tls_ca};
  int rc = mu_metrics_server_start(&opts, &d->metrics, NULL, err);
  if (rc != 0) return rc;
  mu_rpc_server_set_observer(d->server, mu_meters_rpc, d->meters);
  uv_timer_init(d->loop, &d->metrics_timer);
  d->metrics_timer.data = d;
  uv_timer_start(&d->metrics_timer, publish, 0, MU_METRICS_EVERY_MS);
  return 0;
}

void mu_metrics_stop(mu_daemon *d) {
  if (d->metrics == NULL) return;
  uv_timer_stop(&d->metrics_timer);
  uv_close((uv_handle_t *)&d->metrics_timer, NULL);
  mu_metrics_server_stop(d->metrics);
  d->metrics = NULL;
}

/* The agent's /metrics and /healthz (when metrics_listen is set): a snapshot of connection,
 * task and journal figures published from the loop once a second, then the operator metrics
 * of meters.h (task types, run times, resources) and the bundle cache's counters. */
#include <stdio.h>

#include "agent/agent.h"
#include "agent/plugin/plugin_set.h"
#include "agent/bundle_cache.h"
#include "agent/exec/plugin_env.h"
#include "agent/meters.h"
#include "lib/base/clock.h"
#include "lib/host/hostinfo.h"

static void publish(uv_timer_t *t) {
  mu_agent_daemon *a = t->data;
  mu_prom p = {0};
  mu_journal_stats js = {0};
  if (a->journal != NULL) mu_journal_stats_get(a->journal, &js);
  uint64_t rss = 0;
  mu_host_rss(&rss, NULL);
  mu_prom_add(&p, "muster_metrics_snapshot_timestamp_seconds", "gauge",
              "When this snapshot was taken (time() minus this: how stale a scrape is).", "",
              (double)mu_now_ms() / 1000.0);
  mu_prom_add(&p, "muster_agent_connected", "gauge", "1 when the control-plane stream is up.", "",
              a->conn.welcomed ? 1 : 0);
  mu_prom_add(&p, "muster_agent_running_tasks", "gauge", "Task attempts running.", "",
              a->runner ? mu_runner_running_count(a->runner) : 0);
  mu_prom_add(&p, "muster_agent_slots", "gauge", "Configured task slots.", "", a->cfg.slots);
  mu_prom_add(&p, "muster_agent_journal_records", "gauge", "Task events not yet acked.", "", (double)js.live_records);
  mu_prom_add(&p, "muster_agent_journal_bytes", "gauge", "Bytes of unacked events.", "", (double)js.live_bytes);
  mu_prom_add(&p, "muster_agent_journal_overflows_total", "counter", "Events refused because the journal was full.", "",
              (double)js.overflows);
  mu_prom_add(&p, "muster_agent_journal_write_errors_total", "counter", "Journal write failures.", "",
              (double)js.write_errors);
  mu_prom_add(&p, "muster_agent_rss_bytes", "gauge", "Resident memory of the agent.", "", (double)rss);
  if (a->spool != NULL) {
    mu_output_spool_stats ss;
    mu_output_spool_stats_get(a->spool, &ss);
    mu_prom_add(&p, "muster_agent_output_spool_bytes", "gauge", "Bytes of task output kept in the output spool.", "",
                (double)ss.bytes);
    mu_prom_add(&p, "muster_agent_output_spool_files", "gauge", "Task attempts whose output is in the spool.", "",
                (double)ss.files);
    mu_prom_add(&p, "muster_agent_output_spool_evicted_total", "counter",
                "Finished attempts' output evicted for the spool cap.", "", (double)ss.evicted_files);
    mu_prom_add(&p, "muster_agent_output_spool_expired_total", "counter",
                "Finished attempts' output removed past the retention age.", "", (double)ss.expired_files);
    mu_prom_add(&p, "muster_agent_output_spool_overflow_bytes_total", "counter",
                "Task output not spooled (cap or write queue full, or write errors).", "", (double)ss.overflow_bytes);
    mu_prom_add(&p, "muster_agent_output_spool_write_errors_total", "counter", "Output spool write failures.", "",
                (double)ss.write_errors);
  }
  if (a->plugin_set != NULL) { /* out-of-process plugins (agent/plugin/plugin_set.h) */
    uint32_t hosts, up;
    uint64_t crashes;
    mu_plugin_set_totals(a->plugin_set, &hosts, &up, &crashes);
    mu_prom_add(&p, "muster_agent_plugin_hosts", "gauge",
                "Plugin types running out of process (a muster-plugin-host each).", "", hosts);
    mu_prom_add(&p, "muster_agent_plugin_hosts_up", "gauge", "Plugin host processes up now.", "", up);
    mu_prom_add(&p, "muster_agent_plugin_host_crashes_total", "counter",
                "Plugin host processes that crashed, hung or broke the protocol (each restarted).", "",
                (double)crashes);
  }
  mu_bundle_cache_stats bc;
  mu_agent_bundles_stats(a, &bc);
  mu_prom_add(&p, "muster_agent_bundle_cache_hits_total", "counter", "Bundle lookups served from the local cache.", "",
              (double)bc.hits);
  mu_prom_add(&p, "muster_agent_bundle_cache_misses_total", "counter",
              "Bundle lookups that had to fetch from the control plane.", "", (double)bc.misses);
  mu_prom_add(&p, "muster_agent_bundle_cache_fetched_bytes_total", "counter",
              "Bundle bytes fetched from the control plane.", "", (double)bc.fetched_bytes);
  mu_prom_add(&p, "muster_agent_bundle_cache_evictions_total", "counter",
              "Bundles evicted from the cache for its size cap.", "", (double)bc.evictions);
  mu_prom_add(&p, "muster_agent_bundle_cache_bytes", "gauge", "Bundle archives held in the cache.", "",
              (double)bc.bytes);
  /* the host figures gathered for heartbeats (conn.c, off the loop), as last gathered */
  const mu_host_metrics *hm = &a->conn.metrics;
  mu_prom_add(&p, "muster_agent_host_load1", "gauge", "Host load average over 1 minute.", "", hm->load1);
  mu_prom_add(&p, "muster_agent_host_memory_available_bytes", "gauge", "Host memory available (MemAvailable).", "",
              (double)hm->memory_available_bytes);
  mu_prom_add(&p, "muster_agent_host_memory_bytes", "gauge", "Host memory in total.", "",
              (double)a->facts.memory_bytes);
  mu_prom_add(&p, "muster_agent_spool_disk_free_bytes", "gauge", "Free bytes in the spool directory's filesystem.", "",
              (double)hm->disk_free_bytes);
  mu_prom_add(&p, "muster_agent_spool_disk_total_bytes", "gauge", "Size of the spool directory's filesystem.", "",
              (double)hm->disk_total_bytes);
  mu_prom_add(&p, "muster_agent_task_types", "gauge", "Task types this agent serves (plugins).", "",
              a->plugins != NULL ? (double)mu_plugin_host_count(a->plugins) : 0);
  if (a->meters != NULL) mu_metrics_render(mu_agent_meters_registry(a->meters), &p);
  if (a->plugins != NULL) { /* SDK v2: each plugin's health() and its own metrics */
    mu_prom_printf(&p,
                   "# HELP muster_agent_plugin_health The plugin's own health check: 0 ok, 1 warn, 2 fail.\n"
                   "# TYPE muster_agent_plugin_health gauge\n");
    for (size_t i = 0; i < mu_plugin_host_count(a->plugins); i++) {
      char reason[MUSTER_ERRBUF_SIZE];
      int h = mu_plugin_env_health(mu_plugin_host_env_at(a->plugins, i), reason, sizeof reason);
      mu_prom_printf(&p, "muster_agent_plugin_health{type=\"%s\"} %d\n", mu_plugin_host_info(a->plugins, i)->type, h);
    }
    mu_metrics_render_as(mu_plugin_host_metrics(a->plugins), "muster_agent_plugin_series_dropped_total", &p);
  }
  int durable = js.write_errors == 0 || js.persisted_seq + 1 >= js.next_seq;
  /* An agent with no plugins accepts no task at all: not healthy, whatever else holds. */
  int has_types = a->plugins != NULL && mu_plugin_host_count(a->plugins) > 0;
  const char *why = !has_types ? "no task types" : !durable ? "journal writes failing: events are not durable" : NULL;
  mu_metrics_server_publish(a->metrics, p.buf, why == NULL, why);
  mu_prom_free(&p);
}

int mu_agent_metrics_start(mu_agent_daemon *a, mu_err *err) {
  if (a->cfg.metrics_listen[0] == '\0') return 0;
  int rc = mu_agent_meters_new(&a->meters, err);
  if (rc != 0) return rc;
  mu_agent_meters_plugin_failures(a->meters, a->plugins_refused);
  mu_metrics_options opts = {.listen = a->cfg.metrics_listen,
                             .tls_cert = a->cfg.metrics_tls_cert,
                             .tls_key = a->cfg.metrics_tls_key,
                             .tls_ca = a->cfg.metrics_tls_ca};
  rc = mu_metrics_server_start(&opts, &a->metrics, NULL, err);
  if (rc != 0) return rc;
  uv_timer_init(a->loop, &a->metrics_timer);
  a->metrics_timer.data = a;
  uv_timer_start(&a->metrics_timer, publish, 0, 1000);
  return 0;
}

void mu_agent_metrics_stop(mu_agent_daemon *a) {
  mu_agent_meters_free(a->meters);
  a->meters = NULL;
  if (a->metrics == NULL) return;
  uv_timer_stop(&a->metrics_timer);
  uv_close((uv_handle_t *)&a->metrics_timer, NULL);
  mu_metrics_server_stop(a->metrics);
  a->metrics = NULL;
}

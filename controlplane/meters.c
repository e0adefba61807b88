/* musterd's operator metrics (meters.h): the families, and the updates made as tasks move,
 * RPCs end and etcd answers. A task run's attempt is counted once per stage (assigned,
 * started, ended) by remembering in the run how far it was counted: the scheduler's hook
 * fires on every change, often several times per stage. Buckets are fixed here (Prometheus
 * conventions: seconds, bytes). */
#include "controlplane/meters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/anomaly/anomaly.h"
#include "lib/base/clock.h"
#include "lib/jobcounts/reason.h"
#include "lib/rpc/rpc.h"

/* from 5 ms (a dispatch on an idle member) to 15 min (a long wait for a slot) */
static const double wait_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900};
static const double task_buckets[] = {MU_BUCKETS_TASK_SECONDS};
/* RPCs and etcd requests: 1 ms to 10 s */
static const double rpc_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int mu_meters_new(mu_meters **ret, mu_err *err) {
  mu_meters *m = calloc(1, sizeof *m);
  if (m != NULL) m->reg = mu_metrics_new();
  if (m == NULL || m->reg == NULL) {
    free(m);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  const mu_metric_def fams[] = {
      {&m->tasks_started,
       {.name = "muster_tasks_started_total",
        .help = "Task attempts that started running, by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->tasks_finished,
       {.name = "muster_tasks_finished_total",
        .help = "Task attempts that ended, by task type, final state and reason class.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type", "state", "reason"},
        .max_series = 512}},
      {&m->flagged,
       {.name = "muster_task_runs_flagged_total",
        .help = "Ended task attempts flagged: flag=\"near_oom\" (peak memory within 10% of "
                "resources.memory), flag=\"truncated\" (output past output_limit dropped).",
        .type = MU_METRIC_COUNTER,
        .labels = {"type", "flag"},
        .max_series = 128}},
      {&m->anomalies,
       {.name = "muster_task_anomalies_total",
        .help = "Ended task runs flagged against their task name's run history (lib/anomaly): "
                "flag=\"slow\", \"mem_high\", \"near_oom\", \"truncated\", \"slow_host\".",
        .type = MU_METRIC_COUNTER,
        .labels = {"type", "flag"},
        .max_series = 256}},
      {&m->task_duration,
       {.name = "muster_task_duration_seconds",
        .help = "Run time of ended task attempts (start to end).",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"type"},
        .buckets = task_buckets,
        .n_buckets = N(task_buckets)}},
      {&m->queue_wait,
       {.name = "muster_task_queue_wait_seconds",
        .help = "Time a task waited from becoming runnable (job submitted, or the host's previous task "
                "ended) to being assigned to an agent; first attempts only.",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"type"},
        .buckets = wait_buckets,
        .n_buckets = N(wait_buckets)}},
      {&m->dispatch_latency,
       {.name = "muster_dispatch_latency_seconds",
        .help = "Dispatch latency: stage=\"assign\" from a job's submission to each host's first "
                "task's assignment, stage=\"start\" from an attempt's assignment to the agent saying it runs.",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"stage"},
        .buckets = wait_buckets,
        .n_buckets = N(wait_buckets),
        .max_series = 4}},
      {&m->rpc_requests,
       {.name = "muster_rpc_requests_total",
        .help = "gRPC calls served, by service, method and status code (code!=\"OK\": errors).",
        .type = MU_METRIC_COUNTER,
        .labels = {"service", "method", "code"},
        .max_series = 512}},
      {&m->rpc_duration,
       {.name = "muster_rpc_duration_seconds",
        .help = "gRPC call duration by service and method (streams: the stream's whole life).",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"service", "method"},
        .buckets = rpc_buckets,
        .n_buckets = N(rpc_buckets),
        .max_series = 128}},
      {&m->etcd_duration,
       {.name = "muster_etcd_request_duration_seconds",
        .help = "etcd request latency by operation.",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"op"},
        .buckets = rpc_buckets,
        .n_buckets = N(rpc_buckets),
        .max_series = 16}},
      {&m->etcd_errors,
       {.name = "muster_etcd_request_errors_total",
        .help = "etcd requests that failed (unreachable, timed out, refused), by operation.",
        .type = MU_METRIC_COUNTER,
        .labels = {"op"},
        .max_series = 16}},
      {&m->leader_changes,
       {.name = "muster_leader_changes_total",
        .help = "Times the leader known to this member changed (elections seen in etcd).",
        .type = MU_METRIC_COUNTER,
        .labels = {NULL}}},
      {&m->jobs_by_state,
       {.name = "muster_jobs_by_state",
        .help = "Jobs held, by state.",
        .type = MU_METRIC_GAUGE,
        .labels = {"state"},
        .max_series = 8}},
      {&m->tasks_by_state,
       {.name = "muster_task_runs_by_state",
        .help = "Task runs of unfinished jobs, by state.",
        .type = MU_METRIC_GAUGE,
        .labels = {"state"},
        .max_series = 16}},
      {&m->queue_hosts,
       {.name = "muster_queue_hosts",
        .help = "Hosts of unfinished jobs per named queue: running, or waiting to start.",
        .type = MU_METRIC_GAUGE,
        .labels = {"queue", "state"},
        .max_series = 2 * 65}},
      {&m->queue_depth,
       {.name = "muster_scheduler_queue_depth",
        .help = "Host runs of unfinished jobs waiting to start (for a slot, a batch or their agent).",
        .type = MU_METRIC_GAUGE,
        .labels = {NULL}}},
      {&m->send_queue_bytes,
       {.name = "muster_agent_stream_send_queue_bytes",
        .help = "Bytes queued on agents' streams and not yet sent, all agents together.",
        .type = MU_METRIC_GAUGE,
        .labels = {NULL}}},
      {&m->send_queue_max,
       {.name = "muster_agent_stream_send_queue_max_bytes",
        .help = "The largest send queue of one agent's stream.",
        .type = MU_METRIC_GAUGE,
        .labels = {NULL}}},
  };
  int rc = mu_metrics_add_all(m->reg, fams, N(fams), err);
  if (rc != 0) {
    mu_meters_free(m);
    return rc;
  }
  *ret = m;
  return 0;
}

void mu_meters_free(mu_meters *m) {
  if (m == NULL) return;
  mu_metrics_free(m->reg);
  free(m);
}

static const char *task_type(const mu_job *job, size_t idx) {
  const char *t = job->spec->tasks[idx]->type;
  return t != NULL && t[0] != '\0' ? t : "unknown";
}

static void ended(mu_meters *m, const mu_job *job, const mu_task_run *tr, size_t idx, const char *type) {
  const Muster__V1__TaskSpec *spec = job->spec->tasks[idx];
  mu_run_end e = {.state = tr->state,
                  .exit_code = tr->exit_code,
                  .signal = tr->signal,
                  .message = tr->message,
                  .memory_peak_bytes = tr->has_metrics && tr->metrics.cgroup_memory_peak_bytes > 0
                                           ? (uint64_t)tr->metrics.cgroup_memory_peak_bytes
                                           : 0};
  if (spec->resources != NULL && spec->resources->memory != NULL && spec->resources->memory[0])
    mu_size_parse(spec->resources->memory, &e.memory_limit_bytes, NULL);
  mu_metric_add(m->tasks_finished, (const char *[]){type, mu_task_state_label(tr->state), mu_run_reason(&e)}, 1);
  if (e.memory_limit_bytes > 0 && e.memory_peak_bytes * 10 >= e.memory_limit_bytes * 9)
    mu_metric_add(m->flagged, (const char *[]){type, "near_oom"}, 1);
  if (tr->has_metrics && tr->metrics.output_dropped_bytes > 0)
    mu_metric_add(m->flagged, (const char *[]){type, "truncated"}, 1);
  if (tr->started_at_ms > 0 && tr->finished_at_ms >= tr->started_at_ms)
    mu_metric_observe(m->task_duration, (const char *[]){type},
                      (double)(tr->finished_at_ms - tr->started_at_ms) / 1000.0);
}

void mu_meters_task(mu_meters *m, const mu_job *job, mu_host_run *h, size_t idx) {
  if (m == NULL) return;
  mu_task_run *tr = &h->tasks[idx];
  const char *type = task_type(job, idx);
  if (tr->attempt != tr->metered_attempt) {
    tr->metered_attempt = tr->attempt;
    tr->metered_stage = 0;
    tr->assigned_at_ms = 0;
  }
  int64_t now = mu_now_ms();
  /* Waits are measured only when the assignment itself is seen (not for runs loaded from
   * etcd by a new leader, whose assignment happened elsewhere). */
  if (tr->metered_stage < 1 && tr->state == MUSTER__V1__TASK_STATE__ASSIGNED) {
    tr->assigned_at_ms = now;
    if (tr->attempt == 1) {
      int64_t ready = idx == 0 ? job->created_at_ms : h->tasks[idx - 1].finished_at_ms;
      if (ready > 0 && now >= ready)
        mu_metric_observe(m->queue_wait, (const char *[]){type}, (double)(now - ready) / 1000.0);
      if (idx == 0 && now >= job->created_at_ms)
        mu_metric_observe(m->dispatch_latency, (const char *[]){"assign"}, (double)(now - job->created_at_ms) / 1000.0);
    }
  }
  if (tr->metered_stage < 1 && tr->state >= MUSTER__V1__TASK_STATE__ASSIGNED) tr->metered_stage = 1;
  int started = tr->state == MUSTER__V1__TASK_STATE__RUNNING ||
                (tr->state >= MUSTER__V1__TASK_STATE__SUCCEEDED && tr->started_at_ms > 0);
  if (tr->metered_stage < 2 && tr->metered_stage >= 1 && started) {
    tr->metered_stage = 2;
    mu_metric_add(m->tasks_started, (const char *[]){type}, 1);
    if (tr->assigned_at_ms > 0 && now >= tr->assigned_at_ms)
      mu_metric_observe(m->dispatch_latency, (const char *[]){"start"}, (double)(now - tr->assigned_at_ms) / 1000.0);
  }
  if (tr->metered_stage < 3 && tr->state >= MUSTER__V1__TASK_STATE__SUCCEEDED) {
    tr->metered_stage = 3;
    ended(m, job, tr, idx, type);
  }
}

void mu_meters_rpc(const char *method, int code, double seconds, void *ud) {
  mu_meters *m = ud;
  if (m == NULL) return;
  /* "/muster.v1.Admin/SubmitJob" → service "muster.v1.Admin", method "SubmitJob" */
  char service[128] = "", name[128] = "unknown";
  const char *slash = method[0] == '/' ? strchr(method + 1, '/') : NULL;
  if (slash != NULL) {
    size_t n = (size_t)(slash - method - 1);
    if (n >= sizeof service) n = sizeof service - 1;
    memcpy(service, method + 1, n);
    service[n] = '\0';
    snprintf(name, sizeof name, "%s", slash + 1);
  }
  mu_metric_add(m->rpc_requests, (const char *[]){service, name, mu_rpc_code_name(code)}, 1);
  mu_metric_observe(m->rpc_duration, (const char *[]){service, name}, seconds);
}

void mu_meters_etcd(void *ud, const char *op, double seconds, int failed) {
  mu_meters *m = ud;
  if (m == NULL) return;
  mu_metric_observe(m->etcd_duration, (const char *[]){op}, seconds);
  if (failed) mu_metric_add(m->etcd_errors, (const char *[]){op}, 1);
}

void mu_meters_leader_changed(mu_meters *m) {
  if (m != NULL) mu_metric_add(m->leader_changes, NULL, 1);
}

void mu_meters_anomalies(mu_meters *m, const mu_job *job, size_t idx, unsigned flags) {
  if (m == NULL) return;
  for (int i = 0; i < MU_ANOMALY_N_FLAGS; i++) {
    if (!(flags & (1u << i))) continue;
    char label[32];
    const char *name = mu_anomaly_flag_name(i);
    size_t k = 0;
    for (; name[k] != '\0' && k + 1 < sizeof label; k++)
      label[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] - 'A' + 'a' : name[k]);
    label[k] = '\0';
    mu_metric_add(m->anomalies, (const char *[]){task_type(job, idx), label}, 1);
  }
}

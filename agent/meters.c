/* The agent's operator metrics (meters.h): the families and a small table of attempts from
 * their Assign to their end, which is where an event learns its task type and how long the
 * attempt waited on this agent. */
#include "agent/meters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/jobcounts/reason.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const double wait_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double task_buckets[] = {MU_BUCKETS_TASK_SECONDS};
/* 1 MiB to 64 GiB, by fours */
static const double mem_buckets[] = {1048576.0,    4194304.0,    16777216.0,    67108864.0,   268435456.0,
                                     1073741824.0, 4294967296.0, 17179869184.0, 68719476736.0};

typedef struct tracked {
  char *task_id;
  uint32_t attempt;
  char type[64];
  int64_t assigned_mono;
  uint64_t memory_limit; /* resources.memory, 0: none */
  int started;
} tracked;

struct mu_agent_meters {
  mu_metrics *reg;
  mu_metric *started, *finished, *duration, *wait, *cpu, *memory, *output, *dropped, *oom;
  mu_metric *io_read, *io_written;
  mu_metric *refused, *plugin_failures, *untracked;
  tracked *t;
  size_t n;
};

int mu_agent_meters_new(mu_agent_meters **ret, mu_err *err) {
  mu_agent_meters *m = calloc(1, sizeof *m);
  if (m != NULL) m->reg = mu_metrics_new();
  if (m != NULL && m->reg != NULL) m->t = calloc(MU_AGENT_METERS_TRACKED, sizeof *m->t);
  if (m == NULL || m->reg == NULL || m->t == NULL) {
    if (m != NULL) mu_metrics_free(m->reg);
    free(m);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  const mu_metric_def fams[] = {
      {&m->started,
       {.name = "muster_agent_tasks_started_total",
        .help = "Task attempts that started running here, by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->finished,
       {.name = "muster_agent_tasks_finished_total",
        .help = "Task attempts that ended here, by task type, final state and reason class.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type", "state", "reason"},
        .max_series = 512}},
      {&m->duration,
       {.name = "muster_agent_task_duration_seconds",
        .help = "Wall-clock run time of task attempts that ended here, by task type.",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"type"},
        .buckets = task_buckets,
        .n_buckets = N(task_buckets)}},
      {&m->wait,
       {.name = "muster_agent_task_queue_wait_seconds",
        .help = "Time from an Assign arriving here to the attempt running (bundle fetch, slot "
                "wait, start), by task type.",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"type"},
        .buckets = wait_buckets,
        .n_buckets = N(wait_buckets)}},
      {&m->cpu,
       {.name = "muster_agent_task_cpu_seconds_total",
        .help = "CPU time (user + system) of ended task attempts, by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->memory,
       {.name = "muster_agent_task_peak_memory_bytes",
        .help = "Peak memory of ended task attempts (cgroup memory.peak, else max RSS).",
        .type = MU_METRIC_HISTOGRAM,
        .labels = {"type"},
        .buckets = mem_buckets,
        .n_buckets = N(mem_buckets)}},
      {&m->output,
       {.name = "muster_agent_task_output_bytes_total",
        .help = "Bytes task attempts wrote to stdout and stderr, by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->dropped,
       {.name = "muster_agent_task_output_dropped_bytes_total",
        .help = "Output bytes past resources.output_limit, dropped, by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->io_read,
       {.name = "muster_agent_task_read_bytes_total",
        .help = "Block-device bytes ended task attempts read (cgroup v2 io.stat, else rusage "
                "ru_inblock x 512), by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->io_written,
       {.name = "muster_agent_task_written_bytes_total",
        .help = "Block-device bytes ended task attempts wrote (cgroup v2 io.stat, else rusage "
                "ru_oublock x 512), by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->oom,
       {.name = "muster_agent_task_oom_kills_total",
        .help = "Task attempts killed for their memory limit, by task type.",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->refused,
       {.name = "muster_agent_tasks_refused_total",
        .help = "Assigned attempts this agent refused before running them (bad spec, unknown "
                "type, bundle or secret problems).",
        .type = MU_METRIC_COUNTER,
        .labels = {"type"}}},
      {&m->plugin_failures,
       {.name = "muster_agent_plugin_load_failures_total",
        .help = "Plugins refused at start (not loadable, wrong ABI, duplicate type).",
        .type = MU_METRIC_COUNTER}},
      {&m->untracked,
       {.name = "muster_agent_meters_untracked_total",
        .help = "Attempts not tracked for their type because more than 4096 were in flight.",
        .type = MU_METRIC_COUNTER}},
  };
  int rc = mu_metrics_add_all(m->reg, fams, N(fams), err);
  if (rc != 0) {
    mu_agent_meters_free(m);
    return rc;
  }
  mu_metric_add(m->plugin_failures, NULL, 0); /* present at 0 */
  *ret = m;
  return 0;
}

void mu_agent_meters_free(mu_agent_meters *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n; i++) free(m->t[i].task_id);
  free(m->t);
  mu_metrics_free(m->reg);
  free(m);
}

mu_metrics *mu_agent_meters_registry(mu_agent_meters *m) { return m ? m->reg : NULL; }

static tracked *find(mu_agent_meters *m, const char *task_id, uint32_t attempt) {
  for (size_t i = 0; i < m->n; i++)
    if (m->t[i].attempt == attempt && strcmp(m->t[i].task_id, task_id) == 0) return &m->t[i];
  return NULL;
}

static void forget(mu_agent_meters *m, tracked *t) {
  free(t->task_id);
  *t = m->t[--m->n];
}

void mu_agent_meters_assigned(mu_agent_meters *m, const char *task_id, uint32_t attempt, const char *type,
                              uint64_t memory_limit) {
  if (m == NULL || find(m, task_id, attempt) != NULL) return;
  if (m->n >= MU_AGENT_METERS_TRACKED) {
    mu_metric_add(m->untracked, NULL, 1);
    return;
  }
  tracked *t = &m->t[m->n];
  memset(t, 0, sizeof *t);
  t->task_id = strdup(task_id);
  if (t->task_id == NULL) return;
  t->attempt = attempt;
  snprintf(t->type, sizeof t->type, "%s", type && type[0] ? type : "unknown");
  t->assigned_mono = mu_mono_ms();
  t->memory_limit = memory_limit;
  m->n++;
}

void mu_agent_meters_event(mu_agent_meters *m, const mu_task_event *e) {
  if (m == NULL || e->kind != MU_EV_STATE) return;
  tracked *t = find(m, e->task_id, e->attempt);
  const char *type[] = {t != NULL ? t->type : "unknown"};
  if (e->state.state == MU_TASK_RUNNING && t != NULL && !t->started) {
    t->started = 1;
    mu_metric_add(m->started, type, 1);
    mu_metric_observe(m->wait, type, (double)(mu_mono_ms() - t->assigned_mono) / 1000.0);
  }
  if (!mu_task_state_final(e->state.state)) return;
  const mu_task_metrics *tm = e->state.metrics;
  uint64_t peak = 0;
  if (tm != NULL)
    peak = (uint64_t)(tm->cgroup_memory_peak_bytes > 0 ? tm->cgroup_memory_peak_bytes : tm->max_rss_bytes);
  mu_run_end end = {
      .state = (Muster__V1__TaskState)e->state.state,
      .exit_code = e->state.exit_code,
      .signal = e->state.signal,
      .message = e->state.message,
      .memory_peak_bytes = tm != NULL && tm->cgroup_memory_peak_bytes > 0 ? (uint64_t)tm->cgroup_memory_peak_bytes : 0,
      .memory_limit_bytes = t != NULL ? t->memory_limit : 0};
  const char *reason = mu_run_reason(&end);
  mu_metric_add(m->finished, (const char *[]){type[0], mu_task_state_label(end.state), reason}, 1);
  if (strcmp(reason, "oom") == 0) mu_metric_add(m->oom, type, 1);
  if (tm != NULL && (t == NULL || t->started)) {
    mu_metric_observe(m->duration, type, (double)tm->wall_ms / 1000.0);
    mu_metric_add(m->cpu, type, (double)(tm->user_cpu_ms + tm->sys_cpu_ms) / 1000.0);
    if (peak > 0) mu_metric_observe(m->memory, type, (double)peak);
    mu_metric_add(m->output, type, (double)tm->output_bytes);
    mu_metric_add(m->dropped, type, (double)tm->output_dropped_bytes);
    if (tm->io_read_bytes > 0) mu_metric_add(m->io_read, type, (double)tm->io_read_bytes);
    if (tm->io_write_bytes > 0) mu_metric_add(m->io_written, type, (double)tm->io_write_bytes);
  }
  if (t != NULL) forget(m, t);
}

void mu_agent_meters_refused(mu_agent_meters *m, const char *task_id, uint32_t attempt) {
  if (m == NULL) return;
  tracked *t = find(m, task_id, attempt);
  mu_metric_add(m->refused, (const char *[]){t != NULL ? t->type : "unknown"}, 1);
  if (t != NULL) forget(m, t);
}

void mu_agent_meters_plugin_failures(mu_agent_meters *m, int n) {
  if (m != NULL && n > 0) mu_metric_add(m->plugin_failures, NULL, (double)n);
}

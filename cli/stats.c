/* `muster stats` (stats.h): collecting finished runs from Job views, robust flags (median and
 * MAD of a task's earlier runs), and the table. */
#include "cli/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/anomaly/anomaly.h"
#include "lib/base/clock.h"
#include "lib/jobcounts/jobcounts.h"

static mu_stats_run *grow(mu_stats_run **runs, size_t *n, size_t *cap) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    mu_stats_run *g = realloc(*runs, c * sizeof *g);
    if (g == NULL) return NULL;
    *runs = g;
    *cap = c;
  }
  mu_stats_run *r = &(*runs)[(*n)++];
  memset(r, 0, sizeof *r);
  return r;
}

static const Muster__V1__TaskSpec *spec_of(const Muster__V1__Job *job, const char *name) {
  for (size_t i = 0; job->spec != NULL && i < job->spec->n_tasks; i++)
    if (strcmp(job->spec->tasks[i]->name, name) == 0) return job->spec->tasks[i];
  return NULL;
}

size_t mu_stats_collect(const Muster__V1__Job *job, const char *task, mu_stats_run **runs, size_t *n, size_t *cap) {
  size_t added = 0;
  for (size_t i = 0; i < job->n_tasks; i++) {
    const Muster__V1__TaskRun *tr = job->tasks[i];
    if (tr->state < MUSTER__V1__TASK_STATE__SUCCEEDED || tr->started_at_ms <= 0 ||
        tr->finished_at_ms < tr->started_at_ms)
      continue; /* not finished, or never ran: nothing to measure */
    if (task != NULL && strcmp(tr->task_name, task) != 0) continue;
    const Muster__V1__TaskMetrics *m = tr->metrics;
    const Muster__V1__TaskSpec *spec = spec_of(job, tr->task_name);
    mu_stats_run *r = grow(runs, n, cap);
    if (r == NULL) return added;
    r->job_id = job->id;
    r->task_name = tr->task_name;
    r->agent_id = tr->agent_id;
    r->state = tr->state;
    r->started_ms = tr->started_at_ms;
    r->finished_ms = tr->finished_at_ms;
    r->cpu_ms = m && m->user_cpu_ms >= 0 && m->sys_cpu_ms >= 0 ? m->user_cpu_ms + m->sys_cpu_ms : -1;
    r->peak_bytes = !m ? -1 : m->cgroup_memory_peak_bytes > 0 ? m->cgroup_memory_peak_bytes : m->max_rss_bytes;
    r->output_bytes = m ? m->output_bytes : 0;
    r->dropped_bytes = m ? m->output_dropped_bytes : 0;
    if (spec != NULL && spec->resources != NULL && spec->resources->memory[0])
      mu_size_parse(spec->resources->memory, &r->memory_limit, NULL);
    added++;
  }
  return added;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of v[0..n), sorted in place; NAN for none. */
static double pct(double *v, size_t n, double p) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  size_t k = (size_t)ceil(p / 100.0 * (double)n);
  return v[k == 0 ? 0 : k - 1];
}

static int cmp_finish(const void *a, const void *b) {
  const mu_stats_run *x = a, *y = b;
  return x->finished_ms < y->finished_ms ? -1 : x->finished_ms > y->finished_ms;
}

size_t mu_stats_collect_history(Muster__V1__RunHistoryEntry *const *entries, size_t n_entries, mu_stats_run **runs,
                                size_t *n, size_t *cap) {
  size_t added = 0;
  for (size_t i = 0; i < n_entries; i++) {
    const Muster__V1__RunHistoryEntry *e = entries[i];
    mu_stats_run *r = grow(runs, n, cap);
    if (r == NULL) return added;
    r->job_id = e->job_id;
    r->task_name = e->task_name;
    r->agent_id = e->agent_id;
    r->state = e->state;
    r->started_ms = e->finished_at_ms - e->duration_ms;
    r->finished_ms = e->finished_at_ms;
    r->cpu_ms = e->cpu_ms;
    r->peak_bytes = e->peak_memory_bytes;
    r->output_bytes = e->output_bytes;
    r->dropped_bytes = e->output_dropped_bytes;
    r->memory_limit = e->memory_limit_bytes;
    for (size_t k = 0; k < e->n_anomalies; k++) r->flags |= mu_anomaly_flag_of(e->anomalies[k]);
    r->decided = 1;
    added++;
  }
  return added;
}

void mu_stats_flag(mu_stats_run *runs, size_t n) {
  if (n > 0) qsort(runs, n, sizeof *runs, cmp_finish);
  double *dur = malloc((n + 1) * sizeof *dur), *mem = malloc((n + 1) * sizeof *mem);
  double *host = malloc((n + 1) * sizeof *host), *scratch = malloc((n + 1) * sizeof *scratch);
  for (size_t i = 0; i < n; i++) {
    mu_stats_run *r = &runs[i];
    if (r->decided) continue;
    mu_anomaly_run a = {r->finished_ms - r->started_ms, r->peak_bytes, r->memory_limit, r->dropped_bytes};
    mu_anomaly_history h = {dur, 0, mem, 0, host, 0};
    for (size_t k = 0; dur && mem && host && k < i; k++) { /* the earlier runs of the task */
      if (strcmp(runs[k].task_name, r->task_name) != 0) continue;
      dur[h.n_dur++] = (double)(runs[k].finished_ms - runs[k].started_ms);
      if (runs[k].peak_bytes > 0) mem[h.n_mem++] = (double)runs[k].peak_bytes;
      if (strcmp(runs[k].agent_id, r->agent_id) == 0)
        host[h.n_host_dur++] = (double)(runs[k].finished_ms - runs[k].started_ms);
    }
    r->flags = mu_anomaly_flags(&a, dur && mem && host && scratch ? &h : NULL, scratch);
  }
  free(dur);
  free(mem);
  free(host);
  free(scratch);
}

void mu_stats_flag_names(unsigned flags, char *buf, size_t size) { mu_anomaly_flag_names(flags, buf, size); }

static void bytes_text(double b, char *buf, size_t size) {
  if (isnan(b) || b < 0) snprintf(buf, size, "-");
  else if (b < 1024) snprintf(buf, size, "%.0fB", b);
  else if (b < 1048576) snprintf(buf, size, "%.1fK", b / 1024);
  else if (b < 1073741824.0) snprintf(buf, size, "%.1fM", b / 1048576);
  else snprintf(buf, size, "%.1fG", b / 1073741824.0);
}

static void secs_text(double ms, char *buf, size_t size) {
  if (isnan(ms) || ms < 0) snprintf(buf, size, "-");
  else mu_duration_format((int64_t)ms, buf, size);
}

/* One task's figures: p50/p90/max of each measure, and the trend. */
static void print_task(const mu_stats_run *runs, size_t n, const char *task, double *v, FILE *out) {
  size_t m = 0;
  char a[32], b[32], c[32];
  for (size_t i = 0; i < n; i++)
    if (strcmp(runs[i].task_name, task) == 0) m++;
  fprintf(out, "%s: %zu runs\n", task, m);
  for (int what = 0; what < 4; what++) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      const mu_stats_run *r = &runs[i];
      if (strcmp(r->task_name, task) != 0) continue;
      double x = what == 0   ? (double)(r->finished_ms - r->started_ms)
                 : what == 1 ? (double)r->cpu_ms
                 : what == 2 ? (double)r->peak_bytes
                             : (double)r->output_bytes;
      if (x >= 0) v[k++] = x;
    }
    static const char *const label[] = {"duration", "cpu", "peak memory", "output"};
    double p50 = pct(v, k, 50), p90 = pct(v, k, 90), mx = pct(v, k, 100);
    if (what <= 1) {
      secs_text(p50, a, sizeof a), secs_text(p90, b, sizeof b), secs_text(mx, c, sizeof c);
    } else {
      bytes_text(p50, a, sizeof a), bytes_text(p90, b, sizeof b), bytes_text(mx, c, sizeof c);
    }
    fprintf(out, "  %-12s p50 %-9s p90 %-9s max %s\n", label[what], a, b, c);
  }
  /* trend: runs are in finish order; the newer half's median duration against the older */
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(runs[i].task_name, task) == 0) v[k++] = (double)(runs[i].finished_ms - runs[i].started_ms);
  if (k >= 4) {
    size_t h = k / 2;
    double older = mu_anomaly_median(v, h), newer = mu_anomaly_median(v + (k - h), h);
    if (older > 0)
      fprintf(out, "  trend        median duration %+.0f%% (newer %zu runs against older %zu)\n",
              100.0 * (newer - older) / older, h, h);
  }
}

size_t mu_stats_print(const mu_stats_run *runs, size_t n, FILE *out) {
  double *v = malloc((n + 1) * sizeof *v);
  if (v == NULL) return 0;
  if (n == 0) fprintf(out, "no finished task runs\n");
  for (size_t i = 0; i < n; i++) { /* each task name once, in order of first finish */
    size_t j = 0;
    while (j < i && strcmp(runs[j].task_name, runs[i].task_name) != 0) j++;
    if (j == i) print_task(runs, n, runs[i].task_name, v, out);
  }
  size_t flagged = 0;
  for (size_t i = 0; i < n; i++) {
    const mu_stats_run *r = &runs[i];
    if (r->flags == 0) continue;
    char f[64], d[32], p[32], l[32];
    mu_stats_flag_names(r->flags, f, sizeof f);
    secs_text((double)(r->finished_ms - r->started_ms), d, sizeof d);
    bytes_text((double)r->peak_bytes, p, sizeof p);
    bytes_text((double)r->memory_limit, l, sizeof l);
    if (flagged++ == 0) fprintf(out, "flagged runs:\n");
    fprintf(out, "  %-20s %s %s/%s: %s, peak %s%s%s%s\n", f, r->job_id, r->agent_id, r->task_name, d, p,
            r->memory_limit ? " of " : "", r->memory_limit ? l : "", r->dropped_bytes > 0 ? ", output truncated" : "");
  }
  free(v);
  return flagged;
}

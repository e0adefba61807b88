/* Job retention: the eviction plan over the scheduler's job list (by count, a minimum age, a
 * hard cap), the bounded ring of evicted ids, and the "was evicted" answer built from them.
 * Pure functions of their arguments; the scheduler applies the plan. */
#include "controlplane/job_retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t mu_retention_plan(const mu_retention *r, const mu_retention_job *jobs, size_t n, int64_t now_ms, bool *ret_evict,
                         size_t *ret_young) {
  size_t evicted = 0, young = 0;
  for (size_t i = 0; i < n; i++) {
    ret_evict[i] =
        i >= r->max_kept && jobs[i].finished && !jobs[i].needed && now_ms - jobs[i].finished_at_ms >= r->min_age_ms;
    evicted += ret_evict[i];
  }
  /* memory stays bounded: past the hard cap the oldest finished jobs go, young or not */
  for (size_t i = n; i-- > 0 && n - evicted > r->hard_cap;) {
    if (ret_evict[i] || !jobs[i].finished || jobs[i].needed) continue;
    ret_evict[i] = true;
    evicted++;
    young += now_ms - jobs[i].finished_at_ms < r->min_age_ms;
  }
  if (ret_young != NULL) *ret_young = young;
  return evicted;
}

void mu_evicted_ring_add(mu_evicted_ring *ring, const char *id, int64_t finished_at_ms, bool young) {
  if (ring->items == NULL) {
    ring->items = calloc(MU_EVICTED_RING_MAX, sizeof *ring->items);
    if (ring->items == NULL) return;
  }
  mu_evicted *e = &ring->items[ring->head];
  snprintf(e->id, sizeof e->id, "%s", id);
  e->finished_at_ms = finished_at_ms;
  e->young = young;
  ring->head = (ring->head + 1) % MU_EVICTED_RING_MAX;
  if (ring->n < MU_EVICTED_RING_MAX) ring->n++;
}

void mu_evicted_ring_free(mu_evicted_ring *ring) {
  free(ring->items);
  memset(ring, 0, sizeof *ring);
}

const mu_evicted *mu_evicted_ring_find(const mu_evicted_ring *ring, const char *id) {
  for (size_t k = 1; k <= ring->n; k++) { /* newest first */
    const mu_evicted *e = &ring->items[(ring->head + MU_EVICTED_RING_MAX - k) % MU_EVICTED_RING_MAX];
    if (strcmp(e->id, id) == 0) return e;
  }
  return NULL;
}

void mu_retention_format_duration(int64_t ms, char *buf, size_t size) {
  static const struct {
    int64_t ms;
    char unit;
  } units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof units / sizeof *units && len < size; i++) {
    if (ms < units[i].ms) continue;
    len += (size_t)snprintf(buf + len, size - len, "%lld%c", (long long)(ms / units[i].ms), units[i].unit);
    ms %= units[i].ms;
  }
  if (len == 0 && ms == 0) snprintf(buf, size, "0s");
  else if (ms > 0 && len < size) snprintf(buf + len, size - len, "%lldms", (long long)ms);
}

void mu_retention_not_found(const mu_retention *r, const mu_evicted_ring *ring, const char *id, char *msg,
                            size_t size) {
  const mu_evicted *e = mu_evicted_ring_find(ring, id);
  if (e == NULL) {
    snprintf(msg, size, "no job '%s'", id);
    return;
  }
  char when[32] = "?", age[32];
  time_t secs = (time_t)(e->finished_at_ms / 1000);
  struct tm tm;
  if (gmtime_r(&secs, &tm) != NULL) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  mu_retention_format_duration(r->min_age_ms, age, sizeof age);
  snprintf(msg, size,
           "job %s was evicted (finished at %s; retention: max_jobs_kept %zu, jobs_kept_min_age "
           "%s, max_jobs_kept_hard %zu%s)",
           e->id, when, r->max_kept, age, r->hard_cap,
           e->young ? "; it went before its min age because more than max_jobs_kept_hard jobs "
                      "were held"
                    : "");
}

/* Which finished jobs musterd forgets, and what it remembers of the ones it forgot.
 * Retention by count (max_jobs_kept) keeps every job that finished less than min_age ago, so a
 * burst of jobs does not lose the ones that just ended; a hard cap bounds memory all the same,
 * and jobs dropped under it before their min age are counted and logged. Evicted ids stay in a
 * bounded ring so that asking for one says when and why it went, not just "no job". No daemon
 * state: the scheduler walks its list and asks. */
#ifndef MU_CP_JOB_RETENTION_H
#define MU_CP_JOB_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MU_EVICTED_RING_MAX 4096 /* evicted job ids remembered, oldest forgotten first */
#define MU_EVICTED_ID_MAX 64

typedef struct mu_retention {
  size_t max_kept;    /* max_jobs_kept: jobs kept by count */
  int64_t min_age_ms; /* jobs_kept_min_age: finished jobs younger than this are kept */
  size_t hard_cap;    /* max_jobs_kept_hard: past it the oldest finished go, young or not */
} mu_retention;

typedef struct mu_evicted {
  char id[MU_EVICTED_ID_MAX];
  int64_t finished_at_ms;
  bool young; /* went past the hard cap before its min age */
} mu_evicted;

/* A ring of the last MU_EVICTED_RING_MAX evicted jobs; zero-initialised is empty. Its slots
 * are allocated by the first add and released by mu_evicted_ring_free. */
typedef struct mu_evicted_ring {
  mu_evicted *items;
  size_t head, n; /* next slot to write; entries held */
} mu_evicted_ring;

/* One job as the eviction pass sees it, newest first. */
typedef struct mu_retention_job {
  bool finished;
  int64_t finished_at_ms;
  /* an unfinished job still needs it (a dependency a job waits for, a stage's job of a job
   * with stages): kept like an unfinished job */
  bool needed;
} mu_retention_job;

/* Decides, for jobs[0..n) (newest first), which go: ret_evict[i] is set for each. A finished
 * job goes when it is past the newest max_kept and at least min_age old at now_ms; then, while
 * more than hard_cap jobs remain, the oldest finished ones go too, counted in *ret_young when
 * younger than min_age. Unfinished and needed jobs never go. Returns how many go. */
size_t mu_retention_plan(const mu_retention *r, const mu_retention_job *jobs, size_t n, int64_t now_ms, bool *ret_evict,
                         size_t *ret_young);

/* Remembers an evicted job (ids longer than MU_EVICTED_ID_MAX - 1 are cut). Out of memory
 * for the slots, it remembers nothing (the answer is then "no job"). */
void mu_evicted_ring_add(mu_evicted_ring *ring, const char *id, int64_t finished_at_ms, bool young);
void mu_evicted_ring_free(mu_evicted_ring *ring);
/* The newest record of id, or NULL. */
const mu_evicted *mu_evicted_ring_find(const mu_evicted_ring *ring, const char *id);

/* The answer for a job id that is not held: "job X was evicted (finished at T; retention: ...)"
 * when ring remembers it, else "no job 'X'". Into msg (always NUL-terminated). */
void mu_retention_not_found(const mu_retention *r, const mu_evicted_ring *ring, const char *id, char *msg, size_t size);

/* Formats a duration the way configs write it ("1h", "90s" as "1m30s", "0s"). */
void mu_retention_format_duration(int64_t ms, char *buf, size_t size);

#endif

/* Resource-aware placement for one scheduler pass (no daemon, no network): at the start of a
 * pass every agent's capacity is read from its Hello and what running hosts reserve on it is
 * summed from the job list (so nothing drifts: the job list is the one truth); then each host
 * that starts is charged at once, so no agent is given more than it declares within a pass
 * either. `any` targets (with `count`) are placed on the best-scoring matching agent by the
 * job's strategy (spread | binpack); when none fits, the reason is a sentence for the task
 * run's message. Loop thread only. */
#ifndef MU_CP_PLACEMENT_H
#define MU_CP_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/jobs.h"
#include "controlplane/registry.h"
#include "controlplane/resources.h"
#include "lib/base/err.h"

#define MU_PLACE_CACHE 16 /* selectors whose matching agents a pass remembers */
#define MU_PLACE_WHY 256
#define MU_PLACE_MAX_TYPES 32 /* fleet-wide type limits counted per pass (the scheduler's) */

typedef struct mu_place_sel {
  char *text;
  mu_agent **agents; /* connected, not draining, matching */
  size_t n;
} mu_place_sel;

typedef struct mu_placement {
  mu_registry *reg;
  uint64_t gen; /* marks the agents the job being placed holds already */
  mu_place_sel cache[MU_PLACE_CACHE];
  size_t next_evict;
  uint64_t decisions;                        /* hosts placed on an agent by mu_place_any */
  uint32_t type_running[MU_PLACE_MAX_TYPES]; /* attempts running per limited type (scheduler.c) */
} mu_placement;

/* Reads every agent's capacity and sums what the running hosts of jobs reserve. */
void mu_place_begin(mu_placement *p, mu_registry *reg, mu_job *jobs);
/* Frees the pass's selector cache. */
void mu_place_end(mu_placement *p);
/* What one host of job reserves (computed once per job). */
const mu_res *mu_place_need(mu_job *job);
/* The best agent for a pending host of job's `any` target, or NULL: then why says what it waits
 * for, or is "" when no connected agent matches at all (the disconnected wait applies). */
mu_agent *mu_place_any(mu_placement *p, mu_job *job, char *why, size_t size);
/* 1 when a host of job fits on agent a (named target); else 0 and why. */
int mu_place_fits(const mu_job *job, const mu_agent *a, char *why, size_t size);
/* Charges a host of job to a (it starts). */
void mu_place_take(mu_job *job, mu_agent *a);
/* Submit checks: requests valid, strategy known, and every named target (ids) or, for an
 * `any` target, at least one matching agent declares enough of each kind; MU_EINVAL names the
 * largest agent otherwise. */
int mu_place_admit(const mu_registry *reg, const Muster__V1__JobSpec *spec, char *const *ids, size_t n, mu_err *err);

#endif

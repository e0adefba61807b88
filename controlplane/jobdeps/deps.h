/* Job dependencies (docs/scheduling.md#job-dependencies): `after: [JOB_ID or schedule name]`
 * with `on: success|completion`. The decisions only, on states the caller gives (no daemon
 * state, no clock), so deps_test.c checks them against tables:
 *   - the checks of an after list at submit (count, empties, duplicates),
 *   - whether a waiting job waits, runs or ends without running, with the reason shown,
 *   - a dependency cycle among named things (schedules whose specs name each other, a job
 *     naming itself), found at submit/create and refused naming the cycle.
 * Names are resolved by the caller: a schedule name stands for its latest job. */
#ifndef MU_CP_JOBDEPS_DEPS_H
#define MU_CP_JOBDEPS_DEPS_H

#include <stddef.h>

#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

#define MU_DEP_AFTER_MAX 32    /* entries of one after list */
#define MU_DEP_DEPTH_MAX 64    /* longest chain the cycle search follows */
#define MU_DEP_VISITS_MAX 4096 /* nodes the cycle search visits before giving up */
#define MU_DEP_REASON_MAX 256

typedef enum mu_dep_on {
  MU_DEP_ON_SUCCESS = 0,   /* run only when every dependency succeeded (the default) */
  MU_DEP_ON_COMPLETION = 1 /* run when every dependency ended, however */
} mu_dep_on;

/* "success" (or "" / NULL: the default) or "completion"; MU_EINVAL names the bad word. */
int mu_dep_on_parse(const char *s, mu_dep_on *ret_on, mu_err *err);
const char *mu_dep_on_name(mu_dep_on on);

/* Checks an after list: at most MU_DEP_AFTER_MAX entries, none empty, none twice. */
int mu_dep_after_check(const char *const *after, size_t n, mu_err *err);

typedef enum mu_dep_verdict {
  MU_DEP_WAIT = 0, /* some dependency has not ended */
  MU_DEP_RUN = 1,  /* start the job */
  MU_DEP_SKIP = 2  /* end the job without running it (a dependency failed, on: success) */
} mu_dep_verdict;

/* One dependency as the caller sees it now (borrowed strings). */
typedef struct mu_dep_state {
  const char *name;   /* as written in after: a job id or a schedule name */
  const char *job_id; /* the job it stands for (a schedule's latest job) */
  Muster__V1__JobState state;
  int forgotten; /* the job ended and was forgotten (retention): outcome unknown */
} mu_dep_state;

/* The verdict on a job with dependencies deps (n may be 0: run), with a reason for the user
 * in reason (at most cap bytes, always terminated): "waiting for job J (RUNNING)", "not run:
 * dependency J ended FAILED (on: success)", ... A SKIP is decided as soon as one dependency
 * failed, even while others still run. */
mu_dep_verdict mu_dep_decide(const mu_dep_state *deps, size_t n, mu_dep_on on, char *reason, size_t cap);

/* The after list of node (a schedule name or job id), in *ret_after; 0 when it has none or is
 * unknown. */
typedef size_t (*mu_dep_edges_fn)(void *ud, const char *node, const char *const **ret_after);

/* Whether giving `self` the after list `after` closes a cycle, following edges() from each
 * entry: MU_EINVAL "dependency cycle: a -> b -> a" when it does, or when a chain is longer
 * than MU_DEP_DEPTH_MAX. self may be NULL (a new job has no name yet: only the edges among
 * the others are searched). */
int mu_dep_cycle_check(const char *self, const char *const *after, size_t n, mu_dep_edges_fn edges, void *ud,
                       mu_err *err);

#endif

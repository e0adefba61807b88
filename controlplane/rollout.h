/* Rollouts: how many of a job's targets run at once (max concurrency, or batches that each
 * finish before the next starts), how long a disconnected target is waited for, and how many
 * may fail before the rest is cancelled (the error budget) with the one message that says so.
 * Parsed once from the spec at submit (jobspec.c), applied by the scheduler. */
#ifndef MU_CP_ROLLOUT_H
#define MU_CP_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

typedef struct mu_rollout {
  uint32_t max_concurrency;     /* count; 0 = unlimited (resolved against targets) */
  uint32_t max_concurrency_pct; /* when given as a percentage, else 0 */
  int32_t max_errors;           /* count; -1 = unlimited */
  uint32_t max_errors_pct;      /* when given as a percentage, else 0 */
  uint32_t batch;               /* 0 = no batches */
  int64_t disconnected_wait_ms; /* wait for a disconnected target before calling it unreachable */
  int skip_unreachable;         /* unreachable targets are skipped, not failures */
} mu_rollout;

/* Parses ro (NULL: the defaults) into *ret. Every problem is handed to problem(ud, msg) with
 * its field path ("rollout.max_errors: ..."); returns how many there were. */
int mu_rollout_parse(const Muster__V1__Rollout *ro, mu_rollout *ret, void (*problem)(void *ud, const char *msg),
                     void *ud);

/* Resolves "N" or "P%" against n targets (at least 1 when a percentage is non-zero); a batch
 * is its own concurrency. */
uint32_t mu_rollout_concurrency(const mu_rollout *r, uint32_t n_targets);
/* The number of failed targets tolerated before the rest is cancelled; -1 unlimited. */
int64_t mu_rollout_error_budget(const mu_rollout *r, uint32_t n_targets);
/* The batch of the target at host_index (0 without batches). */
size_t mu_rollout_batch_of(const mu_rollout *r, size_t host_index);
/* 1 when failed targets (failed + unreachable) are past budget (-1: never); then why gets
 * what every target not started carries: "not started: max errors reached (N failed, M
 * allowed)". */
int mu_rollout_over_budget(int64_t budget, uint32_t failed, char *why, size_t size);

#endif

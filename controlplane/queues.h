/* Named queues (musterd `queues:`, `muster queue set`): the table of queues with their weight
 * and max_running, a job's queue resolved and checked at submit, and one dispatch pass's fair
 * share across queues. Pure: it knows no scheduler; scheduler.c hands a pass its jobs (in
 * priority order) with their queue and a callback that starts at most N new hosts of a job.
 * The `default` queue always exists (weight 1, no limit) unless the table names it. */
#ifndef MU_CP_QUEUES_H
#define MU_CP_QUEUES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_QUEUE_MAX 64  /* queues in a table (config and cluster-set together) */
#define MU_QUEUE_NAME 64 /* name bytes with the NUL */
#define MU_QUEUE_DEFAULT "default"
#define MU_QUEUE_WEIGHT_MAX 1000

typedef struct mu_queue_def {
  char name[MU_QUEUE_NAME];
  uint32_t weight;      /* share of dispatch against other queues; 1..MU_QUEUE_WEIGHT_MAX */
  uint32_t max_running; /* hosts of its jobs running at once; 0: no limit */
} mu_queue_def;

typedef struct mu_queue_table {
  mu_queue_def q[MU_QUEUE_MAX];
  size_t n;
} mu_queue_table;

/* 0 when name is a valid queue name (1-63 of [A-Za-z0-9_-]), else MU_EINVAL naming it. */
int mu_queue_name_check(const char *name, mu_err *err);
/* Adds or replaces name's entry (weight 0 is 1). MU_EINVAL for a bad name or weight,
 * MU_ENOSPC when the table is full. */
int mu_queue_table_set(mu_queue_table *t, const char *name, uint32_t weight, uint32_t max_running, mu_err *err);
/* Applies one musterd config setting "NAME.weight" or "NAME.max_running" = value (a queue
 * first named gets weight 1, no limit). MU_EINVAL naming the bad key or value. */
int mu_queue_table_apply(mu_queue_table *t, const char *key, const char *value, mu_err *err);
/* Removes name's entry; 0 when it was there, MU_ENOENT when not. */
int mu_queue_table_rm(mu_queue_table *t, const char *name);
/* The definition of queue name ("" or NULL: default), or NULL when the table has no such
 * queue; `default` resolves to the built-in one (weight 1, no limit) when the table has none. */
const mu_queue_def *mu_queue_find(const mu_queue_table *t, const char *name);
/* 0 when a job may name queue name; else MU_EINVAL "queue: no queue 'x' (known: default,
 * etl)". */
int mu_queue_check(const mu_queue_table *t, const char *name, mu_err *err);

/* One dispatch pass over n jobs in priority order. queue[i] is job i's queue (the index in
 * the pass's queues, 0..nq-1), running[q] the hosts of queue q running now (updated as hosts
 * start). dispatch(ud, i, budget, why) starts at most budget new hosts of job i and returns
 * how many it started; with budget 0 it starts none and says why on its pending hosts.
 *
 * Fair share: the next job comes from the eligible queue with the fewest running hosts per
 * unit of weight (ties: the lower index), and may start up to weight hosts before the choice
 * is made again; a job that starts fewer than it was allowed is done for this pass. A queue
 * at its max_running starts nothing more: its remaining jobs get budget 0 and the reason
 * "waiting: queue 'etl' at its limit of 4 running". Every job is dispatched at least once.
 * Returns MU_ENOMEM (nothing dispatched) when its scratch could not be had. */
typedef size_t (*mu_queue_dispatch_fn)(void *ud, size_t job, size_t budget, const char *why);
int mu_queue_pass(const mu_queue_def *const *queues, size_t nq, const size_t *queue, size_t n, uint32_t *running,
                  mu_queue_dispatch_fn dispatch, void *ud);

#endif

/* Named queues on every member (docs/scheduling.md#queues): musterd's config queues plus the
 * ones set with SetQueue, stored under queues/<name> (store.proto QueueRecord, written through
 * the fenced store the schedules use) and read back by every member from the cluster's record
 * events, so they survive a restart and a failover. A stored queue overrides a config one of
 * the same name. The merged table goes to the scheduler (mu_sched_set_queues) on every change.
 * muster.v1.Queues: SetQueue, ListQueues (with running/waiting hosts), DeleteQueue. Loop
 * thread only. */
#ifndef MU_CP_QUEUES_ADMIN_H
#define MU_CP_QUEUES_ADMIN_H

#include <stddef.h>

#include "controlplane/queues.h"
#include "lib/base/err.h"

struct mu_daemon;

/* Creates the module's state (d->queues); the config queues are the scheduler's table now
 * (d->sched->cfg.queues, filled from musterd's `queues:`). */
int mu_queues_init(struct mu_daemon *d, mu_err *err);
void mu_queues_free(struct mu_daemon *d);

/* Cluster events (events.h): a fresh snapshot follows; one record (value NULL: deleted). */
void mu_queues_on_snapshot_begin(struct mu_daemon *d);
void mu_queues_on_record(struct mu_daemon *d, const char *rel_key, const char *value, size_t len);

/* One queue in use with its hosts: running, and pending in unfinished jobs (a job of a removed
 * queue counts in default). */
typedef struct mu_queue_load {
  mu_queue_def def;
  const char *source; /* "builtin", "config" or "cluster" (static) */
  uint32_t running, waiting;
} mu_queue_load;
/* Every queue (the built-in default first unless a table names it, then the merged table's
 * order) into ret, which holds MU_QUEUE_MAX + 1 entries; returns how many. One pass over the
 * jobs. */
size_t mu_queues_load(struct mu_daemon *d, mu_queue_load *ret);

/* muster.v1.Queues. */
int mu_queues_register(struct mu_daemon *d, mu_err *err);

#endif

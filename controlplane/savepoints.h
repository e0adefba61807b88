/* The savepoint catalogue (docs/task-flink.md "The savepoint catalogue"): every completed
 * savepoint a task reported, per task name, newest first. A task reports one by the output param
 * `savepoint_path` or `upgrade_savepoint_path` (its kind from the param `savepoint_kind` set
 * before it: stop, drain, trigger; upgrade for upgrade_savepoint_path); the leader records it
 * here and writes it as savepoints/<task name>/<at_ms>-<job>-<host>-<attempt> (store.proto
 * SavepointRecord) in the same fenced flush as the task record (persist.c). At most
 * `keep` records per task name (savepoints_kept_per_task, oldest trimmed from memory and etcd)
 * and MU_SAVEPOINTS_MAX in all (a new one past that is dropped with a warning, counted).
 * Followers and a new leader rebuild the catalogue from the records. Loop thread only. */
#ifndef MU_CP_SAVEPOINTS_H
#define MU_CP_SAVEPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/ha/store.h"
#include "controlplane/jobs.h"
#include "lib/base/err.h"
#include "muster/v1/admin.pb-c.h"

#define MU_SAVEPOINTS_MAX 100000
#define MU_SAVEPOINTS_KEEP_DEFAULT 20

struct mu_daemon;

typedef struct mu_savepoint {
  char *rel_key; /* "savepoints/<name>/<at_ms>-..." */
  char *task_name, *location, *kind, *flink_job_id, *job_id, *task_id;
  uint32_t attempt;
  int64_t at_ms;
  int dirty; /* not yet written to etcd */
} mu_savepoint;

typedef struct mu_savepoints {
  mu_savepoint *items; /* unordered */
  size_t n, cap;
  mu_key_queue deleted;       /* rel keys trimmed, to delete with the next flush */
  uint32_t keep;              /* per task name; 0 = MU_SAVEPOINTS_KEEP_DEFAULT */
  uint64_t recorded, dropped; /* counters */
} mu_savepoints;

/* Frees every record (snapshot begin and shutdown). */
void mu_savepoints_reset(mu_savepoints *c);

/* The scheduler's param hook: param key of the task run (job, h, idx) was set to value; a
 * savepoint param is recorded (and marked for the next flush). Others are ignored. */
void mu_savepoints_on_param(struct mu_daemon *d, const mu_job *job, const mu_host_run *h, size_t idx, const char *key,
                            const char *value);

/* Adds the puts of unwritten records and the deletes of trimmed ones to a flush. */
int mu_savepoints_add_ops(struct mu_daemon *d, mu_store_batch *b, mu_err *err);
/* The flush that held them failed: they are written again by the next one. */
void mu_savepoints_write_failed(struct mu_daemon *d);

/* A record read from etcd (rel: the key after "savepoints/"), or its delete (value NULL). A bad
 * record is logged and skipped. */
void mu_savepoints_apply(struct mu_daemon *d, const char *rel, const char *value, size_t len);

/* The records of task_name ("" = all), newest first (by name, then time), as Savepoint
 * messages borrowing the catalogue's strings; *ret is the caller's (free the array and each
 * element with free(), not the strings). */
int mu_savepoints_list(const mu_savepoints *c, const char *task_name, Muster__V1__Savepoint ***ret, size_t *ret_n,
                       mu_err *err);

/* The ListSavepoints RPC (admin_savepoints in savepoints.c). */
int mu_savepoints_register(struct mu_daemon *d, mu_err *err);

#endif

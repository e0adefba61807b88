/* The run history (docs/observability.md "Run history and anomaly flags"): compact figures of
 * every finished run, per task name, kept by the control plane past the job's retention. When
 * a run ends, the leader judges it against the earlier runs of its task name (lib/anomaly, the
 * definition `muster stats` uses), records it, and, when flagged, publishes a RunAnomaly
 * event in WatchJob, sets the flags on the task run (status, console) and counts them
 * (muster_task_anomalies_total). Records are written as runhistory/<task name>/<finished
 * 13 digits>-<job>-<host index>-<attempt> (store.proto RunHistoryRecord) by the fenced persist
 * flush; at most `keep` per task name (run_history_per_task) and `max` in all
 * (run_history_max): past either the oldest go, from memory and etcd. Followers and a new
 * leader rebuild it from the records. Loop thread only. */
#ifndef MU_CP_RUN_HISTORY_H
#define MU_CP_RUN_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/ha/store.h"
#include "controlplane/jobs.h"
#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

#define MU_RUN_HISTORY_KEEP_DEFAULT 100
#define MU_RUN_HISTORY_MAX_DEFAULT 10000

struct mu_daemon;

typedef struct mu_run_record {
  char *rel_key;                    /* "runhistory/<name>/..." */
  Muster__V1__RunHistoryEntry *run; /* owned (protobuf_c_message_free_unpacked) */
  unsigned flags;                   /* MU_ANOMALY_* of run->anomalies */
  int dirty;                        /* not yet written to etcd */
} mu_run_record;

typedef struct mu_run_history {
  mu_run_record *items; /* unordered */
  size_t n, cap;
  mu_key_queue deleted;                /* rel keys trimmed, to delete with the next flush */
  uint32_t keep;                       /* per task name; 0 = MU_RUN_HISTORY_KEEP_DEFAULT */
  uint32_t max;                        /* in all; 0 = MU_RUN_HISTORY_MAX_DEFAULT */
  uint64_t recorded, trimmed, flagged; /* counters */
  int loading;                         /* a snapshot is being read: records are appended as they
                                      come (etcd keys are unique) and bounded once at its end */
} mu_run_history;

/* Frees every record (snapshot begin and shutdown); keeps the bounds and counters. A snapshot
 * load follows: loading is set until mu_run_history_settle. */
void mu_run_history_reset(mu_run_history *c);

/* The scheduler's task_changed hook: a run that ended (and ran) is judged, recorded and,
 * when flagged, published, once per attempt however often the hook fires. Leader or single
 * mode only. */
void mu_run_history_on_task(struct mu_daemon *d, mu_job *job, mu_host_run *h, size_t idx);

/* Judges run against the records of its task name held in c (every one counts as earlier)
 * and returns its MU_ANOMALY_* flags; detail (may be NULL) gets a one-line why. Pure. */
unsigned mu_run_history_judge(const mu_run_history *c, const Muster__V1__RunHistoryEntry *run, char *detail,
                              size_t detail_size);

/* Adds a record (copied) under rel_key, replacing one with the same key, then trims its task
 * name and the whole to the bounds (queueing deletes when queue_delete); while loading, only
 * appends. 0, MU_ENOMEM. */
int mu_run_history_add(mu_run_history *c, const char *rel_key, const Muster__V1__RunHistoryEntry *run, int dirty,
                       int queue_delete);

/* Adds the puts of unwritten records and the deletes of trimmed ones to a flush. */
int mu_run_history_add_ops(struct mu_daemon *d, mu_store_batch *b, mu_err *err);
/* The flush that held them failed: they are written again by the next one. */
void mu_run_history_write_failed(struct mu_daemon *d);
/* A record read from etcd (rel: the key after "runhistory/"), or its delete (value NULL). */
void mu_run_history_apply(struct mu_daemon *d, const char *rel, const char *value, size_t len);
/* After a snapshot: the records bounded (one sort: O(n log n)), loading cleared, and the flags
 * of the held jobs' runs set from the records (status after a restart or failover). */
void mu_run_history_settle(struct mu_daemon *d);
/* The bounds applied to every task name at once (what settle does). */
void mu_run_history_trim_all(mu_run_history *c, int queue_delete);

/* The records of task_name (job_id "" or NULL: every job), oldest first, borrowed: free the
 * array only. */
int mu_run_history_list(const mu_run_history *c, const char *task_name, const char *job_id,
                        Muster__V1__RunHistoryEntry ***ret, size_t *ret_n, mu_err *err);

/* The ListRunHistory RPC. */
int mu_run_history_register(struct mu_daemon *d, mu_err *err);

#endif

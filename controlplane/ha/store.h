/* The leader's fenced write path to etcd, and paged reads to rebuild state.
 *
 * Every write is an etcd transaction that also compares the leader key's create revision with
 * the leader's term (mu_etcd_txn_fence), so a deposed leader — paused, partitioned or slow —
 * cannot change anything. A refused fence fails with MU_EPERM "not the leader any more (term N
 * fenced out)" and makes the leader step down (mu_leader_step_down).
 *
 * A batch is committed in as few transactions as fit the configured limits (ops per txn and
 * bytes per request). Up to max_txns_in_flight of them are out at once, so they may land in
 * any order — except across a barrier (mu_store_batch_barrier): ops after it are sent only
 * once all before it are committed. A batch that needs more than one transaction is NOT
 * atomic: a failure leaves some transactions applied (the callback says how many). Write what
 * must appear all-or-nothing with a "ready marker" after a barrier (see docs/ha.md): readers
 * ignore a job until its ready key exists.
 */
#ifndef MU_HA_STORE_H
#define MU_HA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controlplane/ha/leader.h"
#include "lib/base/err.h"
#include "lib/etcd/etcd.h"

typedef struct mu_store mu_store;
typedef struct mu_store_batch mu_store_batch;

typedef struct mu_store_options {
  size_t max_txn_ops;        /* puts+deletes per transaction; 0 → 128 (etcd --max-txn-ops) */
  size_t max_txn_bytes;      /* estimated request bytes per transaction; 0 → 1.5 MiB - 64 KiB */
  size_t max_batch_ops;      /* ops in one batch; 0 → 100000 */
  size_t max_batch_bytes;    /* bytes held by one batch; 0 → 64 MiB */
  int64_t page_size;         /* keys per page of mu_store_load_prefix; 0 → 1000 */
  size_t max_txns_in_flight; /* transactions of one batch sent at once; 0 → 8, 1 = in order */
} mu_store_options;

/* What a finished batch did. On failure txns_committed transactions (ops_committed ops) were
 * applied: every one before the last barrier passed, and some of those after it (up to
 * max_txns_in_flight were out at once, and they may have landed in any order); nothing past
 * the next barrier was sent. */
typedef struct mu_store_batch_result {
  int64_t revision; /* etcd revision after the last committed transaction */
  size_t txns;      /* transactions the batch was split into */
  size_t txns_committed;
  size_t ops_committed;
} mu_store_batch_result;

/* err is NULL on success. Error codes: MU_EPERM (fenced out: not the leader any more),
 * MU_EAGAIN / MU_ETIMEDOUT (etcd unreachable or slow: the outcome of the failing transaction
 * is unknown), MU_ENOSPC (etcd refused the size), MU_ECANCELED (store or client closed),
 * other etcd errors as in lib/etcd/etcd.h. Both pointers are borrowed for the call. */
typedef void (*mu_store_batch_cb)(void *ud, const mu_store_batch_result *res, const mu_err *err);

/* Creates the store. client and leader are borrowed and must outlive mu_store_close's
 * callback. opts may be NULL (copied). Caller releases with mu_store_close. */
int mu_store_new(mu_etcd_client *client, mu_leader *leader, const mu_store_options *opts, mu_store **ret_store,
                 mu_err *err);

/* Stops paging loads after their current page (they end with MU_ECANCELED); a batch in flight
 * stops after its current transaction (MU_ECANCELED if more were left). close_cb (may be NULL)
 * runs once every in-flight batch and load has reported — from inside this call when none is
 * in flight — and the store is freed. */
void mu_store_close(mu_store *s, void (*close_cb)(void *ud), void *ud);

/* ---- batches ---- */

/* A new empty batch. Caller commits it (which consumes it) or frees it with
 * mu_store_batch_free. NULL when out of memory. */
mu_store_batch *mu_store_batch_new(mu_store *s);
void mu_store_batch_free(mu_store_batch *b);

/* Adds a put (key and value copied; value_len 0 → strlen(value), value NULL → empty). Errors:
 * MU_EINVAL empty key, MU_ENOSPC the op alone is over max_txn_bytes or the batch is over its
 * bounds (names the key), MU_ENOMEM. A failed add leaves the batch as it was. */
int mu_store_batch_put(mu_store_batch *b, const char *key, const void *value, size_t value_len, mu_err *err);
/* A put attached to an etcd lease (lease 0: none): the key goes when the lease expires or is
 * revoked. A lease etcd no longer knows fails the whole transaction with MU_ENOENT ("requested
 * lease not found"), fence or not; MU_EINVAL for a negative lease. Otherwise as put. */
int mu_store_batch_put_lease(mu_store_batch *b, const char *key, const void *value, size_t value_len, int64_t lease,
                             mu_err *err);
/* Adds a delete of key, or of every key under it when prefix. Same errors as put. */
int mu_store_batch_delete(mu_store_batch *b, const char *key, bool prefix, mu_err *err);
size_t mu_store_batch_ops(const mu_store_batch *b);

/* Keys (relative to a prefix) whose deletes wait for the next batch: trimmed records of a
 * bounded catalogue. Owns each key. Zero-initialise; free with mu_key_queue_free. */
typedef struct mu_key_queue {
  char **keys;
  size_t n, cap;
} mu_key_queue;

/* Queues key, taking ownership. Out of memory: key is freed and false returned (its record stays
 * in etcd until a later trim finds it). */
bool mu_key_queue_push(mu_key_queue *q, char *key);
void mu_key_queue_free(mu_key_queue *q);
/* Adds a delete of prefix+key for each queued key, oldest first. Those added leave the queue;
 * after an error (the batch is full) the rest wait for the next batch. */
int mu_store_batch_delete_queued(mu_store_batch *b, const char *prefix, mu_key_queue *q, mu_err *err);
/* Orders the batch: ops added after this call are sent only once every op added before it is
 * committed (a "ready marker" after the records it vouches for). Without barriers the
 * transactions of a batch may be applied in any order. No effect on an empty batch. */
void mu_store_batch_barrier(mu_store_batch *b);

/* Commits the batch under the leader's current term, consuming b whatever the outcome. cb runs
 * exactly once from the loop when 0 is returned. Errors without a callback: MU_EPERM when this
 * member is not the leader now, MU_EINVAL for an empty batch, MU_ECANCELED when closing, or the
 * first transaction could not be sent. */
int mu_store_batch_commit(mu_store_batch *b, mu_store_batch_cb cb, void *ud, mu_err *err);

/* One fenced put: a batch of one. */
int mu_store_put(mu_store *s, const char *key, const void *value, size_t value_len, mu_store_batch_cb cb, void *ud,
                 mu_err *err);

/* ---- create-only puts ---- */

/* err NULL: created 1 when the key was written, 0 when it existed already (existing: its
 * current kv, borrowed for the call; NULL if it vanished meanwhile). Errors: MU_EPERM fenced
 * out (the leader steps down), and the etcd errors of a batch (outcome unknown for
 * MU_EAGAIN / MU_ETIMEDOUT: read the key back). */
typedef void (*mu_store_create_cb)(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err);
/* One fenced transaction that puts key only if it does not exist (create revision 0): what
 * makes "exactly once" claims (a schedule's slot). value_len 0 → strlen(value). Errors
 * without a callback: MU_EPERM not the leader now, MU_EINVAL empty key, MU_ECANCELED closing. */
int mu_store_create(mu_store *s, const char *key, const void *value, size_t value_len, mu_store_create_cb cb, void *ud,
                    mu_err *err);

/* ---- reads ---- */

/* Called once per page, in key order. kvs are borrowed for the call. Return 0 to go on, or a
 * negative MU_E* code (with err filled) to stop the load with that error. */
typedef int (*mu_store_page_cb)(void *ud, const mu_etcd_kv *kvs, size_t n_kvs, mu_err *err);
/* revision: the snapshot every page was read at — start a watch of the prefix from revision+1
 * to miss nothing. total: keys delivered. err NULL on success; MU_EAGAIN "compacted" when the
 * snapshot was compacted mid-way (load again). */
typedef void (*mu_store_load_cb)(void *ud, int64_t revision, size_t total, const mu_err *err);

/* Reads every key under prefix, page_size keys at a time, all pages at one revision (reads are
 * not fenced: any member may load). Errors without callbacks: MU_EINVAL empty prefix,
 * MU_ECANCELED closing, or the first page could not be requested. */
int mu_store_load_prefix(mu_store *s, const char *prefix, mu_store_page_cb on_page, mu_store_load_cb on_done, void *ud,
                         mu_err *err);
/* The same, leaving out every key under skip (a longer prefix inside prefix, e.g. the bundle
 * chunks under "<prefix>bundles/"); NULL skips nothing. MU_EINVAL when skip is not inside. */
int mu_store_load_prefix_skip(mu_store *s, const char *prefix, const char *skip, mu_store_page_cb on_page,
                              mu_store_load_cb on_done, void *ud, mu_err *err);
/* The same with several sub-prefixes left out (bundle chunks, audit records); skips are
 * borrowed for the call, in any order. MU_EINVAL when one is not inside prefix. */
int mu_store_load_prefix_skips(mu_store *s, const char *prefix, const char *const *skips, size_t n_skips,
                               mu_store_page_cb on_page, mu_store_load_cb on_done, void *ud, mu_err *err);

#endif

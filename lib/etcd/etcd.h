/* Asynchronous etcd v3 client over etcd's JSON gateway (/v3/...), driven by a libuv loop.
 *
 * All calls and callbacks happen on the loop thread; nothing blocks it (libcurl's multi
 * interface runs the HTTP). Keys and values are binary-safe byte strings.
 *
 * Callback contract for every operation: a call that returns 0 has started and its callback
 * runs exactly once, later, from the loop (never from inside the call). A call that returns a
 * negative MU_E* code has not started and its callback never runs. In a callback exactly one of
 * `res` and `err` is non-NULL; both are borrowed for the duration of the callback
 * (mu_etcd_result_dup keeps a copy).
 *
 * Errors (mu_err.code):
 *   MU_EAGAIN     etcd unreachable (message lists every endpoint tried), compacted revision
 *                 ("compacted at revision N"), etcd unavailable/no leader
 *   MU_ETIMEDOUT  no reply within the request timeout
 *   MU_ENOSPC     request larger than max_request_bytes, too many txn ops, reply too large
 *   MU_EPERM      authentication refused or permission denied
 *   MU_ENOENT     lease gone (keep-alive got TTL 0, revoke of an unknown lease)
 *   MU_EINVAL     bad argument, or etcd refused the request as invalid
 *   MU_EIO        any other etcd error reply (its message and gRPC code are in the text)
 *   MU_ECANCELED  the client was closed before the reply came
 */
#ifndef MU_ETCD_H
#define MU_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"

typedef struct mu_etcd_client mu_etcd_client;
typedef struct mu_etcd_txn mu_etcd_txn;
typedef struct mu_etcd_watch mu_etcd_watch;

#define MU_ETCD_DEFAULT_MAX_REQUEST_BYTES ((size_t)1536 * 1024) /* etcd's default 1.5 MiB */
#define MU_ETCD_DEFAULT_MAX_TXN_OPS 128                         /* etcd's --max-txn-ops */

typedef struct mu_etcd_options {
  int64_t request_timeout_ms; /* per attempt on one endpoint; 0 → 5000 */
  int64_t connect_timeout_ms; /* a connect slower than this moves on; 0 → 1000 */
  size_t max_request_bytes;   /* keys+values+range ends of one request; 0 → 1.5 MiB */
  size_t max_response_bytes;  /* one reply, or one watch message; 0 → 64 MiB */
  size_t max_txn_ops;         /* per compare/success/failure list; 0 → 128 */
  const char *username;       /* NULL → no etcd auth */
  const char *password;
  int64_t watch_retry_max_ms; /* cap of the watch reconnect backoff; 0 → 2000 */
  /* TLS to https:// endpoints (copied): the CA that signs etcd's certificate, and this
   * client's certificate and key for etcd's --client-cert-auth. NULL or "" → none (the
   * system's CA store for https). */
  const char *tls_ca;
  const char *tls_cert;
  const char *tls_key;
  /* For metrics (may be NULL): runs on the loop once per finished request (not watches),
   * before its callback, with its operation's name (mu_etcd_kind_name), its seconds from
   * submission and whether it failed. */
  void (*observe)(void *ud, const char *op, double seconds, int failed);
  void *observe_ud;
} mu_etcd_options;

/* One key-value. key and value are NUL-terminated for convenience but may hold NULs. */
typedef struct mu_etcd_kv {
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  int64_t create_revision;
  int64_t mod_revision;
  int64_t version;
  int64_t lease;
} mu_etcd_kv;

typedef enum {
  MU_ETCD_RANGE = 1,
  MU_ETCD_PUT,
  MU_ETCD_DELETE,
  MU_ETCD_TXN,
  MU_ETCD_LEASE_GRANT,
  MU_ETCD_LEASE_KEEPALIVE,
  MU_ETCD_LEASE_REVOKE,
  MU_ETCD_COMPACT,
  MU_ETCD_RAW,
} mu_etcd_kind;

/* The reply to any operation; which fields are set depends on kind. */
typedef struct mu_etcd_result {
  mu_etcd_kind kind;
  int64_t revision; /* header revision (store revision after the op) */
  /* RANGE */
  mu_etcd_kv *kvs;
  size_t n_kvs;
  int64_t count; /* keys in the range (ignoring limit) */
  bool more;     /* limit cut the reply short */
  /* PUT (prev_kv asked): at most one; DELETE (prev_kv asked): the deleted kvs */
  mu_etcd_kv *prev_kvs;
  size_t n_prev_kvs;
  int64_t deleted; /* DELETE: number of keys deleted */
  /* TXN */
  bool succeeded;
  struct mu_etcd_result *responses; /* one per op of the branch taken, in order */
  size_t n_responses;
  /* LEASE_GRANT / LEASE_KEEPALIVE */
  int64_t lease_id;
  int64_t ttl; /* seconds */
  /* RAW: the whole reply body (NUL-terminated) */
  char *raw;
} mu_etcd_result;

/* "range", "put", "delete", "txn", "lease_grant", "lease_keepalive", "lease_revoke",
 * "compact", "raw" ("other" for anything else). */
const char *mu_etcd_kind_name(mu_etcd_kind kind);

typedef void (*mu_etcd_cb)(void *ud, const mu_etcd_result *res, const mu_err *err);

/* Deep copy; caller frees with mu_etcd_result_free. Returns NULL when out of memory. */
mu_etcd_result *mu_etcd_result_dup(const mu_etcd_result *res);
void mu_etcd_result_free(mu_etcd_result *res);

/* Creates a client for endpoints ("http://host:port", at least one; copied). Starts no I/O.
 * opts may be NULL. Caller releases with mu_etcd_client_close. */
int mu_etcd_client_new(uv_loop_t *loop, const char *const *endpoints, size_t n_endpoints, const mu_etcd_options *opts,
                       mu_etcd_client **ret_client, mu_err *err);

/* Stops everything: pending operations complete with MU_ECANCELED (from inside this call, or
 * right after the current callback returns), live watches get a final MU_ECANCELED callback.
 * close_cb (may be NULL) runs once every libuv handle is closed, after the client is freed.
 * Safe to call from inside a callback. */
void mu_etcd_client_close(mu_etcd_client *c, void (*close_cb)(void *ud), void *ud);

/* The endpoint that last answered (or the first one). Borrowed. */
const char *mu_etcd_client_endpoint(const mu_etcd_client *c);

/* ---- key-value operations. key_len/value_len/range_end_len 0 → strlen of the string. ---- */

typedef struct mu_etcd_range_req {
  const char *key;
  size_t key_len;
  const char *range_end; /* NULL → the single key (unless prefix) */
  size_t range_end_len;
  bool prefix;      /* every key starting with key (range_end is ignored) */
  int64_t limit;    /* 0 → no limit */
  int64_t revision; /* 0 → latest */
  bool keys_only;
  bool count_only;
  bool descend; /* keys in descending order (with limit: the last ones) */
} mu_etcd_range_req;

typedef struct mu_etcd_put_req {
  const char *key;
  size_t key_len;
  const void *value; /* NULL → empty value */
  size_t value_len;
  int64_t lease; /* 0 → none */
  bool prev_kv;
} mu_etcd_put_req;

typedef struct mu_etcd_delete_req {
  const char *key;
  size_t key_len;
  const char *range_end;
  size_t range_end_len;
  bool prefix;
  bool prev_kv;
} mu_etcd_delete_req;

int mu_etcd_range(mu_etcd_client *c, const mu_etcd_range_req *req, mu_etcd_cb cb, void *ud, mu_err *err);
int mu_etcd_put(mu_etcd_client *c, const mu_etcd_put_req *req, mu_etcd_cb cb, void *ud, mu_err *err);
int mu_etcd_delete(mu_etcd_client *c, const mu_etcd_delete_req *req, mu_etcd_cb cb, void *ud, mu_err *err);
/* Compacts history up to revision (physical: wait until it is purged from disk). */
int mu_etcd_compact(mu_etcd_client *c, int64_t revision, bool physical, mu_etcd_cb cb, void *ud, mu_err *err);

/* Escape hatch for gateway calls without a helper (auth admin, maintenance): POSTs json_body
 * to path ("/v3/auth/enable") with the same failover, auth and error handling; the reply body
 * arrives in res->raw. */
int mu_etcd_raw(mu_etcd_client *c, const char *path, const char *json_body, mu_etcd_cb cb, void *ud, mu_err *err);

/* ---- leases ---- */

int mu_etcd_lease_grant(mu_etcd_client *c, int64_t ttl_s, mu_etcd_cb cb, void *ud, mu_err *err);
/* One refresh; res->ttl is the new TTL. A lease that is gone fails with MU_ENOENT. */
int mu_etcd_lease_keepalive(mu_etcd_client *c, int64_t lease_id, mu_etcd_cb cb, void *ud, mu_err *err);
/* Revokes the lease, deleting every key attached to it. Unknown lease → MU_ENOENT. */
int mu_etcd_lease_revoke(mu_etcd_client *c, int64_t lease_id, mu_etcd_cb cb, void *ud, mu_err *err);

/* ---- transactions ----
 * Build with the calls below, then commit. Builder calls never fail on their own: the first
 * problem (bad argument, too many ops, out of memory) is kept and reported by commit. */

typedef enum { MU_ETCD_EQ = 1, MU_ETCD_NE, MU_ETCD_LT, MU_ETCD_GT } mu_etcd_cmp;
typedef enum {
  MU_ETCD_VERSION = 1,
  MU_ETCD_CREATE_REVISION,
  MU_ETCD_MOD_REVISION,
  MU_ETCD_LEASE,
} mu_etcd_target;
typedef enum { MU_ETCD_ON_SUCCESS = 1, MU_ETCD_ON_FAILURE } mu_etcd_branch;

/* Caller frees with mu_etcd_txn_free (committing does not consume it). NULL on no memory. */
mu_etcd_txn *mu_etcd_txn_new(void);
void mu_etcd_txn_free(mu_etcd_txn *t);

/* Compares a numeric field of key (a missing key has 0 for all of them). */
void mu_etcd_txn_compare(mu_etcd_txn *t, const char *key, mu_etcd_target target, mu_etcd_cmp cmp, int64_t n);
void mu_etcd_txn_compare_value(mu_etcd_txn *t, const char *key, mu_etcd_cmp cmp, const void *value, size_t value_len);
/* The leader fence: create_revision(leader_key) == term. */
void mu_etcd_txn_fence(mu_etcd_txn *t, const char *leader_key, int64_t term);

void mu_etcd_txn_put(mu_etcd_txn *t, mu_etcd_branch br, const mu_etcd_put_req *req);
void mu_etcd_txn_delete(mu_etcd_txn *t, mu_etcd_branch br, const mu_etcd_delete_req *req);
void mu_etcd_txn_range(mu_etcd_txn *t, mu_etcd_branch br, const mu_etcd_range_req *req);
/* Shorthands for the success branch with NUL-terminated strings. */
void mu_etcd_txn_then_put(mu_etcd_txn *t, const char *key, const char *value);
void mu_etcd_txn_then_delete(mu_etcd_txn *t, const char *key);

/* Number of ops in the longest list (compares, success, failure). */
size_t mu_etcd_txn_size(const mu_etcd_txn *t);

/* Sends the transaction. MU_ENOSPC when a list holds more than max_txn_ops ops or the payload
 * exceeds max_request_bytes; the builder's first error otherwise. */
int mu_etcd_txn_commit(mu_etcd_client *c, const mu_etcd_txn *t, mu_etcd_cb cb, void *ud, mu_err *err);

/* ---- watch ---- */

typedef enum { MU_ETCD_EVENT_PUT = 1, MU_ETCD_EVENT_DELETE } mu_etcd_event_type;

typedef struct mu_etcd_event {
  mu_etcd_event_type type;
  mu_etcd_kv kv; /* for DELETE only key and mod_revision are set */
  bool has_prev_kv;
  mu_etcd_kv prev_kv;
} mu_etcd_event;

typedef struct mu_etcd_watch_batch {
  int64_t revision; /* header revision of this message */
  bool created;     /* the first message of the watch, no events */
  const mu_etcd_event *events;
  size_t n_events;
} mu_etcd_watch_batch;

/* With err == NULL: a batch of events (or the creation notice). With err != NULL: the watch
 * has ended (MU_EAGAIN "compacted at revision N" — re-list, then watch from N+1 or later;
 * MU_EPERM; MU_EINVAL; MU_ECANCELED on client close) and is freed when the callback returns. */
typedef void (*mu_etcd_watch_cb)(void *ud, const mu_etcd_watch_batch *batch, const mu_err *err);

typedef struct mu_etcd_watch_req {
  const char *key;
  size_t key_len;
  const char *range_end;
  size_t range_end_len;
  bool prefix;
  int64_t start_revision; /* 0 → from now */
  bool prev_kv;
} mu_etcd_watch_req;

/* Starts a streaming watch. A dropped connection is resumed (with backoff, over every
 * endpoint) from the last delivered revision + 1, so no event is lost or repeated.
 * *ret_watch is owned by the client: release it with mu_etcd_watch_cancel, unless the callback
 * got an error (then it is already gone). */
int mu_etcd_watch_start(mu_etcd_client *c, const mu_etcd_watch_req *req, mu_etcd_watch_cb cb, void *ud,
                        mu_etcd_watch **ret_watch, mu_err *err);

/* Stops the watch now: its callback never runs again. Safe inside the watch's own callback. */
void mu_etcd_watch_cancel(mu_etcd_watch *w);

/* The revision the watch will resume from (last delivered + 1, or the start revision). */
int64_t mu_etcd_watch_next_revision(const mu_etcd_watch *w);

#endif

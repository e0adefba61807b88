/* The leader's write path: batches of puts and deletes committed as fenced etcd transactions,
 * split greedily by op count and estimated request bytes (and at barriers). Transactions
 * between two barriers go out up to max_txns_in_flight at a time; a barrier's later ops are
 * sent only once everything before it is committed. A refused fence fails the batch with
 * MU_EPERM and deposes the leader. Also the paged, single-revision prefix load a new leader
 * rebuilds its in-memory state from. */
#include "controlplane/ha/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"

#define LOG "store"
#define OP_OVERHEAD 64 /* per-op allowance over key+value bytes; above the client's count */

struct mu_store {
  mu_etcd_client *c;
  mu_leader *leader;
  mu_store_options opts;
  int inflight; /* batches and loads that have not reported yet */
  bool closing;
  void (*close_cb)(void *ud);
  void *close_ud;
};

typedef struct batch_op {
  bool del, prefix;
  bool barrier; /* everything before this op is committed before it is sent */
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  int64_t lease; /* put: attach to this lease (0: none) */
  size_t cost;   /* estimated request bytes */
} batch_op;

struct mu_store_batch {
  mu_store *s;
  batch_op *ops;
  size_t n, cap;
  size_t bytes;      /* sum of costs, bounded by max_batch_bytes */
  bool barrier_next; /* the next op added starts after a barrier */
  /* commit state */
  int64_t term;
  size_t *txn_start; /* txns + 1 entries: ops[txn_start[i]..txn_start[i+1]) */
  size_t next_txn;   /* next transaction to send */
  size_t in_flight;  /* transactions sent and not answered */
  mu_err first_err;  /* the first failure; nothing more is sent after it */
  bool failed;
  mu_store_batch_result res;
  mu_store_batch_cb cb;
  void *ud;
};

typedef struct load {
  mu_store *s;
  char *prefix, *end, *next; /* owned; next = key to resume from */
  size_t prefix_len, end_len, next_len;
  struct load_range { /* owned; the ranges between skipped sub-prefixes, in order */
    char *start, *end;
    size_t start_len, end_len;
  } * rest;
  size_t n_rest, next_rest;
  int64_t revision;
  size_t total;
  mu_store_page_cb on_page;
  mu_store_load_cb on_done;
  void *ud;
} load;

static void store_release(mu_store *s) {
  s->inflight--;
  if (!s->closing || s->inflight > 0) return;
  void (*cb)(void *) = s->close_cb;
  void *ud = s->close_ud;
  free(s);
  if (cb != NULL) cb(ud);
}

int mu_store_new(mu_etcd_client *client, mu_leader *leader, const mu_store_options *opts, mu_store **ret_store,
                 mu_err *err) {
  if (client == NULL || leader == NULL) {
    return mu_err_set(err, MU_EINVAL, "store: an etcd client and a leader election are needed");
  }
  mu_store *s = calloc(1, sizeof(*s));
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "store: out of memory");
  s->c = client;
  s->leader = leader;
  if (opts != NULL) s->opts = *opts;
  if (s->opts.max_txn_ops == 0) s->opts.max_txn_ops = MU_ETCD_DEFAULT_MAX_TXN_OPS;
  if (s->opts.max_txn_bytes == 0) s->opts.max_txn_bytes = MU_ETCD_DEFAULT_MAX_REQUEST_BYTES - 65536;
  if (s->opts.max_batch_ops == 0) s->opts.max_batch_ops = 100000;
  if (s->opts.max_batch_bytes == 0) s->opts.max_batch_bytes = (size_t)64 << 20;
  if (s->opts.page_size <= 0) s->opts.page_size = 1000;
  if (s->opts.max_txns_in_flight == 0) s->opts.max_txns_in_flight = 8;
  *ret_store = s;
  return 0;
}

void mu_store_close(mu_store *s, void (*close_cb)(void *ud), void *ud) {
  if (s == NULL || s->closing) return;
  s->closing = true;
  s->close_cb = close_cb;
  s->close_ud = ud;
  s->inflight++;
  store_release(s);
}

/* ---- batches ---- */

mu_store_batch *mu_store_batch_new(mu_store *s) {
  mu_store_batch *b = calloc(1, sizeof(*b));
  if (b != NULL) b->s = s;
  return b;
}

void mu_store_batch_free(mu_store_batch *b) {
  if (b == NULL) return;
  for (size_t i = 0; i < b->n; i++) {
    free(b->ops[i].key);
    free(b->ops[i].value);
  }
  free(b->ops);
  free(b->txn_start);
  free(b);
}

size_t mu_store_batch_ops(const mu_store_batch *b) { return b->n; }

static size_t fence_cost(const mu_store *s) { return strlen(mu_leader_key(s->leader)) + OP_OVERHEAD; }

static int add_op(mu_store_batch *b, bool del, bool prefix, const char *key, const void *value, size_t value_len,
                  int64_t lease, mu_err *err) {
  const mu_store_options *o = &b->s->opts;
  if (key == NULL || key[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "store batch: op %zu has an empty key", b->n + 1);
  }
  size_t key_len = strlen(key);
  if (!del && value != NULL && value_len == 0) value_len = strlen(value);
  size_t cost = (prefix ? 2 * key_len : key_len) + value_len + OP_OVERHEAD;
  if (cost + fence_cost(b->s) > o->max_txn_bytes) {
    return mu_err_set(err, MU_ENOSPC, "store batch: %s of '%s' is %zu bytes, over the %zu-byte transaction limit",
                      del ? "delete" : "put", key, cost, o->max_txn_bytes);
  }
  if (b->n >= o->max_batch_ops || b->bytes + cost > o->max_batch_bytes) {
    return mu_err_set(err, MU_ENOSPC, "store batch: adding '%s' goes over the batch bounds (%zu ops, %zu bytes)", key,
                      o->max_batch_ops, o->max_batch_bytes);
  }
  if (b->n == b->cap) {
    size_t cap = b->cap == 0 ? 16 : b->cap * 2;
    batch_op *ops = realloc(b->ops, cap * sizeof(*ops));
    if (ops == NULL) return mu_err_set(err, MU_ENOMEM, "store batch: out of memory");
    b->ops = ops;
    b->cap = cap;
  }
  batch_op *op = &b->ops[b->n];
  *op = (batch_op){.del = del,
                   .prefix = prefix,
                   .barrier = b->barrier_next && b->n > 0,
                   .key_len = key_len,
                   .value_len = value_len,
                   .lease = lease,
                   .cost = cost};
  op->key = malloc(key_len + 1);
  op->value = malloc(value_len + 1);
  if (op->key == NULL || op->value == NULL) {
    free(op->key);
    free(op->value);
    return mu_err_set(err, MU_ENOMEM, "store batch: out of memory");
  }
  memcpy(op->key, key, key_len + 1);
  if (value_len > 0) memcpy(op->value, value, value_len);
  op->value[value_len] = '\0';
  b->n++;
  b->bytes += cost;
  b->barrier_next = false;
  return 0;
}

void mu_store_batch_barrier(mu_store_batch *b) { b->barrier_next = true; }

int mu_store_batch_put(mu_store_batch *b, const char *key, const void *value, size_t value_len, mu_err *err) {
  return add_op(b, false, false, key, value, value != NULL ? value_len : 0, 0, err);
}

int mu_store_batch_put_lease(mu_store_batch *b, const char *key, const void *value, size_t value_len, int64_t lease,
                             mu_err *err) {
  if (lease < 0)
    return mu_err_set(err, MU_EINVAL, "store batch: put of '%s': bad lease %lld", key ? key : "", (long long)lease);
  return add_op(b, false, false, key, value, value != NULL ? value_len : 0, lease, err);
}

bool mu_key_queue_push(mu_key_queue *q, char *key) {
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 16;
    char **grown = realloc(q->keys, cap * sizeof *grown);
    if (grown == NULL) {
      free(key);
      return false;
    }
    q->keys = grown;
    q->cap = cap;
  }
  q->keys[q->n++] = key;
  return true;
}

void mu_key_queue_free(mu_key_queue *q) {
  for (size_t i = 0; i < q->n; i++) free(q->keys[i]);
  free(q->keys);
  memset(q, 0, sizeof *q);
}

int mu_store_batch_delete_queued(mu_store_batch *b, const char *prefix, mu_key_queue *q, mu_err *err) {
  char key[1400];
  size_t done = 0;
  int rc = 0;
  for (; done < q->n; done++) {
    snprintf(key, sizeof key, "%s%s", prefix, q->keys[done]);
    rc = mu_store_batch_delete(b, key, false, err);
    if (rc != 0) break;
    free(q->keys[done]);
  }
  if (done > 0 && done < q->n) memmove(q->keys, q->keys + done, (q->n - done) * sizeof *q->keys);
  q->n -= done;
  return rc;
}

int mu_store_batch_delete(mu_store_batch *b, const char *key, bool prefix, mu_err *err) {
  return add_op(b, true, prefix, key, NULL, 0, 0, err);
}

/* Where the transaction starting at ops[from] ends under the limits. */
static size_t txn_end(const mu_store_batch *b, size_t from) {
  const mu_store_options *o = &b->s->opts;
  size_t bytes = fence_cost(b->s), i = from;
  while (i < b->n && i - from < o->max_txn_ops && bytes + b->ops[i].cost <= o->max_txn_bytes &&
         (i == from || !b->ops[i].barrier)) {
    bytes += b->ops[i].cost;
    i++;
  }
  return i;
}

typedef struct txn_ctx {
  mu_store_batch *b;
  size_t idx;
} txn_ctx;

static void on_txn(void *ud, const mu_etcd_result *res, const mu_err *err);

/* Sends transaction idx (ops txn_start[idx]..txn_start[idx+1]) as one fenced transaction. */
static int send_txn(mu_store_batch *b, size_t idx, mu_err *err) {
  txn_ctx *tc = malloc(sizeof *tc);
  mu_etcd_txn *t = tc ? mu_etcd_txn_new() : NULL;
  if (t == NULL) {
    free(tc);
    return mu_err_set(err, MU_ENOMEM, "store batch: out of memory");
  }
  *tc = (txn_ctx){.b = b, .idx = idx};
  mu_etcd_txn_fence(t, mu_leader_key(b->s->leader), b->term);
  for (size_t i = b->txn_start[idx]; i < b->txn_start[idx + 1]; i++) {
    const batch_op *op = &b->ops[i];
    if (op->del) {
      mu_etcd_txn_delete(t, MU_ETCD_ON_SUCCESS,
                         &(mu_etcd_delete_req){.key = op->key, .key_len = op->key_len, .prefix = op->prefix});
    } else {
      mu_etcd_txn_put(t, MU_ETCD_ON_SUCCESS,
                      &(mu_etcd_put_req){.key = op->key,
                                         .key_len = op->key_len,
                                         .value = op->value_len > 0 ? op->value : NULL,
                                         .value_len = op->value_len,
                                         .lease = op->lease});
    }
  }
  int rc = mu_etcd_txn_commit(b->s->c, t, on_txn, tc, err);
  mu_etcd_txn_free(t);
  if (rc != 0) free(tc);
  return rc;
}

static void batch_finish(mu_store_batch *b, const mu_err *err) {
  mu_store *s = b->s;
  if (b->cb != NULL) b->cb(b->ud, &b->res, err);
  mu_store_batch_free(b);
  store_release(s);
}

static void fail(mu_store_batch *b, const mu_err *e) {
  if (b->failed) return;
  b->failed = true;
  b->first_err = *e;
}

/* Sends what may go now: up to the window, and past a barrier only when nothing before it is
 * outstanding. Finishes the batch when everything is answered. */
static void pump(mu_store_batch *b) {
  const mu_store_options *o = &b->s->opts;
  if (!b->failed && b->s->closing && b->next_txn < b->res.txns) {
    mu_err e = {0};
    mu_err_set(&e, MU_ECANCELED, "store batch: store closed after %zu of %zu transactions", b->res.txns_committed,
               b->res.txns);
    fail(b, &e);
  }
  while (!b->failed && b->next_txn < b->res.txns && b->in_flight < o->max_txns_in_flight) {
    if (b->in_flight > 0 && b->ops[b->txn_start[b->next_txn]].barrier) break;
    mu_err e = {0};
    if (send_txn(b, b->next_txn, &e) != 0) {
      mu_err_prefix(&e, "store batch: transaction %zu of %zu", b->next_txn + 1, b->res.txns);
      fail(b, &e);
      break;
    }
    b->next_txn++;
    b->in_flight++;
  }
  if (b->in_flight > 0) return;
  if (b->failed) batch_finish(b, &b->first_err);
  else if (b->res.txns_committed == b->res.txns) batch_finish(b, NULL);
}

static void on_txn(void *ud, const mu_etcd_result *res, const mu_err *err) {
  txn_ctx *tc = ud;
  mu_store_batch *b = tc->b;
  size_t idx = tc->idx;
  free(tc);
  b->in_flight--;
  mu_err e = {0};
  if (res == NULL) {
    e = *err;
    mu_err_prefix(&e, "store batch: transaction %zu of %zu (%zu of %zu ops committed before it)", idx + 1, b->res.txns,
                  b->res.ops_committed, b->n);
    fail(b, &e);
  } else if (!res->succeeded) {
    mu_err_set(&e, MU_EPERM, "not the leader any more (term %" PRId64 " fenced out); %zu of %zu ops committed", b->term,
               b->res.ops_committed, b->n);
    if (!b->failed) {
      mu_warn(LOG, "%s", e.msg);
      if (!b->s->closing) mu_leader_step_down(b->s->leader, b->term, e.msg);
    }
    fail(b, &e);
  } else {
    if (res->revision > b->res.revision) b->res.revision = res->revision;
    b->res.txns_committed++;
    b->res.ops_committed += b->txn_start[idx + 1] - b->txn_start[idx];
  }
  pump(b);
}

int mu_store_batch_commit(mu_store_batch *b, mu_store_batch_cb cb, void *ud, mu_err *err) {
  mu_store *s = b->s;
  int rc;
  if (s->closing) {
    rc = mu_err_set(err, MU_ECANCELED, "store batch: store is closing");
    goto fail;
  }
  if (b->n == 0) {
    rc = mu_err_set(err, MU_EINVAL, "store batch: nothing to commit");
    goto fail;
  }
  b->term = mu_leader_term(s->leader);
  if (b->term == 0) {
    rc = mu_err_set(err, MU_EPERM, "not the leader (leader is '%s'); nothing written", mu_leader_address(s->leader));
    goto fail;
  }
  for (size_t i = 0; i < b->n; i = txn_end(b, i)) b->res.txns++;
  b->txn_start = malloc((b->res.txns + 1) * sizeof *b->txn_start);
  if (b->txn_start == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "store batch: out of memory");
    goto fail;
  }
  size_t k = 0;
  for (size_t i = 0; i < b->n; i = txn_end(b, i)) b->txn_start[k++] = i;
  b->txn_start[k] = b->n;
  b->cb = cb;
  b->ud = ud;
  rc = send_txn(b, 0, err);
  if (rc != 0) goto fail;
  b->next_txn = 1;
  b->in_flight = 1;
  s->inflight++;
  pump(b); /* the rest of the first window (never finishes: one is in flight) */
  return 0;
fail:
  mu_store_batch_free(b);
  return rc;
}

int mu_store_put(mu_store *s, const char *key, const void *value, size_t value_len, mu_store_batch_cb cb, void *ud,
                 mu_err *err) {
  mu_store_batch *b = mu_store_batch_new(s);
  if (b == NULL) return mu_err_set(err, MU_ENOMEM, "store: out of memory");
  int rc = mu_store_batch_put(b, key, value, value_len, err);
  if (rc != 0) {
    mu_store_batch_free(b);
    return rc;
  }
  return mu_store_batch_commit(b, cb, ud, err);
}

/* ---- create-only puts ---- */

typedef struct create_op {
  mu_store *s;
  int64_t term;
  mu_store_create_cb cb;
  void *ud;
} create_op;

static void on_create(void *ud, const mu_etcd_result *res, const mu_err *err) {
  create_op *o = ud;
  mu_store *s = o->s;
  mu_err e = {0};
  if (res == NULL) {
    o->cb(o->ud, 0, NULL, err);
  } else if (res->succeeded) {
    o->cb(o->ud, 1, NULL, NULL);
  } else {
    /* failure branch: [0] the leader key, [1] the key. Ours still: the key existed. */
    const mu_etcd_result *lk = res->n_responses > 0 ? &res->responses[0] : NULL;
    const mu_etcd_result *kk = res->n_responses > 1 ? &res->responses[1] : NULL;
    if (lk == NULL || lk->n_kvs == 0 || lk->kvs[0].create_revision != o->term) {
      mu_err_set(&e, MU_EPERM, "not the leader any more (term %" PRId64 " fenced out)", o->term);
      mu_warn(LOG, "%s", e.msg);
      if (!s->closing) mu_leader_step_down(s->leader, o->term, e.msg);
      o->cb(o->ud, 0, NULL, &e);
    } else {
      o->cb(o->ud, 0, kk != NULL && kk->n_kvs > 0 ? &kk->kvs[0] : NULL, NULL);
    }
  }
  free(o);
  store_release(s);
}

int mu_store_create(mu_store *s, const char *key, const void *value, size_t value_len, mu_store_create_cb cb, void *ud,
                    mu_err *err) {
  if (s->closing) return mu_err_set(err, MU_ECANCELED, "store: closing");
  if (key == NULL || key[0] == '\0') return mu_err_set(err, MU_EINVAL, "store: empty key");
  int64_t term = mu_leader_term(s->leader);
  if (term == 0)
    return mu_err_set(err, MU_EPERM, "not the leader (leader is '%s'); nothing written", mu_leader_address(s->leader));
  create_op *o = calloc(1, sizeof *o);
  mu_etcd_txn *t = o ? mu_etcd_txn_new() : NULL;
  if (t == NULL) {
    free(o);
    return mu_err_set(err, MU_ENOMEM, "store: out of memory");
  }
  *o = (create_op){.s = s, .term = term, .cb = cb, .ud = ud};
  const char *lk = mu_leader_key(s->leader);
  mu_etcd_txn_fence(t, lk, term);
  mu_etcd_txn_compare(t, key, MU_ETCD_CREATE_REVISION, MU_ETCD_EQ, 0);
  mu_etcd_txn_put(t, MU_ETCD_ON_SUCCESS, &(mu_etcd_put_req){.key = key, .value = value, .value_len = value_len});
  mu_etcd_txn_range(t, MU_ETCD_ON_FAILURE, &(mu_etcd_range_req){.key = lk});
  mu_etcd_txn_range(t, MU_ETCD_ON_FAILURE, &(mu_etcd_range_req){.key = key});
  int rc = mu_etcd_txn_commit(s->c, t, on_create, o, err);
  mu_etcd_txn_free(t);
  if (rc != 0) {
    free(o);
    return rc;
  }
  s->inflight++;
  return 0;
}

/* ---- loads ---- */

static void load_free(load *ld) {
  free(ld->prefix);
  free(ld->end);
  free(ld->next);
  for (size_t i = ld->next_rest; i < ld->n_rest; i++) {
    free(ld->rest[i].start);
    free(ld->rest[i].end);
  }
  free(ld->rest);
  free(ld);
}

/* The range end of a prefix: last byte below 0xff incremented, the rest dropped ("\0" when
 * every byte is 0xff: to the end of the key space). Caller frees. */
static char *prefix_end(const char *prefix, size_t *ret_len) {
  size_t len = strlen(prefix);
  char *end = strdup(prefix);
  if (end == NULL) return NULL;
  while (len > 0 && (unsigned char)end[len - 1] == 0xff) len--;
  if (len == 0) {
    end[0] = '\0';
    len = 1;
  } else {
    end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
  }
  *ret_len = len;
  return end;
}

static void on_page(void *ud, const mu_etcd_result *res, const mu_err *err);

static int load_next(load *ld, mu_err *err) {
  mu_etcd_range_req req = {.key = ld->next,
                           .key_len = ld->next_len,
                           .range_end = ld->end,
                           .range_end_len = ld->end_len,
                           .limit = ld->s->opts.page_size,
                           .revision = ld->revision};
  return mu_etcd_range(ld->s->c, &req, on_page, ld, err);
}

static void load_finish(load *ld, const mu_err *err) {
  mu_store *s = ld->s;
  ld->on_done(ld->ud, ld->revision, ld->total, err);
  load_free(ld);
  store_release(s);
}

static void on_page(void *ud, const mu_etcd_result *res, const mu_err *err) {
  load *ld = ud;
  mu_err e = {0};
  if (res == NULL) {
    e = *err;
    mu_err_prefix(&e, "store: loading '%s' after %zu keys", ld->prefix, ld->total);
    load_finish(ld, &e);
    return;
  }
  if (ld->revision == 0) ld->revision = res->revision;
  if (res->n_kvs > 0) {
    if (ld->on_page != NULL && ld->on_page(ld->ud, res->kvs, res->n_kvs, &e) != 0) {
      if (e.code == 0) mu_err_set(&e, MU_ECANCELED, "store: load of '%s' stopped", ld->prefix);
      load_finish(ld, &e);
      return;
    }
    ld->total += res->n_kvs;
  }
  if ((!res->more || res->n_kvs == 0) && ld->next_rest == ld->n_rest) {
    load_finish(ld, NULL);
    return;
  }
  if (ld->s->closing) {
    mu_err_set(&e, MU_ECANCELED, "store: closed while loading '%s'", ld->prefix);
    load_finish(ld, &e);
    return;
  }
  if (!res->more || res->n_kvs == 0) { /* this range is done: the one after the next skip */
    struct load_range *r = &ld->rest[ld->next_rest++];
    free(ld->next);
    free(ld->end);
    ld->next = r->start;
    ld->next_len = r->start_len;
    ld->end = r->end;
    ld->end_len = r->end_len;
    r->start = r->end = NULL;
    if (load_next(ld, &e) != 0) {
      mu_err_prefix(&e, "store: loading '%s'", ld->prefix);
      load_finish(ld, &e);
    }
    return;
  }
  /* Resume right after the last key: last key + "\0" is its immediate successor. */
  const mu_etcd_kv *last = &res->kvs[res->n_kvs - 1];
  char *next = malloc(last->key_len + 1);
  if (next == NULL) {
    mu_err_set(&e, MU_ENOMEM, "store: out of memory loading '%s'", ld->prefix);
    load_finish(ld, &e);
    return;
  }
  memcpy(next, last->key, last->key_len);
  next[last->key_len] = '\0';
  free(ld->next);
  ld->next = next;
  ld->next_len = last->key_len + 1;
  if (load_next(ld, &e) != 0) {
    mu_err_prefix(&e, "store: loading '%s'", ld->prefix);
    load_finish(ld, &e);
  }
}

int mu_store_load_prefix(mu_store *s, const char *prefix, mu_store_page_cb on_page_cb, mu_store_load_cb on_done,
                         void *ud, mu_err *err) {
  return mu_store_load_prefix_skip(s, prefix, NULL, on_page_cb, on_done, ud, err);
}

int mu_store_load_prefix_skip(mu_store *s, const char *prefix, const char *skip, mu_store_page_cb on_page_cb,
                              mu_store_load_cb on_done, void *ud, mu_err *err) {
  const char *skips[1] = {skip};
  return mu_store_load_prefix_skips(s, prefix, skips, skip != NULL, on_page_cb, on_done, ud, err);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* 1 when [start, end) holds no key: end is not "\0" (the end of the key space) and start is
 * at or past it. */
static int range_empty(const char *start, size_t start_len, const char *end, size_t end_len) {
  if (end_len == 1 && end[0] == '\0') return 0;
  size_t n = start_len < end_len ? start_len : end_len;
  int c = memcmp(start, end, n);
  return c > 0 || (c == 0 && start_len >= end_len);
}

/* Splits [prefix, end of prefix) around the sorted skips into ld's first range (next, end)
 * and the rest. */
static int load_plan(load *ld, const char *prefix, const char **sorted, size_t n) {
  size_t len = 0;
  char *start = strdup(prefix);
  size_t start_len = strlen(prefix);
  if (start != NULL) ld->rest = calloc(n + 1, sizeof *ld->rest);
  if (start == NULL || ld->rest == NULL) {
    free(start);
    return MU_ENOMEM;
  }
  for (size_t i = 0; i <= n; i++) {
    char *end = i < n ? strdup(sorted[i]) : prefix_end(prefix, &len);
    size_t end_len = i < n ? strlen(sorted[i]) : len;
    char *after = i < n ? prefix_end(sorted[i], &len) : NULL;
    if (end == NULL || (i < n && after == NULL)) {
      free(start);
      free(end);
      free(after);
      return MU_ENOMEM;
    }
    if (range_empty(start, start_len, end, end_len)) {
      free(start);
      free(end);
    } else if (ld->next == NULL) {
      ld->next = start;
      ld->next_len = start_len;
      ld->end = end;
      ld->end_len = end_len;
    } else {
      ld->rest[ld->n_rest++] = (struct load_range){start, end, start_len, end_len};
    }
    start = after;
    start_len = len;
  }
  if (ld->next == NULL) { /* everything skipped: one empty read still gives the revision */
    ld->next = strdup(prefix);
    ld->next_len = strlen(prefix);
    ld->end = strdup(prefix);
    ld->end_len = ld->next_len;
    if (ld->next == NULL || ld->end == NULL) return MU_ENOMEM;
  }
  return 0;
}

int mu_store_load_prefix_skips(mu_store *s, const char *prefix, const char *const *skips, size_t n_skips,
                               mu_store_page_cb on_page_cb, mu_store_load_cb on_done, void *ud, mu_err *err) {
  if (s->closing) return mu_err_set(err, MU_ECANCELED, "store: closing");
  if (prefix == NULL || prefix[0] == '\0' || on_done == NULL) {
    return mu_err_set(err, MU_EINVAL, "store: load needs a non-empty prefix and a callback");
  }
  size_t plen = strlen(prefix);
  for (size_t i = 0; i < n_skips; i++)
    if (skips[i] == NULL || strncmp(skips[i], prefix, plen) != 0 || strlen(skips[i]) <= plen)
      return mu_err_set(err, MU_EINVAL, "store: skipped '%s' is not inside '%s'", skips[i] ? skips[i] : "(null)",
                        prefix);
  /* sorted, and a skip inside another one adds nothing */
  const char **sorted = calloc(n_skips + 1, sizeof *sorted);
  load *ld = calloc(1, sizeof(*ld));
  if (sorted == NULL || ld == NULL) {
    free(sorted);
    free(ld);
    return mu_err_set(err, MU_ENOMEM, "store: out of memory");
  }
  size_t n = 0;
  for (size_t i = 0; i < n_skips; i++) sorted[i] = skips[i];
  qsort(sorted, n_skips, sizeof *sorted, cmp_str);
  for (size_t i = 0; i < n_skips; i++)
    if (n == 0 || strncmp(sorted[i], sorted[n - 1], strlen(sorted[n - 1])) != 0) sorted[n++] = sorted[i];
  *ld = (load){.s = s, .on_page = on_page_cb, .on_done = on_done, .ud = ud};
  ld->prefix_len = plen;
  ld->prefix = strdup(prefix);
  int rc = ld->prefix == NULL ? MU_ENOMEM : load_plan(ld, prefix, sorted, n);
  free(sorted);
  if (rc != 0) {
    load_free(ld);
    return mu_err_set(err, MU_ENOMEM, "store: out of memory");
  }
  rc = load_next(ld, err);
  if (rc != 0) {
    load_free(ld);
    return rc;
  }
  s->inflight++;
  return 0;
}

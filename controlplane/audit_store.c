/* Where audit records are kept (audit.h): the ring with --no-etcd; with etcd the leader's
 * write queue, flushed in coalesced fenced batches under <prefix>audit/, and the pruning of
 * the oldest records past audit_max_records or audit_retention — a keys-only range of the
 * oldest batch, then one fenced delete batch, on a timer and after writes, never on a call's
 * path. A follower keeps nothing (its records are log lines). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit_int.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#define MU_AUDIT_FLUSH_MS 20          /* coalescing window of writes */
#define MU_AUDIT_RETRY_MS 1000        /* after a failed write */
#define MU_AUDIT_WRITE_BATCH 500      /* records per write */
#define MU_AUDIT_MAX_PENDING 10000    /* records waiting for etcd; more are dropped (logged) */
#define MU_AUDIT_PRUNE_EVERY_MS 60000 /* a pruning pass at least this often */
#define MU_AUDIT_PRUNE_BATCH 1000     /* oldest keys read, and at most deleted, per pass */
#define MU_AUDIT_PRUNE_AGAIN_MS 200   /* the next pass when a batch was full */
#define MU_AUDIT_PRUNE_SETTLE_MS 5000 /* a pass this long after writes at the latest */

static int leader(const mu_audit_log *al) {
  return al->d->cluster->role == MU_ROLE_LEADER && al->d->cluster->store != NULL;
}

void mu_audit_unref(mu_audit_log *al) {
  if (--al->refs > 0 || !al->closing) return;
  for (size_t i = 0; i < al->n_pending; i++) free(al->pending[i]);
  free(al->pending);
  mu_audit_ring_free(&al->ring);
  free(al);
}

static void drop_pending(mu_audit_log *al, size_t from, const char *why) {
  size_t n = al->n_pending - from;
  if (n == 0) return;
  mu_warn("audit", "%zu audit record%s not stored in etcd: %s (they are in this log above)", n, n == 1 ? "" : "s", why);
  for (size_t i = from; i < al->n_pending; i++) free(al->pending[i]);
  al->n_pending = from;
  al->dropped += n;
}

/* --- writes --- */

static void flush(mu_audit_log *al);

static void on_flush_timer(uv_timer_t *t) {
  mu_audit_log *al = t->data;
  al->flush_armed = 0;
  flush(al);
}

static void kick(mu_audit_log *al, uint64_t delay_ms) {
  if (al->flush_armed || al->closing) return;
  al->flush_armed = 1;
  uv_timer_start(&al->flush_timer, on_flush_timer, delay_ms, 0);
}

static void prune_soon(mu_audit_log *al, uint64_t delay_ms);

static void on_written(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  mu_audit_log *al = ud;
  size_t n = al->n_writing;
  (void)res;
  al->n_writing = 0;
  if (err == NULL) {
    for (size_t i = 0; i < n; i++) free(al->pending[i]);
    memmove(al->pending, al->pending + n, (al->n_pending - n) * sizeof *al->pending);
    al->n_pending -= n;
    al->stored += n;
    al->stored_since_prune += n;
    /* a pass after every tenth of the bound written (at most every 1000), and one soon
     * after the writes stop */
    uint64_t every = al->d->cfg.audit_max_records / 10;
    prune_soon(al, al->stored_since_prune >= (every < 1      ? 1
                                              : every > 1000 ? 1000
                                                             : every)
                       ? 0
                       : MU_AUDIT_PRUNE_SETTLE_MS);
    if (al->n_pending > 0) kick(al, 0);
  } else if (err->code == MU_EPERM) {
    drop_pending(al, 0, "this member no longer leads");
  } else if (err->code != MU_ECANCELED) {
    mu_warn("audit", "writing %zu audit records: %s; retrying", n, err->msg);
    kick(al, MU_AUDIT_RETRY_MS); /* puts of the same keys again: idempotent */
  } else if (!al->closing) {
    drop_pending(al, 0, err->msg);
  }
  mu_audit_unref(al);
}

static void flush(mu_audit_log *al) {
  mu_daemon *d = al->d;
  if (al->n_writing > 0 || al->n_pending == 0) return;
  if (!leader(al)) {
    drop_pending(al, 0, "this member no longer leads");
    return;
  }
  mu_store_batch *b = mu_store_batch_new(d->cluster->store);
  mu_err err = {0};
  int rc = b ? 0 : mu_err_set(&err, MU_ENOMEM, "out of memory");
  size_t n = al->n_pending < MU_AUDIT_WRITE_BATCH ? al->n_pending : MU_AUDIT_WRITE_BATCH;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char key[MU_CFG_PREFIX_MAX + sizeof MU_AUDIT_REL + MU_AUDIT_ID_MAX];
    char *v = mu_audit_rec_to_json(al->pending[i]);
    snprintf(key, sizeof key, "%s%s%s", d->cfg.etcd_prefix, MU_AUDIT_REL, al->pending[i]->id);
    rc = v ? mu_store_batch_put(b, key, v, 0, &err) : mu_err_set(&err, MU_ENOMEM, "out of memory");
    free(v);
  }
  if (rc == 0) {
    al->n_writing = n;
    al->refs++;
    rc = mu_store_batch_commit(b, on_written, al, &err);
    b = NULL;
    if (rc == 0) return;
    al->n_writing = 0;
    al->refs--;
  }
  mu_store_batch_free(b);
  if (rc == MU_EPERM) {
    drop_pending(al, 0, "this member no longer leads");
    return;
  }
  mu_warn("audit", "writing audit records: %s; retrying", err.msg);
  kick(al, MU_AUDIT_RETRY_MS);
}

void mu_audit_store_add(mu_audit_log *al, mu_audit_rec *rec) {
  mu_daemon *d = al->d;
  if (d->cluster->role == MU_ROLE_SINGLE) {
    al->pruned += mu_audit_ring_push(&al->ring, rec, rec->time_ms);
    al->stored++;
    return;
  }
  if (!leader(al) || al->closing) { /* a follower's records are its log lines */
    free(rec);
    return;
  }
  if (al->n_pending >= MU_AUDIT_MAX_PENDING) {
    if (al->dropped++ % 1000 == 0)
      mu_warn("audit", "%d audit records wait for etcd already; dropping %s (it is in the log)", MU_AUDIT_MAX_PENDING,
              rec->id);
    free(rec);
    return;
  }
  if (al->n_pending == al->cap_pending) {
    size_t cap = al->cap_pending ? al->cap_pending * 2 : 64;
    mu_audit_rec **grown = realloc(al->pending, cap * sizeof *grown);
    if (grown == NULL) {
      al->dropped++;
      free(rec);
      return;
    }
    al->pending = grown;
    al->cap_pending = cap;
  }
  al->pending[al->n_pending++] = rec;
  kick(al, MU_AUDIT_FLUSH_MS);
}

/* --- pruning --- */

static void on_pruned(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  mu_audit_log *al = ud;
  (void)res;
  al->prune_busy = 0;
  if (err != NULL && err->code != MU_EPERM && err->code != MU_ECANCELED)
    mu_warn("audit", "deleting old audit records: %s", err->msg);
  mu_audit_unref(al);
}

static void on_oldest(void *ud, const mu_etcd_result *res, const mu_err *err) {
  mu_audit_log *al = ud;
  mu_daemon *d = al->d;
  if (err != NULL || al->closing || !leader(al)) {
    if (err != NULL && err->code != MU_ECANCELED) mu_warn("audit", "reading the oldest audit records: %s", err->msg);
    al->prune_busy = 0;
    mu_audit_unref(al);
    return;
  }
  /* keys sort by time: the oldest first; delete those past the count bound and those too old */
  int64_t excess = res->count - (int64_t)d->cfg.audit_max_records;
  int64_t cutoff = mu_now_ms() - d->cfg.audit_retention_ms;
  size_t plen = strlen(d->cfg.etcd_prefix) + strlen(MU_AUDIT_REL), n = 0;
  for (size_t i = 0; i < res->n_kvs; i++) {
    const char *id = res->kvs[i].key_len > plen ? res->kvs[i].key + plen : "";
    int64_t t = mu_audit_id_time(id);
    if ((int64_t)i < excess || (t >= 0 && t < cutoff)) n = i + 1;
  }
  mu_store_batch *b = n ? mu_store_batch_new(d->cluster->store) : NULL;
  mu_err e = {0};
  int rc = 0;
  for (size_t i = 0; b != NULL && i < n && rc == 0; i++) rc = mu_store_batch_delete(b, res->kvs[i].key, false, &e);
  if (b != NULL && rc == 0) {
    rc = mu_store_batch_commit(b, on_pruned, al, &e);
    b = NULL;
    if (rc == 0) {
      al->pruned += n;
      mu_info("audit",
              "deleting the %zu oldest audit records (past audit_max_records=%u or "
              "audit_retention)",
              n, (unsigned)d->cfg.audit_max_records);
      if (n == MU_AUDIT_PRUNE_BATCH) prune_soon(al, MU_AUDIT_PRUNE_AGAIN_MS);
      return; /* the reference passes to on_pruned */
    }
  }
  mu_store_batch_free(b);
  if (rc != 0) mu_warn("audit", "deleting old audit records: %s", e.msg);
  al->prune_busy = 0;
  mu_audit_unref(al);
}

static void prune(mu_audit_log *al) {
  mu_daemon *d = al->d;
  if (al->prune_busy || al->closing || !leader(al)) return;
  char key[MU_CFG_PREFIX_MAX + sizeof MU_AUDIT_REL];
  snprintf(key, sizeof key, "%s%s", d->cfg.etcd_prefix, MU_AUDIT_REL);
  mu_etcd_range_req req = {.key = key, .prefix = true, .keys_only = true, .limit = MU_AUDIT_PRUNE_BATCH};
  mu_err err = {0};
  al->stored_since_prune = 0;
  al->prune_busy = 1;
  al->refs++;
  if (mu_etcd_range(d->cluster->etcd, &req, on_oldest, al, &err) != 0) {
    mu_warn("audit", "reading the oldest audit records: %s", err.msg);
    al->prune_busy = 0;
    al->refs--;
  }
}

static void on_prune_timer(uv_timer_t *t) {
  mu_audit_log *al = t->data;
  int busy = al->prune_busy;
  al->prune_due = 0;
  prune(al);
  prune_soon(al, busy ? MU_AUDIT_PRUNE_AGAIN_MS : MU_AUDIT_PRUNE_EVERY_MS);
}

/* A pass within delay_ms, unless one is due sooner already. */
static void prune_soon(mu_audit_log *al, uint64_t delay_ms) {
  int64_t due = mu_mono_ms() + (int64_t)delay_ms;
  if (al->closing || (al->prune_due != 0 && al->prune_due <= due)) return;
  al->prune_due = due;
  uv_timer_start(&al->prune_timer, on_prune_timer, delay_ms, 0);
}

/* --- life cycle --- */

static void on_closed(uv_handle_t *h) { mu_audit_unref(h->data); }

void mu_audit_store_init(mu_audit_log *al) {
  uv_loop_t *loop = al->d->loop;
  uv_timer_init(loop, &al->flush_timer);
  uv_timer_init(loop, &al->prune_timer);
  al->flush_timer.data = al->prune_timer.data = al;
  al->refs += 2;
  if (al->d->cluster->role != MU_ROLE_SINGLE) prune_soon(al, MU_AUDIT_PRUNE_EVERY_MS / 10);
}

void mu_audit_store_close(mu_audit_log *al) {
  uv_timer_stop(&al->flush_timer);
  uv_timer_stop(&al->prune_timer);
  al->flush_armed = 0;
  if (al->n_writing == 0 && al->n_pending > 0 && leader(al)) flush(al); /* a last write */
  uv_close((uv_handle_t *)&al->flush_timer, on_closed);
  uv_close((uv_handle_t *)&al->prune_timer, on_closed);
}

/* Leader election on "<prefix>leader": campaign (revoke any stale lease of ours, grant a lease,
 * create the key under it only if absent), keep the lease alive while leading with a local
 * deadline that deposes a leader cut off from etcd, and watch the key to follow other leaders
 * and campaign again when it goes away. Every etcd call carries an op record with the epoch it
 * belongs to, so replies that arrive after a change of leadership are ignored. */
#include "controlplane/ha/leader.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"

#define LOG "leader"
#define RETRY_MIN_MS 100

struct mu_leader {
  uv_loop_t *loop;
  mu_etcd_client *c;
  char *key;       /* "<prefix>leader", owned */
  char *value;     /* our JSON {member_id, address}, owned */
  char *member_id; /* owned */
  char *address;   /* owned */
  int64_t ttl_ms, retry_max_ms;
  mu_leader_callbacks cbs;
  void *ud;

  uv_timer_t keepalive_timer, deadline_timer, retry_timer, probe_timer;
  int open_handles; /* timers not yet closed */
  int pending;      /* etcd calls in flight */
  bool closing, client_gone;
  void (*close_cb)(void *ud);
  void *close_ud;

  uint64_t epoch;   /* bumped on every election and deposition */
  bool campaigning; /* a campaign step is scheduled or in flight */
  int64_t backoff_ms;
  int64_t lease;         /* lease granted for the campaign / held while leading */
  int64_t lease_ttl_ms;  /* span of the local deadline */
  int64_t grant_sent_ms; /* mu_mono_ms() when the campaign's lease grant was sent */
  int64_t stale_lease;   /* a lease we stopped using that may still hold the key */

  bool is_leader;
  int64_t term;
  int64_t deadline_ms; /* mu_mono_ms() by which we stop leading without a refresh */
  bool ka_inflight;
  bool probe_inflight;

  char *known_address; /* owned, "" when unknown */
  int64_t known_term;
  int64_t state_rev;    /* revision our view of the key is current at */
  mu_etcd_watch *watch; /* owned by the client; NULL when not watching */
  mu_leader_health health;
};

typedef enum {
  OP_REVOKE_STALE = 1,
  OP_GRANT,
  OP_TXN,
  OP_RANGE,
  OP_KEEPALIVE,
  OP_REVOKE,
  OP_PROBE,
} op_kind;

typedef struct op {
  mu_leader *l;
  op_kind kind;
  uint64_t epoch;
  int64_t lease;
  int64_t sent_ms;
} op;

static void campaign_step(mu_leader *l);
static void schedule_campaign(mu_leader *l, int64_t delay_ms);
static void on_op(void *ud, const mu_etcd_result *res, const mu_err *err);

/* ---- small helpers ---- */

static void finish_check(mu_leader *l) {
  if (!l->closing || l->pending > 0 || l->open_handles > 0) return;
  void (*cb)(void *) = l->close_cb;
  void *ud = l->close_ud;
  free(l->key);
  free(l->value);
  free(l->member_id);
  free(l->address);
  free(l->known_address);
  free(l);
  if (cb != NULL) cb(ud);
}

static void note_ok(mu_leader *l) {
  l->health.healthy = true;
  l->health.last_ok_mono_ms = mu_mono_ms();
}

static void note_err(mu_leader *l, const mu_err *err) {
  if (err->code == MU_ECANCELED) return;
  l->health.healthy = false;
  l->health.last_err = *err;
}

/* Starts an etcd call for op; on a synchronous failure the op is freed and the error left in
 * err. */
static int start_op(mu_leader *l, op_kind kind, int64_t lease, mu_err *err) {
  op *o = calloc(1, sizeof(*o));
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "leader election: out of memory");
  *o = (op){.l = l, .kind = kind, .epoch = l->epoch, .lease = lease, .sent_ms = mu_mono_ms()};
  int rc = 0;
  mu_etcd_txn *t = NULL;
  switch (kind) {
    case OP_REVOKE_STALE:
    case OP_REVOKE: rc = mu_etcd_lease_revoke(l->c, lease, on_op, o, err); break;
    case OP_GRANT: rc = mu_etcd_lease_grant(l->c, (l->ttl_ms + 999) / 1000, on_op, o, err); break;
    case OP_KEEPALIVE: rc = mu_etcd_lease_keepalive(l->c, lease, on_op, o, err); break;
    case OP_RANGE:
    case OP_PROBE: rc = mu_etcd_range(l->c, &(mu_etcd_range_req){.key = l->key}, on_op, o, err); break;
    case OP_TXN:
      t = mu_etcd_txn_new();
      if (t == NULL) {
        rc = mu_err_set(err, MU_ENOMEM, "leader election: out of memory");
        break;
      }
      mu_etcd_txn_compare(t, l->key, MU_ETCD_CREATE_REVISION, MU_ETCD_EQ, 0);
      mu_etcd_txn_put(t, MU_ETCD_ON_SUCCESS, &(mu_etcd_put_req){.key = l->key, .value = l->value, .lease = lease});
      mu_etcd_txn_range(t, MU_ETCD_ON_SUCCESS, &(mu_etcd_range_req){.key = l->key});
      mu_etcd_txn_range(t, MU_ETCD_ON_FAILURE, &(mu_etcd_range_req){.key = l->key});
      rc = mu_etcd_txn_commit(l->c, t, on_op, o, err);
      mu_etcd_txn_free(t);
      break;
  }
  if (rc != 0) {
    free(o);
    if (rc == MU_ECANCELED) l->client_gone = true;
    return rc;
  }
  l->pending++;
  return 0;
}

/* Fire-and-forget revoke of a lease we no longer use (its key, if any, goes with it). */
static void revoke_quietly(mu_leader *l, int64_t lease) {
  mu_err err = {0};
  if (lease != 0 && start_op(l, OP_REVOKE, lease, &err) != 0) {
    mu_warn(LOG, "revoking lease %" PRId64 ": %s", lease, err.msg);
  }
}

/* Records the known leader; tells the user when it changed. */
static void set_known(mu_leader *l, const char *address, int64_t term) {
  if (term == l->known_term && strcmp(address, l->known_address) == 0) return;
  char *copy = strdup(address);
  if (copy == NULL) return; /* keep the old view rather than lose it */
  free(l->known_address);
  l->known_address = copy;
  l->known_term = term;
  if (!l->closing && l->cbs.on_leader_changed != NULL) {
    l->cbs.on_leader_changed(l->ud, l->known_address, term);
  }
}

/* The address in a leader key's JSON value ("" when it is not ours to read). */
static void known_from_kv(mu_leader *l, const mu_etcd_kv *kv) {
  json_error_t jerr;
  json_t *v = json_loadb(kv->value, kv->value_len, 0, &jerr);
  const char *addr = v != NULL ? json_string_value(json_object_get(v, "address")) : NULL;
  if (addr == NULL) {
    mu_warn(LOG, "leader key %s: value is not {\"address\":...} JSON; leader address unknown", l->key);
    addr = "";
  }
  set_known(l, addr, kv->create_revision);
  json_decref(v);
}

/* ---- leading ---- */

static void depose(mu_leader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void depose(mu_leader *l, const char *fmt, ...) {
  if (!l->is_leader) return;
  char reason[MU_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  int64_t old_term = l->term;
  l->is_leader = false;
  l->term = 0;
  l->epoch++;
  l->ka_inflight = false;
  uv_timer_stop(&l->keepalive_timer);
  uv_timer_stop(&l->deadline_timer);
  l->stale_lease = l->lease;
  l->lease = 0;
  mu_warn(LOG, "deposed from term %" PRId64 ": %s", old_term, reason);
  if (l->cbs.on_deposed != NULL) l->cbs.on_deposed(l->ud, reason);
  if (l->closing) return;
  if (l->known_term == old_term) set_known(l, "", 0);
  if (l->closing || l->client_gone) return;
  schedule_campaign(l, 0);
}

static void on_deadline(uv_timer_t *t);

static void arm_deadline(mu_leader *l) {
  int64_t left = l->deadline_ms - mu_mono_ms();
  uv_timer_start(&l->deadline_timer, on_deadline, left > 0 ? (uint64_t)left : 0, 0);
}

static void on_deadline(uv_timer_t *t) {
  mu_leader *l = t->data;
  if (!l->is_leader) return;
  if (mu_mono_ms() < l->deadline_ms) {
    arm_deadline(l);
    return;
  }
  mu_err e = {0};
  mu_err_set(&e, MU_ETIMEDOUT,
             "no lease refresh confirmed by etcd within the %" PRId64 " ms TTL (lease %" PRId64
             "); last etcd error: %s",
             l->lease_ttl_ms, l->lease, l->health.last_err.code != 0 ? l->health.last_err.msg : "none");
  note_err(l, &e);
  depose(l, "%s", e.msg);
}

static void on_keepalive_timer(uv_timer_t *t) {
  mu_leader *l = t->data;
  mu_err err = {0};
  if (!l->is_leader || l->ka_inflight) return;
  if (start_op(l, OP_KEEPALIVE, l->lease, &err) != 0) {
    note_err(l, &err);
    if (l->client_gone) {
      depose(l, "etcd client closed");
      return;
    }
    uv_timer_start(&l->keepalive_timer, on_keepalive_timer, (uint64_t)l->lease_ttl_ms / 6, 0);
    return;
  }
  l->ka_inflight = true;
}

/* Stopping a little before the lease can end on etcd covers timer latency on our side. */
static int64_t deadline_margin(const mu_leader *l) { return l->lease_ttl_ms / 10; }

static void become_leader(mu_leader *l, int64_t term, int64_t granted_at) {
  l->is_leader = true;
  l->term = term;
  l->epoch++;
  l->backoff_ms = RETRY_MIN_MS;
  l->deadline_ms = granted_at + l->lease_ttl_ms - deadline_margin(l);
  arm_deadline(l);
  int64_t since = mu_mono_ms() - granted_at;
  int64_t next = l->lease_ttl_ms / 3 - since;
  uv_timer_start(&l->keepalive_timer, on_keepalive_timer, next > 0 ? (uint64_t)next : 0, 0);
  mu_info(LOG, "elected leader with term %" PRId64 " (lease %" PRId64 ", TTL %" PRId64 " ms)", term, l->lease,
          l->lease_ttl_ms);
  if (l->cbs.on_elected != NULL) l->cbs.on_elected(l->ud, term);
  if (l->closing) return;
  set_known(l, l->address, term);
}

static void keepalive_done(mu_leader *l, const op *o, const mu_etcd_result *res, const mu_err *err) {
  if (o->epoch != l->epoch || !l->is_leader) return;
  l->ka_inflight = false;
  if (res != NULL && res->ttl > 0) {
    int64_t span = res->ttl * 1000 < l->ttl_ms ? res->ttl * 1000 : l->ttl_ms;
    int64_t d = o->sent_ms + span - deadline_margin(l);
    if (d > l->deadline_ms) l->deadline_ms = d;
    arm_deadline(l);
    uv_timer_start(&l->keepalive_timer, on_keepalive_timer, (uint64_t)l->lease_ttl_ms / 3, 0);
    return;
  }
  if (res != NULL || err->code == MU_ENOENT) {
    depose(l, "lease %" PRId64 " is gone on etcd (expired or revoked)", l->lease);
    return;
  }
  if (err->code == MU_ECANCELED) {
    depose(l, "etcd client closed");
    return;
  }
  /* Transient: retry soon; the deadline timer deposes us if this goes on too long. */
  uv_timer_start(&l->keepalive_timer, on_keepalive_timer, (uint64_t)l->lease_ttl_ms / 6, 0);
}

/* ---- watching the key ---- */

static void on_watch(void *ud, const mu_etcd_watch_batch *b, const mu_err *err) {
  mu_leader *l = ud;
  if (err != NULL) {
    l->watch = NULL;
    note_err(l, err);
    if (err->code == MU_ECANCELED) {
      l->client_gone = true;
      depose(l, "etcd client closed");
      return;
    }
    mu_warn(LOG, "watch on %s ended: %s; re-reading", l->key, err->msg);
    schedule_campaign(l, l->backoff_ms);
    return;
  }
  for (size_t i = 0; i < b->n_events && !l->closing; i++) {
    const mu_etcd_event *ev = &b->events[i];
    if (ev->kv.mod_revision <= l->state_rev) continue;
    l->state_rev = ev->kv.mod_revision;
    if (ev->type == MU_ETCD_EVENT_PUT) {
      if (l->is_leader && ev->kv.create_revision != l->term) {
        depose(l, "leader key %s was re-created by another member (term %" PRId64 ")", l->key, ev->kv.create_revision);
      }
      if (!l->closing && ev->kv.create_revision != l->term) known_from_kv(l, &ev->kv);
      continue;
    }
    if (l->is_leader) {
      depose(l, "leader key %s was deleted", l->key);
      continue; /* depose campaigns again */
    }
    set_known(l, "", 0);
    if (!l->closing) schedule_campaign(l, 0);
  }
}

static void ensure_watch(mu_leader *l, int64_t from_rev) {
  mu_err err = {0};
  if (l->watch != NULL || l->closing) return;
  int rc = mu_etcd_watch_start(l->c, &(mu_etcd_watch_req){.key = l->key, .start_revision = from_rev}, on_watch, l,
                               &l->watch, &err);
  if (rc != 0) {
    l->watch = NULL;
    note_err(l, &err);
    if (rc == MU_ECANCELED) {
      l->client_gone = true;
      return;
    }
    mu_warn(LOG, "watch on %s: %s", l->key, err.msg);
    schedule_campaign(l, l->backoff_ms);
  }
}

/* ---- campaigning ---- */

static void on_retry_timer(uv_timer_t *t) { campaign_step(t->data); }

static void schedule_campaign(mu_leader *l, int64_t delay_ms) {
  if (l->closing || l->client_gone || l->campaigning) return;
  l->campaigning = true;
  uv_timer_start(&l->retry_timer, on_retry_timer, (uint64_t)delay_ms, 0);
}

static void campaign_failed(mu_leader *l, const mu_err *err) {
  l->campaigning = false;
  note_err(l, err);
  if (err->code == MU_ECANCELED) l->client_gone = true;
  mu_warn(LOG, "campaign on %s: %s; retrying in %" PRId64 " ms", l->key, err->msg, l->backoff_ms);
  schedule_campaign(l, l->backoff_ms);
  l->backoff_ms = l->backoff_ms * 2 > l->retry_max_ms ? l->retry_max_ms : l->backoff_ms * 2;
}

/* One step: a leader only re-reads the key (its watch broke); others first revoke a stale
 * lease (which deletes a key it may still hold), then grant a lease and try the key. */
static void campaign_step(mu_leader *l) {
  mu_err err = {0};
  int rc;
  if (l->closing) return;
  if (l->is_leader) rc = start_op(l, OP_RANGE, 0, &err);
  else if (l->stale_lease != 0) rc = start_op(l, OP_REVOKE_STALE, l->stale_lease, &err);
  else rc = start_op(l, OP_GRANT, 0, &err);
  if (rc != 0) campaign_failed(l, &err);
}

static void txn_done(mu_leader *l, const mu_etcd_result *res) {
  l->state_rev = res->revision;
  if (res->succeeded) {
    int64_t term = res->revision;
    if (res->n_responses >= 2 && res->responses[1].n_kvs == 1) {
      term = res->responses[1].kvs[0].create_revision;
    }
    l->campaigning = false;
    if (mu_mono_ms() >= l->grant_sent_ms + l->lease_ttl_ms - deadline_margin(l)) {
      /* Won too late to trust the lease: let it go and try again. */
      l->stale_lease = l->lease;
      l->lease = 0;
      schedule_campaign(l, 0);
      return;
    }
    become_leader(l, term, l->grant_sent_ms);
    if (!l->closing) ensure_watch(l, res->revision + 1);
    return;
  }
  /* Someone holds the key: follow them, drop our unused lease. */
  int64_t unused = l->lease;
  l->lease = 0;
  revoke_quietly(l, unused);
  l->campaigning = false;
  l->backoff_ms = RETRY_MIN_MS;
  if (res->n_responses >= 1 && res->responses[0].n_kvs == 1) {
    known_from_kv(l, &res->responses[0].kvs[0]);
  } else {
    schedule_campaign(l, 0); /* deleted in between: go again */
  }
  if (!l->closing) ensure_watch(l, res->revision + 1);
}

static void range_done(mu_leader *l, const mu_etcd_result *res) {
  l->campaigning = false;
  if (!l->is_leader) {
    schedule_campaign(l, 0);
    return;
  }
  l->state_rev = res->revision;
  if (res->n_kvs != 1 || res->kvs[0].create_revision != l->term) {
    depose(l, "leader key %s no longer holds term %" PRId64, l->key, l->term);
    return;
  }
  ensure_watch(l, res->revision + 1);
}

/* A follower re-reads the key every TTL: keeps its etcd health current and is a safety net
 * should the watch ever miss the key going away. Only a reply newer than our view counts. */
static void probe_done(mu_leader *l, const mu_etcd_result *res) {
  if (l->is_leader || l->campaigning || res->revision <= l->state_rev) return;
  l->state_rev = res->revision;
  if (res->n_kvs == 1) {
    known_from_kv(l, &res->kvs[0]);
    return;
  }
  set_known(l, "", 0);
  if (!l->closing) schedule_campaign(l, 0);
}

static void on_probe_timer(uv_timer_t *t) {
  mu_leader *l = t->data;
  mu_err err = {0};
  if (l->is_leader || l->campaigning || l->client_gone || l->probe_inflight) return;
  if (start_op(l, OP_PROBE, 0, &err) != 0) {
    note_err(l, &err);
    return;
  }
  l->probe_inflight = true;
}

static void on_op(void *ud, const mu_etcd_result *res, const mu_err *err) {
  op *o = ud;
  mu_leader *l = o->l;
  mu_err e = {0};
  l->pending--;
  if (res != NULL) note_ok(l);
  else note_err(l, err);
  if (err != NULL && err->code == MU_ECANCELED) l->client_gone = true;

  if (l->closing) {
    if (o->kind == OP_GRANT && res != NULL) revoke_quietly(l, res->lease_id);
    goto out;
  }
  switch (o->kind) {
    case OP_REVOKE: break;
    case OP_KEEPALIVE: keepalive_done(l, o, res, err); break;
    case OP_REVOKE_STALE:
      if (res == NULL && err->code != MU_ENOENT) {
        campaign_failed(l, err);
        break;
      }
      l->stale_lease = 0;
      if (start_op(l, OP_GRANT, 0, &e) != 0) campaign_failed(l, &e);
      break;
    case OP_GRANT:
      if (res == NULL) {
        campaign_failed(l, err);
        break;
      }
      l->lease = res->lease_id;
      l->grant_sent_ms = o->sent_ms;
      l->lease_ttl_ms = res->ttl * 1000 < l->ttl_ms ? res->ttl * 1000 : l->ttl_ms;
      if (start_op(l, OP_TXN, l->lease, &e) != 0) {
        l->stale_lease = l->lease;
        l->lease = 0;
        campaign_failed(l, &e);
        break;
      }
      break;
    case OP_TXN:
      if (res == NULL) {
        /* The put may or may not have landed: treat the lease as stale so the next campaign
       * revokes it (and with it any key it holds). */
        l->stale_lease = l->lease;
        l->lease = 0;
        campaign_failed(l, err);
        break;
      }
      txn_done(l, res);
      break;
    case OP_RANGE:
      if (res == NULL) {
        campaign_failed(l, err);
        break;
      }
      range_done(l, res);
      break;
    case OP_PROBE:
      l->probe_inflight = false;
      if (res != NULL) probe_done(l, res);
      break;
  }
out:
  free(o);
  finish_check(l);
}

/* ---- public ---- */

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (s == NULL) return NULL;
  memcpy(s, a, la);
  memcpy(s + la, b, lb + 1);
  return s;
}

int mu_leader_new(uv_loop_t *loop, mu_etcd_client *client, const mu_leader_options *opts,
                  const mu_leader_callbacks *cbs, void *ud, mu_leader **ret_leader, mu_err *err) {
  if (loop == NULL || client == NULL || opts == NULL) {
    return mu_err_set(err, MU_EINVAL, "leader election: loop, etcd client and options needed");
  }
  if (opts->member_id == NULL || opts->member_id[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "leader election: member_id is empty");
  }
  if (opts->address == NULL || opts->address[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "leader election: address is empty");
  }
  int64_t ttl = opts->ttl_ms == 0 ? MU_LEADER_DEFAULT_TTL_MS : opts->ttl_ms;
  if (ttl < 1000) {
    return mu_err_set(err, MU_EINVAL,
                      "leader election: TTL must be at least 1s (etcd leases count seconds), "
                      "got %" PRId64 " ms",
                      ttl);
  }
  mu_leader *l = calloc(1, sizeof(*l));
  json_t *v = NULL;
  if (l == NULL) return mu_err_set(err, MU_ENOMEM, "leader election: out of memory");
  l->loop = loop;
  l->c = client;
  l->ttl_ms = ttl;
  l->lease_ttl_ms = ttl;
  l->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : ttl;
  l->backoff_ms = RETRY_MIN_MS;
  if (cbs != NULL) l->cbs = *cbs;
  l->ud = ud;
  l->key = join(opts->prefix != NULL ? opts->prefix : MU_LEADER_DEFAULT_PREFIX, "leader");
  l->member_id = strdup(opts->member_id);
  l->address = strdup(opts->address);
  l->known_address = strdup("");
  v = json_pack("{s:s,s:s}", "member_id", opts->member_id, "address", opts->address);
  l->value = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (l->key == NULL || l->member_id == NULL || l->address == NULL || l->known_address == NULL || l->value == NULL) {
    free(l->key);
    free(l->member_id);
    free(l->address);
    free(l->known_address);
    free(l->value);
    free(l);
    return mu_err_set(err, MU_ENOMEM, "leader election: out of memory");
  }
  uv_timer_t *timers[] = {&l->keepalive_timer, &l->deadline_timer, &l->retry_timer, &l->probe_timer};
  for (size_t i = 0; i < 4; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = l;
    l->open_handles++;
  }
  schedule_campaign(l, 0);
  uv_timer_start(&l->probe_timer, on_probe_timer, (uint64_t)ttl, (uint64_t)ttl);
  *ret_leader = l;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  mu_leader *l = h->data;
  l->open_handles--;
  finish_check(l);
}

void mu_leader_close(mu_leader *l, void (*close_cb)(void *ud), void *ud) {
  if (l == NULL || l->closing) return;
  l->closing = true;
  l->close_cb = close_cb;
  l->close_ud = ud;
  if (l->watch != NULL) mu_etcd_watch_cancel(l->watch);
  l->watch = NULL;
  if (l->is_leader) mu_info(LOG, "resigning term %" PRId64, l->term);
  l->is_leader = false;
  l->term = 0;
  l->epoch++;
  revoke_quietly(l, l->lease);
  revoke_quietly(l, l->stale_lease);
  l->lease = 0;
  l->stale_lease = 0;
  uv_close((uv_handle_t *)&l->keepalive_timer, on_timer_closed);
  uv_close((uv_handle_t *)&l->deadline_timer, on_timer_closed);
  uv_close((uv_handle_t *)&l->retry_timer, on_timer_closed);
  uv_close((uv_handle_t *)&l->probe_timer, on_timer_closed);
}

bool mu_leader_is_leader(const mu_leader *l) { return l->is_leader && mu_mono_ms() < l->deadline_ms; }

int64_t mu_leader_term(const mu_leader *l) { return mu_leader_is_leader(l) ? l->term : 0; }

const char *mu_leader_key(const mu_leader *l) { return l->key; }

const char *mu_leader_address(const mu_leader *l) { return l->known_address; }

int64_t mu_leader_known_term(const mu_leader *l) { return l->known_term; }

void mu_leader_get_health(const mu_leader *l, mu_leader_health *ret_health) { *ret_health = l->health; }

void mu_leader_step_down(mu_leader *l, int64_t term, const char *reason) {
  if (l->closing || !l->is_leader || l->term != term) return;
  depose(l, "%s", reason);
}

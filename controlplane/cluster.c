/* musterd with etcd (cluster.h): the client, the election (controlplane/ha/leader.h) and the
 * fenced store. A follower loads the prefix and watches it to serve reads and redirect
 * everything else; a newly elected leader loads its state, gives agents takeover_grace to come
 * back, and leads. What happens is published as cluster events (events.h): the scheduler,
 * persist.c, presence and the gateway act on them; this file includes none of them. A deposed
 * leader stops scheduling and writing at once. etcd health feeds GetCluster and Health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/cluster.h"

#include "controlplane/audit_record.h"
#include "controlplane/daemon.h"
#include "controlplane/events.h"
#include "controlplane/meters.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"

#define MU_CLUSTER_RETRY_MS 500
/* Bundle chunks live under <prefix>bundles/: the state load skips them (bundles.c lists metas). */
#define MU_BUNDLES_REL "bundles/"

/* Audit records (audit.h) are not state: loads skip them, follower watches ignore them. */
static int audit_key(const char *rel) { return strncmp(rel, MU_AUDIT_REL, strlen(MU_AUDIT_REL)) == 0; }

typedef struct load_ctx {
  mu_daemon *d;
  uint64_t gen;
  int leading;
  int pages;
  int64_t revision;
} load_ctx;

static void start_load(mu_daemon *d);

static void on_retry_timer(uv_timer_t *t) {
  mu_daemon *d = t->data;
  if (d->stopping || d->cluster->loading) return;
  if (d->cluster->role == MU_ROLE_LEADER && !d->cluster->state_ready) start_load(d);
  if (d->cluster->role == MU_ROLE_FOLLOWER && d->cluster->watch == NULL) start_load(d);
}

static void schedule_retry(mu_daemon *d) {
  if (!d->stopping) uv_timer_start(&d->cluster->retry_timer, on_retry_timer, MU_CLUSTER_RETRY_MS, 0);
}

/* --- follower watch --- */

static void on_watch(void *ud, const mu_etcd_watch_batch *b, const mu_err *err) {
  mu_daemon *d = ud;
  if (err != NULL) {
    d->cluster->watch = NULL;
    if (d->stopping || d->cluster->role != MU_ROLE_FOLLOWER) return;
    mu_warn("cluster", "watch of %s ended: %s; reloading", d->cfg.etcd_prefix, err->msg);
    schedule_retry(d);
    return;
  }
  size_t plen = strlen(d->cfg.etcd_prefix);
  for (size_t i = 0; i < b->n_events; i++) {
    const mu_etcd_event *ev = &b->events[i];
    if (ev->kv.key_len <= plen) continue;
    const char *rel = ev->kv.key + plen;
    if (audit_key(rel)) continue;
    if (ev->type == MU_ETCD_EVENT_PUT)
      mu_events_record(&d->events, rel, ev->kv.value ? ev->kv.value : "", ev->kv.value_len, 0);
    else mu_events_record(&d->events, rel, NULL, 0, 0);
  }
  mu_events_records_end(&d->events, 0);
}

static void start_watch(mu_daemon *d, int64_t from) {
  mu_etcd_watch_req req = {.key = d->cfg.etcd_prefix, .prefix = true, .start_revision = from};
  mu_err err = {0};
  if (mu_etcd_watch_start(d->cluster->etcd, &req, on_watch, d, &d->cluster->watch, &err) != 0) {
    mu_warn("cluster", "watching %s: %s; retrying", d->cfg.etcd_prefix, err.msg);
    d->cluster->watch = NULL;
    schedule_retry(d);
  }
}

static void stop_watch(mu_daemon *d) {
  if (d->cluster->watch != NULL) mu_etcd_watch_cancel(d->cluster->watch);
  d->cluster->watch = NULL;
}

/* --- takeover --- */

static void takeover(mu_daemon *d) {
  int64_t grace = d->cfg.takeover_grace_ms;
  d->cluster->takeover_until_mono = mu_mono_ms() + grace;
  d->cluster->state_ready = 1;
  mu_events_takeover(&d->events, d->cluster->term, grace);
}

/* --- loading --- */

static int on_page(void *ud, const mu_etcd_kv *kvs, size_t n, mu_err *err) {
  load_ctx *lc = ud;
  mu_daemon *d = lc->d;
  if (d->stopping || lc->gen != d->cluster->gen) return mu_err_set(err, MU_ECANCELED, "role changed during the load");
  if (lc->pages++ == 0) mu_events_snapshot_begin(&d->events); /* etcd answered: a fresh one */
  size_t plen = strlen(d->cfg.etcd_prefix);
  for (size_t i = 0; i < n; i++)
    if (kvs[i].key_len > plen && strncmp(kvs[i].key + plen, MU_BUNDLES_REL, strlen(MU_BUNDLES_REL)) != 0)
      mu_events_record(&d->events, kvs[i].key + plen, kvs[i].value ? kvs[i].value : "", kvs[i].value_len, lc->leading);
  return 0;
}

/* The bundle index is listed after the state (and before leading or watching), so jobs that
 * name a bundle resolve from the first dispatch on. */
static void on_bundles_listed(void *ud, int rc, const char *msg) {
  load_ctx *lc = ud;
  mu_daemon *d = lc->d;
  int current = !d->stopping && lc->gen == d->cluster->gen;
  int leading = lc->leading;
  int64_t revision = lc->revision;
  free(lc);
  if (!current) return;
  d->cluster->loading = 0;
  if (rc != 0) {
    mu_warn("cluster", "listing bundles in %sbundles/: %s; retrying", d->cfg.etcd_prefix, msg);
    schedule_retry(d);
    return;
  }
  if (leading) takeover(d);
  else start_watch(d, revision + 1);
}

static void on_loaded(void *ud, int64_t revision, size_t total, const mu_err *err) {
  load_ctx *lc = ud;
  mu_daemon *d = lc->d;
  int current = !d->stopping && lc->gen == d->cluster->gen;
  int pages = lc->pages;
  if (!current) {
    free(lc);
    return;
  }
  if (err != NULL) {
    free(lc);
    d->cluster->loading = 0;
    mu_warn("cluster", "loading %s: %s; retrying", d->cfg.etcd_prefix, err->msg);
    schedule_retry(d);
    return;
  }
  if (pages == 0) mu_events_snapshot_begin(&d->events); /* an empty prefix */
  mu_events_records_end(&d->events, 1);
  mu_debug("cluster", "loaded %zu keys at revision %lld", total, (long long)revision);
  lc->revision = revision;
  if (d->cluster->reload != NULL) /* still loading until it answers */
    d->cluster->reload(d, on_bundles_listed, lc);
  else on_bundles_listed(lc, 0, "");
}

static void start_load(mu_daemon *d) {
  load_ctx *lc = calloc(1, sizeof *lc);
  mu_err err = {0};
  if (lc == NULL) {
    schedule_retry(d);
    return;
  }
  lc->d = d;
  lc->gen = d->cluster->gen;
  lc->leading = d->cluster->role == MU_ROLE_LEADER;
  d->cluster->loading = 1;
  char skip[sizeof d->cfg.etcd_prefix + sizeof MU_BUNDLES_REL];
  char audit[sizeof d->cfg.etcd_prefix + sizeof MU_AUDIT_REL];
  snprintf(skip, sizeof skip, "%s%s", d->cfg.etcd_prefix, MU_BUNDLES_REL);
  snprintf(audit, sizeof audit, "%s%s", d->cfg.etcd_prefix, MU_AUDIT_REL);
  const char *skips[] = {skip, audit};
  if (mu_store_load_prefix_skips(d->cluster->store, d->cfg.etcd_prefix, skips, 2, on_page, on_loaded, lc, &err) != 0) {
    d->cluster->loading = 0;
    free(lc);
    mu_warn("cluster", "loading %s: %s; retrying", d->cfg.etcd_prefix, err.msg);
    schedule_retry(d);
  }
}

/* --- election callbacks --- */

static int is_self(const mu_daemon *d, const char *address) { return strcmp(address, d->cfg.advertise) == 0; }

static void on_elected(void *ud, int64_t term) {
  mu_daemon *d = ud;
  mu_info("cluster", "%s elected leader (term %lld); loading state", d->cfg.member_id, (long long)term);
  d->cluster->gen++;
  d->cluster->term = (uint64_t)term;
  d->cluster->role = MU_ROLE_LEADER;
  d->cluster->state_ready = 0;
  d->cluster->loading = 0;
  d->cluster->write_failing = 0; /* a new term: write health starts over */
  d->cluster->write_error[0] = '\0';
  stop_watch(d);
  snprintf(d->cluster->leader_address, sizeof d->cluster->leader_address, "%s", d->cfg.advertise);
  /* the scheduler takes the term, presence a new lease, the gateway ends streams kept through
   * an etcd outage (their unacked events must reach the rebuilt state) */
  mu_events_elected(&d->events, d->cluster->term);
  start_load(d);
}

static void on_deposed(void *ud, const char *reason) {
  mu_daemon *d = ud;
  mu_warn("cluster", "%s is no longer the leader (term %lld): %s", d->cfg.member_id, (long long)d->cluster->term,
          reason);
  d->cluster->gen++;
  d->cluster->role = MU_ROLE_FOLLOWER;
  d->cluster->state_ready = 0;
  d->cluster->loading = 0;
  const char *known = mu_leader_address(d->cluster->leader);
  /* without a known leader elsewhere (etcd unreachable) agents stay connected, and nothing is
   * scheduled or written */
  mu_events_deposed(&d->events, reason, known[0] != '\0' && !is_self(d, known) ? known : NULL);
  start_load(d);
}

static void on_leader_changed(void *ud, const char *address, int64_t term) {
  mu_daemon *d = ud;
  snprintf(d->cluster->leader_address, sizeof d->cluster->leader_address, "%s", address);
  mu_info("cluster", "leader is now %s (term %lld)", address[0] ? address : "(unknown)", (long long)term);
  if (d->cluster->role != MU_ROLE_LEADER && address[0] != '\0' && !is_self(d, address))
    mu_events_leader_elsewhere(&d->events, address);
  mu_events_leader_changed(&d->events, address, term); /* older presence is a gone leader's */
}

/* --- public --- */

int mu_cluster_start(mu_daemon *d, mu_err *err) {
  mu_cluster *ha = d->cluster;
  int64_t ttl = d->cfg.leader_ttl_ms;
  mu_etcd_options eo = {.request_timeout_ms = ttl / 3 < 300 ? 300 : ttl / 3,
                        .connect_timeout_ms = 500,
                        .tls_ca = d->cfg.etcd_ca,
                        .tls_cert = d->cfg.etcd_cert,
                        .tls_key = d->cfg.etcd_key,
                        .observe = d->meters != NULL ? mu_meters_etcd : NULL,
                        .observe_ud = d->meters};
  if (eo.request_timeout_ms > 5000) eo.request_timeout_ms = 5000;
  d->cluster->role = MU_ROLE_FOLLOWER;
  ha->active = 1;
  uv_timer_init(d->loop, &ha->retry_timer);
  ha->retry_timer.data = d;
  int rc = mu_etcd_client_new(d->loop, (const char *const *)d->cfg.etcd.items, d->cfg.etcd.n, &eo, &ha->etcd, err);
  if (rc != 0) return rc;
  mu_leader_options lo = {
      .prefix = d->cfg.etcd_prefix, .member_id = d->cfg.member_id, .address = d->cfg.advertise, .ttl_ms = ttl};
  mu_leader_callbacks cbs = {
      .on_elected = on_elected, .on_deposed = on_deposed, .on_leader_changed = on_leader_changed};
  rc = mu_leader_new(d->loop, ha->etcd, &lo, &cbs, d, &ha->leader, err);
  if (rc != 0) return rc;
  mu_store_options so = {.max_batch_ops = (size_t)d->cfg.max_task_runs + 1024, .max_batch_bytes = (size_t)256 << 20};
  rc = mu_store_new(ha->etcd, ha->leader, &so, &ha->store, err);
  if (rc != 0) return rc;
  mu_info("cluster",
          "etcd mode: %zu endpoint(s) starting with %s, prefix %s, leader TTL %lldms, presence "
          "TTL %lldms",
          d->cfg.etcd.n, d->cfg.etcd.items[0], d->cfg.etcd_prefix, (long long)ttl, (long long)d->cfg.presence_ttl_ms);
  start_load(d);
  return 0;
}

static void on_client_closed(void *ud) {
  mu_daemon *d = ud;
  d->cluster->etcd = NULL;
  if (d->cluster->stop_cb) d->cluster->stop_cb(d);
}

static void on_leader_closed(void *ud) {
  mu_daemon *d = ud;
  d->cluster->leader = NULL;
  mu_etcd_client_close(d->cluster->etcd, on_client_closed, d);
}

static void on_store_closed(void *ud) {
  mu_daemon *d = ud;
  d->cluster->store = NULL;
  if (d->cluster->leader != NULL) mu_leader_close(d->cluster->leader, on_leader_closed, d);
  else if (d->cluster->etcd != NULL) mu_etcd_client_close(d->cluster->etcd, on_client_closed, d);
  else if (d->cluster->stop_cb) d->cluster->stop_cb(d);
}

static void close_store(mu_daemon *d) {
  if (d->cluster->store != NULL) mu_store_close(d->cluster->store, on_store_closed, d);
  else on_store_closed(d);
}

void mu_cluster_stop(mu_daemon *d, void (*done_cb)(mu_daemon *d)) {
  mu_cluster *ha = d->cluster;
  ha->gen++;
  ha->stop_cb = done_cb;
  stop_watch(d);
  uv_timer_stop(&ha->retry_timer);
  uv_close((uv_handle_t *)&ha->retry_timer, NULL);
  /* what writes through the store first (presence: revoking its lease removes this member's
   * presence keys at once) */
  if (ha->before_close != NULL) ha->before_close(d, close_store);
  else close_store(d);
}

int mu_cluster_leading(const mu_daemon *d) {
  if (d->cluster->role == MU_ROLE_SINGLE) return 1;
  return d->cluster->role == MU_ROLE_LEADER && d->cluster->state_ready && !d->stopping &&
         mu_leader_is_leader(d->cluster->leader);
}

int mu_cluster_etcd_healthy(const mu_daemon *d, char *msg, size_t size) {
  if (d->cluster->role == MU_ROLE_SINGLE) {
    snprintf(msg, size, "etcd is not used (--no-etcd: state is in memory only)");
    return 0;
  }
  mu_leader_health h;
  mu_leader_get_health(d->cluster->leader, &h);
  if (!h.healthy) {
    snprintf(msg, size, "%s", h.last_err.msg[0] ? h.last_err.msg : "no answer from etcd yet");
    return 0;
  }
  /* Only the leader writes; a write that failed in an earlier term (its callback may land
   * after the step-down) must not keep a follower unhealthy and unable to redirect writes. */
  if (d->cluster->role == MU_ROLE_LEADER && d->cluster->write_failing) {
    snprintf(msg, size, "%s", d->cluster->write_error);
    return 0;
  }
  msg[0] = '\0';
  return 1;
}

int mu_cluster_redirect_unknown(mu_daemon *d, mu_rpc_call *call, const char *what) {
  if (d->cluster->role != MU_ROLE_FOLLOWER) return 0;
  const char *leader = d->cluster->leader_address;
  if (leader[0] == '\0' || is_self(d, leader)) return 0;
  mu_rpc_metadata md = {0};
  mu_rpc_metadata_add(&md, "muster-leader", leader);
  char msg[600];
  snprintf(msg, sizeof msg, "%s does not know %.200s (yet); the leader is %s", d->cfg.advertise, what, leader);
  mu_rpc_call_finish(call, MU_RPC_UNAVAILABLE, msg, &md);
  return MU_EAGAIN;
}

int mu_cluster_check_write(mu_daemon *d, mu_rpc_call *call) {
  char why[400];
  int healthy = mu_cluster_etcd_healthy(d, why, sizeof why);
  if (d->cluster->role == MU_ROLE_SINGLE) return 0;
  if (mu_cluster_leading(d) && healthy) return 0;
  if (!healthy) {
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "etcd unavailable: %s", why);
    return MU_EAGAIN;
  }
  if (d->cluster->role == MU_ROLE_LEADER) {
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "this member was just elected leader and is loading its state; retry shortly");
    return MU_EAGAIN;
  }
  const char *leader = d->cluster->leader_address;
  if (leader[0] == '\0' || is_self(d, leader)) {
    mu_pb_fail(call, MU_RPC_UNAVAILABLE, "no leader elected yet; retry shortly");
    return MU_EAGAIN;
  }
  mu_rpc_metadata md = {0};
  mu_rpc_metadata_add(&md, "muster-leader", leader);
  char msg[600];
  snprintf(msg, sizeof msg, "%s is not the leader; the leader is %s", d->cfg.advertise, leader);
  mu_rpc_call_finish(call, MU_RPC_UNAVAILABLE, msg, &md);
  return MU_EAGAIN;
}

void mu_cluster_note_write(mu_daemon *d, const mu_err *err) {
  mu_cluster *c = d->cluster;
  if (err == NULL) {
    c->write_failing = 0;
    c->write_error[0] = '\0';
    return;
  }
  c->write_failing = err->code != MU_EPERM && err->code != MU_ECANCELED;
  snprintf(c->write_error, sizeof c->write_error, "%s", err->msg);
}

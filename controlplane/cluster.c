/* musterd with etcd: the client, the election (controlplane/ha/leader.h) and the fenced store.
 * A follower loads the prefix and watches it to serve reads and redirect everything else; a
 * newly elected leader loads its state, gives agents takeover_grace to come back (silent ones'
 * running tasks then go LOST through the scheduler), and writes through persist.c. A deposed
 * leader stops scheduling and writing at once. etcd health feeds GetCluster and Health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/cluster.h"

#include "controlplane/audit_record.h"
#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/persist.h"
#include "controlplane/presence.h"
#include "controlplane/scheduler.h"
#include "controlplane/tokens.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"

#define MU_CLUSTER_RETRY_MS 500
/* Bundle chunks live under <prefix>bundles/: the state load skips them (bundles.c lists metas). */
#define MU_BUNDLES_REL "bundles/"

/* Audit records (audit.h) are not state: loads skip them, follower watches ignore them. */
static int audit_key(const char *rel) {
  return strncmp(rel, MU_AUDIT_REL, strlen(MU_AUDIT_REL)) == 0;
}

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
    if (strncmp(rel, MU_BUNDLES_REL, strlen(MU_BUNDLES_REL)) == 0) { /* bundle metas and chunks */
      mu_bundles_apply_event(d, rel, ev->kv.value, ev->kv.value_len, ev->type == MU_ETCD_EVENT_PUT);
      continue;
    }
    if (ev->type == MU_ETCD_EVENT_PUT)
      mu_persist_apply(d, rel, ev->kv.value, ev->kv.value_len, 0);
    else
      mu_persist_apply_delete(d, rel);
  }
  mu_persist_settle(d);
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
  size_t jobs = 0, running = 0, dropped = 0;
  d->cluster->takeover_until_mono = mu_mono_ms() + grace;
  mu_sched_takeover(d->sched, grace, &jobs, &running, &dropped);
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    if (a->session == NULL) a->state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
    a->persist_dirty = a->hello_msg != NULL;
    a->presence_dirty = a->session != NULL;
  }
  d->cluster->state_ready = 1;
  mu_info("cluster",
          "leading term %lld: %zu jobs loaded (%zu tasks in flight), %zu agents known, %zu "
          "interrupted submissions dropped; agents have %.1fs to reconnect",
          (long long)d->cluster->term, jobs, running, d->registry.n, dropped, (double)grace / 1000.0);
  mu_sched_kick(d->sched);
  mu_persist_kick(d);
}

/* --- loading --- */

static int on_page(void *ud, const mu_etcd_kv *kvs, size_t n, mu_err *err) {
  load_ctx *lc = ud;
  mu_daemon *d = lc->d;
  if (d->stopping || lc->gen != d->cluster->gen)
    return mu_err_set(err, MU_ECANCELED, "role changed during the load");
  if (lc->pages++ == 0) { /* etcd answered: a fresh snapshot */
    mu_persist_reset_jobs(d);
    mu_presence_reset(d);
    mu_tokens_load_begin(d);
  }
  size_t plen = strlen(d->cfg.etcd_prefix);
  for (size_t i = 0; i < n; i++)
    if (kvs[i].key_len > plen &&
        strncmp(kvs[i].key + plen, MU_BUNDLES_REL, strlen(MU_BUNDLES_REL)) != 0)
      mu_persist_apply(d, kvs[i].key + plen, kvs[i].value, kvs[i].value_len, lc->leading);
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
  if (leading)
    takeover(d);
  else
    start_watch(d, revision + 1);
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
  if (pages == 0) { /* an empty prefix */
    mu_persist_reset_jobs(d);
    mu_presence_reset(d);
    mu_tokens_load_begin(d);
  }
  mu_tokens_load_end(d);
  mu_persist_settle(d);
  mu_presence_refresh(d);
  mu_debug("cluster", "loaded %zu keys at revision %lld", total, (long long)revision);
  lc->revision = revision;
  mu_bundles_reload(d, on_bundles_listed, lc); /* still loading until it answers */
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
  if (mu_store_load_prefix_skips(d->cluster->store, d->cfg.etcd_prefix, skips, 2, on_page, on_loaded,
                                 lc, &err) != 0) {
    d->cluster->loading = 0;
    free(lc);
    mu_warn("cluster", "loading %s: %s; retrying", d->cfg.etcd_prefix, err.msg);
    schedule_retry(d);
  }
}

/* --- election callbacks --- */

static int is_self(const mu_daemon *d, const char *address) {
  return strcmp(address, d->cfg.advertise) == 0;
}

static void on_elected(void *ud, int64_t term) {
  mu_daemon *d = ud;
  mu_info("cluster", "%s elected leader (term %lld); loading state", d->cfg.member_id,
          (long long)term);
  d->cluster->gen++;
  d->cluster->term = (uint64_t)term;
  d->sched->term = (uint64_t)term;
  d->cluster->role = MU_ROLE_LEADER;
  d->cluster->state_ready = 0;
  d->cluster->loading = 0;
  d->persist->write_failing = 0; /* a new term: write health starts over */
  d->persist->write_error[0] = '\0';
  stop_watch(d);
  mu_presence_on_elected(d);
  snprintf(d->cluster->leader_address, sizeof d->cluster->leader_address, "%s", d->cfg.advertise);
  /* Streams kept through an etcd outage: their unacked events must reach the rebuilt state. */
  mu_gateway_end_all(d, NULL, "the control plane was elected again; reconnect");
  start_load(d);
}

static void on_deposed(void *ud, const char *reason) {
  mu_daemon *d = ud;
  mu_warn("cluster", "%s is no longer the leader (term %lld): %s", d->cfg.member_id,
          (long long)d->cluster->term, reason);
  d->cluster->gen++;
  d->cluster->role = MU_ROLE_FOLLOWER;
  d->cluster->state_ready = 0;
  d->cluster->loading = 0;
  d->persist->flush_in_flight = 0;
  mu_sched_pause(d->sched);
  mu_presence_on_deposed(d);
  const char *known = mu_leader_address(d->cluster->leader);
  if (known[0] != '\0' && !is_self(d, known)) mu_gateway_end_all(d, known, reason);
  /* else (etcd unreachable): agents stay connected, nothing is scheduled or written */
  start_load(d);
}

static void on_leader_changed(void *ud, const char *address, int64_t term) {
  mu_daemon *d = ud;
  snprintf(d->cluster->leader_address, sizeof d->cluster->leader_address, "%s", address);
  mu_info("cluster", "leader is now %s (term %lld)", address[0] ? address : "(unknown)",
          (long long)term);
  if (d->cluster->role != MU_ROLE_LEADER && address[0] != '\0' && !is_self(d, address))
    mu_gateway_end_all(d, address, "another member leads");
  mu_presence_refresh(d); /* presence of an older term is a gone leader's */
}

/* --- public --- */

int mu_cluster_start(mu_daemon *d, mu_err *err) {
  mu_cluster *ha = d->cluster;
  int64_t ttl = d->cfg.leader_ttl_ms;
  mu_etcd_options eo = {.request_timeout_ms = ttl / 3 < 300 ? 300 : ttl / 3,
                        .connect_timeout_ms = 500,
                        .tls_ca = d->cfg.etcd_ca,
                        .tls_cert = d->cfg.etcd_cert,
                        .tls_key = d->cfg.etcd_key};
  if (eo.request_timeout_ms > 5000) eo.request_timeout_ms = 5000;
  d->cluster->role = MU_ROLE_FOLLOWER;
  ha->active = 1;
  uv_timer_init(d->loop, &ha->retry_timer);
  ha->retry_timer.data = d;
  mu_presence_init(d);
  mu_persist_init(d);
  int rc = mu_etcd_client_new(d->loop, (const char *const *)d->cfg.etcd.items, d->cfg.etcd.n,
                              &eo, &ha->etcd, err);
  if (rc != 0) return rc;
  mu_leader_options lo = {.prefix = d->cfg.etcd_prefix,
                          .member_id = d->cfg.member_id,
                          .address = d->cfg.advertise,
                          .ttl_ms = ttl};
  mu_leader_callbacks cbs = {.on_elected = on_elected,
                             .on_deposed = on_deposed,
                             .on_leader_changed = on_leader_changed};
  if ((rc = mu_leader_new(d->loop, ha->etcd, &lo, &cbs, d, &ha->leader, err)) != 0) return rc;
  mu_store_options so = {.max_batch_ops = (size_t)d->sched->cfg.max_task_runs + 1024,
                         .max_batch_bytes = (size_t)256 << 20};
  if ((rc = mu_store_new(ha->etcd, ha->leader, &so, &ha->store, err)) != 0) return rc;
  mu_info("cluster",
          "etcd mode: %zu endpoint(s) starting with %s, prefix %s, leader TTL %lldms, presence "
          "TTL %lldms",
          d->cfg.etcd.n, d->cfg.etcd.items[0], d->cfg.etcd_prefix, (long long)ttl,
          (long long)d->cfg.presence_ttl_ms);
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
  if (d->cluster->leader != NULL)
    mu_leader_close(d->cluster->leader, on_leader_closed, d);
  else if (d->cluster->etcd != NULL)
    mu_etcd_client_close(d->cluster->etcd, on_client_closed, d);
  else if (d->cluster->stop_cb)
    d->cluster->stop_cb(d);
}

static void close_store(mu_daemon *d) {
  if (d->cluster->store != NULL)
    mu_store_close(d->cluster->store, on_store_closed, d);
  else
    on_store_closed(d);
}

void mu_cluster_stop(mu_daemon *d, void (*done_cb)(mu_daemon *d)) {
  mu_cluster *ha = d->cluster;
  ha->gen++;
  ha->stop_cb = done_cb;
  stop_watch(d);
  uv_timer_stop(&ha->retry_timer);
  uv_close((uv_handle_t *)&ha->retry_timer, NULL);
  mu_persist_close(d);
  /* presence first: revoking its lease removes this member's presence keys at once */
  mu_presence_stop(d, close_store);
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
  if (d->cluster->role == MU_ROLE_LEADER && d->persist->write_failing) {
    snprintf(msg, size, "%s", d->persist->write_error);
    return 0;
  }
  msg[0] = '\0';
  return 1;
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
    mu_pb_fail(call, MU_RPC_UNAVAILABLE,
               "this member was just elected leader and is loading its state; retry shortly");
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

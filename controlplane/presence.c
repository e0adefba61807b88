/* Agent presence in etcd: <prefix>presence/<agent-id> exists while the agent is connected to
 * the leader, attached to one lease the leader grants per term and keeps alive (TTL
 * --presence-ttl). A leader that dies takes every presence key with it when its lease expires;
 * a new leader writes presence for the agents that reconnect to it. Puts and deletes ride on
 * persist.c's fenced flush batch (one batch per flush, however many agents changed); followers
 * derive connected/disconnected from the watched keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/presence.h"

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/records.h"
#include "lib/base/log.h"

#define MU_PRESENCE_RETRY_MS 500
#define MU_PRESENCE_BUSY_MS 100

static void on_timer(uv_timer_t *t);

static void arm(mu_daemon *d, int64_t ms) {
  if (!d->stopping && d->cluster->active) uv_timer_start(&d->presence->timer, on_timer, (uint64_t)ms, 0);
}

static int64_t period_ms(const mu_daemon *d) {
  int64_t p = d->cfg.presence_ttl_ms / 3;
  return p < 300 ? 300 : p;
}

/* Every connected agent's presence must be written (a new lease), every other one's key may
 * exist (its fate is unknown): both get an op in the next flush. */
static void mark_all(mu_daemon *d) {
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    a->presence_dirty = a->session != NULL || a->presence_stored;
  }
}

static void on_revoked(void *ud, const mu_etcd_result *res, const mu_err *err) {
  (void)ud;
  (void)res;
  if (err != NULL && err->code != MU_ENOENT && err->code != MU_ECANCELED)
    mu_warn("presence", "revoking the presence lease: %s (its keys go when it expires)", err->msg);
}

static void revoke(mu_daemon *d, int64_t lease, mu_etcd_cb cb, void *ud) {
  mu_err err = {0};
  if (mu_etcd_lease_revoke(d->cluster->etcd, lease, cb, ud, &err) != 0) {
    mu_warn("presence", "revoking lease %lld: %s", (long long)lease, err.msg);
    if (cb != on_revoked) cb(ud, NULL, &err);
  }
}

static void on_granted(void *ud, const mu_etcd_result *res, const mu_err *err) {
  mu_daemon *d = ud;
  d->presence->busy = 0;
  if (d->stopping) {
    if (res != NULL) revoke(d, res->lease_id, on_revoked, NULL);
    return;
  }
  if (d->presence->gen != d->cluster->gen || d->cluster->role != MU_ROLE_LEADER) { /* a past term's */
    if (res != NULL) revoke(d, res->lease_id, on_revoked, NULL);
    if (d->cluster->role == MU_ROLE_LEADER && d->presence->lease == 0) arm(d, 0);
    return;
  }
  if (err != NULL) {
    mu_warn("presence", "granting the presence lease: %s; retrying", err->msg);
    arm(d, MU_PRESENCE_RETRY_MS);
    return;
  }
  d->presence->lease = res->lease_id;
  mu_info("presence", "presence lease %lld granted (TTL %llds) for term %llu", (long long)res->lease_id,
          (long long)res->ttl, (unsigned long long)d->cluster->term);
  mark_all(d);
  if (d->presence->granted != NULL) d->presence->granted(d); /* the next flush writes them */
  arm(d, period_ms(d));
}

static void on_refreshed(void *ud, const mu_etcd_result *res, const mu_err *err) {
  mu_daemon *d = ud;
  (void)res;
  d->presence->busy = 0;
  if (d->stopping || d->presence->gen != d->cluster->gen || d->cluster->role != MU_ROLE_LEADER) return;
  if (err == NULL) {
    arm(d, period_ms(d));
    return;
  }
  if (err->code == MU_ENOENT) {
    mu_warn("presence", "presence lease %lld is gone (%s); granting a new one", (long long)d->presence->lease,
            err->msg);
    d->presence->lease = 0;
    mark_all(d);
    arm(d, 0);
    return;
  }
  mu_warn("presence", "refreshing presence lease %lld: %s; retrying", (long long)d->presence->lease, err->msg);
  arm(d, MU_PRESENCE_RETRY_MS);
}

static void on_timer(uv_timer_t *t) {
  mu_daemon *d = t->data;
  mu_presence *p = d->presence;
  mu_cluster *ha = d->cluster;
  mu_err err = {0};
  if (d->stopping || d->cluster->role != MU_ROLE_LEADER) return;
  if (p->busy) {
    arm(d, MU_PRESENCE_BUSY_MS);
    return;
  }
  if (!mu_leader_is_leader(ha->leader)) return; /* past its deadline: on_deposed follows */
  p->gen = ha->gen;
  p->busy = 1;
  int rc;
  if (p->lease == 0) rc = mu_etcd_lease_grant(ha->etcd, (d->cfg.presence_ttl_ms + 999) / 1000, on_granted, d, &err);
  else rc = mu_etcd_lease_keepalive(ha->etcd, p->lease, on_refreshed, d, &err);
  if (rc != 0) {
    p->busy = 0;
    mu_warn("presence", "presence lease: %s; retrying", err.msg);
    arm(d, MU_PRESENCE_RETRY_MS);
  }
}

void mu_presence_init(mu_daemon *d) {
  uv_timer_init(d->loop, &d->presence->timer);
  d->presence->timer.data = d;
}

static void forget_written(mu_daemon *d) {
  for (size_t i = 0; i < d->registry.n; i++) {
    d->registry.agents[i]->presence_dirty = 0;
    d->registry.agents[i]->presence_stored = 0;
  }
}

void mu_presence_on_elected(mu_daemon *d) {
  /* Keys of earlier terms belong to their leaders' leases and go with them. */
  d->presence->lease = 0;
  forget_written(d);
  arm(d, 0);
}

void mu_presence_on_deposed(mu_daemon *d) {
  uv_timer_stop(&d->presence->timer);
  if (d->presence->lease != 0) revoke(d, d->presence->lease, on_revoked, NULL);
  d->presence->lease = 0;
  forget_written(d);
}

typedef struct stop_ctx {
  mu_daemon *d;
  void (*done)(mu_daemon *d);
} stop_ctx;

static void on_stop_revoked(void *ud, const mu_etcd_result *res, const mu_err *err) {
  stop_ctx *sc = ud;
  on_revoked(NULL, res, err);
  sc->done(sc->d);
  free(sc);
}

void mu_presence_stop(mu_daemon *d, void (*done)(mu_daemon *d)) {
  uv_timer_stop(&d->presence->timer);
  if (!uv_is_closing((uv_handle_t *)&d->presence->timer)) uv_close((uv_handle_t *)&d->presence->timer, NULL);
  int64_t lease = d->presence->lease;
  d->presence->lease = 0;
  stop_ctx *sc = lease != 0 && d->cluster->etcd != NULL ? calloc(1, sizeof *sc) : NULL;
  if (sc == NULL) {
    done(d);
    return;
  }
  sc->d = d;
  sc->done = done;
  revoke(d, lease, on_stop_revoked, sc);
}

/* --- writes (leader) --- */

static char *presence_json(const mu_daemon *d, const mu_agent *a) {
  Muster__V1__PresenceRecord rec = MUSTER__V1__PRESENCE_RECORD__INIT;
  rec.v = MU_RECORD_VERSION;
  rec.session = (char *)a->session_id;
  rec.term = (int64_t)d->cluster->term;
  rec.connected_at_ms = a->connected_at_ms;
  rec.address = (char *)d->cfg.advertise;
  rec.member_id = (char *)d->cfg.member_id;
  rec.peer = a->peer ? a->peer : "";
  char *text = NULL;
  mu_record_encode(&rec.base, &text, NULL);
  return text;
}

int mu_presence_add_ops(mu_daemon *d, mu_store_batch *b, mu_err *err) {
  int64_t lease = d->presence->lease;
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    if (!a->presence_dirty) continue;
    if (a->session != NULL && lease == 0) continue; /* waits for the lease */
    char key[400];
    snprintf(key, sizeof key, "%spresence/%s", d->cfg.etcd_prefix, a->id);
    int rc = 0;
    if (a->session != NULL) {
      char *v = presence_json(d, a);
      if (v == NULL) return mu_err_set(err, MU_ENOMEM, "encoding presence of agent %s", a->id);
      rc = mu_store_batch_put_lease(b, key, v, 0, lease, err);
      free(v);
      if (rc == 0) a->presence_stored = 1;
    } else if (a->presence_stored) {
      rc = mu_store_batch_delete(b, key, false, err);
      if (rc == 0) a->presence_stored = 0;
    }
    if (rc != 0) return rc;
    a->presence_dirty = 0;
  }
  return 0;
}

void mu_presence_write_failed(mu_daemon *d, const mu_err *err) {
  /* What the failed batch did is unknown: every key may or may not be there. */
  for (size_t i = 0; i < d->registry.n; i++) {
    mu_agent *a = d->registry.agents[i];
    a->presence_stored = 1;
    a->presence_dirty = 1;
  }
  if (err != NULL && err->code == MU_ENOENT && d->presence->lease != 0 && d->cluster->role == MU_ROLE_LEADER) {
    mu_warn("presence", "etcd does not know presence lease %lld any more; granting a new one",
            (long long)d->presence->lease);
    d->presence->lease = 0;
    uv_timer_stop(&d->presence->timer);
    arm(d, 0);
  }
}

/* --- reads (followers) --- */

void mu_presence_refresh_agent(mu_daemon *d, mu_agent *a) {
  if (d->cluster->role != MU_ROLE_FOLLOWER || a->session != NULL) return;
  /* A key of an older term is a dead or deposed leader's, waiting for its lease to expire. */
  uint64_t known = (uint64_t)mu_leader_known_term(d->cluster->leader);
  int connected = a->presence_term > 0 && (known == 0 || a->presence_term >= known);
  a->state = connected ? MUSTER__V1__AGENT_STATE__AGENT_CONNECTED : MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
}

void mu_presence_refresh(mu_daemon *d) {
  for (size_t i = 0; i < d->registry.n; i++) mu_presence_refresh_agent(d, d->registry.agents[i]);
}

void mu_presence_reset(mu_daemon *d) {
  for (size_t i = 0; i < d->registry.n; i++) d->registry.agents[i]->presence_term = 0;
}

void mu_presence_apply(mu_daemon *d, const char *id, const char *value, size_t len) {
  const char *prefix = d->cfg.etcd_prefix;
  if (id[0] == '\0' || strchr(id, '/') != NULL || strlen(id) > 128) {
    mu_debug("presence", "%spresence/%s: not a musterd key; ignored", prefix, id);
    return;
  }
  mu_agent *a = mu_registry_find(&d->registry, id);
  if (value == NULL) {
    if (a != NULL) {
      a->presence_term = 0;
      mu_presence_refresh_agent(d, a);
    }
    return;
  }
  Muster__V1__PresenceRecord *rec = NULL;
  mu_err err = {0};
  if (mu_record_decode(&muster__v1__presence_record__descriptor, value, len, (ProtobufCMessage **)&rec, &err) != 0 ||
      rec->term <= 0 || rec->session[0] == '\0') {
    mu_warn("presence", "%spresence/%s: %s; skipped", prefix, id,
            rec == NULL ? err.msg : "not a presence record (needs session and a positive term)");
    if (rec != NULL) protobuf_c_message_free_unpacked(&rec->base, NULL);
    return;
  }
  if (d->cluster->role != MU_ROLE_FOLLOWER) { /* a leader's live streams know better */
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return;
  }
  if (a == NULL && mu_registry_upsert(&d->registry, id, &a, &err) != 0) {
    mu_warn("presence", "%spresence/%s: %s; skipped", prefix, id, err.msg);
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return;
  }
  if (a->session == NULL) {
    a->presence_term = (uint64_t)rec->term;
    a->connected_at_ms = rec->connected_at_ms;
    snprintf(a->session_id, sizeof a->session_id, "%s", rec->session);
    mu_presence_refresh_agent(d, a);
  }
  protobuf_c_message_free_unpacked(&rec->base, NULL);
}

void mu_presence_on_leader_changed(mu_daemon *d) { mu_presence_refresh(d); }

/* Unit tests of presence.c against a real etcd (integration/etcd_harness, as persist_test): a
 * leader grants one lease per term and writes presence/<agent> under it in persist's flush for
 * a connected agent only; a disconnect deletes the key; a deposed leader revokes the lease and
 * every key goes with it; a follower turns the keys it watches into connected/disconnected and
 * skips a value that is not a presence record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/ha/ha_testenv.h"
#include "controlplane/persist.h"
#include "controlplane/presence.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"
#include "controlplane/wiring.h"

static void kick(mu_daemon *d) { mu_persist_kick(d); }

/* A leading member's daemon on the test loop, wired as musterd wires it (persist's flush
 * carries presence), with the member's etcd client for the lease calls. */
static void daemon_start(mu_daemon *d, ha_env *e, ha_member *m, const char *prefix, mu_role role) {
  mu_err err = {0};
  memset(d, 0, sizeof *d);
  mu_server_config_init(&d->cfg);
  snprintf(d->cfg.etcd_prefix, sizeof d->cfg.etcd_prefix, "%s", prefix);
  d->cfg.presence_ttl_ms = 3000;
  d->loop = &e->loop;
  mu_registry_init(&d->registry, 100);
  if (mu_wiring_new(d, 0, &err) != 0) fail_msg("wiring: %s", err.msg);
  d->cluster->role = role;
  d->cluster->state_ready = 1;
  d->cluster->active = 1;
  d->cluster->gen = 1;
  d->cluster->etcd = m->c;
  d->cluster->leader = m->l;
  d->cluster->term = (uint64_t)m->term;
  if (mu_store_new(m->c, m->l, NULL, &d->cluster->store, &err) != 0) fail_msg("store_new: %s", err.msg);
  d->presence->granted = kick; /* as wiring.c: a granted lease is written in the next flush */
  mu_presence_init(d);
  mu_persist_init(d);
  mu_wiring_start_scheduler(d);
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static void daemon_stop(mu_daemon *d, ha_env *e) {
  bool closed = false;
  d->stopping = 1;
  for (size_t i = 0; i < d->registry.n; i++) d->registry.agents[i]->session = NULL;
  mu_sched_close(d->sched);
  mu_persist_close(d);
  uv_close((uv_handle_t *)&d->presence->timer, NULL);
  mu_store_close(d->cluster->store, on_closed, &closed);
  ha_run_until(e, &closed, 5000);
  mu_wiring_free(d);
  mu_registry_free(&d->registry);
  mu_server_config_free(&d->cfg);
}

static bool lease_and_flushed(void *ud) {
  mu_daemon *d = ud;
  return d->presence->lease != 0 && !d->persist->flush_in_flight && !d->persist->flush_armed;
}

static bool flushed(void *ud) {
  mu_daemon *d = ud;
  return !d->persist->flush_in_flight && !d->persist->flush_armed;
}

/* The presence keys under prefix now (side client), as a count; *ret_kv gets a copy of the
 * first one's value and its lease when wanted. */
static size_t presence_keys(ha_env *e, const char *prefix, int64_t *ret_lease, char *ret_value, size_t size) {
  char key[128];
  snprintf(key, sizeof key, "%spresence/", prefix);
  mu_etcd_result *res = ha_side_range(e, key, true);
  size_t n = res->n_kvs;
  if (n > 0 && ret_lease != NULL) *ret_lease = res->kvs[0].lease;
  if (n > 0 && ret_value != NULL) snprintf(ret_value, size, "%.*s", (int)res->kvs[0].value_len, res->kvs[0].value);
  mu_etcd_result_free(res);
  return n;
}

/* A stand-in for a live stream: presence only asks whether there is one. */
static int fake_stream;

static mu_agent *agent(mu_daemon *d, const char *id, int connected) {
  mu_agent *a = NULL;
  mu_err err = {0};
  assert_int_equal(mu_registry_upsert(&d->registry, id, &a, &err), 0);
  a->session = connected ? (mu_agent_session *)&fake_stream : NULL;
  a->connected_at_ms = 1796200000000LL;
  snprintf(a->session_id, sizeof a->session_id, "%s-1796200000000", id);
  return a;
}

static void leader_writes_under_its_lease_and_revokes_it(void **state) {
  ha_env *e = ha_env_new(*state, "/pr1/");
  ha_member m;
  ha_member_start(e, &m, "solo");
  ha_run_until(e, &m.leading, 5000);
  mu_daemon d;
  daemon_start(&d, e, &m, "/pr1/", MU_ROLE_LEADER);
  mu_agent *a = agent(&d, "web-1", 1);
  agent(&d, "web-2", 0);

  /* elected: a lease for the term, then the connected agent's key in the next flush */
  mu_presence_on_elected(&d);
  assert_true(ha_run_while(e, lease_and_flushed, &d, 5000));
  ha_run_for(e, 50);
  assert_true(ha_run_while(e, flushed, &d, 5000));
  int64_t lease = 0;
  char value[1024] = "";
  assert_int_equal(presence_keys(e, "/pr1/", &lease, value, sizeof value), 1);
  assert_int_equal(lease, d.presence->lease);
  Muster__V1__PresenceRecord *rec = NULL;
  mu_err err = {0};
  assert_int_equal(
      mu_record_decode(&muster__v1__presence_record__descriptor, value, strlen(value), (ProtobufCMessage **)&rec, &err),
      0);
  assert_string_equal(rec->session, "web-1-1796200000000");
  assert_int_equal(rec->term, m.term);
  protobuf_c_message_free_unpacked(&rec->base, NULL);
  assert_true(a->presence_stored);

  /* the agent's stream ends: its key goes in the next flush */
  a->session = NULL;
  a->presence_dirty = 1;
  mu_persist_kick(&d);
  ha_run_for(e, 50);
  assert_true(ha_run_while(e, flushed, &d, 5000));
  assert_int_equal(presence_keys(e, "/pr1/", NULL, NULL, 0), 0);
  assert_false(a->presence_stored);

  /* back, then deposed: revoking the lease takes the key at once, not after the TTL */
  a->session = (mu_agent_session *)&fake_stream;
  a->presence_dirty = 1;
  mu_persist_kick(&d);
  ha_run_for(e, 50);
  assert_true(ha_run_while(e, flushed, &d, 5000));
  assert_int_equal(presence_keys(e, "/pr1/", NULL, NULL, 0), 1);
  mu_presence_on_deposed(&d);
  assert_int_equal(d.presence->lease, 0);
  assert_false(a->presence_stored);
  ha_run_for(e, 300);
  assert_int_equal(presence_keys(e, "/pr1/", NULL, NULL, 0), 0);

  daemon_stop(&d, e);
  ha_member_stop(&m);
  ha_env_free(e);
}

static void follower_derives_connected_from_the_keys(void **state) {
  ha_env *e = ha_env_new(*state, "/pr2/");
  ha_member m;
  ha_member_start(e, &m, "solo");
  ha_run_until(e, &m.leading, 5000);
  mu_daemon d;
  daemon_start(&d, e, &m, "/pr2/", MU_ROLE_FOLLOWER);
  Muster__V1__PresenceRecord rec = MUSTER__V1__PRESENCE_RECORD__INIT;
  rec.v = MU_RECORD_VERSION;
  rec.session = "db-1-5";
  rec.term = m.term;
  rec.connected_at_ms = 5;
  char *text = NULL;
  assert_int_equal(mu_record_encode(&rec.base, &text, NULL), 0);

  /* a key of the current term: connected (the agent is learnt from it) */
  mu_presence_apply(&d, "db-1", text, strlen(text));
  mu_agent *a = mu_registry_find(&d.registry, "db-1");
  assert_non_null(a);
  assert_int_equal(a->state, MUSTER__V1__AGENT_STATE__AGENT_CONNECTED);
  assert_string_equal(a->session_id, "db-1-5");
  /* deleted: disconnected */
  mu_presence_apply(&d, "db-1", NULL, 0);
  assert_int_equal(a->state, MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED);
  /* a key left by an older term's leader (waiting for its lease to expire) is not presence */
  free(text);
  rec.term = m.term - 1;
  assert_int_equal(mu_record_encode(&rec.base, &text, NULL), 0);
  mu_presence_apply(&d, "db-1", text, strlen(text));
  assert_int_equal(a->state, MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED);
  free(text);
  /* not a presence record, or not an agent id: skipped, nothing learnt */
  mu_presence_apply(&d, "db-2", "{\"v\":1}", 7);
  mu_presence_apply(&d, "db-3", "not json", 8);
  mu_presence_apply(&d, "a/b", "{}", 2);
  assert_null(mu_registry_find(&d.registry, "db-2"));
  assert_null(mu_registry_find(&d.registry, "db-3"));
  assert_null(mu_registry_find(&d.registry, "a/b"));

  daemon_stop(&d, e);
  ha_member_stop(&m);
  ha_env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(leader_writes_under_its_lease_and_revokes_it),
      cmocka_unit_test(follower_derives_connected_from_the_keys),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}

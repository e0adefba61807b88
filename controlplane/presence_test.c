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

#include "controlplane/daemon.h"
#include "controlplane/daemon_testkit.h"
#include "controlplane/ha/ha_testenv.h"
#include "controlplane/persist.h"
#include "controlplane/presence.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"

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
  mu_etcd_result *res = mu_test_ha_side_range(e, key, true);
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
  ha_env *e = mu_test_ha_env_new(*state, "/pr1/");
  ha_member m;
  mu_test_ha_member_start(e, &m, "solo");
  mu_test_ha_run_until(e, &m.leading, 5000);
  mu_daemon d;
  mu_tk_daemon_start(&d, e, &m, "/pr1/", MU_ROLE_LEADER);
  mu_agent *a = agent(&d, "web-1", 1);
  agent(&d, "web-2", 0);

  /* elected: a lease for the term, then the connected agent's key in the next flush */
  mu_presence_on_elected(&d);
  assert_true(mu_test_ha_run_while(e, lease_and_flushed, &d, 5000));
  mu_test_ha_run_for(e, 50);
  assert_true(mu_test_ha_run_while(e, flushed, &d, 5000));
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
  mu_test_ha_run_for(e, 50);
  assert_true(mu_test_ha_run_while(e, flushed, &d, 5000));
  assert_int_equal(presence_keys(e, "/pr1/", NULL, NULL, 0), 0);
  assert_false(a->presence_stored);

  /* back, then deposed: revoking the lease takes the key at once, not after the TTL */
  a->session = (mu_agent_session *)&fake_stream;
  a->presence_dirty = 1;
  mu_persist_kick(&d);
  mu_test_ha_run_for(e, 50);
  assert_true(mu_test_ha_run_while(e, flushed, &d, 5000));
  assert_int_equal(presence_keys(e, "/pr1/", NULL, NULL, 0), 1);
  mu_presence_on_deposed(&d);
  assert_int_equal(d.presence->lease, 0);
  assert_false(a->presence_stored);
  mu_test_ha_run_for(e, 300);
  assert_int_equal(presence_keys(e, "/pr1/", NULL, NULL, 0), 0);

  mu_tk_daemon_stop(&d, e);
  mu_test_ha_member_stop(&m);
  mu_test_ha_env_free(e);
}

static void follower_derives_connected_from_the_keys(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/pr2/");
  ha_member m;
  mu_test_ha_member_start(e, &m, "solo");
  mu_test_ha_run_until(e, &m.leading, 5000);
  mu_daemon d;
  mu_tk_daemon_start(&d, e, &m, "/pr2/", MU_ROLE_FOLLOWER);
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

  mu_tk_daemon_stop(&d, e);
  mu_test_ha_member_stop(&m);
  mu_test_ha_env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(leader_writes_under_its_lease_and_revokes_it),
      cmocka_unit_test(follower_derives_connected_from_the_keys),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}

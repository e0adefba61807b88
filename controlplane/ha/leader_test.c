/* Leader election against a real etcd: two members on one loop elect exactly one leader whose
 * term is the key's create revision; resigning hands over at once; a leader cut off from etcd
 * (etcd frozen or down) steps down by its own deadline; a deleted key re-elects; and no two
 * members ever act as leader at once from their callbacks' point of view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/ha/ha_testenv.h"
#include "controlplane/ha/leader.h"
#include "lib/base/clock.h"

typedef struct pair {
  ha_member a, b;
} pair;

static bool has_leader(void *ud) {
  pair *p = ud;
  return (p->a.l != NULL && p->a.leading) || (p->b.l != NULL && p->b.leading);
}

static bool both_know(void *ud) {
  pair *p = ud;
  ha_member *ms[] = {&p->a, &p->b};
  ha_member *lead = mu_test_ha_leader_of(ms, 2);
  if (lead == NULL) return false;
  ha_member *other = lead == &p->a ? &p->b : &p->a;
  return other->seen_term == lead->term;
}

static void start_pair(ha_env *e, pair *p) {
  mu_test_ha_member_start(e, &p->a, "a");
  mu_test_ha_member_start(e, &p->b, "b");
  if (!mu_test_ha_run_while(e, both_know, p, 5000)) fail_msg("no leader known to both within 5 s");
}

static void test_two_members_one_leader(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/l1/");
  pair p;
  start_pair(e, &p);
  ha_member *ms[] = {&p.a, &p.b};
  ha_member *lead = mu_test_ha_leader_of(ms, 2);
  ha_member *other = lead == &p.a ? &p.b : &p.a;
  assert_false(other->leading);
  assert_int_equal(lead->elected, 1);
  assert_int_equal(other->elected, 0);

  /* Term is the leader key's create revision; the value names the leader. */
  mu_etcd_result *r = mu_test_ha_side_range(e, e->leader_key, false);
  assert_int_equal(r->n_kvs, 1);
  assert_int_equal(r->kvs[0].create_revision, lead->term);
  assert_non_null(strstr(r->kvs[0].value, lead->name));
  assert_non_null(strstr(r->kvs[0].value, lead->address));
  assert_true(r->kvs[0].lease != 0);
  mu_etcd_result_free(r);

  assert_true(mu_leader_is_leader(lead->l));
  assert_false(mu_leader_is_leader(other->l));
  assert_int_equal(mu_leader_term(lead->l), lead->term);
  assert_int_equal(mu_leader_term(other->l), 0);
  assert_string_equal(mu_leader_address(other->l), lead->address);
  assert_string_equal(mu_leader_address(lead->l), lead->address);
  assert_string_equal(other->seen_address, lead->address);
  assert_string_equal(mu_leader_key(lead->l), e->leader_key);

  /* Keepalives hold the lease well past the TTL. */
  mu_test_ha_run_for(e, 3 * HA_TTL_MS);
  assert_true(lead->leading);
  assert_int_equal(lead->deposed, 0);
  assert_false(other->leading);
  mu_leader_health hl;
  mu_leader_get_health(lead->l, &hl);
  assert_true(hl.healthy);
  assert_true(hl.last_ok_mono_ms > 0);

  mu_test_ha_member_stop(&p.a);
  mu_test_ha_member_stop(&p.b);
  r = mu_test_ha_side_range(e, e->leader_key, false);
  assert_int_equal(r->n_kvs, 0); /* resigning revoked the lease */
  mu_etcd_result_free(r);
  mu_test_ha_env_free(e);
}

static void test_resign_hands_over(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/l2/");
  pair p;
  start_pair(e, &p);
  ha_member *ms[] = {&p.a, &p.b};
  ha_member *lead = mu_test_ha_leader_of(ms, 2);
  ha_member *other = lead == &p.a ? &p.b : &p.a;
  int64_t old_term = lead->term;

  int64_t t0 = mu_mono_ms();
  mu_test_ha_member_stop(lead);
  mu_test_ha_run_until(e, &other->leading, HA_TTL_MS + 1000);
  /* The revoke frees the key at once: no waiting out the TTL. */
  assert_true(mu_mono_ms() - t0 < HA_TTL_MS);
  assert_true(other->term > old_term);
  assert_int_equal(other->seen_term, other->term);
  assert_string_equal(mu_leader_address(other->l), other->address);

  /* A new member joining follows the leader without disturbing it. */
  ha_member c;
  mu_test_ha_member_start(e, &c, "c");
  int64_t until = mu_mono_ms() + 3000;
  while (c.seen_term != other->term && mu_mono_ms() < until) mu_test_ha_run_for(e, 50);
  assert_int_equal(c.seen_term, other->term);
  assert_string_equal(c.seen_address, other->address);
  assert_int_equal(c.elected, 0);
  assert_int_equal(other->deposed, 0);
  mu_test_ha_member_stop(&c);
  mu_test_ha_member_stop(other);
  mu_test_ha_env_free(e);
}

/* A frozen etcd (SIGSTOP) answers nothing: the leader must step down by its local deadline,
 * without a word from etcd, and nobody else may lead until the lease is really gone. */
static void test_frozen_etcd_deposes_by_deadline(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/l3/");
  pair p;
  start_pair(e, &p);
  ha_member *ms[] = {&p.a, &p.b};
  ha_member *lead = mu_test_ha_leader_of(ms, 2);
  ha_member *other = lead == &p.a ? &p.b : &p.a;
  int64_t old_term = lead->term;
  mu_err err = {0};

  mu_test_ha_run_for(e, 200);
  int64_t t0 = mu_mono_ms();
  assert_int_equal(mu_etcd_harness_pause(e->h, &err), 0);
  int64_t until = t0 + HA_TTL_MS + 1500;
  while (lead->leading && mu_mono_ms() < until) mu_test_ha_run_for(e, 20);
  assert_false(lead->leading);
  assert_int_equal(lead->deposed, 1);
  /* Within one TTL of the freeze (the last confirmed refresh was before it). */
  assert_true(lead->deposed_at - t0 <= HA_TTL_MS + 100);
  assert_non_null(strstr(lead->reason, "no lease refresh"));
  assert_false(mu_leader_is_leader(lead->l));
  assert_int_equal(mu_leader_term(lead->l), 0);
  mu_leader_health h;
  mu_leader_get_health(lead->l, &h);
  assert_false(h.healthy);
  assert_int_not_equal(h.last_err.code, 0);
  assert_false(other->leading);

  assert_int_equal(mu_etcd_harness_resume(e->h, &err), 0);
  if (!mu_test_ha_run_while(e, has_leader, &p, 4 * HA_TTL_MS)) fail_msg("no leader after resume");
  ha_member *now = mu_test_ha_leader_of(ms, 2);
  assert_true(now->term > old_term);
  mu_test_ha_run_for(e, 300);
  assert_int_equal(e->max_leading, 1);
  mu_etcd_result *r = mu_test_ha_side_range(e, e->leader_key, false);
  assert_int_equal(r->n_kvs, 1);
  assert_int_equal(r->kvs[0].create_revision, now->term);
  mu_etcd_result_free(r);
  mu_test_ha_member_stop(&p.a);
  mu_test_ha_member_stop(&p.b);
  mu_test_ha_env_free(e);
}

/* etcd down for longer than the TTL, then back: the leader steps down on its deadline, and
 * after the restart exactly one member leads again. */
static void test_etcd_restart(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/l4/");
  pair p;
  start_pair(e, &p);
  ha_member *ms[] = {&p.a, &p.b};
  ha_member *lead = mu_test_ha_leader_of(ms, 2);
  int64_t old_term = lead->term;
  mu_err err = {0};

  assert_int_equal(mu_etcd_harness_stop(e->h, true, &err), 0);
  int64_t t0 = mu_mono_ms();
  while (lead->leading && mu_mono_ms() < t0 + HA_TTL_MS + 1500) mu_test_ha_run_for(e, 20);
  assert_false(lead->leading);
  assert_true(lead->deposed_at - t0 <= HA_TTL_MS + 100);
  mu_test_ha_run_for(e, 300);
  assert_false(has_leader(&p)); /* nobody can win without etcd */
  mu_leader_health h;
  for (int i = 0; i < 2; i++) { /* the follower's periodic probe notices too */
    mu_leader_get_health(ms[i]->l, &h);
    assert_false(h.healthy);
    assert_int_equal(h.last_err.code, MU_EAGAIN);
  }
  assert_string_equal(mu_leader_address(lead->l), ""); /* it no longer knows a leader */

  assert_int_equal(mu_etcd_harness_restart(e->h, &err), 0);
  if (!mu_test_ha_run_while(e, has_leader, &p, 4 * HA_TTL_MS + 2000)) fail_msg("no leader after restart");
  ha_member *now = mu_test_ha_leader_of(ms, 2);
  assert_true(now->term > old_term);
  ha_member *other = now == &p.a ? &p.b : &p.a;
  int64_t until = mu_mono_ms() + 3000;
  while (other->seen_term != now->term && mu_mono_ms() < until) mu_test_ha_run_for(e, 50);
  assert_int_equal(other->seen_term, now->term);
  mu_test_ha_run_for(e, 2 * HA_TTL_MS); /* stays stable */
  assert_true(now->leading);
  assert_false(other->leading);
  assert_int_equal(e->max_leading, 1);
  mu_test_ha_member_stop(&p.a);
  mu_test_ha_member_stop(&p.b);
  mu_test_ha_env_free(e);
}

/* Someone deletes the leader key (an operator, a bad tool): the leader stops at once and an
 * election follows. */
static void test_key_deleted(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/l5/");
  pair p;
  start_pair(e, &p);
  ha_member *ms[] = {&p.a, &p.b};
  ha_member *lead = mu_test_ha_leader_of(ms, 2);
  int64_t old_term = lead->term;
  e->allow_overlap = true; /* see ha_testenv.h: the old term is fenced, not yet told */
  mu_test_ha_side_delete(e, e->leader_key, false);
  int64_t until = mu_mono_ms() + 3000;
  while (lead->deposed == 0 && mu_mono_ms() < until) mu_test_ha_run_for(e, 10);
  assert_int_equal(lead->deposed, 1);
  assert_non_null(strstr(lead->reason, "deleted"));
  if (!mu_test_ha_run_while(e, has_leader, &p, 3000)) fail_msg("no leader after the key was deleted");
  assert_true(mu_test_ha_leader_of(ms, 2)->term > old_term);
  assert_true(e->max_leading <= 2);
  mu_test_ha_run_for(e, 200);
  assert_int_equal(e->leading, 1); /* the overlap, if any, has ended */
  mu_test_ha_member_stop(&p.a);
  mu_test_ha_member_stop(&p.b);
  mu_test_ha_env_free(e);
}

static void test_bad_options(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/l6/");
  mu_err err = {0};
  mu_leader *l = NULL;
  mu_etcd_client *c = NULL;
  const char *ep = mu_etcd_harness_endpoint(e->h);
  assert_int_equal(mu_etcd_client_new(&e->loop, &ep, 1, NULL, &c, &err), 0);
  assert_int_equal(mu_leader_new(&e->loop, c, &(mu_leader_options){.address = "x:1"}, NULL, NULL, &l, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "member_id"));
  assert_int_equal(mu_leader_new(&e->loop, c, &(mu_leader_options){.member_id = "m", .address = "x:1", .ttl_ms = 500},
                                 NULL, NULL, &l, &err),
                   MU_EINVAL);
  assert_non_null(strstr(err.msg, "500 ms"));
  mu_etcd_client_close(c, NULL, NULL);
  mu_test_ha_run_for(e, 50);
  mu_test_ha_env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_two_members_one_leader),
      cmocka_unit_test(test_resign_hands_over),
      cmocka_unit_test(test_key_deleted),
      cmocka_unit_test(test_frozen_etcd_deposes_by_deadline),
      cmocka_unit_test(test_etcd_restart),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}

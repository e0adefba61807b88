/* Test support for controlplane/ha: one libuv loop with election members (each with its own etcd
 * client), a "side" loop with its own client to change etcd behind the members' backs, and a
 * check that no two members ever act as leader at once from their callbacks' point of view. */
#ifndef MU_HA_TESTENV_H
#define MU_HA_TESTENV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "controlplane/ha/leader.h"
#include "integration/etcd_harness.h"
#include "lib/etcd/etcd.h"

#define HA_TTL_MS 1500

typedef struct ha_env ha_env;

typedef struct ha_member {
  ha_env *e;
  char name[32];
  char address[64];
  mu_etcd_client *c;
  mu_leader *l;
  bool leading; /* between on_elected and on_deposed */
  int elected, deposed, changed;
  int64_t term;                   /* last term won */
  int64_t elected_at, deposed_at; /* mu_mono_ms() */
  char reason[512];
  char seen_address[64]; /* last on_leader_changed */
  int64_t seen_term;
} ha_member;

struct ha_env {
  uv_loop_t loop;
  uv_timer_t tick;
  mu_etcd_harness *h;
  char prefix[64];
  char leader_key[80];
  int leading;     /* members in "leading" state */
  int max_leading; /* highest ever seen: must stay <= 1 */
  /* A test that deletes the leader key sets this: the other member may win the new election
   * before the old leader's own watch has delivered the delete (its writes are fenced out by
   * then: the term's key is gone), so two local "leading" flags may overlap briefly. */
  bool allow_overlap;
  uv_loop_t side_loop;
  uv_timer_t side_tick;
  mu_etcd_client *side; /* client on side_loop */
};

/* prefix: the election's key prefix for this test (copied), e.g. "/t1/". */
ha_env *mu_test_ha_env_new(mu_etcd_harness *h, const char *prefix);
void mu_test_ha_env_free(ha_env *e);

/* Runs the member loop until *flag or timeout; fails the test on timeout. */
void mu_test_ha_run_until(ha_env *e, const bool *flag, int64_t timeout_ms);
/* Runs the member loop until cond(ud) or timeout; returns cond's final value. */
bool mu_test_ha_run_while(ha_env *e, bool (*cond)(void *ud), void *ud, int64_t timeout_ms);
/* Runs the member loop for ms. */
void mu_test_ha_run_for(ha_env *e, int64_t ms);

/* A member campaigning with TTL HA_TTL_MS and a client with a 1 s request timeout. */
void mu_test_ha_member_start(ha_env *e, ha_member *m, const char *name);
/* Closes the member's election (resigning) and then its client. */
void mu_test_ha_member_stop(ha_member *m);
/* The member that leads now, or NULL. */
ha_member *mu_test_ha_leader_of(ha_member *const *ms, size_t n);

/* Synchronous operations on the side loop; fail the test on error. Result freed by caller. */
mu_etcd_result *mu_test_ha_side_range(ha_env *e, const char *key, bool prefix);
int64_t mu_test_ha_side_put(ha_env *e, const char *key, const char *value);
void mu_test_ha_side_delete(ha_env *e, const char *key, bool prefix);

#endif

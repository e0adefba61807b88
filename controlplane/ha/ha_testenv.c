/* Test support for controlplane/ha: loops, election members with callback bookkeeping (and the
 * one-leader-at-a-time check), and blocking etcd calls on a side loop. */
#include "controlplane/ha/ha_testenv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/base/clock.h"

static void on_tick(uv_timer_t *t) { (void)t; }

static mu_etcd_client *client_on(ha_env *e, uv_loop_t *loop) {
  mu_err err = {0};
  mu_etcd_client *c = NULL;
  const char *ep = mu_etcd_harness_endpoint(e->h);
  mu_etcd_options o = {.request_timeout_ms = 1000, .watch_retry_max_ms = 200};
  if (mu_etcd_client_new(loop, &ep, 1, &o, &c, &err) != 0) fail_msg("client: %s", err.msg);
  return c;
}

ha_env *mu_test_ha_env_new(mu_etcd_harness *h, const char *prefix) {
  ha_env *e = calloc(1, sizeof(*e));
  assert_non_null(e);
  e->h = h;
  snprintf(e->prefix, sizeof(e->prefix), "%s", prefix);
  snprintf(e->leader_key, sizeof(e->leader_key), "%sleader", prefix);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  uv_timer_init(&e->loop, &e->tick);
  uv_timer_start(&e->tick, on_tick, 20, 20);
  assert_int_equal(uv_loop_init(&e->side_loop), 0);
  uv_timer_init(&e->side_loop, &e->side_tick);
  uv_timer_start(&e->side_tick, on_tick, 20, 20);
  e->side = client_on(e, &e->side_loop);
  return e;
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static void drain(uv_loop_t *loop, uv_timer_t *tick) {
  uv_close((uv_handle_t *)tick, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

void mu_test_ha_env_free(ha_env *e) {
  bool closed = false;
  mu_etcd_client_close(e->side, on_closed, &closed);
  while (!closed) uv_run(&e->side_loop, UV_RUN_ONCE);
  drain(&e->side_loop, &e->side_tick);
  drain(&e->loop, &e->tick);
  assert_true(e->max_leading <= 1);
  free(e);
}

void mu_test_ha_run_until(ha_env *e, const bool *flag, int64_t timeout_ms) {
  int64_t deadline = mu_mono_ms() + timeout_ms;
  while (!*flag && mu_mono_ms() < deadline) uv_run(&e->loop, UV_RUN_ONCE);
  assert_true(*flag);
}

bool mu_test_ha_run_while(ha_env *e, bool (*cond)(void *ud), void *ud, int64_t timeout_ms) {
  int64_t deadline = mu_mono_ms() + timeout_ms;
  while (!cond(ud) && mu_mono_ms() < deadline) uv_run(&e->loop, UV_RUN_ONCE);
  return cond(ud);
}

void mu_test_ha_run_for(ha_env *e, int64_t ms) {
  int64_t until = mu_mono_ms() + ms;
  while (mu_mono_ms() < until) uv_run(&e->loop, UV_RUN_ONCE);
}

static void on_elected(void *ud, int64_t term) {
  ha_member *m = ud;
  assert_false(m->leading);
  m->leading = true;
  m->elected++;
  m->term = term;
  m->elected_at = mu_mono_ms();
  m->e->leading++;
  if (m->e->leading > m->e->max_leading) m->e->max_leading = m->e->leading;
  if (m->e->leading > 1 && !m->e->allow_overlap)
    fail_msg("%s elected (term %lld) while another leads", m->name, (long long)term);
}

static void on_deposed(void *ud, const char *reason) {
  ha_member *m = ud;
  assert_true(m->leading);
  m->leading = false;
  m->deposed++;
  m->deposed_at = mu_mono_ms();
  snprintf(m->reason, sizeof(m->reason), "%s", reason);
  m->e->leading--;
}

static void on_changed(void *ud, const char *address, int64_t term) {
  ha_member *m = ud;
  m->changed++;
  snprintf(m->seen_address, sizeof(m->seen_address), "%s", address);
  m->seen_term = term;
}

void mu_test_ha_member_start(ha_env *e, ha_member *m, const char *name) {
  mu_err err = {0};
  memset(m, 0, sizeof(*m));
  m->e = e;
  snprintf(m->name, sizeof(m->name), "%s", name);
  snprintf(m->address, sizeof(m->address), "%s.test:7070", name);
  m->c = client_on(e, &e->loop);
  mu_leader_options o = {
      .prefix = e->prefix, .member_id = m->name, .address = m->address, .ttl_ms = HA_TTL_MS, .retry_max_ms = 500};
  mu_leader_callbacks cbs = {.on_elected = on_elected, .on_deposed = on_deposed, .on_leader_changed = on_changed};
  if (mu_leader_new(&e->loop, m->c, &o, &cbs, m, &m->l, &err) != 0) {
    fail_msg("leader_new: %s", err.msg);
  }
}

void mu_test_ha_member_stop(ha_member *m) {
  bool closed = false;
  if (m->leading) {
    m->leading = false;
    m->e->leading--;
  }
  mu_leader_close(m->l, on_closed, &closed);
  mu_test_ha_run_until(m->e, &closed, 5000);
  m->l = NULL;
  closed = false;
  mu_etcd_client_close(m->c, on_closed, &closed);
  mu_test_ha_run_until(m->e, &closed, 5000);
  m->c = NULL;
}

ha_member *mu_test_ha_leader_of(ha_member *const *ms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (ms[i]->l != NULL && ms[i]->leading) return ms[i];
  }
  return NULL;
}

typedef struct side_call {
  bool done;
  mu_etcd_result *res;
  mu_err err;
} side_call;

static void on_side(void *ud, const mu_etcd_result *res, const mu_err *err) {
  side_call *k = ud;
  k->done = true;
  if (res != NULL) k->res = mu_etcd_result_dup(res);
  else k->err = *err;
}

static mu_etcd_result *side_wait(ha_env *e, side_call *k, const char *what) {
  int64_t deadline = mu_mono_ms() + 10000;
  while (!k->done && mu_mono_ms() < deadline) uv_run(&e->side_loop, UV_RUN_ONCE);
  if (!k->done) fail_msg("side %s: no reply", what);
  if (k->res == NULL) fail_msg("side %s: %s", what, k->err.msg);
  return k->res;
}

mu_etcd_result *mu_test_ha_side_range(ha_env *e, const char *key, bool prefix) {
  side_call k = {0};
  mu_err err = {0};
  if (mu_etcd_range(e->side, &(mu_etcd_range_req){.key = key, .prefix = prefix}, on_side, &k, &err) != 0) {
    fail_msg("side range: %s", err.msg);
  }
  return side_wait(e, &k, "range");
}

int64_t mu_test_ha_side_put(ha_env *e, const char *key, const char *value) {
  side_call k = {0};
  mu_err err = {0};
  if (mu_etcd_put(e->side, &(mu_etcd_put_req){.key = key, .value = value}, on_side, &k, &err) != 0) {
    fail_msg("side put: %s", err.msg);
  }
  mu_etcd_result *r = side_wait(e, &k, "put");
  int64_t rev = r->revision;
  mu_etcd_result_free(r);
  return rev;
}

void mu_test_ha_side_delete(ha_env *e, const char *key, bool prefix) {
  side_call k = {0};
  mu_err err = {0};
  if (mu_etcd_delete(e->side, &(mu_etcd_delete_req){.key = key, .prefix = prefix}, on_side, &k, &err) != 0) {
    fail_msg("side delete: %s", err.msg);
  }
  mu_etcd_result_free(side_wait(e, &k, "delete"));
}

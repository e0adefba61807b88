/* Unit tests of cluster.c against a real etcd (integration/etcd_harness, as persist_test),
 * with no other module: what it publishes is recorded by a listener of its own. A lone member
 * is elected, loads the prefix (its election key too, skipping bundle chunks and audit
 * records) and takes over; a
 * second member follows, loads the same records, learns who leads and sees later writes
 * through its watch; the write health reads what the last write said; when the leader stops,
 * the follower is elected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/events.h"
#include "controlplane/ha/ha_testenv.h"

/* One member: a daemon with the cluster module only, and what it published. */
typedef struct member {
  mu_daemon d; /* first: the stop callback gets the daemon */
  mu_cluster cl;
  char log[8192]; /* one line per event */
  uint64_t term;
  bool taken_over, stopped;
} member;

static void logf_(member *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(member *m, const char *fmt, ...) {
  size_t n = strlen(m->log);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->log + n, sizeof m->log - n, fmt, ap);
  va_end(ap);
  n = strlen(m->log);
  if (n + 1 < sizeof m->log) strcat(m->log, "\n");
}

static void ev_elected(void *ud, uint64_t term) {
  member *m = ud;
  m->term = term;
  logf_(m, "elected");
}
static void ev_deposed(void *ud, const char *reason, const char *redirect_to) {
  logf_(ud, "deposed %s -> %s", reason, redirect_to ? redirect_to : "(none)");
}
static void ev_elsewhere(void *ud, const char *address) { logf_(ud, "leader elsewhere %s", address); }
static void ev_changed(void *ud, const char *address, int64_t term) {
  (void)term;
  logf_(ud, "leader changed %s", address);
}
static void ev_snapshot(void *ud) { logf_(ud, "snapshot"); }
static void ev_record(void *ud, const char *rel, const char *value, size_t len, int leading) {
  if (value == NULL) logf_(ud, "record %s deleted%s", rel, leading ? " leading" : "");
  else logf_(ud, "record %s=%.*s%s", rel, (int)len, value, leading ? " leading" : "");
}
static void ev_end(void *ud, int snapshot) { logf_(ud, "end %s", snapshot ? "snapshot" : "batch"); }
static void ev_takeover(void *ud, uint64_t term, int64_t grace_ms) {
  member *m = ud;
  m->taken_over = term == m->term;
  logf_(m, "takeover grace %lld", (long long)grace_ms);
}

static void member_start(member *m, ha_env *e, const char *prefix, const char *id, const char *advertise) {
  mu_err err = {0};
  memset(m, 0, sizeof *m);
  mu_daemon *d = &m->d;
  mu_server_config_init(&d->cfg);
  snprintf(d->cfg.etcd_prefix, sizeof d->cfg.etcd_prefix, "%s", prefix);
  snprintf(d->cfg.member_id, sizeof d->cfg.member_id, "%s", id);
  snprintf(d->cfg.advertise, sizeof d->cfg.advertise, "%s", advertise);
  d->cfg.leader_ttl_ms = HA_TTL_MS;
  d->cfg.takeover_grace_ms = 100;
  mu_strlist_free(&d->cfg.etcd);
  mu_strlist_init(&d->cfg.etcd);
  assert_int_equal(mu_strlist_append(&d->cfg.etcd, mu_etcd_harness_endpoint(e->h), &err), 0);
  d->loop = &e->loop;
  d->cluster = &m->cl;
  mu_cluster_listener l = {.ud = m,
                           .elected = ev_elected,
                           .deposed = ev_deposed,
                           .leader_elsewhere = ev_elsewhere,
                           .leader_changed = ev_changed,
                           .snapshot_begin = ev_snapshot,
                           .record = ev_record,
                           .records_end = ev_end,
                           .takeover = ev_takeover};
  assert_int_equal(mu_events_on_cluster(&d->events, &l, &err), 0);
  if (mu_cluster_start(d, &err) != 0) fail_msg("cluster start: %s", err.msg);
}

static void on_stopped(mu_daemon *d) { ((member *)d)->stopped = true; }

static void member_stop(member *m, ha_env *e) {
  m->d.stopping = 1;
  mu_cluster_stop(&m->d, on_stopped);
  mu_test_ha_run_until(e, &m->stopped, 5000);
  mu_server_config_free(&m->d.cfg);
}

static bool logged(void *ud) {
  const void **w = ud; /* {member *, const char *line} */
  return strstr(((const member *)w[0])->log, w[1]) != NULL;
}

/* Runs the loop until m's log holds line (5 s at most). */
static void wait_for(ha_env *e, member *m, const char *line) {
  const void *w[2] = {m, line};
  if (!mu_test_ha_run_while(e, logged, w, 5000)) fail_msg("no \"%s\" in:\n%s", line, m->log);
}

static void elected_loads_and_follower_watches(void **state) {
  ha_env *e = mu_test_ha_env_new(*state, "/cl1/");
  mu_test_ha_side_put(e, "/cl1/jobs/j-1", "one");
  mu_test_ha_side_put(e, "/cl1/bundles/sha256:ab/meta", "chunks are listed by bundles.c");
  mu_test_ha_side_put(e, "/cl1/audit/0001", "not state");
  member *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);

  member_start(a, e, "/cl1/", "m-a", "127.0.0.1:7001");
  assert_int_equal(a->cl.role, MU_ROLE_FOLLOWER); /* until elected */
  assert_true(mu_test_ha_run_while(e, logged, (const void *[2]){a, "takeover"}, 5000));
  assert_int_equal(a->cl.role, MU_ROLE_LEADER);
  assert_true(a->taken_over);
  assert_int_equal(a->cl.term, a->term);
  assert_true(mu_cluster_leading(&a->d));
  /* the leader's load: the state, not bundle chunks or audit records */
  if (strstr(a->log, "elected\n") == NULL || strstr(a->log, "snapshot\nrecord jobs/j-1=one leading\n") == NULL ||
      strstr(a->log, "end snapshot\ntakeover grace 100\n") == NULL)
    fail_msg("leader's events:\n%s", a->log);
  assert_null(strstr(a->log, "bundles/"));
  assert_null(strstr(a->log, "audit/"));
  char msg[300];
  assert_int_equal(mu_cluster_etcd_healthy(&a->d, msg, sizeof msg), 1);
  assert_string_equal(msg, "");

  /* a second member follows: the same records, the leader's address, then live writes */
  member_start(b, e, "/cl1/", "m-b", "127.0.0.1:7002");
  wait_for(e, b, "leader elsewhere 127.0.0.1:7001");
  wait_for(e, b, "record jobs/j-1=one\n");
  wait_for(e, b, "end snapshot");
  assert_int_equal(b->cl.role, MU_ROLE_FOLLOWER);
  assert_false(mu_cluster_leading(&b->d));
  assert_string_equal(b->cl.leader_address, "127.0.0.1:7001");
  mu_test_ha_run_for(e, 200); /* the watch is up */
  mu_test_ha_side_put(e, "/cl1/jobs/j-2", "two");
  mu_test_ha_side_delete(e, "/cl1/jobs/j-1", false);
  wait_for(e, b, "record jobs/j-2=two\nend batch");
  wait_for(e, b, "record jobs/j-1 deleted\nend batch");
  assert_null(strstr(a->log, "j-2")); /* the leader writes its state; it does not watch it */

  /* write health: the last write's outcome */
  mu_err bad = {.code = MU_EIO};
  snprintf(bad.msg, sizeof bad.msg, "etcd: connection refused");
  mu_cluster_note_write(&a->d, &bad);
  assert_int_equal(mu_cluster_etcd_healthy(&a->d, msg, sizeof msg), 0);
  assert_string_equal(msg, "etcd: connection refused");
  mu_cluster_note_write(&a->d, NULL);
  assert_int_equal(mu_cluster_etcd_healthy(&a->d, msg, sizeof msg), 1);

  /* the leader stops (resigns): the follower is elected and takes over with the state */
  uint64_t old_term = a->term;
  member_stop(a, e);
  wait_for(e, b, "takeover grace 100");
  assert_int_equal(b->cl.role, MU_ROLE_LEADER);
  assert_true(b->term > old_term);
  assert_true(b->taken_over);
  assert_non_null(strstr(b->log, "record jobs/j-2=two leading"));
  member_stop(b, e);
  free(a);
  free(b);
  mu_test_ha_env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(elected_loads_and_follower_watches),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}

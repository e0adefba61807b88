/* The savepoint catalogue without a network: a savepoint param recorded once per location with
 * its kind and Flink JobID, the per-task-name bound (oldest trimmed, the trimmed key queued for
 * deletion when this member writes to etcd), records read back from etcd (a bad one skipped, a
 * delete applied) and the listing's order. etcd itself: //integration:flink_test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/savepoints.h"

typedef struct fixture {
  mu_daemon d;
  mu_cluster cluster;
  mu_savepoints cat;
  Muster__V1__TaskSpec task, *tasks[1];
  Muster__V1__JobSpec spec;
  mu_task_run run;
  mu_host_run host;
  mu_job job;
  mu_kv_pair params[4];
} fixture;

static void fixture_init(fixture *f, mu_role role, uint32_t keep) {
  memset(f, 0, sizeof *f);
  f->d.cluster = &f->cluster;
  f->d.savepoints = &f->cat;
  snprintf(f->d.cfg.etcd_prefix, sizeof f->d.cfg.etcd_prefix, "/muster/");
  f->cluster.role = role;
  f->cat.keep = keep;
  muster__v1__task_spec__init(&f->task);
  f->task.name = "clicks";
  f->tasks[0] = &f->task;
  muster__v1__job_spec__init(&f->spec);
  f->spec.n_tasks = 1;
  f->spec.tasks = f->tasks;
  f->run.task_id = "j-1/web-1/clicks";
  f->run.attempt = 2;
  f->run.params = f->params;
  f->params[0] = (mu_kv_pair){"job_id", "0123456789abcdef0123456789abcdef"};
  f->params[1] = (mu_kv_pair){"savepoint_kind", "trigger"};
  f->run.n_params = 2;
  f->host.tasks = &f->run;
  f->job.id = "j-1";
  f->job.spec = &f->spec;
  f->job.hosts = &f->host;
  f->job.n_hosts = 1;
}

static Muster__V1__Savepoint **list(fixture *f, const char *name, size_t *n) {
  Muster__V1__Savepoint **out = NULL;
  mu_err err = {0};
  assert_int_equal(mu_savepoints_list(&f->cat, name, &out, n, &err), 0);
  return out;
}

static void list_free(Muster__V1__Savepoint **l, size_t n) {
  for (size_t i = 0; i < n; i++) free(l[i]);
  free(l);
}

static void test_param_recorded_once_with_kind(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f, MU_ROLE_SINGLE, 0);
  mu_savepoints_on_param(&f.d, &f.job, &f.host, 0, "state", "RUNNING"); /* not a savepoint */
  mu_savepoints_on_param(&f.d, &f.job, &f.host, 0, "savepoint_path", "file:/sp/1");
  mu_savepoints_on_param(&f.d, &f.job, &f.host, 0, "savepoint_path", "file:/sp/1"); /* sent again */
  f.params[2] = (mu_kv_pair){"upgraded_from", "fedcba9876543210fedcba9876543210"};
  f.run.n_params = 3;
  mu_savepoints_on_param(&f.d, &f.job, &f.host, 0, "upgrade_savepoint_path", "file:/sp/2");
  size_t n = 0;
  Muster__V1__Savepoint **l = list(&f, "clicks", &n);
  assert_int_equal(n, 2);
  int up = strcmp(l[0]->kind, "upgrade") == 0 ? 0 : 1;
  assert_string_equal(l[up]->location, "file:/sp/2");
  assert_string_equal(l[up]->flink_job_id, "fedcba9876543210fedcba9876543210"); /* the old version's */
  assert_string_equal(l[1 - up]->kind, "trigger");
  assert_string_equal(l[1 - up]->flink_job_id, "0123456789abcdef0123456789abcdef");
  assert_string_equal(l[1 - up]->task_id, "j-1/web-1/clicks");
  assert_int_equal(l[1 - up]->attempt, 2);
  assert_int_equal(f.cat.deleted.n, 0); /* SINGLE: nothing to delete in etcd */
  assert_true(f.cat.items[0].dirty);
  list_free(l, n);
  mu_savepoints_reset(&f.cat);
}

static void apply(fixture *f, const char *rel, const char *loc, long long at) {
  char v[600];
  snprintf(v, sizeof v, "{\"v\":1,\"task_name\":\"clicks\",\"location\":\"%s\",\"kind\":\"stop\",\"at_ms\":%lld}", loc,
           at);
  mu_savepoints_apply(&f->d, rel, v, strlen(v));
}

static void test_bound_trims_oldest_and_queues_the_delete(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f, MU_ROLE_LEADER, 2);
  apply(&f, "clicks/0000000000300-j-1-0-1", "file:/sp/c", 300);
  apply(&f, "clicks/0000000000100-j-1-0-1", "file:/sp/a", 100);
  apply(&f, "clicks/0000000000200-j-1-0-1", "file:/sp/b", 200);
  mu_savepoints_apply(&f.d, "other/0000000000050-j-2-0-1", "not json", 8); /* skipped */
  size_t n = 0;
  Muster__V1__Savepoint **l = list(&f, "", &n);
  assert_int_equal(n, 2);
  assert_string_equal(l[0]->location, "file:/sp/c"); /* newest first */
  assert_string_equal(l[1]->location, "file:/sp/b");
  list_free(l, n);
  assert_int_equal(f.cat.deleted.n, 1);
  assert_string_equal(f.cat.deleted.keys[0], "savepoints/clicks/0000000000100-j-1-0-1");
  mu_savepoints_apply(&f.d, "clicks/0000000000300-j-1-0-1", NULL, 0); /* deleted in etcd */
  l = list(&f, "clicks", &n);
  assert_int_equal(n, 1);
  assert_string_equal(l[0]->location, "file:/sp/b");
  list_free(l, n);
  mu_savepoints_reset(&f.cat);
  assert_int_equal(f.cat.keep, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_param_recorded_once_with_kind),
      cmocka_unit_test(test_bound_trims_oldest_and_queues_the_delete),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

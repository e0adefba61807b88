/* Tests for persist.c against a real etcd (integration/etcd_harness, /usr/bin/etcd): a flush
 * writes every changed task record before its job record (the barrier: a job stored as
 * finished always has its tasks' final records), acks become durable only once etcd holds the
 * batch, what was written reads back into a second member's scheduler (the new leader's or a
 * follower's load), and a forgotten job's keys are deleted; and the records musterd wrote
 * before store.proto (testdata/store_v1_records.jsonl) load into jobs and agents, so an
 * upgraded cluster keeps its jobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/daemon_testkit.h"
#include "controlplane/ha/ha_testenv.h"
#include "controlplane/persist.h"
#include "controlplane/presence.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"
#include "lib/pbjson/pbjson.h"

typedef struct fixture {
  ha_env *e;
  ha_member m;
  mu_daemon d;
} fixture;

static void fixture_start(fixture *f, void **state, const char *prefix) {
  memset(f, 0, sizeof *f);
  f->e = mu_test_ha_env_new(*state, prefix);
  mu_test_ha_member_start(f->e, &f->m, "solo");
  mu_test_ha_run_until(f->e, &f->m.leading, 5000);
  mu_tk_daemon_start(&f->d, f->e, &f->m, prefix, MU_ROLE_LEADER);
}

static void fixture_stop(fixture *f) {
  mu_tk_daemon_stop(&f->d, f->e);
  mu_test_ha_member_stop(&f->m);
  mu_test_ha_env_free(f->e);
}

/* A ready job of one task on hosts a and b, in the scheduler's list (as submitted and stored). */
static mu_job *job_on_two_hosts(mu_daemon *d, const char *id) {
  json_t *j = json_pack("{s:s,s:{s:[s,s]},s:[{s:s,s:{s:s}}]}", "name", "t", "target", "hosts", "a", "b", "tasks",
                        "name", "run", "shell", "script", "true");
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err) != 0)
    fail_msg("spec: %s", err.msg);
  json_decref(j);
  char *ids[] = {"a", "b"};
  mu_rollout ro = {.max_errors = -1};
  mu_job *job = mu_job_new(id, spec, &ro, ids, 2, 4096);
  assert_non_null(job);
  job->ready = 1;
  job->created_at_ms = 1796200000000LL;
  mu_sched_insert(d->sched, job);
  return job;
}

static void finish_task(mu_task_run *tr, const char *tail) {
  tr->attempt = 1;
  tr->state = MUSTER__V1__TASK_STATE__SUCCEEDED;
  tr->started_at_ms = 1796200000100LL;
  tr->finished_at_ms = 1796200000200LL;
  tr->message = strdup("exit code 0");
  mu_tail_append(&tr->tail, tail, strlen(tail));
}

static bool flushed(void *ud) {
  mu_daemon *d = ud;
  return !d->persist->flush_in_flight && !d->persist->flush_armed;
}

/* The kv of key under the prefix (borrowed from res), or NULL. */
static const mu_etcd_kv *kv_of(const mu_etcd_result *res, const char *prefix, const char *rel) {
  char key[300];
  snprintf(key, sizeof key, "%s%s", prefix, rel);
  for (size_t i = 0; i < res->n_kvs; i++)
    if (strcmp(res->kvs[i].key, key) == 0) return &res->kvs[i];
  return NULL;
}

static void tasks_before_their_job_and_read_back(void **state) {
  fixture f;
  fixture_start(&f, state, "/p1/");
  mu_daemon *d = &f.d;
  mu_agent *a = NULL;
  mu_err err = {0};
  assert_int_equal(mu_registry_upsert(&d->registry, "a", &a, &err), 0);
  a->ack_seq = 7; /* events applied, not yet durable */
  mu_job *job = job_on_two_hosts(d, "j-6b0fd000-1");
  for (size_t h = 0; h < 2; h++) {
    finish_task(&job->hosts[h].tasks[0], h ? "two\n" : "one\n");
    job->hosts[h].state = MU_HOST_SUCCEEDED;
    job->hosts[h].current = 1;
    mu_persist_task(d, job, &job->hosts[h], 0);
  }
  job->state = MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
  job->finished_at_ms = 1796200000300LL;
  mu_persist_job(d, job);
  mu_test_ha_run_for(f.e, 50);
  assert_true(mu_test_ha_run_while(f.e, flushed, d, 5000) || flushed(d));
  assert_int_equal(d->persist->writes, 1);
  assert_int_equal(d->persist->write_ops, 3);
  assert_int_equal(a->durable_seq, 7); /* acks may go out now */
  assert_false(job->dirty);
  assert_int_equal(job->n_dirty_tasks, 0);

  mu_etcd_result *res = mu_test_ha_side_range(f.e, "/p1/", true);
  const mu_etcd_kv *jk = kv_of(res, "/p1/", "jobs/j-6b0fd000-1");
  const mu_etcd_kv *t0 = kv_of(res, "/p1/", "tasks/j-6b0fd000-1/0.0");
  const mu_etcd_kv *t1 = kv_of(res, "/p1/", "tasks/j-6b0fd000-1/1.0");
  assert_non_null(jk);
  assert_non_null(t0);
  assert_non_null(t1);
  /* the barrier: the job record went in a later transaction than both task records */
  assert_true(jk->mod_revision > t0->mod_revision);
  assert_true(jk->mod_revision > t1->mod_revision);
  Muster__V1__TaskRecord *tr = NULL;
  assert_int_equal(
      mu_record_decode(&muster__v1__task_record__descriptor, t1->value, t1->value_len, (ProtobufCMessage **)&tr, &err),
      0);
  assert_string_equal(tr->task_id, "j-6b0fd000-1/b/run");
  assert_int_equal(tr->state, MUSTER__V1__TASK_STATE__SUCCEEDED);
  assert_string_equal(tr->tail, "two\n");
  assert_string_equal(tr->agent_id, "b");
  protobuf_c_message_free_unpacked(&tr->base, NULL);

  /* a second member loads what was written: the same job, hosts and task states */
  mu_daemon d2;
  mu_tk_daemon_start(&d2, f.e, &f.m, "/p1/", MU_ROLE_LEADER);
  for (size_t i = 0; i < res->n_kvs; i++)
    mu_persist_apply(&d2, res->kvs[i].key + strlen("/p1/"), res->kvs[i].value, res->kvs[i].value_len, 1);
  mu_persist_settle(&d2);
  mu_job *copy = mu_sched_find(d2.sched, "j-6b0fd000-1");
  assert_non_null(copy);
  assert_int_equal(copy->state, MUSTER__V1__JOB_STATE__JOB_SUCCEEDED);
  assert_int_equal(copy->n_hosts, 2);
  assert_string_equal(copy->hosts[1].agent_id, "b");
  assert_int_equal(copy->succeeded, 2);
  assert_int_equal(copy->hosts[0].tasks[0].attempt, 1);
  assert_string_equal(copy->hosts[0].tasks[0].message, "exit code 0");
  assert_int_equal(copy->finished_at_ms, 1796200000300LL);
  mu_tk_daemon_stop(&d2, f.e);
  mu_etcd_result_free(res);

  /* retention forgets it: its keys go */
  mu_persist_forget_job(d, "j-6b0fd000-1");
  mu_test_ha_run_for(f.e, 50);
  assert_true(mu_test_ha_run_while(f.e, flushed, d, 5000) || flushed(d));
  assert_int_equal(d->persist->writes, 2);
  res = mu_test_ha_side_range(f.e, "/p1/", true);
  assert_null(kv_of(res, "/p1/", "jobs/j-6b0fd000-1"));
  assert_null(kv_of(res, "/p1/", "tasks/j-6b0fd000-1/0.0"));
  assert_null(kv_of(res, "/p1/", "tasks/j-6b0fd000-1/1.0"));
  mu_etcd_result_free(res);
  fixture_stop(&f);
}

static void records_of_the_previous_format_load(void **state) {
  fixture f;
  fixture_start(&f, state, "/p2/");
  mu_daemon *d = &f.d;
  FILE *in = fopen("controlplane/testdata/store_v1_records.jsonl", "r");
  assert_non_null(in);
  char line[65536];
  size_t n = 0;
  while (fgets(line, sizeof line, in) != NULL) {
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    assert_non_null(o);
    const char *v = json_string_value(json_object_get(o, "value"));
    mu_persist_apply(d, json_string_value(json_object_get(o, "key")), v, strlen(v), 1);
    json_decref(o);
    n++;
  }
  fclose(in);
  mu_persist_settle(d);
  assert_true(n >= 15);
  assert_int_equal(d->sched->n_jobs, 4);
  size_t pending_any = 0, retried = 0;
  for (mu_job *j = d->sched->jobs; j != NULL; j = j->next) {
    assert_true(j->ready);
    if (j->spec->target->any[0] != '\0') {
      assert_int_equal(j->n_hosts, 1);
      assert_null(j->hosts[0].agent_id); /* null in the old record: placed at dispatch */
      assert_int_equal(j->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
      assert_int_equal(j->rollout.disconnected_wait_ms, 3600000);
      pending_any++;
    }
    mu_task_run *tr = &j->hosts[0].tasks[0];
    if (tr->attempt == 2) {
      assert_int_equal(j->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
      assert_int_equal(j->failed, 2); /* recounted from the hosts' states */
      assert_int_equal(tr->state, MUSTER__V1__TASK_STATE__FAILED);
      assert_int_equal(tr->n_params, 1);
      assert_string_equal(tr->params[0].value, "1.2.3");
      assert_true(tr->has_metrics);
      char tail[64];
      mu_tail_copy(&tr->tail, tail, sizeof tail);
      assert_string_equal(tail, "hello\nhello\n");
      retried++;
    }
  }
  assert_int_equal(pending_any, 1);
  assert_int_equal(retried, 1);
  assert_true(d->sched->job_seq >= 4); /* new ids continue after the loaded ones */
  mu_agent *a = mu_registry_find(&d->registry, "web-1");
  assert_non_null(a);
  assert_non_null(a->hello_msg);
  assert_int_equal(a->hello_msg->hello->n_plugins, 3);
  assert_non_null(mu_registry_find(&d->registry, "web-2"));
  fixture_stop(&f);
}

/* A write holds at most flush_max_ops task records: the rest go in the next write, the job
 * record after all of them, and acks wait for the write that held everything. */
static void a_large_flush_goes_in_parts(void **state) {
  fixture f;
  fixture_start(&f, state, "/p3/");
  mu_daemon *d = &f.d;
  d->persist->flush_max_ops = 1;
  mu_agent *a = NULL;
  mu_err err = {0};
  assert_int_equal(mu_registry_upsert(&d->registry, "a", &a, &err), 0);
  a->ack_seq = 9;
  mu_job *job = job_on_two_hosts(d, "j-6b0fd000-3");
  for (size_t h = 0; h < 2; h++) {
    finish_task(&job->hosts[h].tasks[0], "x\n");
    job->hosts[h].state = MU_HOST_SUCCEEDED;
    job->hosts[h].current = 1;
    mu_persist_task(d, job, &job->hosts[h], 0);
  }
  job->state = MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
  mu_persist_job(d, job);
  mu_test_ha_run_for(f.e, 50);
  for (int i = 0; i < 20 && (d->persist->writes < 2 || !flushed(d)); i++) {
    mu_test_ha_run_for(f.e, 50);
    (void)mu_test_ha_run_while(f.e, flushed, d, 5000);
  }
  assert_int_equal(d->persist->writes, 2);
  assert_int_equal(d->persist->write_ops, 3);
  assert_int_equal(a->durable_seq, 9);
  assert_false(job->dirty);
  assert_int_equal(job->n_dirty_tasks, 0);
  mu_etcd_result *res = mu_test_ha_side_range(f.e, "/p3/", true);
  const mu_etcd_kv *jk = kv_of(res, "/p3/", "jobs/j-6b0fd000-3");
  const mu_etcd_kv *t0 = kv_of(res, "/p3/", "tasks/j-6b0fd000-3/0.0");
  const mu_etcd_kv *t1 = kv_of(res, "/p3/", "tasks/j-6b0fd000-3/1.0");
  assert_non_null(jk);
  assert_non_null(t0);
  assert_non_null(t1);
  assert_true(t0->mod_revision < t1->mod_revision); /* two writes */
  assert_true(jk->mod_revision > t1->mod_revision); /* the job after all its tasks */
  mu_etcd_result_free(res);
  fixture_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tasks_before_their_job_and_read_back),
      cmocka_unit_test(a_large_flush_goes_in_parts),
      cmocka_unit_test(records_of_the_previous_format_load),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}

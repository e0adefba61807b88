/* Tests for records.c: the records musterd wrote before store.proto existed still load (so an
 * upgraded cluster keeps its jobs), and what is written now reads back the same.
 * testdata/store_v1_records.jsonl holds real records, one {"key", "value"} per line, written
 * into etcd by musterd at commit 95b14d9 (before this change): two finished jobs with their
 * task records (output params, metrics, tails, a retried failure), an "any" job not yet
 * placed (hosts [null]), a job waiting for a disconnected agent, two agent records and a
 * presence record (from an earlier run of the same capture). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/records.h"

#define FIXTURE "controlplane/testdata/store_v1_records.jsonl"

typedef struct fixture {
  char key[200];
  char *value;
} fixture;

static fixture fx[64];
static size_t n_fx;

static int load_fixtures(void **state) {
  (void)state;
  FILE *f = fopen(FIXTURE, "r");
  if (f == NULL) fail_msg("cannot open %s", FIXTURE);
  char line[65536];
  while (fgets(line, sizeof line, f) != NULL && n_fx < 64) {
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    if (o == NULL) fail_msg("%s: %s", FIXTURE, jerr.text);
    snprintf(fx[n_fx].key, sizeof fx[n_fx].key, "%s", json_string_value(json_object_get(o, "key")));
    fx[n_fx].value = strdup(json_string_value(json_object_get(o, "value")));
    n_fx++;
    json_decref(o);
  }
  fclose(f);
  return 0;
}

static int free_fixtures(void **state) {
  (void)state;
  for (size_t i = 0; i < n_fx; i++) free(fx[i].value);
  return 0;
}

static const ProtobufCMessageDescriptor *desc_of(const char *key) {
  if (strncmp(key, "agents/", 7) == 0) return &muster__v1__agent_record__descriptor;
  if (strncmp(key, "presence/", 9) == 0) return &muster__v1__presence_record__descriptor;
  if (strncmp(key, "tasks/", 6) == 0) return &muster__v1__task_record__descriptor;
  if (strncmp(key, "jobs/", 5) == 0 && strchr(key + 5, '/') == NULL) return &muster__v1__job_record__descriptor;
  return NULL; /* jobs/<id>/ready: "1" */
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *desc, const char *text) {
  ProtobufCMessage *m = NULL;
  mu_err err = {0};
  if (mu_record_decode(desc, text, strlen(text), &m, &err) != 0)
    fail_msg("%s: %s in %.200s", desc->name, err.msg, text);
  return m;
}

/* Packed bytes of m (caller frees). */
static uint8_t *packed(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(*len + 1);
  protobuf_c_message_pack(m, b);
  return b;
}

static void every_old_record_loads_and_survives_a_rewrite(void **state) {
  (void)state;
  size_t checked = 0;
  for (size_t i = 0; i < n_fx; i++) {
    const ProtobufCMessageDescriptor *desc = desc_of(fx[i].key);
    if (desc == NULL) continue;
    ProtobufCMessage *old = decode(desc, fx[i].value);
    char *text = NULL;
    mu_err err = {0};
    assert_int_equal(mu_record_encode(old, &text, &err), 0);
    ProtobufCMessage *again = decode(desc, text);
    size_t a_len, b_len;
    uint8_t *a = packed(old, &a_len), *b = packed(again, &b_len);
    assert_int_equal(a_len, b_len); /* the new format holds exactly what the old one did */
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
    free(text);
    protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(old, NULL);
    checked++;
  }
  assert_true(checked >= 10);
}

static const char *value_of(const char *prefix, const char *contains) {
  for (size_t i = 0; i < n_fx; i++)
    if (strncmp(fx[i].key, prefix, strlen(prefix)) == 0 && strchr(fx[i].key + strlen(prefix), '/') == NULL &&
        (contains == NULL || strstr(fx[i].value, contains) != NULL))
      return fx[i].value;
  fail_msg("no fixture %s with %s", prefix, contains ? contains : "");
  return NULL;
}

static void old_records_say_what_they_said(void **state) {
  (void)state;
  /* a job whose "any" target was not placed yet: hosts [null] */
  Muster__V1__JobRecord *any =
      (Muster__V1__JobRecord *)decode(&muster__v1__job_record__descriptor, value_of("jobs/", "\"hosts\":[null]"));
  assert_int_equal(any->v, 1);
  assert_int_equal(any->n_hosts, 1);
  assert_string_equal(any->hosts[0], "");
  assert_string_equal(any->spec->target->any, "dc=eu");
  assert_int_equal(any->rollout->disconnected_wait_ms, 3600000);
  assert_false(any->rollout->skip_unreachable); /* written before it existed */
  assert_int_equal(any->error_budget, -1);
  assert_int_equal(any->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
  assert_true(any->created_at_ms > 1700000000000LL);
  protobuf_c_message_free_unpacked(&any->base, NULL);
  /* a rollout given as percentages */
  Muster__V1__JobRecord *pct = (Muster__V1__JobRecord *)decode(&muster__v1__job_record__descriptor,
                                                               value_of("jobs/", "\"max_concurrency_pct\":50"));
  assert_int_equal(pct->rollout->max_concurrency_pct, 50);
  assert_int_equal(pct->rollout->max_errors, 1);
  assert_int_equal(pct->concurrency, 1);
  assert_int_equal(pct->error_budget, 1);
  assert_int_equal(pct->state, MUSTER__V1__JOB_STATE__JOB_SUCCEEDED);
  assert_int_equal(pct->n_hosts, 2);
  assert_string_equal(pct->hosts[1], "web-2");
  protobuf_c_message_free_unpacked(&pct->base, NULL);
  /* a retried failure with an output param, metrics and a tail */
  Muster__V1__TaskRecord *t = NULL;
  for (size_t i = 0; i < n_fx && t == NULL; i++)
    if (strncmp(fx[i].key, "tasks/", 6) == 0 && strstr(fx[i].value, "\"attempt\":2"))
      t = (Muster__V1__TaskRecord *)decode(&muster__v1__task_record__descriptor, fx[i].value);
  assert_non_null(t);
  assert_int_equal(t->state, MUSTER__V1__TASK_STATE__FAILED);
  assert_int_equal(t->exit_code, 1);
  assert_string_equal(t->message, "exit code 1");
  assert_int_equal(t->n_params, 1);
  assert_string_equal(t->params[0]->key, "version");
  assert_string_equal(t->params[0]->value, "1.2.3");
  assert_non_null(t->metrics);
  assert_true(t->metrics->wall_ms > 0);
  assert_string_equal(t->tail, "hello\nhello\n");
  assert_int_equal(t->host_state, 3); /* MU_HOST_FAILED */
  assert_true(t->finished_at_ms >= t->started_at_ms);
  protobuf_c_message_free_unpacked(&t->base, NULL);
  /* an agent: its Hello, labels and state */
  Muster__V1__AgentRecord *a = (Muster__V1__AgentRecord *)decode(&muster__v1__agent_record__descriptor,
                                                                 value_of("agents/", "\"agentId\":\"web-1\""));
  assert_int_equal(a->hello->msg_case, MUSTER__V1__AGENT_MESSAGE__MSG_HELLO);
  assert_string_equal(a->hello->hello->agent_id, "web-1");
  assert_int_equal(a->hello->hello->n_labels, 2);
  assert_int_equal(a->hello->hello->capacity->slots, 4);
  assert_false(a->draining);
  assert_true(a->last_seen_ms > 1700000000000LL);
  protobuf_c_message_free_unpacked(&a->base, NULL);
  Muster__V1__PresenceRecord *p =
      (Muster__V1__PresenceRecord *)decode(&muster__v1__presence_record__descriptor, value_of("presence/", NULL));
  assert_int_equal(p->term, 2);
  assert_string_equal(p->session, "web-1-1796200088990");
  assert_int_equal(p->connected_at_ms, 1796200088990LL);
  protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void what_is_written_now(void **state) {
  (void)state;
  Muster__V1__TaskRecord rec = MUSTER__V1__TASK_RECORD__INIT;
  rec.v = MU_RECORD_VERSION;
  rec.task_id = "j-1/web-1/run";
  rec.attempt = 1;
  rec.state = MUSTER__V1__TASK_STATE__RUNNING;
  rec.started_at_ms = 1796200109822LL;
  rec.agent_id = "web-1";
  char *text = NULL;
  mu_err err = {0};
  assert_int_equal(mu_record_encode(&rec.base, &text, &err), 0);
  assert_string_equal(text,
                      "{\"v\":1,\"task_id\":\"j-1/web-1/run\",\"attempt\":1,\"state\":4,"
                      "\"started_at_ms\":1796200109822,\"agent_id\":\"web-1\"}");
  free(text);
  ProtobufCMessage *m = NULL;
  assert_int_equal(mu_record_decode(&muster__v1__task_record__descriptor, "[1]", 3, &m, &err), MU_EINVAL);
  assert_int_equal(mu_record_decode(&muster__v1__task_record__descriptor, "{\"attempt\":\"x\"}", 15, &m, &err),
                   MU_EINVAL);
  assert_non_null(strstr(err.msg, "attempt"));
  /* a skipped target's run: state UNREACHABLE (10), host state MU_HOST_SKIPPED (6) */
  Muster__V1__TaskRecord skipped = MUSTER__V1__TASK_RECORD__INIT;
  skipped.v = MU_RECORD_VERSION;
  skipped.state = MUSTER__V1__TASK_STATE__UNREACHABLE;
  skipped.message = "skipped: agent is disconnected (unreachable)";
  skipped.host_state = 6;
  assert_int_equal(mu_record_encode(&skipped.base, &text, &err), 0);
  assert_string_equal(text,
                      "{\"v\":1,\"state\":10,\"message\":\"skipped: agent is disconnected "
                      "(unreachable)\",\"host_state\":6}");
  assert_int_equal(mu_record_decode(&muster__v1__task_record__descriptor, text, strlen(text), &m, &err), 0);
  assert_int_equal(((Muster__V1__TaskRecord *)m)->state, MUSTER__V1__TASK_STATE__UNREACHABLE);
  protobuf_c_message_free_unpacked(m, NULL);
  free(text);
}

/* mu_record_leaf: the name of a record directly under a prefix, nothing deeper. */
static void record_leaf(void **state) {
  (void)state;
  assert_string_equal(mu_record_leaf("templates/deploy", "templates/"), "deploy");
  assert_string_equal(mu_record_leaf("queues/etl", "queues/"), "etl");
  assert_null(mu_record_leaf("queues/", "queues/"));
  assert_null(mu_record_leaf("queues/etl/x", "queues/"));
  assert_null(mu_record_leaf("templates/deploy", "queues/"));
  assert_null(mu_record_leaf("queue", "queues/"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_old_record_loads_and_survives_a_rewrite),
      cmocka_unit_test(old_records_say_what_they_said),
      cmocka_unit_test(what_is_written_now),
      cmocka_unit_test(record_leaf),
  };
  return cmocka_run_group_tests(tests, load_fixtures, free_fixtures);
}

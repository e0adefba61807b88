/* Tests for stages.c and the ${stages.*} checks of jobspec_refs.c: the shape of a job with
 * stages (every problem named by its field path), references to earlier stages only, which
 * stage runs next under each `when`, the job's end state, and the values put into a stage's
 * spec when it starts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/jobspec.h"
#include "controlplane/jobspec_refs.h"
#include "controlplane/stages.h"
#include "lib/pbjson/pbjson.h"

static Muster__V1__JobSpec *parse(const char *json) {
  json_error_t jerr;
  json_t *j = json_loads(json, 0, &jerr);
  if (j == NULL) fail_msg("bad test JSON: %s", jerr.text);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err) != 0)
    fail_msg("bad test spec: %s", err.msg);
  json_decref(j);
  return spec;
}

/* Validates and frees the spec; the error message ("" when it passed). */
static const char *check(const char *json) {
  static mu_err err;
  Muster__V1__JobSpec *spec = parse(json);
  mu_jobspec_limits limits = {.max_tasks = 64, .max_task_runs = 200000};
  mu_rollout r;
  memset(&err, 0, sizeof err);
  mu_jobspec_validate(spec, &limits, &r, &err);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  return err.msg;
}

#define STAGE(name, extra, script)                         \
  "{\"name\":\"" name "\",\"target\":{\"all\":true}" extra \
  ",\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"" script "\"}}]}"

static void a_good_playbook_passes(void **state) {
  (void)state;
  assert_string_equal(
      check("{\"name\":\"p\",\"stages\":[" STAGE("drain", "", "echo") "," STAGE(
          "deploy", ",\"rollout\":{\"max_concurrency\":\"1\"}",
          "echo ${stages.drain.web-1.t.port} ${stages.drain.ok_hosts}") "," STAGE("notify", ",\"when\":\"always\"",
                                                                                  "echo ${stages.deploy.failed_hosts} "
                                                                                  "${stages.drain.hosts}") "]}"),
      "");
}

static void bad_shapes_are_named(void **state) {
  (void)state;
  assert_string_equal(check("{\"stages\":[" STAGE("a", "", "x") "," STAGE("a", "", "x") "]}"),
                      "stages[1].name: 'a' is already the name of stages[0]");
  assert_string_equal(
      check("{\"stages\":[{\"name\":\"a\",\"target\":{\"all\":true}}]}"),
      "stages[0].tasks: a stage needs at least one task; stages[0].tasks: at least one task is required");
  assert_string_equal(check("{\"target\":{\"all\":true},\"tasks\":[{\"shell\":{\"script\":\"x\"}}],\"stages\":[" STAGE(
                          "a", "", "x") "]}"),
                      "target: a job with stages has its targets in each stage; tasks: a job with stages has its "
                      "tasks in each stage (got 1 tasks beside stages)");
  assert_string_equal(check("{\"stages\":[" STAGE("a", ",\"when\":\"sometimes\"", "x") "]}"),
                      "stages[0].when: expected success, always or on_failure, got 'sometimes'");
  assert_string_equal(check("{\"stages\":[" STAGE("a.b", "", "x") "]}"),
                      "stages[0].name: 'a.b' may only hold letters, digits, '_' and '-'");
  assert_string_equal(check("{\"stages\":[{\"target\":{\"all\":true},\"tasks\":[{\"shell\":{\"script\":\"x\"}}]}]}"),
                      "stages[0].name: required");
  /* a stage's own problems carry its index */
  assert_string_equal(check("{\"stages\":[" STAGE("a", "", "x") ",{\"name\":\"b\",\"tasks\":[{\"shell\":{\"script\":"
                                                                "\"x\"}}]}]}"),
                      "stages[1].target: required (all, selector, hosts or any)");
}

static void stage_references_only_to_earlier_stages(void **state) {
  (void)state;
  assert_string_equal(check("{\"stages\":[" STAGE("a", "", "echo ${stages.b.ok_hosts}") "," STAGE("b", "", "x") "]}"),
                      "stages[0].tasks[0].shell.script: ${stages.b.ok_hosts}: stage 'b' runs after this one "
                      "(stages[1])");
  assert_string_equal(check("{\"stages\":[" STAGE("a", "", "echo ${stages.a.ok_hosts}") "]}"),
                      "stages[0].tasks[0].shell.script: ${stages.a.ok_hosts}: a stage cannot use its own outputs "
                      "(use ${TASK.KEY} within a stage)");
  assert_string_equal(check("{\"stages\":[" STAGE("a", "", "x") "," STAGE("b", "", "echo ${stages.zz.ok_hosts}") "]}"),
                      "stages[1].tasks[0].shell.script: ${stages.zz.ok_hosts}: no stage 'zz' in this job");
  assert_string_equal(check("{\"stages\":[" STAGE("a", "", "x") "," STAGE("b", "", "echo ${stages.a.h1.nope.k}") "]}"),
                      "stages[1].tasks[0].shell.script: ${stages.a.h1.nope.k}: 'h1.nope.k' names no task of stage "
                      "'a' (expected ${stages.a.HOST.TASK.KEY} or ${stages.a.ok_hosts|failed_hosts|hosts})");
  assert_string_equal(check("{\"target\":{\"all\":true},\"tasks\":[{\"shell\":{\"script\":\"echo ${stages.a.x}\"}}]}"),
                      "tasks[0].shell.script: ${stages.a.x}: only a job with stages: has ${stages.*} values");
}

static void parse_takes_hosts_with_dots(void **state) {
  (void)state;
  Muster__V1__JobSpec *spec =
      parse("{\"stages\":[{\"name\":\"s\",\"tasks\":[{\"name\":\"a.b\"},{\"name\":\"b\"}]},{\"name\":\"s2\"}]}");
  mu_stage_ref ref;
  char why[300];
  const char *body = "stages.s.web-1.example.com.a.b.port";
  assert_int_equal(mu_stage_ref_parse(spec, body, strlen(body), &ref, why, sizeof why), 0);
  assert_int_equal(ref.kind, MU_STAGE_REF_OUTPUT);
  assert_int_equal(ref.stage, 0);
  assert_int_equal(ref.task, 0); /* the longest task name that fits */
  assert_int_equal(ref.host_len, strlen("web-1.example.com"));
  assert_memory_equal(ref.host, "web-1.example.com", ref.host_len);
  assert_memory_equal(ref.key, "port", 4);
  body = "stages.s2.failed_hosts";
  assert_int_equal(mu_stage_ref_parse(spec, body, strlen(body), &ref, why, sizeof why), 0);
  assert_int_equal(ref.kind, MU_STAGE_REF_FAILED_HOSTS);
  assert_int_equal(ref.stage, 1);
  body = "stages.s.b.port"; /* no host before the task */
  assert_int_equal(mu_stage_ref_parse(spec, body, strlen(body), &ref, why, sizeof why), -1);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
}

static void next_stage_by_when(void **state) {
  (void)state;
  mu_stage_state ok[] = {MU_STAGE_SUCCEEDED, MU_STAGE_SKIPPED};
  mu_stage_state bad[] = {MU_STAGE_SUCCEEDED, MU_STAGE_FAILED};
  mu_stage_state cancelled[] = {MU_STAGE_CANCELLED};
  assert_true(mu_stages_should_run(ok, 2, "", 0));
  assert_true(mu_stages_should_run(ok, 2, "success", 0));
  assert_true(mu_stages_should_run(ok, 2, "always", 0));
  assert_false(mu_stages_should_run(ok, 2, "on_failure", 0));
  assert_false(mu_stages_should_run(bad, 2, "", 0));
  assert_true(mu_stages_should_run(bad, 2, "always", 0));
  assert_true(mu_stages_should_run(bad, 2, "on_failure", 0));
  assert_true(mu_stages_should_run(cancelled, 1, "on_failure", 0)); /* a cancelled stage counts as failed */
  assert_false(mu_stages_should_run(ok, 2, "always", 1));           /* the job was cancelled */
  assert_int_equal(mu_stages_final(ok, 2, 0), MUSTER__V1__JOB_STATE__JOB_SUCCEEDED);
  assert_int_equal(mu_stages_final(bad, 2, 0), MUSTER__V1__JOB_STATE__JOB_FAILED);
  assert_int_equal(mu_stages_final(ok, 2, 1), MUSTER__V1__JOB_STATE__JOB_CANCELLED);
  mu_stage_state st;
  for (int i = MU_STAGE_PENDING; i <= MU_STAGE_CANCELLED; i++) {
    assert_int_equal(mu_stage_state_parse(mu_stage_state_name((mu_stage_state)i), &st), 0);
    assert_int_equal(st, i);
  }
  assert_int_equal(mu_stage_state_parse("done", &st), -1);
}

static void stage_job_ids(void **state) {
  (void)state;
  char id[64];
  assert_int_equal(mu_stage_job_id("j-1-2", "deploy", id, sizeof id), 0);
  assert_string_equal(id, "j-1-2.deploy");
  assert_int_equal(mu_stage_parent_len(id), 5);
  assert_int_equal(mu_stage_parent_len("j-1-2"), 0);
  assert_int_equal(mu_stage_job_id("j-1-2", "deploy", id, 8), MU_EINVAL);
}

/* A lookup that answers from a table, or refuses hosts named "gone". */
static int table_lookup(void *ud, const mu_stage_ref *ref, char **ret_value, char *why, size_t why_size) {
  (*(int *)ud)++;
  if (ref->kind == MU_STAGE_REF_OK_HOSTS) {
    *ret_value = strdup("web-1,web-2");
    return 0;
  }
  if (ref->host_len == 4 && strncmp(ref->host, "gone", 4) == 0) {
    snprintf(why, why_size, "host 'gone' was no target");
    return -1;
  }
  char v[64];
  snprintf(v, sizeof v, "%.*s=%.*s", (int)ref->host_len, ref->host, (int)ref->key_len, ref->key);
  *ret_value = strdup(v);
  return 0;
}

static void values_are_put_in(void **state) {
  (void)state;
  Muster__V1__JobSpec *spec = parse("{\"name\":\"p\",\"priority\":7,\"queue\":\"q\",\"stages\":[" STAGE(
      "a", "", "x") ",{\"name\":\"b\","
                    "\"target\":{\"hosts\":[\"h\"]},\"tasks\":[{\"name\":\"u\",\"shell\":{\"script\":\"echo "
                    "${stages.a.h1.t.port} $${stages.a.ok_hosts} ${stages.a.ok_hosts}!\"},\"env\":{\"E\":"
                    "\"${stages.a.h2.t.k}\"}}]},{\"name\":\"c\",\"target\":{\"all\":true},\"tasks\":[{\"shell\":{"
                    "\"script\":\"${stages.a.gone.t.k}\"}}]}]}");
  Muster__V1__JobSpec *child = mu_stages_spec(spec, 1);
  assert_non_null(child);
  assert_string_equal(child->name, "p/b");
  assert_int_equal(child->priority, 7);
  assert_string_equal(child->queue, "q");
  assert_int_equal(child->n_stages, 0);
  int calls = 0;
  mu_err err = {0};
  assert_int_equal(mu_stages_substitute(child, spec, 1, table_lookup, &calls, &err), 0);
  assert_string_equal(child->tasks[0]->shell->script, "echo h1=port $${stages.a.ok_hosts} web-1,web-2!");
  assert_string_equal(child->tasks[0]->env[0]->value, "h2=k");
  assert_int_equal(calls, 3);
  protobuf_c_message_free_unpacked(&child->base, NULL);

  child = mu_stages_spec(spec, 2);
  assert_int_equal(mu_stages_substitute(child, spec, 2, table_lookup, &calls, &err), MU_EINVAL);
  assert_string_equal(err.msg, "stages[2].tasks[0].shell.script: ${stages.a.gone.t.k}: host 'gone' was no target");
  protobuf_c_message_free_unpacked(&child->base, NULL);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_good_playbook_passes),
      cmocka_unit_test(bad_shapes_are_named),
      cmocka_unit_test(stage_references_only_to_earlier_stages),
      cmocka_unit_test(parse_takes_hosts_with_dots),
      cmocka_unit_test(next_stage_by_when),
      cmocka_unit_test(stage_job_ids),
      cmocka_unit_test(values_are_put_in),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

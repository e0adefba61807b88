/* Job file parsing: YAML and JSON give the same spec, anchors work, and nested aliases that
 * would expand without bound are refused (found by cli/jobfile_fuzz). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli/jobfile.h"

static Muster__V1__JobSpec *parse_ok(const char *text) {
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  int rc = mu_jobfile_parse("job", text, strlen(text), &spec, &err);
  if (rc != 0) fail_msg("%s", err.msg);
  return spec;
}

static void test_yaml_and_json_agree(void **state) {
  (void)state;
  Muster__V1__JobSpec *y = parse_ok("name: x\ntarget: {all: true}\ntasks: [{shell: {script: hi}}]\n");
  Muster__V1__JobSpec *j = parse_ok(
      " {\"name\": \"x\", \"target\": {\"all\": true}, "
      "\"tasks\": [{\"shell\": {\"script\": \"hi\"}}]}");
  assert_string_equal(y->name, j->name);
  assert_true(y->target->all && j->target->all);
  assert_int_equal(y->n_tasks, 1);
  assert_string_equal(y->tasks[0]->shell->script, j->tasks[0]->shell->script);
  protobuf_c_message_free_unpacked(&y->base, NULL);
  protobuf_c_message_free_unpacked(&j->base, NULL);
}

static void test_anchors_expand(void **state) {
  (void)state;
  Muster__V1__JobSpec *s = parse_ok(
      "target: {all: true}\n"
      "tasks:\n"
      "  - {name: a, env: &e {A: '1', B: '2'}, shell: {script: x}}\n"
      "  - {name: b, env: *e, shell: {script: y}}\n");
  assert_int_equal(s->n_tasks, 2);
  assert_int_equal(s->tasks[1]->n_env, 2);
  protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void test_alias_bomb_refused(void **state) {
  (void)state;
  /* 10^8 values from 300 bytes: refused quickly instead of taking gigabytes */
  char text[1024] = "a: &a [x,x,x,x,x,x,x,x,x,x]\n";
  const char *names = "abcdefgh";
  for (int i = 1; i < 8; i++) {
    char line[80], p = names[i - 1];
    snprintf(line, sizeof line, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", names[i], names[i], p, p, p, p,
             p, p, p, p, p, p);
    strcat(text, line);
  }
  strcat(text, "tasks: [*h]\n");
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  assert_int_equal(mu_jobfile_parse("bomb.yaml", text, strlen(text), &spec, &err), MU_EINVAL);
  assert_null(spec);
  assert_non_null(strstr(err.msg, "bomb.yaml: aliases expand to more than"));
}

/* Issue 13: 65,536 nested "[" took 8.8 s inside libyaml's document loader before our depth
 * check saw it; the event pre-check refuses it at level 65, in linear time. JSON's own depth
 * limit (jansson) refuses the same nesting. */
static void test_deep_nesting_refused_fast(void **state) {
  (void)state;
  size_t depth = 65536;
  char *text = malloc(2 * depth + 32);
  assert_non_null(text);
  for (int json = 0; json < 2; json++) {
    size_t n = (size_t)sprintf(text, json ? "{\"name\":\"x\",\"a\":" : "name: x\na: ");
    memset(text + n, '[', depth);
    memset(text + n + depth, ']', depth);
    n += 2 * depth;
    if (json) text[n++] = '}';
    text[n] = '\0';
    Muster__V1__JobSpec *spec = NULL;
    mu_err err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mu_jobfile_parse("deep", text, n, &spec, &err), MU_EINVAL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_null(spec);
    if (!json) assert_non_null(strstr(err.msg, "deep:2: nesting deeper than 64 levels"));
    if (json) assert_non_null(strstr(err.msg, "maximum parsing depth"));
    if (secs > 2.0) fail_msg("%s nesting took %.2fs", json ? "JSON" : "YAML", secs);
  }
  free(text);
}

static void test_problems_located(void **state) {
  (void)state;
  const char *text =
      "name: x\n"
      "target: {hosts: [web-1]}\n"
      "tasks:\n"
      "  - name: a\n"
      "    timeout: 5x\n"
      "  - shell:\n"
      "      script: echo ${c.k}\n"
      "    env: {http.proxy: y}\n";
  size_t len = strlen(text);
  unsigned line = 0, col = 0;
  assert_int_equal(mu_jobfile_locate(text, len, "tasks[0].timeout", 16, &line, &col), 0);
  assert_int_equal(line, 5);
  assert_int_equal(col, 14);
  /* a defaulted field points at its task; a dotted key is found whole */
  assert_int_equal(mu_jobfile_locate(text, len, "tasks[1].type", 13, &line, &col), 0);
  assert_int_equal(line, 6);
  assert_int_equal(mu_jobfile_locate(text, len, "tasks[1].env.http.proxy", 23, &line, &col), 0);
  assert_int_equal(line, 8);
  assert_int_equal(col, 23);
  assert_int_equal(mu_jobfile_locate(text, len, "nothing", 7, &line, &col), -1);

  char *out = NULL;
  size_t out_len = 0;
  FILE *f = open_memstream(&out, &out_len);
  int n = mu_jobfile_explain("job.yaml", text, len,
                             "tasks[0].timeout: bad duration \"5x\"; use a: b; "
                             "tasks[1].shell.script: ${c.k}: no task 'c' in this job; "
                             "rollout.batch: too big",
                             f);
  fclose(f);
  assert_int_equal(n, 3);
  assert_string_equal(out,
                      "job.yaml:5:14: tasks[0].timeout: bad duration \"5x\"; use a: b\n"
                      "job.yaml:7:15: tasks[1].shell.script: ${c.k}: no task 'c' in this job\n"
                      "job.yaml: rollout.batch: too big\n");
  free(out);
  /* a decoding error at load carries the position too */
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  const char *bad = "target: {all: true}\ntasks:\n  - retries: many\n";
  assert_int_not_equal(mu_jobfile_parse("j.yaml", bad, strlen(bad), &spec, &err), 0);
  if (strncmp(err.msg, "j.yaml:3:14: tasks[0].retries", 29) != 0) fail_msg("got: %s", err.msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_yaml_and_json_agree), cmocka_unit_test(test_anchors_expand),
      cmocka_unit_test(test_alias_bomb_refused),  cmocka_unit_test(test_deep_nesting_refused_fast),
      cmocka_unit_test(test_problems_located),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

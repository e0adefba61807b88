/* Tests for task_audit.c: what is hashed for each kind of task (the same digest the shell
 * plugin logs for scripts and commands; secret fields and the environment never count), the
 * user reported, and the table of attempts between assign and STARTING. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/task_audit.h"

static json_t *spec_of(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  if (j == NULL) fail_msg("bad test JSON: %s", e.text);
  return j;
}

static void describe(const char *text, mu_task_audit *ret) {
  json_t *spec = spec_of(text);
  memset(ret, 0, sizeof *ret);
  mu_task_audit_describe(spec, "", ret);
  json_decref(spec);
}

static void shell_script_and_command(void **state) {
  (void)state;
  mu_task_audit t;
  char want[MU_BUNDLE_DIGEST_SIZE];
  describe(
      "{\"type\":\"shell\",\"runAs\":\"nobody\",\"env\":{\"K\":\"v\"},"
      "\"shell\":{\"script\":\"echo hi\"}}",
      &t);
  mu_bundle_digest((const uint8_t *)"echo hi", 7, want);
  assert_string_equal(t.digest, want); /* sha256 of the script, as the plugin logs it */
  assert_string_equal(t.digest_of, "script");
  assert_string_equal(t.run_as, "nobody");
  assert_string_equal(t.type, "shell");
  /* the environment does not change what runs */
  mu_task_audit u;
  describe(
      "{\"type\":\"shell\",\"runAs\":\"nobody\",\"env\":{\"K\":\"other\"},"
      "\"shell\":{\"script\":\"echo hi\"}}",
      &u);
  assert_string_equal(u.digest, t.digest);
  describe("{\"shell\":{\"command\":[\"/bin/echo\",\"a\"],\"args\":[\"b\"]}}", &t);
  mu_bundle_digest((const uint8_t *)"/bin/echo a b", 13, want);
  assert_string_equal(t.digest, want);
  assert_string_equal(t.digest_of, "command");
  assert_string_equal(t.type, "shell"); /* from the section when type is not set */
  assert_true(t.run_as[0] != '\0');     /* the agent's own user */
}

static void other_kinds_hash_the_section_without_secrets(void **state) {
  (void)state;
  mu_task_audit a, b, c;
  describe(
      "{\"type\":\"http\",\"http\":{\"url\":\"https://x/\",\"auth\":{\"basicUser\":\"u\","
      "\"basicPassword\":\"one\"},\"headers\":{\"Authorization\":\"Bearer t1\",\"X\":\"1\"}}}",
      &a);
  describe(
      "{\"type\":\"http\",\"http\":{\"url\":\"https://x/\",\"auth\":{\"basicUser\":\"u\","
      "\"basicPassword\":\"two\"},\"headers\":{\"Authorization\":\"Bearer t2\",\"X\":\"1\"}}}",
      &b);
  describe("{\"type\":\"http\",\"http\":{\"url\":\"https://y/\",\"headers\":{\"X\":\"1\"}}}", &c);
  assert_string_equal(a.digest_of, "spec");
  assert_string_equal(a.digest, b.digest);     /* secrets do not count */
  assert_string_not_equal(a.digest, c.digest); /* the URL does */
  assert_int_equal(strncmp(a.digest, "sha256:", 7), 0);
  describe("{\"type\":\"python\",\"python\":{\"code\":\"print(1)\"}}", &a);
  char want[MU_BUNDLE_DIGEST_SIZE];
  mu_bundle_digest((const uint8_t *)"print(1)", 8, want);
  assert_string_equal(a.digest, want);
  assert_string_equal(a.digest_of, "script");
}

static void table_hands_over_at_start(void **state) {
  (void)state;
  mu_task_audits *ta = mu_task_audits_new(2);
  json_t *spec = spec_of("{\"shell\":{\"script\":\"true\"}}");
  mu_task_audits_add(ta, "j-1/a/t", 1, spec, "sha256:00");
  mu_task_audits_add(ta, "j-1/a/u", 1, spec, "");
  mu_task_audits_add(ta, "j-1/a/v", 1, spec, ""); /* over the bound: not noted */
  mu_task_audit t;
  Muster__V1__TaskStartAudit sa;
  assert_int_equal(mu_task_audits_take(ta, "j-1/a/v", 1, &t), MU_ENOENT);
  assert_int_equal(mu_task_audits_start(ta, "j-1", "j-1/a/t", 2, &t, &sa), MU_ENOENT);
  assert_int_equal(mu_task_audits_start(ta, "j-1", "j-1/a/t", 1, &t, &sa), 0);
  assert_string_equal(sa.bundle_digest, "sha256:00");
  assert_string_equal(sa.digest_of, "script");
  assert_ptr_equal(sa.command_digest, t.digest);
  assert_int_equal(mu_task_audits_take(ta, "j-1/a/t", 1, &t), MU_ENOENT); /* once */
  mu_task_audits_drop(ta, "j-1/a/u", 1);
  assert_int_equal(mu_task_audits_take(ta, "j-1/a/u", 1, &t), MU_ENOENT);
  json_decref(spec);
  mu_task_audits_free(ta);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shell_script_and_command),
      cmocka_unit_test(other_kinds_hash_the_section_without_secrets),
      cmocka_unit_test(table_hands_over_at_start),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

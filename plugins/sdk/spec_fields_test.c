/* The SDK's spec field helper: aliases, each typed getter's accept and refuse cases with the
 * exact "FIELD: PROBLEM" text, unknown keys, durations, and the parsed view's errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "muster_plugin.h"
#include "spec_fields.h"

static json_t *doc(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_ALLOW_NUL, &je); /* as flink's JSON may carry */
  if (j == NULL) fail_msg("bad test JSON %s: %s", text, je.text);
  return j;
}

static void aliases_and_nulls(void **state) {
  (void)state;
  json_t *o = doc("{\"maxRetries\": 3, \"max_body\": \"1M\", \"gone\": null}");
  assert_int_equal(json_integer_value(muster_field_get(o, "maxRetries", "max_retries")), 3);
  assert_string_equal(json_string_value(muster_field_get(o, "maxBody", "max_body")), "1M");
  assert_null(muster_field_get(o, "gone", NULL));
  assert_null(muster_field_get(o, "absent", "also_absent"));
  json_t *arr = doc("[1]");
  assert_null(muster_field_get(arr, "x", NULL));
  json_decref(arr);
  json_decref(o);
}

static void typed_getters(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  json_t *o =
      doc("{\"s\": \"text\", \"n\": 7, \"ns\": \"-12\", \"b\": true, \"bs\": \"false\", \"d\": \"1m30s\","
          " \"l\": [1, 2], \"o\": {\"k\": \"v\"}, \"empty\": \"\"}");
  const char *s = "default";
  assert_int_equal(muster_field_string(o, "s", NULL, "t.s", &s, errbuf), 0);
  assert_string_equal(s, "text");
  s = "default";
  assert_int_equal(muster_field_string(o, "missing", NULL, "t.missing", &s, errbuf), 0);
  assert_string_equal(s, "default");
  int64_t n = 0;
  assert_int_equal(muster_field_int(o, "n", NULL, "t.n", 0, 10, &n, errbuf), 0);
  assert_int_equal(n, 7);
  assert_int_equal(muster_field_int(o, "ns", NULL, "t.ns", -100, 100, &n, errbuf), 0);
  assert_int_equal(n, -12);
  bool b = false;
  assert_int_equal(muster_field_bool(o, "b", NULL, "t.b", &b, errbuf), 0);
  assert_true(b);
  assert_int_equal(muster_field_bool(o, "bs", NULL, "t.bs", &b, errbuf), 0);
  assert_false(b);
  int64_t ms = -1;
  assert_int_equal(muster_field_duration(o, "d", NULL, "t.d", 1, &ms, errbuf), 0);
  assert_int_equal(ms, 90000);
  ms = -1;
  assert_int_equal(muster_field_duration(o, "empty", NULL, "t.empty", 1, &ms, errbuf), 0);
  assert_int_equal(ms, -1); /* "" is unset */
  json_t *l = NULL, *obj = NULL;
  assert_int_equal(muster_field_list(o, "l", NULL, "t.l", NULL, 2, &l, errbuf), 0);
  assert_int_equal(json_array_size(l), 2);
  assert_int_equal(muster_field_object(o, "o", NULL, "t.o", NULL, &obj, errbuf), 0);
  assert_string_equal(json_string_value(json_object_get(obj, "k")), "v");
  json_decref(o);
}

/* Each refusal names the field first, then the problem. */
static void refusals(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE];
  json_t *o =
      doc("{\"n\": \"7x\", \"big\": 101, \"s\": 1, \"b\": \"yes\", \"d\": \"soon\", \"d0\": \"0s\","
          " \"l\": {}, \"long\": [1, 2, 3], \"o\": [], \"nul\": \"a\\u0000b\"}");
  const char *s = NULL;
  int64_t n = 0, ms = 0;
  bool b = false;
  json_t *x = NULL;
  assert_int_equal(muster_field_int(o, "n", NULL, "t.n", 0, 100, &n, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.n: must be a number from 0 to 100");
  assert_int_equal(muster_field_int(o, "big", NULL, "t.big", 0, 100, &n, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.big: must be a number from 0 to 100");
  assert_int_equal(muster_field_string(o, "s", NULL, "t.s", &s, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.s: must be a string");
  assert_int_equal(muster_field_string(o, "nul", NULL, "t.nul", &s, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.nul: contains a NUL byte");
  assert_int_equal(muster_field_bool(o, "b", NULL, "t.b", &b, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.b: must be true or false");
  assert_int_equal(muster_field_duration(o, "d", NULL, "t.d", 0, &ms, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.d: bad duration \"soon\" (e.g. \"5s\", \"500ms\")");
  assert_int_equal(muster_field_duration(o, "d0", NULL, "t.d0", 1, &ms, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.d0: 0s is below the minimum of 1 ms");
  assert_int_equal(muster_field_list(o, "l", NULL, "t.l", "numbers", 10, &x, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.l: must be a list of numbers");
  assert_int_equal(muster_field_list(o, "long", NULL, "t.long", NULL, 2, &x, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.long: more than 2 entries");
  assert_int_equal(muster_field_object(o, "o", NULL, "t.o", "strings", &x, errbuf), -EINVAL);
  assert_string_equal(errbuf, "t.o: must be an object of strings");
  assert_null(x);
  json_decref(o);
}

static void unknown_keys(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE];
  static const char *const known[] = {"url", "maxRetries", "max_retries"};
  json_t *o = doc("{\"url\": \"u\", \"max_retries\": 1}");
  assert_int_equal(muster_fields_check_known(o, "http", known, 3, errbuf), 0);
  json_decref(o);
  o = doc("{\"url\": \"u\", \"max_retires\": 1}");
  assert_int_equal(muster_fields_check_known(o, "http", known, 3, errbuf), -EINVAL);
  assert_string_equal(errbuf, "http.max_retires: unknown field");
  json_decref(o);
}

static void durations(void **state) {
  (void)state;
  int64_t ms = 0;
  assert_int_equal(muster_duration_parse("2.5s", &ms), 0);
  assert_int_equal(ms, 2500);
  assert_int_equal(muster_duration_parse("1h1m1s1ms", &ms), 0);
  assert_int_equal(ms, 3661001);
  assert_int_equal(muster_duration_parse("7", &ms), 0);
  assert_int_equal(ms, 7000);
  assert_int_equal(muster_duration_parse("2d", &ms), 0);
  assert_int_equal(ms, 172800000);
  const char *bad[] = {"", "-1s", "1x", "s", "1s2", "99999999999999d"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (muster_duration_parse(bad[i], &ms) == 0) fail_msg("\"%s\" parsed", bad[i]);
}

static void view(void **state) {
  (void)state;
  char errbuf[MUSTER_ERRBUF_SIZE];
  muster_spec_view v;
  assert_int_equal(
      muster_spec_view_open("{\"secrets\":[{\"name\":\"A\",\"value\":\"x\"}]}", "{\"url\":\"u\"}", "http", &v, errbuf),
      0);
  assert_int_equal(json_array_size(v.secrets), 1);
  assert_string_equal(json_string_value(json_object_get(v.config, "url")), "u");
  muster_spec_view_close(&v);
  assert_int_equal(muster_spec_view_open(NULL, NULL, "http", &v, errbuf), 0);
  assert_null(v.secrets);
  muster_spec_view_close(&v);
  struct {
    const char *spec, *config, *want;
  } cases[] = {
      {"{", "{}", "spec: bad JSON: "},
      {"{}", "{", "spark: bad JSON: "},
      {"[]", "{}", "spec: must be an object"},
      {"{}", "[1]", "spark: must be an object"},
      {"{\"secrets\":{}}", "{}", "secrets: must be a list"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    assert_int_equal(muster_spec_view_open(cases[i].spec, cases[i].config, "spark", &v, errbuf), -EINVAL);
    if (strncmp(errbuf, cases[i].want, strlen(cases[i].want)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s...\"", i, errbuf, cases[i].want);
    muster_spec_view_close(&v);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(aliases_and_nulls), cmocka_unit_test(typed_getters), cmocka_unit_test(refusals),
      cmocka_unit_test(unknown_keys),      cmocka_unit_test(durations),     cmocka_unit_test(view),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

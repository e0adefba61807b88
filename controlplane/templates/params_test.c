/* Template params against tables: declarations refused with the param named, dispatch args
 * resolved with defaults, a missing required or unknown param refused naming it, the 1 MiB
 * payload bound, ${param.KEY} replaced in text and in every string field of a job spec,
 * "$${" left alone (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/templates/params.h"

static const mu_template_param decls[] = {
    {.name = "version", .required = 1},
    {.name = "region", .default_value = "eu"},
    {.name = "extra", .default_value = ""},
};
#define N_DECLS (sizeof decls / sizeof *decls)

static void resolve_ok(const char *const *args, size_t n, mu_template_values *v) {
  mu_err err = {0};
  int rc = mu_template_values_resolve(decls, N_DECLS, args, n, v, &err);
  if (rc != 0) fail_msg("resolve: %s", err.msg);
}

static void test_check_decls(void **state) {
  (void)state;
  mu_err err = {0};
  assert_int_equal(mu_template_params_check(decls, N_DECLS, &err), 0);
  struct {
    mu_template_param d[2];
    size_t n;
    const char *want;
  } bad[] = {
      {{{.name = "a b"}}, 1, "params[0] 'a b': a name is"},
      {{{.name = ""}}, 1, "params[0] '': a name is"},
      {{{.name = "x", .required = 1, .default_value = "1"}},
       1,
       "params[0] 'x': a required param cannot have a default"},
      {{{.name = "x"}, {.name = "x"}}, 2, "params[1] 'x': declared twice (params[0])"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mu_err_clear(&err);
    assert_int_equal(mu_template_params_check(bad[i].d, bad[i].n, &err), MU_EINVAL);
    if (strstr(err.msg, bad[i].want) == NULL) fail_msg("case %zu: got '%s'", i, err.msg);
  }
}

static void test_resolve_defaults(void **state) {
  (void)state;
  const char *args[] = {"version=4.2=rc1"};
  mu_template_values v;
  resolve_ok(args, 1, &v);
  assert_int_equal(v.n, 3);
  assert_string_equal(mu_template_values_get(&v, "version", 7), "4.2=rc1");
  assert_string_equal(mu_template_values_get(&v, "region", 6), "eu");
  assert_string_equal(mu_template_values_get(&v, "extra", 5), "");
  assert_null(mu_template_values_get(&v, "other", 5));
  mu_template_values_free(&v);
  const char *args2[] = {"region=us", "version=", "extra=x"};
  resolve_ok(args2, 3, &v);
  assert_string_equal(mu_template_values_get(&v, "region", 6), "us");
  assert_string_equal(mu_template_values_get(&v, "version", 7), "");
  mu_template_values_free(&v);
}

static void test_resolve_refused(void **state) {
  (void)state;
  struct {
    const char *args[3];
    size_t n;
    int rc;
    const char *want;
  } bad[] = {
      {{"region=us"}, 1, MU_EINVAL, "missing required param 'version'"},
      {{"version=1", "colour=red"},
       2,
       MU_EINVAL,
       "unknown param 'colour' (the template declares: version, region, extra)"},
      {{"version=1", "version=2"}, 2, MU_EINVAL, "param 'version' given twice"},
      {{"version"}, 1, MU_EINVAL, "'version': a param is given as key=value"},
      {{"=x"}, 1, MU_EINVAL, "a param is given as key=value"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mu_err err = {0};
    mu_template_values v;
    assert_int_equal(mu_template_values_resolve(decls, N_DECLS, bad[i].args, bad[i].n, &v, &err), bad[i].rc);
    if (strstr(err.msg, bad[i].want) == NULL) fail_msg("case %zu: got '%s'", i, err.msg);
    assert_int_equal(v.n, 0);
  }
  /* every missing required param is named */
  const mu_template_param two[] = {{.name = "a", .required = 1}, {.name = "b", .required = 1}};
  mu_err err = {0};
  mu_template_values v;
  assert_int_equal(mu_template_values_resolve(two, 2, NULL, 0, &v, &err), MU_EINVAL);
  assert_string_equal(err.msg, "missing required params 'a', 'b'");
}

static void test_payload_bound(void **state) {
  (void)state;
  size_t big = MU_TEMPLATE_PAYLOAD_MAX - 8;
  char *arg = malloc(big + 16);
  memcpy(arg, "version=", 8);
  memset(arg + 8, 'v', big);
  arg[8 + big] = '\0';
  const char *args[] = {arg};
  mu_template_values v;
  resolve_ok(args, 1, &v); /* just under 1 MiB with the default "eu" */
  assert_int_equal(v.bytes, big + 2);
  mu_template_values_free(&v);
  const char *args2[] = {arg, "extra=0123456789"};
  mu_err err = {0};
  assert_int_equal(mu_template_values_resolve(decls, N_DECLS, args2, 2, &v, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "more than 1048576 bytes (at 'extra')"));
  free(arg);
}

static void test_subst_text(void **state) {
  (void)state;
  const char *args[] = {"version=4.2"};
  mu_template_values v;
  resolve_ok(args, 1, &v);
  struct {
    const char *in, *want; /* want NULL: unchanged */
  } cases[] = {
      {"deploy ${param.version} to ${param.region}", "deploy 4.2 to eu"},
      {"${param.version}${param.version}", "4.24.2"},
      {"x${param.extra}y", "xy"},
      {"literal $${param.version} stays", NULL},
      {"shell ${HOME} ${x:-y} ${build.out} ${param.} ${param.a b}", NULL},
      {"no refs", NULL},
      {"${param.version", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *out = (char *)"?";
    mu_err err = {0};
    assert_int_equal(mu_template_subst_text(cases[i].in, &v, &out, &err), 0);
    if (cases[i].want == NULL) {
      assert_null(out);
    } else {
      assert_non_null(out);
      assert_string_equal(out, cases[i].want);
      free(out);
    }
  }
  char *out = NULL;
  mu_err err = {0};
  assert_int_equal(mu_template_subst_text("a ${param.nope} b", &v, &out, &err), MU_EINVAL);
  assert_string_equal(err.msg, "${param.nope}: the template declares no param 'nope'");
  assert_null(out);
  mu_template_values_free(&v);
}

static void test_subst_text_value_not_rescanned(void **state) {
  (void)state;
  const mu_template_param d[] = {{.name = "a", .default_value = "${param.b}"}, {.name = "b", .default_value = "B"}};
  mu_template_values v;
  mu_err err = {0};
  assert_int_equal(mu_template_values_resolve(d, 2, NULL, 0, &v, &err), 0);
  char *out = NULL;
  assert_int_equal(mu_template_subst_text("${param.a}/${param.b}", &v, &out, &err), 0);
  assert_string_equal(out, "${param.b}/B");
  free(out);
  mu_template_values_free(&v);
}

static void collect(void *ud, const char *key, size_t len) {
  char *buf = ud;
  strncat(buf, key, len);
  strcat(buf, ";");
}

static void test_refs_each(void **state) {
  (void)state;
  char keys[128] = "";
  mu_template_refs_each("${param.a} $${param.b} ${param.c-d}x ${other.e}", collect, keys);
  assert_string_equal(keys, "a;c-d;");
}

/* A job spec with malloc'ed strings, as protobuf_c_message_unpack makes them. */
static Muster__V1__JobSpec *spec_new(void) {
  Muster__V1__JobSpec *spec = calloc(1, sizeof *spec);
  muster__v1__job_spec__init(spec);
  spec->name = strdup("deploy-${param.version}");
  spec->n_tasks = 1;
  spec->tasks = calloc(1, sizeof *spec->tasks);
  Muster__V1__TaskSpec *t = calloc(1, sizeof *t);
  muster__v1__task_spec__init(t);
  t->name = strdup("run");
  t->type = strdup("shell");
  Muster__V1__ShellTask *sh = calloc(1, sizeof *sh);
  muster__v1__shell_task__init(sh);
  sh->script = strdup("echo ${param.region} $${param.version}");
  t->kind_case = MUSTER__V1__TASK_SPEC__KIND_SHELL;
  t->shell = sh;
  t->n_env = 1;
  t->env = calloc(1, sizeof *t->env);
  Muster__V1__TaskSpec__EnvEntry *e = calloc(1, sizeof *e);
  muster__v1__task_spec__env_entry__init(e);
  e->key = strdup("VERSION");
  e->value = strdup("${param.version}");
  t->env[0] = e;
  spec->tasks[0] = t;
  return spec;
}

static void test_subst_spec(void **state) {
  (void)state;
  const char *args[] = {"version=7", "region=us"};
  mu_template_values v;
  resolve_ok(args, 2, &v);
  Muster__V1__JobSpec *spec = spec_new();
  mu_err err = {0};
  assert_int_equal(mu_template_subst_spec(spec, &v, &err), 0);
  assert_string_equal(spec->name, "deploy-7");
  assert_string_equal(spec->tasks[0]->shell->script, "echo us $${param.version}");
  assert_string_equal(spec->tasks[0]->env[0]->value, "7");
  assert_string_equal(spec->tasks[0]->env[0]->key, "VERSION");
  protobuf_c_message_free_unpacked(&spec->base, NULL);

  spec = spec_new();
  free(spec->tasks[0]->shell->script);
  spec->tasks[0]->shell->script = strdup("echo ${param.colour}");
  assert_int_equal(mu_template_subst_spec(spec, &v, &err), MU_EINVAL);
  assert_string_equal(err.msg,
                      "tasks[0].shell.script: ${param.colour}: the template declares no param "
                      "'colour'");
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  mu_template_values_free(&v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_decls),     cmocka_unit_test(test_resolve_defaults),
      cmocka_unit_test(test_resolve_refused), cmocka_unit_test(test_payload_bound),
      cmocka_unit_test(test_subst_text),      cmocka_unit_test(test_subst_text_value_not_rescanned),
      cmocka_unit_test(test_refs_each),       cmocka_unit_test(test_subst_spec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

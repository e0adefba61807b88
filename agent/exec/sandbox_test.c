/* Tests for sandbox.c: the spec's sandbox section (each bad field named), the agent's policy
 * (forced types, the network and writable paths a forced type may not widen) and the
 * muster-exec options made from them. The sandbox itself is tested end to end in
 * integration/sandbox_test.py (it needs root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/sandbox.h"

static int parse(const char *json, mu_sandbox_spec *s, mu_err *err) {
  json_t *root = json_loads(json, 0, NULL);
  assert_non_null(root);
  memset(err, 0, sizeof *err);
  int rc = mu_sandbox_spec_parse(root, s, err);
  json_decref(root);
  return rc;
}

static void bad_fields_named(void **state) {
  (void)state;
  static const struct {
    const char *json, *want;
  } cases[] = {
      {"{\"sandbox\":[]}", "sandbox: must be an object"},
      {"{\"sandbox\":{\"network\":\"bridge\"}}", "sandbox.network: expected none or host"},
      {"{\"sandbox\":{\"readOnlyRoot\":\"yes\"}}", "sandbox.readOnlyRoot: must be true or false"},
      {"{\"sandbox\":{\"writable\":[\"srv\"]}}", "sandbox.writable[0]: 'srv' must be an absolute host path"},
      {"{\"sandbox\":{\"hidden\":[\"/\"]}}", "sandbox.hidden[0]: '/' is not allowed"},
      {"{\"sandbox\":{\"hidden\":[\"/a\",\"/a/../etc\"]}}", "sandbox.hidden[1]: '/a/../etc' must not contain '..'"},
      {"{\"sandbox\":{\"writable\":\"/a\"}}", "sandbox.writable: must be a list of paths"},
      {"{\"sandbox\":{\"hostPid\":1}}", "sandbox.hostPid: must be true or false"},
      {"{\"sandbox\":{\"seccompUnconfined\":\"no\"}}", "sandbox.seccompUnconfined: must be true or false"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mu_sandbox_spec s;
    mu_err err;
    assert_int_equal(parse(cases[i].json, &s, &err), MU_EINVAL);
    if (strstr(err.msg, cases[i].want) == NULL) fail_msg("%s: got '%s'", cases[i].json, err.msg);
    mu_sandbox_spec_free(&s);
  }
  mu_sandbox_spec s;
  mu_err err;
  assert_int_equal(parse("{\"sandbox\":{\"hidden\":[\"/a..b\"], \"read_only_root\": true}}", &s, &err), 0);
  assert_true(s.set && s.read_only_root && s.n_hidden == 1 && s.network == NULL);
  mu_sandbox_spec_free(&s);
  assert_int_equal(parse("{}", &s, &err), 0);
  assert_false(s.set);
}

static char *joined(char **argv) {
  static char buf[2048];
  buf[0] = '\0';
  for (size_t i = 0; argv != NULL && argv[i] != NULL; i++) {
    strcat(buf, i ? " " : "");
    strcat(buf, argv[i]);
    free(argv[i]);
  }
  free(argv);
  return buf;
}

static void options_and_policy(void **state) {
  (void)state;
  if (geteuid() != 0) skip(); /* a sandbox needs root; the refusal is checked below */
  mu_sandbox_spec s;
  mu_err err;
  char **argv = NULL;
  /* no section, no policy: nothing */
  assert_int_equal(parse("{}", &s, &err), 0);
  assert_int_equal(mu_sandbox_args(&s, "shell", NULL, "/sp", "/sp/work/t", &argv, &err), 0);
  assert_null(argv);
  /* forced by the policy: the defaults (network none, read-only), the spool hidden, the task
   * dir and the policy's paths writable */
  static const char *const forced[] = {"shell"}, *const rw[] = {"/srv"}, *const hide[] = {"/etc/muster"};
  mu_sandbox_policy pol = {.force_types = forced,
                           .n_force_types = 1,
                           .read_only_root = true,
                           .writable = rw,
                           .n_writable = 1,
                           .hidden = hide,
                           .n_hidden = 1};
  assert_int_equal(mu_sandbox_args(&s, "shell", &pol, "/sp", "/sp/work/t", &argv, &err), 0);
  assert_string_equal(joined(argv),
                      "--sb-net none --sb-ro-root --sb-pid --sb-seccomp --sb-hide /sp --sb-hide /etc/muster "
                      "--sb-rw /sp/work/t --sb-rw /srv");
  assert_int_equal(mu_sandbox_args(&s, "python", &pol, "/sp", "/sp/work/t", &argv, &err), 0);
  assert_null(argv);
  mu_sandbox_spec_free(&s);
  /* a forced type may not widen: host network, a writable path outside the policy's */
  assert_int_equal(parse("{\"sandbox\":{\"network\":\"host\"}}", &s, &err), 0);
  assert_int_equal(mu_sandbox_args(&s, "shell", &pol, "/sp", NULL, &argv, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "sandbox.network: host is not allowed for shell tasks"));
  assert_int_equal(mu_sandbox_args(&s, "python", &pol, "/sp", "/sp/work/t", &argv, &err), 0);
  assert_string_equal(joined(argv),
                      "--sb-ro-root --sb-pid --sb-seccomp --sb-hide /sp --sb-hide /etc/muster "
                      "--sb-rw /sp/work/t --sb-rw /srv");
  mu_sandbox_spec_free(&s);
  /* the opt-outs: no pid namespace, no seccomp filter; never for a forced type */
  assert_int_equal(parse("{\"sandbox\":{\"hostPid\":true,\"seccomp_unconfined\":true}}", &s, &err), 0);
  assert_true(s.host_pid && s.seccomp_unconfined);
  assert_int_equal(mu_sandbox_args(&s, "python", NULL, "/sp", "/sp/work/t", &argv, &err), 0);
  assert_string_equal(joined(argv), "--sb-net none --sb-hide /sp --sb-rw /sp/work/t");
  assert_int_equal(mu_sandbox_args(&s, "shell", &pol, "/sp", NULL, &argv, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "sandbox.hostPid: not allowed for shell tasks"));
  mu_sandbox_spec_free(&s);
  assert_int_equal(parse("{\"sandbox\":{\"writable\":[\"/srv/out\",\"/srvx\"]}}", &s, &err), 0);
  assert_int_equal(mu_sandbox_args(&s, "shell", &pol, "/sp", NULL, &argv, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "sandbox.writable[1]: /srvx is not under the agent's sandbox_writable"));
  mu_sandbox_spec_free(&s);
  /* a container is never wrapped; asking for it is refused */
  assert_int_equal(parse("{\"sandbox\":{}}", &s, &err), 0);
  assert_int_equal(mu_sandbox_args(&s, "container", &pol, "/sp", NULL, &argv, &err), MU_EINVAL);
  mu_sandbox_spec_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bad_fields_named),
      cmocka_unit_test(options_and_policy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The CLI config file (cli_config.h): contexts load with their paths resolved, every problem
 * names the file and line, a missing file is no error, and use-context rewrites one line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli_config.h"

static char dir[64];

static void write_file(const char *name, const char *text, char *ret_path, size_t size) {
  snprintf(ret_path, size, "%s/%s", dir, name);
  FILE *f = fopen(ret_path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/cli_config_test.XXXXXX");
  assert_non_null(mkdtemp(dir));
  setenv("HOME", "/home/op", 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_contexts_load_with_paths_resolved(void **state) {
  (void)state;
  char path[128];
  write_file("ok.yaml",
             "# comment\ncurrent_context: prod\ncontexts:\n"
             "  prod:\n    addr: a:1,b:2\n    ca: tls/ca.crt\n    cert: ~/alice.crt\n"
             "    key: /k/alice.key\n    token: t0k\n    timeout: 5s\n"
             "  lab: {addr: \"c:3\"}\n  empty:\n",
             path, sizeof path);
  mu_cli_config cfg;
  mu_err err = {0};
  assert_int_equal(mu_cli_config_load(path, &cfg, &err), 0);
  assert_true(cfg.exists);
  assert_string_equal(cfg.current, "prod");
  assert_int_equal(cfg.n, 3);
  const mu_cli_context *p = mu_cli_config_find(&cfg, "prod");
  assert_non_null(p);
  assert_string_equal(p->addr, "a:1,b:2");
  char want[160];
  snprintf(want, sizeof want, "%s/tls/ca.crt", dir);
  assert_string_equal(p->ca, want);
  assert_string_equal(p->cert, "/home/op/alice.crt");
  assert_string_equal(p->key, "/k/alice.key");
  assert_string_equal(p->token, "t0k");
  assert_string_equal(p->timeout, "5s");
  const mu_cli_context *e = mu_cli_config_find(&cfg, "empty");
  assert_non_null(e);
  assert_null(e->addr);
  assert_null(mu_cli_config_find(&cfg, "nope"));
  char names[64];
  mu_cli_config_names(&cfg, names, sizeof names);
  assert_string_equal(names, "prod, lab, empty");
  mu_cli_config_free(&cfg);
}

static void test_missing_file_is_empty(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/absent.yaml", dir);
  mu_cli_config cfg;
  mu_err err = {0};
  assert_int_equal(mu_cli_config_load(path, &cfg, &err), 0);
  assert_false(cfg.exists);
  assert_int_equal(cfg.n, 0);
  mu_cli_config_free(&cfg);
}

static void expect_error(const char *text, const char *message) {
  char path[128], want[512];
  write_file("bad.yaml", text, path, sizeof path);
  mu_cli_config cfg;
  mu_err err = {0};
  assert_int_equal(mu_cli_config_load(path, &cfg, &err), MU_EINVAL);
  snprintf(want, sizeof want, "%s%s", path, message);
  assert_string_equal(err.msg, want);
  mu_cli_config_free(&cfg);
}

static void test_errors_name_file_and_line(void **state) {
  (void)state;
  expect_error("contexts:\n  a:\n    addr: x:1\n    adr: y:1\n",
               ":4: field 'contexts': context 'a': unknown field 'adr' (known: addr, ca, cert, "
               "key, token, timeout)");
  expect_error("contexts:\n  a: {addr: x:1}\n  b: {}\n  a: {}\n",
               ":4: field 'contexts': context 'a' given twice (first at line 2)");
  expect_error("contexts:\n  a:\n    addr: [x, y]\n",
               ":3: field 'contexts': context 'a': 'addr': expected a string, got a list");
  expect_error("contexts:\n  \"a b\": {}\n",
               ":2: field 'contexts': bad context name 'a b' (1-127 of A-Z a-z 0-9 . _ - @ :)");
  expect_error("context: {}\n", ":1: field 'context': unknown field (known fields: current_context, contexts)");
  char path[128], want[512];
  write_file("cur.yaml", "current_context: b\ncontexts:\n  a: {}\n", path, sizeof path);
  mu_cli_config cfg;
  mu_err err = {0};
  assert_int_equal(mu_cli_config_load(path, &cfg, &err), MU_EINVAL);
  snprintf(want, sizeof want, "%s: current_context 'b' is not among the contexts (a)", path);
  assert_string_equal(err.msg, want);
  mu_cli_config_free(&cfg);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_set_current_rewrites_one_line(void **state) {
  (void)state;
  char path[128];
  write_file("use.yaml", "# keep me\ncurrent_context: a   # old\ncontexts:\n  a: {}\n  b: {}\n", path, sizeof path);
  chmod(path, 0600);
  mu_err err = {0};
  assert_int_equal(mu_cli_config_set_current(path, "b", &err), 0);
  assert_string_equal(read_all(path), "# keep me\ncurrent_context: b\ncontexts:\n  a: {}\n  b: {}\n");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  write_file("add.yaml", "# top\n\ncontexts:\n  a: {}\n", path, sizeof path);
  assert_int_equal(mu_cli_config_set_current(path, "a", &err), 0);
  assert_string_equal(read_all(path), "# top\n\ncurrent_context: a\ncontexts:\n  a: {}\n");
  assert_int_equal(mu_cli_config_set_current(path, "no good", &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_contexts_load_with_paths_resolved),
      cmocka_unit_test(test_missing_file_is_empty),
      cmocka_unit_test(test_errors_name_file_and_line),
      cmocka_unit_test(test_set_current_rewrites_one_line),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

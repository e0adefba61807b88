/* Plugin loader tests: the shell and example plugins load from their built .so files; a
 * wrong ABI version, a missing descriptor and a duplicate type are refused with clear
 * messages while the directory scan keeps going; validate() errors name the bad field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/plugin_host.h"

static char shell_so[4096], echo_so[4096], bad_so[4096], nosym_so[4096], echo2_so[4096];

static void test_load_and_refuse(void **state) {
  (void)state;
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, shell_so, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, echo_so, &err), 0);
  assert_int_equal(mu_plugin_host_count(h), 2);
  const mu_plugin_info *i0 = mu_plugin_host_info(h, 0);
  assert_string_equal(i0->type, "shell");
  assert_string_equal(i0->version, "1.1.0");
  assert_int_equal(i0->abi_version, MUSTER_PLUGIN_ABI_VERSION);
  assert_string_equal(mu_plugin_host_info(h, 1)->type, "sleep-echo");

  assert_int_equal(mu_plugin_host_load(h, bad_so, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "ABI version 99"));
  assert_non_null(strstr(err.msg, bad_so));
  assert_int_equal(mu_plugin_host_load(h, nosym_so, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "muster_plugin_descriptor"));
  assert_int_equal(mu_plugin_host_load(h, shell_so, &err), MU_EEXIST);
  assert_non_null(strstr(err.msg, "already served"));
  assert_int_equal(mu_plugin_host_load(h, "/nonexistent/libx.so", &err), MU_EINVAL);
  assert_int_equal(mu_plugin_host_count(h), 2);

  assert_non_null(mu_plugin_host_find(h, "shell"));
  assert_null(mu_plugin_host_find(h, "http"));
  char types[128];
  mu_plugin_host_types(h, types, sizeof types);
  assert_string_equal(types, "shell, sleep-echo");
  mu_plugin_host_free(h);
}

static void test_load_dir_keeps_going(void **state) {
  (void)state;
  char dir[] = "/tmp/plugdir.XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *srcs[] = {bad_so, echo_so, nosym_so, shell_so};
  const char *names[] = {"a_bad.so", "b_echo.so", "c_nosym.so", "d_shell.so"};
  char link[4200];
  for (int i = 0; i < 4; i++) {
    snprintf(link, sizeof link, "%s/%s", dir, names[i]);
    assert_int_equal(symlink(srcs[i], link), 0);
  }
  snprintf(link, sizeof link, "%s/README.txt", dir);
  assert_int_equal(symlink(shell_so, link), 0); /* not *.so: ignored */
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  int refused = -1;
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load_dir(h, dir, &refused, &err), 0);
  assert_int_equal(refused, 2);
  assert_int_equal(mu_plugin_host_count(h), 2);
  assert_non_null(mu_plugin_host_find(h, "shell"));
  assert_non_null(mu_plugin_host_find(h, "sleep-echo"));
  assert_int_equal(mu_plugin_host_load_dir(h, "/nonexistent-dir", NULL, &err), MU_EIO);
  mu_plugin_host_free(h);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void expect_invalid(const muster_plugin *p, const char *config, const char *want) {
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  assert_int_not_equal(p->validate("{}", config, errbuf), 0);
  if (strstr(errbuf, want) == NULL) fail_msg("config %s: error \"%s\" lacks \"%s\"", config, errbuf, want);
}

static void test_validate(void **state) {
  (void)state;
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, shell_so, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, echo_so, &err), 0);
  const muster_plugin *sh = mu_plugin_host_find(h, "shell");
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  assert_int_equal(sh->validate("{}", "{\"interpreter\":\"bash\",\"script\":\"echo hi\",\"args\":[\"a\"]}", errbuf), 0);
  assert_int_equal(sh->validate("{}", "{\"command\":[\"ls\",\"-l\"]}", errbuf), 0);
  assert_int_equal(sh->validate("{}", "{\"script_file\":\"run.sh\",\"interpreter\":\"dash\"}", errbuf), 0);
  /* an absolute path must be on MUSTER_SHELL_INTERPRETERS (unset here) */
  expect_invalid(sh, "{\"script_file\":\"run.sh\",\"interpreter\":\"/bin/sh\"}", "not on the interpreter allow-list");
  expect_invalid(sh, "{\"interpreter\":\"fish\",\"script\":\"x\"}", "shell.interpreter: unknown interpreter \"fish\"");
  expect_invalid(sh, "{\"script\":\"\"}", "shell.script: empty");
  expect_invalid(sh, "{}", "give one of script");
  expect_invalid(sh, "{\"script\":\"a\",\"command\":[\"b\"]}", "only one");
  expect_invalid(sh, "{\"scriptFile\":\"../etc/passwd\"}", "shell.scriptFile");
  expect_invalid(sh, "{\"script\":\"a\",\"args\":[1]}", "shell.args[0]");
  expect_invalid(sh, "{\"script\":\"a\",\"shebang\":1}", "shell.shebang: unknown field");
  const muster_plugin *ex = mu_plugin_host_find(h, "sleep-echo");
  expect_invalid(ex, "{\"count\":2}", "config.message");
  expect_invalid(ex, "{\"message\":\"m\",\"count\":0}", "config.count");
  expect_invalid(ex, "not json", "not JSON");
  mu_plugin_host_free(h);
}

/* 1 when path is mapped into this process (/proc/self/maps). */
static int mapped(const char *path) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[8192];
  int found = 0;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    char *nl = strchr(line, '\n');
    if (nl != NULL) *nl = '\0';
    size_t n = strlen(line), pl = strlen(path);
    found = n >= pl && strcmp(line + n - pl, path) == 0;
  }
  fclose(f);
  return found;
}

/* Hot upgrade: a task holding v1 keeps it loaded after v2 becomes active; v1 is unloaded
 * (gone from /proc/self/maps) when that task releases it; a rollback while v2 is held brings
 * v1 back and retires v2; a .so whose type differs from the one asked for is refused. */
static void test_hot_upgrade(void **state) {
  (void)state;
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  int replaced = -1;
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_upgrade(h, echo_so, "sleep-echo", &replaced, &err), 0);
  assert_int_equal(replaced, 0);
  const muster_plugin *v1 = mu_plugin_host_acquire(h, "sleep-echo");
  assert_string_equal(v1->version, "0.1.0");
  assert_int_equal(mu_plugin_host_upgrade(h, echo2_so, "sleep-echo", &replaced, &err), 0);
  assert_int_equal(replaced, 1);
  assert_int_equal(mu_plugin_host_count(h), 1);
  assert_string_equal(mu_plugin_host_info(h, 0)->version, "2.0.0");
  assert_string_equal(mu_plugin_host_find(h, "sleep-echo")->version, "2.0.0");
  assert_int_equal(mu_plugin_host_retired(h), 1);
  assert_true(mapped(echo_so));
  assert_true(mapped(echo2_so));
  assert_string_equal(v1->type, "sleep-echo"); /* still callable: its task runs on */
  mu_plugin_host_release(h, v1);
  assert_int_equal(mu_plugin_host_retired(h), 0);
  assert_false(mapped(echo_so));

  /* rollback while a task runs on v2 */
  const muster_plugin *v2 = mu_plugin_host_acquire(h, "sleep-echo");
  assert_int_equal(mu_plugin_host_upgrade(h, echo_so, "sleep-echo", &replaced, &err), 0);
  assert_string_equal(mu_plugin_host_find(h, "sleep-echo")->version, "0.1.0");
  assert_int_equal(mu_plugin_host_upgrade(h, echo_so, "sleep-echo", &replaced, &err), MU_EEXIST);
  /* and forward again to the retired v2 its task still holds: the same entry comes back */
  assert_int_equal(mu_plugin_host_upgrade(h, echo2_so, "sleep-echo", &replaced, &err), 0);
  assert_ptr_equal(mu_plugin_host_find(h, "sleep-echo"), v2);
  assert_int_equal(mu_plugin_host_retired(h), 0); /* v1 had no task: unloaded at once */
  assert_false(mapped(echo_so));
  mu_plugin_host_release(h, v2);
  assert_true(mapped(echo2_so)); /* active: stays */

  assert_int_equal(mu_plugin_host_upgrade(h, shell_so, "sleep-echo", &replaced, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "descriptor says type \"shell\", plugin.yaml says \"sleep-echo\""));
  assert_false(mapped(shell_so));
  mu_plugin_host_free(h);
  assert_false(mapped(echo2_so));
}

/* A built-in type upgrades the same way: the shell loaded from the plugin dir is replaced by
 * a copy deployed elsewhere, and the original is unloaded. */
static void test_builtin_upgrade(void **state) {
  (void)state;
  char dir[] = "/tmp/builtin_up.XXXXXX", copy[64], cmd[200];
  assert_non_null(mkdtemp(dir));
  snprintf(copy, sizeof copy, "%s/libmuster_shell.so", dir);
  snprintf(cmd, sizeof cmd, "cp %s %s", shell_so, copy);
  assert_int_equal(system(cmd), 0);
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  int replaced = 0;
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, shell_so, &err), 0);
  assert_int_equal(mu_plugin_host_upgrade(h, copy, "shell", &replaced, &err), 0);
  assert_int_equal(replaced, 1);
  assert_string_equal(mu_plugin_host_path(h, "shell"), copy);
  assert_true(mapped(copy));
  assert_false(mapped(shell_so));
  mu_plugin_host_free(h);
  unlink(copy);
  rmdir(dir);
}

int main(int argc, char **argv) {
  if (argc < 6 || !realpath(argv[5], echo2_so) || !realpath(argv[1], shell_so) || !realpath(argv[2], echo_so) ||
      !realpath(argv[3], bad_so) || !realpath(argv[4], nosym_so)) {
    fprintf(stderr, "usage: plugin_host_test SHELL.so ECHO.so BAD_ABI.so NO_SYMBOL.so ECHO_V2.so\n");
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_and_refuse), cmocka_unit_test(test_load_dir_keeps_going),
      cmocka_unit_test(test_validate),        cmocka_unit_test(test_hot_upgrade),
      cmocka_unit_test(test_builtin_upgrade),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

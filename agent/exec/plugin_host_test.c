/* Plugin loader tests: the shell and example plugins load from their built .so files; a
 * wrong ABI version, a missing descriptor and a duplicate type are refused with clear
 * messages while the directory scan keeps going; validate() errors name the bad field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/plugin_env.h"
#include "agent/exec/plugin_host.h"

static char shell_so[4096], echo_so[4096], bad_so[4096], nosym_so[4096], echo2_so[4096], greet_so[4096], v1_so[4096];

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
  assert_int_equal(mu_plugin_host_info(h, 1)->abi_version, 1); /* an SDK v1 plugin still loads */

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

/* SDK v2 in process: configure() (refusals keep the old config), health(), describe(), and
 * the plugin's own metrics in the registry the agent renders, prefixed per plugin; an ABI 1
 * plugin beside it has an env too and takes configure as a no-op. */
static void test_sdk_v2(void **state) {
  (void)state;
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, greet_so, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, echo_so, &err), 0);
  muster_plugin_env *env = mu_plugin_host_env(h, "greet");
  assert_non_null(env);
  char reason[MUSTER_ERRBUF_SIZE];
  assert_int_equal(mu_plugin_env_health(env, reason, sizeof reason), MUSTER_HEALTH_FAIL); /* not configured yet */
  assert_string_equal(reason, "not configured");
  assert_int_equal(mu_plugin_host_configure(h, "greet", "{\"greeting\":\"hi\"}", &err), 0);
  assert_string_equal(mu_plugin_env_config(env), "{\"greeting\":\"hi\"}");
  assert_int_equal(mu_plugin_env_health(env, reason, sizeof reason), MUSTER_HEALTH_OK);
  assert_int_equal(mu_plugin_host_configure(h, "greet", "{\"greeting\":5}", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "plugin 'greet': configuration refused: greet: config.greeting"));
  assert_string_equal(mu_plugin_env_config(env), "{\"greeting\":\"hi\"}"); /* the old one stays */
  assert_int_equal(mu_plugin_host_configure(h, "greet", "{\"greeting\":\"\"}", &err), 0);
  assert_int_equal(mu_plugin_env_health(env, reason, sizeof reason), MUSTER_HEALTH_WARN);
  assert_non_null(strstr(reason, "greeting is empty"));
  assert_non_null(strstr(mu_plugin_env_describe(env), "\"name\":{\"type\":\"string\",\"required\":true"));
  assert_int_equal(mu_plugin_host_configure(h, "sleep-echo", "{\"x\":1}", &err), 0); /* v1: nothing to call */
  assert_string_equal(mu_plugin_env_describe(mu_plugin_host_env(h, "sleep-echo")), "");
  assert_int_equal(mu_plugin_env_health(mu_plugin_host_env(h, "sleep-echo"), reason, sizeof reason), MUSTER_HEALTH_OK);
  assert_int_equal(mu_plugin_host_configure(h, "nope", "{}", &err), MU_ENOENT);
  assert_int_equal(mu_plugin_host_configure(h, "greet", "{\"greeting\":\"yo\"}", &err), 0);

  /* metrics: the family registered at the first configure, updated through the API */
  const muster_plugin_api *api = mu_plugin_api();
  muster_metric *m = mu_plugin_env_metric(env, "greetings_total");
  assert_non_null(m);
  const char *v[] = {"ok"};
  api->metric_add(m, v, 2);
  char eb[MUSTER_ERRBUF_SIZE];
  muster_metric_desc bad = {"Bad-Name", "x", MUSTER_METRIC_COUNTER, NULL, NULL, 0};
  assert_int_equal(api->metric_register(env, &bad, &m, eb), -EINVAL);
  static const char *const many[] = {"a", "b", "c", "d", NULL};
  muster_metric_desc too_many = {"x_total", "x", MUSTER_METRIC_COUNTER, many, NULL, 0};
  assert_int_equal(api->metric_register(env, &too_many, &m, eb), -EINVAL);
  mu_prom p = {0};
  mu_metrics_render_as(mu_plugin_host_metrics(h), "muster_agent_plugin_series_dropped_total", &p);
  assert_non_null(strstr(p.buf, "# TYPE muster_plugin_greet_greetings_total counter"));
  assert_non_null(strstr(p.buf, "muster_plugin_greet_greetings_total{outcome=\"ok\"} 2"));
  assert_non_null(strstr(p.buf, "# TYPE muster_plugin_greet_name_length_bytes histogram"));
  assert_non_null(
      strstr(p.buf, "muster_agent_plugin_series_dropped_total{metric=\"muster_plugin_greet_greetings_total\"} 0"));
  /* bounded label sets: past MUSTER_METRIC_MAX_SERIES values are dropped and counted */
  m = mu_plugin_env_metric(env, "greetings_total");
  for (int i = 0; i < MUSTER_METRIC_MAX_SERIES + 5; i++) {
    char val[16];
    snprintf(val, sizeof val, "v%d", i);
    const char *vv[] = {val};
    api->metric_add(m, vv, 1);
  }
  mu_prom_free(&p);
  memset(&p, 0, sizeof p);
  mu_metrics_render_as(mu_plugin_host_metrics(h), "muster_agent_plugin_series_dropped_total", &p);
  assert_non_null(
      strstr(p.buf, "muster_agent_plugin_series_dropped_total{metric=\"muster_plugin_greet_greetings_total\"} 6"));
  mu_prom_free(&p);
  mu_plugin_host_free(h); /* greet's shutdown() frees its state (ASan would say otherwise) */
}

/* The shell type's options through configure() (they were only environment variables): an
 * allowed interpreter path, refusals naming the key, the previous configuration kept. */
static void test_shell_configure(void **state) {
  (void)state;
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, shell_so, &err), 0);
  const muster_plugin *sh = mu_plugin_host_find(h, "shell");
  const char *abs_spec = "{\"script_file\":\"run.sh\",\"interpreter\":\"/bin/sh\"}";
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  assert_int_not_equal(sh->validate("{}", abs_spec, errbuf), 0);
  assert_int_equal(mu_plugin_host_configure(h, "shell", "{\"interpreters\":[\"/bin/sh\",\"/bin/bash\"]}", &err), 0);
  assert_int_equal(sh->validate("{}", abs_spec, errbuf), 0);
  assert_int_equal(mu_plugin_host_configure(h, "shell", "{\"interpreters\":[\"sh\"]}", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "shell: config.interpreters: \"sh\" is not an absolute path"));
  assert_int_equal(mu_plugin_host_configure(h, "shell", "{\"policy\":\"/nonexistent/p.json\"}", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "shell: config.policy: "));
  assert_int_equal(mu_plugin_host_configure(h, "shell", "{\"interpretrs\":[]}", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "shell config.interpretrs: unknown field"));
  assert_int_equal(sh->validate("{}", abs_spec, errbuf), 0); /* the refusals kept the list */
  assert_int_equal(mu_plugin_host_configure(h, "shell", "{}", &err), 0);
  assert_int_not_equal(sh->validate("{}", abs_spec, errbuf), 0); /* back to the environment's (none) */
  mu_plugin_host_free(h);
}

/* A plugin built against the frozen SDK v1 header has the ABI 1 descriptor size: configure,
 * health and describe must not read past it (ASan would report a global-buffer-overflow). */
static void test_true_v1_binary(void **state) {
  (void)state;
  mu_plugin_host *h = NULL;
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&h, &err), 0);
  assert_int_equal(mu_plugin_host_load(h, v1_so, &err), 0);
  assert_int_equal(mu_plugin_host_info(h, 0)->abi_version, 1);
  assert_int_equal(mu_plugin_host_configure(h, "v1-old", "{\"anything\":1}", &err), 0);
  char reason[MUSTER_ERRBUF_SIZE];
  assert_int_equal(mu_plugin_env_health(mu_plugin_host_env(h, "v1-old"), reason, sizeof reason), MUSTER_HEALTH_OK);
  assert_string_equal(mu_plugin_env_describe(mu_plugin_host_env(h, "v1-old")), "");
  mu_plugin_host_free(h); /* no shutdown() read either */
}

int main(int argc, char **argv) {
  if (argc < 8 || !realpath(argv[1], shell_so) || !realpath(argv[2], echo_so) || !realpath(argv[3], bad_so) ||
      !realpath(argv[4], nosym_so) || !realpath(argv[5], echo2_so) || !realpath(argv[6], greet_so) ||
      !realpath(argv[7], v1_so)) {
    fprintf(stderr, "usage: plugin_host_test SHELL.so ECHO.so BAD_ABI.so NO_SYMBOL.so ECHO_V2.so GREET.so V1.so\n");
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_and_refuse), cmocka_unit_test(test_load_dir_keeps_going),
      cmocka_unit_test(test_validate),        cmocka_unit_test(test_hot_upgrade),
      cmocka_unit_test(test_builtin_upgrade), cmocka_unit_test(test_sdk_v2),
      cmocka_unit_test(test_shell_configure), cmocka_unit_test(test_true_v1_binary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

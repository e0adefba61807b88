/* Which plugins load where: shipped files in-process, others in a muster-plugin-host, the
 * agent config's plugins.TYPE.isolation over both, and no silent in-process fallback when the
 * host binary is missing. Real host processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/plugin/plugin_set.h"

static char host_bin[4096], shell_so[4096], echo_so[4096], echo2_so[4096], dir[256];

typedef struct fix {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_plugin_set *set;
  mu_labels settings;
  int closed;
} fix;

static void fix_init(fix *f, const char *settings, const char *host) {
  memset(f, 0, sizeof *f);
  uv_loop_init(&f->loop);
  mu_labels_init(&f->settings);
  mu_err err = {0};
  if (settings != NULL) assert_int_equal(mu_labels_parse(&f->settings, settings, 0, &err), 0);
  assert_int_equal(mu_plugin_host_new(&f->plugins, &err), 0);
  assert_int_equal(mu_plugin_set_new(&f->loop, f->plugins, &f->settings, host, NULL, &f->set, &err), 0);
}

static void on_closed(void *arg) { ((fix *)arg)->closed = 1; }

static void fix_free(fix *f) {
  mu_plugin_set_close(f->set, on_closed, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->closed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mu_plugin_host_free(f->plugins);
  mu_labels_free(&f->settings);
}

static const char *isolation_of(fix *f, const char *type) {
  for (size_t i = 0; i < mu_plugin_host_count(f->plugins); i++)
    if (strcmp(mu_plugin_host_info(f->plugins, i)->type, type) == 0)
      return mu_plugin_host_info(f->plugins, i)->isolation;
  return NULL;
}

static void test_defaults(void **state) {
  (void)state;
  fix f;
  fix_init(&f, NULL, host_bin);
  int refused = -1;
  mu_err err = {0};
  assert_int_equal(mu_plugin_set_load_dir(f.set, dir, &refused, &err), 0);
  assert_int_equal(refused, 0);
  assert_string_equal(isolation_of(&f, "shell"), "in-process");   /* shipped */
  assert_string_equal(isolation_of(&f, "sleep-echo"), "process"); /* third party */
  assert_non_null(mu_plugin_set_remote(f.set, "sleep-echo"));
  assert_null(mu_plugin_set_remote(f.set, "shell"));
  uint32_t hosts, up;
  uint64_t crashes;
  mu_plugin_set_totals(f.set, &hosts, &up, &crashes);
  assert_true(hosts == 1 && up == 1 && crashes == 0);
  fix_free(&f);
}

static void test_configured(void **state) {
  (void)state;
  fix f;
  fix_init(&f, "sleep-echo.isolation=in-process,shell.isolation=process", host_bin);
  mu_err err = {0};
  assert_int_equal(mu_plugin_set_load_dir(f.set, dir, NULL, &err), 0);
  assert_string_equal(isolation_of(&f, "shell"), "process");
  assert_string_equal(isolation_of(&f, "sleep-echo"), "in-process");
  assert_string_equal(mu_plugin_set_isolation(f.set, "http"), "in-process");
  assert_string_equal(mu_plugin_set_isolation(f.set, "whatever"), "process");
  fix_free(&f);
}

static void test_no_host_binary(void **state) {
  (void)state;
  fix f;
  fix_init(&f, NULL, NULL);
  mu_err err = {0};
  assert_int_equal(mu_plugin_set_load(f.set, echo_so, &err), MU_ENOTSUP);
  assert_non_null(strstr(err.msg, "muster-plugin-host was not found"));
  assert_non_null(strstr(err.msg, "plugins: {sleep-echo: {isolation: in-process}}"));
  assert_int_equal(mu_plugin_set_load(f.set, shell_so, &err), 0);
  assert_int_equal(mu_plugin_host_count(f.plugins), 1);
  fix_free(&f);
  fix_init(&f, "sleep-echo.isolation=in-process", NULL);
  assert_int_equal(mu_plugin_set_load(f.set, echo_so, &err), 0); /* trusted: in-process */
  assert_string_equal(isolation_of(&f, "sleep-echo"), "in-process");
  fix_free(&f);
}

/* A hot upgrade of an out-of-process type: v2 gets its own host process and serves new tasks;
 * v1's host keeps serving the task that holds it and is stopped when that task releases it; a
 * .so of another type is refused and its host process stopped. */
static void test_upgrade_out_of_process(void **state) {
  (void)state;
  fix f;
  fix_init(&f, NULL, host_bin);
  mu_err err = {0};
  assert_int_equal(mu_plugin_set_load_dir(f.set, dir, NULL, &err), 0);
  const muster_plugin *v1 = mu_plugin_host_acquire(f.plugins, "sleep-echo"); /* a task runs on v1 */
  assert_string_equal(v1->version, "0.1.0");
  assert_int_equal(mu_plugin_set_upgrade(f.set, echo2_so, "sleep-echo", &err), 0);
  assert_string_equal(mu_plugin_host_find(f.plugins, "sleep-echo")->version, "2.0.0");
  assert_string_equal(isolation_of(&f, "sleep-echo"), "process");
  assert_ptr_equal(mu_plugin_remote_descriptor(mu_plugin_set_remote(f.set, "sleep-echo")),
                   mu_plugin_host_find(f.plugins, "sleep-echo"));
  uint32_t hosts, up;
  uint64_t crashes;
  mu_plugin_set_totals(f.set, &hosts, &up, &crashes);
  assert_int_equal(hosts, 2);
  mu_plugin_host_release(f.plugins, v1); /* its last task ended */
  mu_plugin_set_totals(f.set, &hosts, &up, &crashes);
  assert_int_equal(hosts, 1);
  assert_int_equal(mu_plugin_set_upgrade(f.set, shell_so, "sleep-echo", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "descriptor says type \"shell\", plugin.yaml says \"sleep-echo\""));
  mu_plugin_set_totals(f.set, &hosts, &up, &crashes);
  assert_int_equal(hosts, 1);
  fix_free(&f);
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  if (!realpath(argv[1], host_bin) || !realpath(argv[2], shell_so) || !realpath(argv[3], echo_so) ||
      !realpath(argv[4], echo2_so))
    return 2;
  snprintf(dir, sizeof dir, "/tmp/plugin_set_test.XXXXXX");
  if (mkdtemp(dir) == NULL) return 2;
  char link[600];
  snprintf(link, sizeof link, "%s/libmuster_shell.so", dir);
  if (symlink(shell_so, link) != 0) return 2;
  snprintf(link, sizeof link, "%s/libsleep_echo.so", dir);
  if (symlink(echo_so, link) != 0) return 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_configured),
      cmocka_unit_test(test_no_host_binary),
      cmocka_unit_test(test_upgrade_out_of_process),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return rc;
}

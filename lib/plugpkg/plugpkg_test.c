/* plugin.yaml parsing and host checks: a good file parses with its schema as JSON; each bad
 * field is refused naming it; ABI, OS, arch and a missing requirement are refused naming the
 * rule; version ranges match as semver ranges do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/plugpkg/plugin_check.h"
#include "lib/plugpkg/plugin_state.h"
#include "lib/plugpkg/plugin_yaml.h"

static const char good[] =
    "type: sleep-echo\n"
    "version: 2.0.0\n"
    "abi_version: 1\n"
    "os: linux\n"
    "arch: amd64\n"
    "library: libsleep_echo.so\n"
    "requires: {binaries: [sh], interpreters: []}\n"
    "config_schema: {type: object, properties: {count: {type: integer, maximum: 1000}}}\n";

static mu_plugin_pkg *parse(const char *text, mu_err *err) {
  mu_plugin_pkg *p = NULL;
  int rc = mu_plugin_pkg_parse("plugin.yaml", text, strlen(text), &p, err);
  if (rc != 0) assert_null(p);
  return p;
}

static void test_good(void **state) {
  (void)state;
  mu_err err = {0};
  mu_plugin_pkg *p = parse(good, &err);
  assert_non_null(p);
  assert_string_equal(p->type, "sleep-echo");
  assert_string_equal(p->version, "2.0.0");
  assert_int_equal(p->abi_version, 1);
  assert_string_equal(p->library, "libsleep_echo.so");
  assert_int_equal(p->n_binaries, 1);
  assert_string_equal(p->binaries[0], "sh");
  assert_string_equal(p->config_schema_json,
                      "{\"properties\":{\"count\":{\"maximum\":1000,\"type\":\"integer\"}},\"type\":\"object\"}");
  char name[80];
  mu_plugin_pkg_bundle_name(p->type, name, sizeof name);
  assert_string_equal(name, "plugin-sleep-echo");
  mu_plugin_pkg_free(p);
}

static void refused(const char *text, const char *want) {
  mu_err err = {0};
  mu_plugin_pkg *p = parse(text, &err);
  if (p != NULL) fail_msg("accepted: %s", text);
  if (strstr(err.msg, want) == NULL) fail_msg("message '%s' lacks '%s'", err.msg, want);
}

static void test_bad_fields(void **state) {
  (void)state;
  refused("type: Sleep\nversion: 1\nabi_version: 1\nos: linux\narch: any\nlibrary: a.so\n", "field 'type'");
  refused("type: s\nversion: 1..2\nabi_version: 1\nos: linux\narch: any\nlibrary: a.so\n", "field 'version'");
  refused("type: s\nversion: 1\nabi_version: x\nos: linux\narch: any\nlibrary: a.so\n", "field 'abi_version'");
  refused("type: s\nversion: 1\nabi_version: 1\nos: linux\narch: any\nlibrary: ../a.so\n", "field 'library'");
  refused("type: s\nversion: 1\nabi_version: 1\nos: linux\narch: any\nlibrary: a.so\nfoo: 1\n", "unknown field");
  refused("type: s\nversion: 1\nabi_version: 1\nos: linux\narch: any\n", "'library' is required");
  refused("type: s\nversion: 1\nabi_version: 1\nos: linux\narch: any\nlibrary: a.so\nrequires: {binaries: [/bin/sh]}\n",
          "binaries[0]");
  refused("type: s\nversion: 1\nabi_version: 1\nos: linux\narch: any\nlibrary: a.so\nconfig_schema: [1]\n",
          "field 'config_schema'");
  refused("type: [s]\n", "field 'type'");
}

static void test_host_checks(void **state) {
  (void)state;
  mu_err err = {0};
  mu_plugin_pkg *p = parse(good, &err);
  assert_non_null(p);
  mu_plugin_host_facts host = {.abi_version = 1, .os = "linux", .arch = "x86_64", .path_env = "/usr/bin:/bin"};
  assert_int_equal(mu_plugin_pkg_check_host(p, &host, &err), 0);
  host.abi_version = 2;
  assert_int_equal(mu_plugin_pkg_check_host(p, &host, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "built for ABI version 1, this agent speaks 2"));
  host.abi_version = 1;
  host.arch = "aarch64";
  assert_int_equal(mu_plugin_pkg_check_host(p, &host, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "is for arch amd64, this host is aarch64"));
  host.arch = "x86_64";
  host.os = "freebsd";
  assert_int_equal(mu_plugin_pkg_check_host(p, &host, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "os linux"));
  host.os = "linux";
  host.path_env = "/nonexistent";
  assert_int_equal(mu_plugin_pkg_check_host(p, &host, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "requires binary 'sh', not found in PATH (/nonexistent)"));
  mu_plugin_pkg_free(p);
}

static void test_ranges(void **state) {
  (void)state;
  mu_err err = {0};
  assert_int_equal(mu_version_range_check(">=1.2 <2", &err), 0);
  assert_true(mu_version_range_match(">=1.2 <2", "1.2.0"));
  assert_true(mu_version_range_match(">=1.2 <2", "1.10"));
  assert_false(mu_version_range_match(">=1.2 <2", "2.0.0"));
  assert_false(mu_version_range_match(">=1.2 <2", "1.1.9"));
  assert_true(mu_version_range_match("1.4.0", "1.4"));
  assert_true(mu_version_range_match("!=1.3", "1.4"));
  assert_false(mu_version_range_match(">=1.2 <2", "garbage"));
  assert_int_equal(mu_version_range_check(">>1", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "bad comparison '>>1'"));
  assert_int_equal(mu_version_range_check("  ", &err), MU_EINVAL);
  assert_false(mu_version_range_match(">>1", "1"));
}

/* Deployed versions survive a save and load; a new version pushes the old one to previous. */
static void test_state(void **state) {
  (void)state;
  mu_plugin_state *s = calloc(2, sizeof *s);
  assert_non_null(s);
  mu_err err = {0};
  char dir[] = "/tmp/plugstate.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char file[64];
  snprintf(file, sizeof file, "%s/state.json", dir);
  assert_int_equal(mu_plugin_state_load(file, &s[0], &err), 0); /* missing: empty */
  assert_int_equal(s[0].n, 0);
  assert_int_equal(mu_plugin_state_set(&s[0], "sleep-echo", "0.1.0", "/p/v1.so", &err), 0);
  assert_int_equal(mu_plugin_state_set(&s[0], "sleep-echo", "2.0.0", "/p/v2.so", &err), 0);
  assert_int_equal(mu_plugin_state_save(file, &s[0], &err), 0);
  assert_int_equal(mu_plugin_state_load(file, &s[1], &err), 0);
  mu_plugin_state_entry *e = mu_plugin_state_find(&s[1], "sleep-echo");
  assert_non_null(e);
  assert_string_equal(e->version, "2.0.0");
  assert_string_equal(e->path, "/p/v2.so");
  assert_string_equal(e->prev_version, "0.1.0");
  assert_string_equal(e->prev_path, "/p/v1.so");
  const char *bad = "{\"types\":{\"x\":{\"version\":1}}}";
  assert_int_equal(mu_plugin_state_parse(bad, strlen(bad), &s[1], &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "types.x.version"));
  unlink(file);
  rmdir(dir);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good),   cmocka_unit_test(test_bad_fields), cmocka_unit_test(test_host_checks),
      cmocka_unit_test(test_ranges), cmocka_unit_test(test_state),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

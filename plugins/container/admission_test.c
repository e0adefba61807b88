/* The helper's admission (admission.h) without a registry: policy files as the plugin names
 * them, a manifest and a config as the pull has them. Each policy's violations under its
 * name, an absent cluster policy allowed, a missing or bad agent policy refused (fail
 * closed), a bundle's image named and pinned by content, the report written for the plugin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugins/container/admission.h"

static char dir[] = "/tmp/admission-test-XXXXXX";

static char *file(const char *name, const char *text) {
  static char path[4][256];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, 256, "%s/%s", dir, name);
  if (text != NULL) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
  }
  return p;
}

static json_t *config(const char *agent_policy, const char *cluster_policy, const char *network, const char *user) {
  json_t *cfg = json_pack("{s:s, s:s, s:[{s:s}], s:s}", "image", "127.0.0.1:5000/t/run:1", "network", network,
                          "volumes", "source", "/etc", "state_dir", file("state", NULL));
  if (user) json_object_set_new(cfg, "user", json_string(user));
  json_t *pf = json_array();
  if (agent_policy) json_array_append_new(pf, json_pack("{s:s, s:s}", "source", "agent", "path", agent_policy));
  if (cluster_policy)
    json_array_append_new(pf, json_pack("{s:s, s:s, s:b}", "source", "cluster", "path", cluster_policy, "optional", 1));
  json_object_set_new(cfg, "policy_files", pf);
  return cfg;
}

static void manifest(mu_manifest *m) {
  memset(m, 0, sizeof *m);
  m->config.size = 1000;
  m->n_layers = 2;
  m->layers[0].size = 3 << 20;
  m->layers[1].size = 1 << 20;
}

static int check(json_t *cfg, const char *image_user, mu_ctr_admission *adm, mu_err *err) {
  mu_imgref ref;
  mu_err perr = {0};
  assert_int_equal(mu_imgref_parse(json_string_value(json_object_get(cfg, "image")), NULL, &ref, &perr), 0);
  mu_ctr_admission_init(adm, cfg, &ref);
  mu_manifest m;
  manifest(&m);
  mu_image_config c;
  memset(&c, 0, sizeof c);
  c.user = (char *)image_user;
  return mu_ctr_admission_check(adm, NULL, "sha256:abc", &m, &c, err);
}

static void test_both_policies_named(void **state) {
  (void)state;
  json_t *cfg =
      config(file("agent.yaml", "registries: [\"127.0.0.1:5000/other/*\"]\nmax_image_size: 1M\n"),
             file("cluster.json", "{\"allow_host_network\": false, \"allowed_volumes\": [\"/srv/**\"]}"), "host", NULL);
  mu_ctr_admission adm;
  mu_err err = {0};
  assert_int_equal(check(cfg, "app", &adm, &err), MU_EPERM);
  assert_true(adm.refused);
  assert_non_null(strstr(adm.report,
                         "image 127.0.0.1:5000/t/run:1 refused by the admission policy: agent policy: "
                         "registries: 127.0.0.1:5000/t/run is not an allowed"));
  assert_non_null(strstr(adm.report, "; max_image_size: the image is 4.0 MiB compressed, over the 1.0 MiB allowed"));
  assert_non_null(strstr(adm.report,
                         "; cluster policy: allow_host_network: the task asks for network host; "
                         "allowed_volumes: host path /etc is not allowed (allowed: /srv/**)"));
  assert_string_equal(err.msg, adm.report);
  mu_ctr_admission_report(&adm);
  char text[MU_CTR_ADMISSION_REPORT_MAX] = "";
  FILE *f = fopen(file("state/report", NULL), "r");
  assert_non_null(f);
  assert_true(fread(text, 1, sizeof text - 1, f) > 0);
  fclose(f);
  assert_string_equal(text, adm.report);
  json_decref(cfg);
}

static void test_allowed_and_absent_cluster_policy(void **state) {
  (void)state;
  json_t *cfg = config(file("ok.yaml", "registries: [\"127.0.0.1:*/t/*\"]\nallow_root_user: false\n"),
                       file("absent.json", NULL), "none", NULL);
  mu_ctr_admission adm;
  mu_err err = {0};
  assert_int_equal(check(cfg, "app", &adm, &err), 0);
  assert_false(adm.refused);
  /* the same with the image's user root: refused; the task's own user allows it again */
  assert_int_equal(check(cfg, "", &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "allow_root_user: the image's user is root"));
  json_object_set_new(cfg, "user", json_string("1000"));
  assert_int_equal(check(cfg, "", &adm, &err), 0);
  json_decref(cfg);
  /* no policy at all */
  cfg = config(NULL, NULL, "host", "root");
  assert_int_equal(check(cfg, "", &adm, &err), 0);
  json_decref(cfg);
}

static void test_fail_closed(void **state) {
  (void)state;
  mu_ctr_admission adm;
  mu_err err = {0};
  json_t *cfg = config(file("missing.yaml", NULL), NULL, "none", NULL);
  assert_int_equal(check(cfg, "app", &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "the agent image policy cannot be used"));
  json_decref(cfg);
  cfg = config(NULL, file("newer.json", "{\"allow_everything\": true}"), "none", NULL);
  assert_int_equal(check(cfg, "app", &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "the cluster image policy cannot be used"));
  assert_non_null(strstr(adm.report, "field 'allow_everything': unknown key"));
  json_decref(cfg);
  /* no registry client: the signature is not checked, and refused saying so; max_severity
   * is left for after the layers (admission_scan.h): not named here, owed */
  cfg = config(file("sig.yaml", "require_signed: true\nmax_severity: HIGH\n"), NULL, "none", NULL);
  assert_int_equal(check(cfg, "app", &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "require_signed: signature not checked"));
  assert_null(strstr(adm.report, "max_severity"));
  assert_true(adm.scan_pending);
  json_decref(cfg);
  /* max_severity alone: allowed for now, the scan owed */
  cfg = config(file("sev.yaml", "max_severity: HIGH\n"), NULL, "none", NULL);
  assert_int_equal(check(cfg, "app", &adm, &err), 0);
  assert_true(adm.scan_pending);
  json_decref(cfg);
  cfg = config(file("net.yaml", "allow_host_network: false\n"), NULL, "none", NULL);
  assert_int_equal(check(cfg, "app", &adm, &err), 0);
  assert_false(adm.scan_pending);
  json_decref(cfg);
}

static void test_bundle_image(void **state) {
  (void)state;
  json_t *cfg =
      config(file("bundle.yaml", "registries: [\"oci-layout/img/**\"]\ndigests_only: true\n"), NULL, "none", NULL);
  json_object_set_new(cfg, "image", json_string("oci-layout:img/app:v1"));
  mu_ctr_admission adm;
  mu_ctr_admission_init(&adm, cfg, NULL);
  assert_string_equal(adm.ref.registry, "oci-layout");
  assert_string_equal(adm.ref.repository, "img/app:v1");
  mu_manifest m;
  manifest(&m);
  mu_image_config c;
  memset(&c, 0, sizeof c);
  mu_err err = {0};
  assert_int_equal(mu_ctr_admission_check(&adm, NULL, "sha256:abc", &m, &c, &err), 0); /* pinned by the bundle */
  json_decref(cfg);
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(dir) == NULL;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_both_policies_named),
      cmocka_unit_test(test_allowed_and_absent_cluster_policy),
      cmocka_unit_test(test_fail_closed),
      cmocka_unit_test(test_bundle_image),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

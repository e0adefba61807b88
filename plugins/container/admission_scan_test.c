/* The second half of admission (admission_scan.h) on real files: a layer tar with a dpkg
 * status in a store, an OSV feed imported into a feed directory, policies in files. No feed
 * configured, a feed directory without a feed, an unfixed CRITICAL refused, a laxer policy
 * allowed, the cached result used when the layer is gone, nothing owed nothing done. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/imagescan/feed.h"
#include "plugins/container/admission_scan.h"

#define HEX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MANIFEST_DIGEST "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char tmp[256], store[300], feed[300], layer[400];

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void add(struct archive *a, const char *name, const char *data) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)strlen(data));
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  archive_write_data(a, data, strlen(data));
  archive_entry_free(e);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof tmp, "/tmp/admission_scan_test.XXXXXX");
  assert_non_null(mkdtemp(tmp));
  snprintf(store, sizeof store, "%s/store", tmp);
  snprintf(feed, sizeof feed, "%s/feed", tmp);
  char p[400];
  snprintf(p, sizeof p, "mkdir -p %s/blobs/sha256 %s/osv", store, tmp);
  assert_int_equal(system(p), 0);
  snprintf(layer, sizeof layer, "%s/blobs/sha256/%s", store, HEX);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  assert_int_equal(archive_write_open_filename(a, layer), ARCHIVE_OK);
  add(a, "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
  add(a, "var/lib/dpkg/status",
      "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nSource: openssl\n\n");
  archive_write_close(a);
  archive_write_free(a);
  snprintf(p, sizeof p, "%s/osv/DSA-1.json", tmp);
  put(p,
      "{\"id\":\"DSA-1\",\"published\":\"2024-04-01T00:00:00Z\",\"affected\":[{\"package\":{\"ecosystem\":"
      "\"Debian:12\",\"name\":\"openssl\"},\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":"
      "\"0\"}]}]}],\"database_specific\":{\"severity\":\"CRITICAL\"}}");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static void import_feed(void) {
  char src[300];
  snprintf(src, sizeof src, "%s/osv", tmp);
  mu_feed *f = NULL;
  mu_err err = {0};
  assert_int_equal(mu_feed_build(src, NULL, NULL, true, NULL, &f, &err), 0);
  assert_int_equal(mu_feed_save(f, feed, &err), 0);
  mu_feed_free(f);
}

/* adm for a policy text, the feed (NULL: none), scan owed */
static json_t *config(const char *policy, const char *feed_dir) {
  char path[300];
  snprintf(path, sizeof path, "%s/policy.yaml", tmp);
  put(path, policy);
  json_t *cfg = json_pack("{s:s, s:[{s:s, s:s}]}", "image", "127.0.0.1:5000/t/vuln:1", "policy_files", "source",
                          "agent", "path", path);
  if (feed_dir) json_object_set_new(cfg, "scan_feed_dir", json_string(feed_dir));
  return cfg;
}

static int scan(json_t *cfg, mu_ctr_admission *adm, mu_err *err) {
  mu_imgref ref;
  mu_err perr = {0};
  assert_int_equal(mu_imgref_parse(json_string_value(json_object_get(cfg, "image")), NULL, &ref, &perr), 0);
  mu_ctr_admission_init(adm, cfg, &ref);
  adm->scan_pending = true;
  mu_image img;
  memset(&img, 0, sizeof img);
  snprintf(img.manifest_digest, sizeof img.manifest_digest, "%s", MANIFEST_DIGEST);
  img.manifest.n_layers = 1;
  snprintf(img.manifest.layers[0].digest, sizeof img.manifest.layers[0].digest, "sha256:%s", HEX);
  img.config.user = "app";
  return mu_ctr_admission_scan(adm, store, &img, -1, err);
}

static void test_scan(void **state) {
  (void)state;
  mu_ctr_admission adm;
  mu_err err = {0};
  /* no feed configured: refused naming the key */
  json_t *cfg = config("max_severity: HIGH\n", NULL);
  assert_int_equal(scan(cfg, &adm, &err), MU_EPERM);
  assert_true(adm.refused);
  assert_non_null(strstr(adm.report,
                         "image 127.0.0.1:5000/t/vuln:1 refused by the admission policy: agent policy: "
                         "max_severity: no vulnerability feed on this agent"));
  assert_non_null(strstr(adm.report, "container_scan_feed_dir"));
  json_decref(cfg);
  /* a feed directory without a feed */
  cfg = config("max_severity: HIGH\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "holds no imported feed"));
  json_decref(cfg);
  /* the feed: one unfixed CRITICAL */
  import_feed();
  cfg = config("max_severity: HIGH\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report,
                         "agent policy: max_severity: 1 unfixed CRITICAL finding (the policy allows up to "
                         "HIGH)"));
  assert_non_null(strstr(err.msg, "1 unfixed CRITICAL finding"));
  json_decref(cfg);
  /* a laxer policy allows it; one no longer wanting a scan too */
  cfg = config("max_severity: CRITICAL\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), 0);
  assert_false(adm.refused);
  json_decref(cfg);
  cfg = config("allow_host_network: false\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), 0);
  json_decref(cfg);
  /* the layer gone: the cached result still refuses (no layer read) */
  assert_int_equal(unlink(layer), 0);
  cfg = config("max_severity: HIGH\nseverity_grace_days: 36500\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), 0); /* within the grace */
  json_decref(cfg);
  cfg = config("max_severity: HIGH\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "1 unfixed CRITICAL finding"));
  json_decref(cfg);
  /* a policy file gone bad since the first check: refused (fail closed) */
  cfg = config("max_severity: SEVERE\n", feed);
  assert_int_equal(scan(cfg, &adm, &err), MU_EPERM);
  assert_non_null(strstr(adm.report, "max_severity"));
  json_decref(cfg);
}

static void test_nothing_owed(void **state) {
  (void)state;
  json_t *cfg = config("max_severity: HIGH\n", NULL);
  mu_ctr_admission adm;
  mu_imgref ref;
  mu_err err = {0};
  assert_int_equal(mu_imgref_parse("127.0.0.1:5000/t/vuln:1", NULL, &ref, &err), 0);
  mu_ctr_admission_init(&adm, cfg, &ref);
  mu_image img;
  memset(&img, 0, sizeof img);
  assert_int_equal(mu_ctr_admission_scan(&adm, store, &img, -1, &err), 0);
  assert_false(adm.refused);
  json_decref(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scan),
      cmocka_unit_test(test_nothing_owed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

/* The scan library on real bytes: layer tars written here with libarchive (whiteouts,
 * opaque directories, package databases, risky files), OSV feeds written as files (good,
 * huge, malformed, with bad versions) imported, saved, reloaded and matched, and the cache. */
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

#include "lib/imagescan/cache.h"
#include "lib/imagescan/feed.h"
#include "lib/imagescan/inventory.h"
#include "lib/imagescan/match.h"
#include "lib/imagescan/osv.h"
#include "lib/imagescan/report.h"

static char tmpdir[256];

static void rm_rf(const char *p) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/scan_test.XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rm_rf(tmpdir);
  return 0;
}

/* ---- layers ---- */

typedef struct lent {
  const char *name;
  char type; /* 'f' file, 'd' dir, 'l' symlink */
  int mode;
  const char *data; /* contents, or the link target */
} lent;

static void write_layer(const char *path, const lent *e, size_t n, bool gzip) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e[i].name);
    archive_entry_set_mtime(ae, 1700000000, 0);
    if (e[i].type == 'd') {
      archive_entry_set_filetype(ae, AE_IFDIR);
      archive_entry_set_perm(ae, (mode_t)(e[i].mode ? e[i].mode : 0755));
    } else if (e[i].type == 'l') {
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_set_symlink(ae, e[i].data);
      archive_entry_set_perm(ae, 0777);
    } else {
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_perm(ae, (mode_t)(e[i].mode ? e[i].mode : 0644));
      archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
    }
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    if (e[i].type == 'f' && *e[i].data) archive_write_data(a, e[i].data, strlen(e[i].data));
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
}

static const char *STATUS =
    "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nSource: openssl\n\n"
    "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nSource: zlib (1:1.2.13.dfsg-1)\n"
    "Description: compression\n library\n\n"
    "Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
    "Package: noversion\nStatus: install ok installed\n\n";

static const mu_pkg *find_pkg(const mu_inventory *inv, const char *name) {
  for (size_t i = 0; i < inv->n_pkgs; i++)
    if (strcmp(inv->pkgs[i].name, name) == 0) return &inv->pkgs[i];
  return NULL;
}

static const mu_risk *find_risk(const mu_inventory *inv, mu_risk_kind k, const char *path) {
  for (size_t i = 0; i < inv->n_risks; i++)
    if (inv->risks[i].kind == k && strcmp(inv->risks[i].path, path) == 0) return &inv->risks[i];
  return NULL;
}

static void layers_fixture(char paths[3][300]) {
  static const lent l1[] = {
      {"etc/", 'd', 0, NULL},
      {"etc/os-release", 'l', 0, "../usr/lib/os-release"},
      {"usr/lib/os-release", 'f', 0, "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"},
      {"var/lib/dpkg/status", 'f', 0, NULL}, /* STATUS, set below */
      {"lib/apk/db/installed", 'f', 0, "P:musl\nV:1.2.4-r2\no:musl\n\nP:busybox-binsh\nV:1.36.1-r5\no:busybox\n"},
      {"usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", 'f', 0,
       "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nName: notme\n"},
      {"usr/lib/python3/site-packages/Old_Pkg-1.0.dist-info/METADATA", 'f', 0, "Name: Old_Pkg\nVersion: 1.0\n"},
      {"usr/bin/su", 'f', 04755, "ELF"},
      {"usr/bin/wall", 'f', 02755, "ELF"},
      {"srv/data/", 'd', 0777, NULL},
      {"tmp/", 'd', 01777, NULL},
      {"root/.ssh/id_rsa", 'f', 0600, "anything"},
      {"app/.env", 'f', 0, "TOKEN=x\n"},
      {"app/server.pem", 'f', 0, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA\n-----END EC PRIVATE KEY-----\n"},
      {"app/cert.pem", 'f', 0, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
      {"app/gone.key", 'f', 0, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"},
  };
  lent l1c[sizeof l1 / sizeof *l1];
  memcpy(l1c, l1, sizeof l1);
  l1c[3].data = STATUS;
  /* RUN rm -rf /lib/apk /app/gone.key, site-packages emptied, chmod o-w srv/data */
  static const lent l2[] = {
      {"lib/.wh.apk", 'f', 0, ""},
      {"usr/lib/python3/site-packages/.wh..wh..opq", 'f', 0, ""},
      {"app/.wh.gone.key", 'f', 0, ""},
      {"srv/data/", 'd', 0755, NULL},
      {"var/lib/dpkg/status.d/base", 'f', 0, "Package: base-files\nVersion: 12.4+deb12u5\n"},
      {"var/lib/dpkg/status.d/base.md5sums", 'f', 0, "abc  etc/x\n"},
  };
  /* a later layer may bring back what an earlier one hid */
  static const lent l3[] = {
      {"usr/lib/python3/site-packages/Back-2.0.dist-info/METADATA", 'f', 0, "Name: Back\nVersion: 2.0\n"},
  };
  for (int i = 0; i < 3; i++) snprintf(paths[i], 300, "%s/layer%d.tar%s", tmpdir, i, i == 1 ? ".gz" : "");
  write_layer(paths[0], l1c, sizeof l1c / sizeof *l1c, false);
  write_layer(paths[1], l2, sizeof l2 / sizeof *l2, true);
  write_layer(paths[2], l3, sizeof l3 / sizeof *l3, false);
}

static void test_inventory_whiteouts(void **state) {
  (void)state;
  char paths[3][300];
  layers_fixture(paths);
  const char *layers[] = {paths[0], paths[1], paths[2]};
  mu_inventory inv;
  mu_err err = {0};
  if (mu_inventory_read_layers(layers, 3, NULL, &inv, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(inv.os.id, "debian");
  assert_string_equal(inv.os.version_id, "12");
  assert_string_equal(inv.os.pretty, "Debian GNU/Linux 12 (bookworm)");
  const mu_pkg *ssl = find_pkg(&inv, "libssl3");
  assert_non_null(ssl);
  assert_string_equal(ssl->version, "3.0.11-1~deb12u2");
  assert_string_equal(ssl->source, "openssl");
  assert_null(ssl->source_version);
  const mu_pkg *z = find_pkg(&inv, "zlib1g");
  assert_non_null(z);
  assert_string_equal(z->source, "zlib");
  assert_null(z->source_version); /* the same as the package's */
  assert_non_null(find_pkg(&inv, "base-files"));
  assert_null(find_pkg(&inv, "removed"));
  assert_null(find_pkg(&inv, "noversion"));
  assert_int_equal(inv.pkgs_bad, 1);
  assert_null(find_pkg(&inv, "musl"));    /* lib/apk whited out */
  assert_null(find_pkg(&inv, "Old_Pkg")); /* opaque dir */
  assert_non_null(find_pkg(&inv, "Back"));
  const mu_pkg *req = find_pkg(&inv, "requests");
  assert_non_null(req);
  assert_string_equal(req->version, "2.31.0");
  assert_int_equal(inv.n_pkgs, 5);
  assert_non_null(find_risk(&inv, MU_RISK_SETUID, "usr/bin/su"));
  assert_non_null(find_risk(&inv, MU_RISK_SETGID, "usr/bin/wall"));
  assert_null(find_risk(&inv, MU_RISK_WORLD_WRITABLE_DIR, "srv/data")); /* fixed in layer 2 */
  assert_null(find_risk(&inv, MU_RISK_WORLD_WRITABLE_DIR, "tmp"));      /* sticky */
  assert_non_null(find_risk(&inv, MU_RISK_SECRET, "root/.ssh/id_rsa"));
  assert_non_null(find_risk(&inv, MU_RISK_SECRET, "app/.env"));
  const mu_risk *key = find_risk(&inv, MU_RISK_SECRET, "app/server.pem");
  assert_non_null(key);
  assert_string_equal(key->detail, "PEM private key");
  assert_null(find_risk(&inv, MU_RISK_SECRET, "app/cert.pem"));
  assert_null(find_risk(&inv, MU_RISK_SECRET, "app/gone.key")); /* whited out */
  assert_int_equal(inv.n_risks, 5);
  mu_inventory_free(&inv);

  /* a world-writable dir only in the first layer is reported */
  if (mu_inventory_read_layers(layers, 1, NULL, &inv, &err) != 0) fail_msg("%s", err.msg);
  assert_non_null(find_risk(&inv, MU_RISK_WORLD_WRITABLE_DIR, "srv/data"));
  assert_non_null(find_pkg(&inv, "musl"));
  mu_inventory_free(&inv);
}

static void test_inventory_bounds(void **state) {
  (void)state;
  char paths[3][300];
  layers_fixture(paths);
  const char *layers[] = {paths[0], paths[1], paths[2]};
  mu_inventory inv;
  mu_err err = {0};
  mu_inventory_limits lim = {.max_entries = 5};
  assert_int_equal(mu_inventory_read_layers(layers, 3, &lim, &inv, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "more than 5 entries"));
  mu_inventory_free(&inv);
  lim = (mu_inventory_limits){.max_db_bytes = 100};
  assert_int_equal(mu_inventory_read_layers(layers, 3, &lim, &inv, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "var/lib/dpkg/status is over the 100-byte database bound"));
  mu_inventory_free(&inv);
  lim = (mu_inventory_limits){.max_pkgs = 2};
  assert_int_equal(mu_inventory_read_layers(layers, 3, &lim, &inv, &err), MU_ENOSPC);
  mu_inventory_free(&inv);
  lim = (mu_inventory_limits){.max_risks = 2};
  assert_int_equal(mu_inventory_read_layers(layers, 3, &lim, &inv, &err), 0);
  assert_int_equal(inv.n_risks, 2);
  assert_int_equal(inv.risks_dropped, 3);
  mu_inventory_free(&inv);
  char junk[320];
  snprintf(junk, sizeof junk, "%s/junk", tmpdir);
  FILE *f = fopen(junk, "w");
  fputs("not a tar at all, not even close; just some text that goes on", f);
  fclose(f);
  const char *bad[] = {junk};
  assert_int_equal(mu_inventory_read_layers(bad, 1, NULL, &inv, &err), MU_EIO);
  assert_non_null(strstr(err.msg, "layer 1"));
  mu_inventory_free(&inv);
}

/* ---- feed ---- */

static void put_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void collect_msg(void *arg, const char *msg) {
  char *buf = arg;
  size_t l = strlen(buf);
  snprintf(buf + l, 4096 - l, "%s\n", msg);
}

static const char *REC_SSL =
    "{\"id\":\"DSA-1\",\"aliases\":[\"CVE-2024-1\"],\"published\":\"2024-03-01T00:00:00Z\","
    "\"database_specific\":{\"severity\":\"critical\"},\"affected\":[{\"package\":{\"ecosystem\":\"Debian:12\","
    "\"name\":\"openssl\"},\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},"
    "{\"fixed\":\"3.0.13-1~deb12u1\"}]}]},{\"package\":{\"ecosystem\":\"Debian:11\",\"name\":\"openssl\"},"
    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"1.1.1w-0+deb11u1\"}]}]},"
    "{\"package\":{\"ecosystem\":\"npm\",\"name\":\"x\"}}]}";
static const char *REC_ZLIB_FIXED =
    "{\"id\":\"DEBIAN-CVE-2\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"zlib\"},"
    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"1:1.2.13.dfsg-1\"}]}]}]}";
static const char *REC_REQ =
    "{\"id\":\"GHSA-3\",\"severity\":[{\"type\":\"CVSS_V3\",\"score\":"
    "\"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N\"}],\"affected\":[{\"package\":{\"ecosystem\":\"PyPI\","
    "\"name\":\"Requests\"},\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"2.0\"},"
    "{\"fixed\":\"2.20.0\"},{\"introduced\":\"2.30.0\"},{\"fixed\":\"2.32.0\"}]}]}]}";
static const char *REC_BACK =
    "{\"id\":\"PYSEC-4\",\"affected\":[{\"package\":{\"ecosystem\":\"PyPI\",\"name\":\"back\"},"
    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"last_affected\":\"2.0\"}]}]},"
    "{\"package\":{\"ecosystem\":\"PyPI\",\"name\":\"base-files\"},\"versions\":[\"12.4\"]}]}";

static void test_feed_import_and_match(void **state) {
  (void)state;
  char src[300], dir[300], msgs[4096] = "";
  snprintf(src, sizeof src, "%s/osv", tmpdir);
  snprintf(dir, sizeof dir, "%s/feed", tmpdir);
  mkdir(src, 0755);
  put_file(src, "DSA-1.json", REC_SSL);
  put_file(src, "DEBIAN-CVE-2.json", REC_ZLIB_FIXED);
  put_file(src, "GHSA-3.json", REC_REQ);
  put_file(src, "PYSEC-4.json", REC_BACK);
  put_file(src, "notes.txt", "ignored: not .json");
  mu_feed_report rep = {.on_refused = collect_msg, .arg = msgs};
  mu_feed *f = NULL;
  mu_err err = {0};
  if (mu_feed_build(src, NULL, NULL, false, &rep, &f, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(msgs, "");
  assert_int_equal(rep.files, 4);
  assert_int_equal(rep.records, 4);
  assert_int_equal(rep.skipped_eco, 1);
  assert_int_equal(f->records, 4);
  assert_int_equal(f->n_lines, 6);
  if (mu_feed_save(f, dir, &err) != 0) fail_msg("%s", err.msg);
  mu_feed *g = NULL;
  if (mu_feed_load(dir, NULL, &g, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(g->version, f->version);
  assert_int_equal(g->n_lines, f->n_lines);
  char v[72];
  assert_int_equal(mu_feed_current_version(dir, v, &err), 0);
  assert_string_equal(v, f->version);
  size_t first;
  assert_int_equal(mu_feed_lookup(g, "Debian:12", "openssl", &first), 1);
  assert_int_equal(mu_feed_lookup(g, "Debian", "openssl", &first), 0);
  assert_int_equal(mu_feed_lookup(g, "PyPI", "requests", &first), 1);

  char paths[3][300];
  layers_fixture(paths);
  const char *layers[] = {paths[0], paths[1], paths[2]};
  mu_inventory inv;
  assert_int_equal(mu_inventory_read_layers(layers, 3, NULL, &inv, &err), 0);
  mu_findings fs;
  assert_int_equal(mu_match(&inv, g, &fs, &err), 0);
  /* libssl3 (source openssl, Debian:12) < 3.0.13-1~deb12u1: CRITICAL; requests 2.31.0 in the
   * second range: MEDIUM by its CVSS vector (6.5); Back 2.0 <= last_affected; zlib at exactly
   * the fixed version: not affected; base-files is a dpkg package, not PyPI. */
  assert_int_equal(fs.n, 3);
  assert_string_equal(fs.v[0].id, "DSA-1");
  assert_int_equal(fs.v[0].severity, MU_SEV_CRITICAL);
  assert_string_equal(fs.v[0].fixed, "3.0.13-1~deb12u1");
  assert_string_equal(inv.pkgs[fs.v[0].pkg].name, "libssl3");
  assert_string_equal(fs.v[1].id, "GHSA-3");
  assert_int_equal(fs.v[1].severity, MU_SEV_MEDIUM);
  assert_string_equal(fs.v[1].fixed, "2.32.0");
  assert_string_equal(fs.v[2].id, "PYSEC-4");
  assert_string_equal(fs.v[2].fixed, "");
  assert_int_equal(fs.count[MU_SEV_CRITICAL], 1);
  mu_inventory_add_risk(&inv, MU_RISK_ROOT_USER, "", "image runs as root", 0);
  mu_scan_meta meta = {.image = "x", .digest = "sha256:ab", .feed_version = g->version, .user = ""};
  json_t *res = mu_scan_result_json(&meta, &inv, &fs);
  assert_non_null(res);
  assert_int_equal(json_array_size(json_object_get(res, "findings")), 3);
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(json_array_get(json_object_get(res, "findings"), 0), "aliases"), 0)),
                      "CVE-2024-1");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "packages"), "total")), 5);

  /* the cache: a put then a get by the same key; another feed version misses; bounded */
  char cdir[300];
  snprintf(cdir, sizeof cdir, "%s/cache", tmpdir);
  const char *digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  assert_int_equal(mu_scan_cache_put(cdir, digest, g->version, res, 2, &err), 0);
  json_t *back = NULL;
  assert_int_equal(mu_scan_cache_get(cdir, digest, g->version, &back, &err), 0);
  assert_true(json_equal(back, res));
  json_decref(back);
  assert_int_equal(mu_scan_cache_get(cdir, digest, "none", &back, &err), MU_ENOENT);
  for (int i = 0; i < 4; i++) {
    char d2[80];
    snprintf(d2, sizeof d2, "sha256:%064d", i);
    assert_int_equal(mu_scan_cache_put(cdir, d2, "none", res, 2, &err), 0);
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 2", cdir);
  assert_int_equal(system(cmd), 0);
  json_decref(res);
  mu_findings_free(&fs);
  mu_inventory_free(&inv);
  mu_feed_free(f);
  mu_feed_free(g);
}

static void test_feed_hostile(void **state) {
  (void)state;
  char src[300], src2[300], dir[300], msgs[4096] = "";
  snprintf(src, sizeof src, "%s/good", tmpdir);
  snprintf(src2, sizeof src2, "%s/bad", tmpdir);
  snprintf(dir, sizeof dir, "%s/feed2", tmpdir);
  mkdir(src, 0755);
  mkdir(src2, 0755);
  put_file(src, "DSA-1.json", REC_SSL);
  mu_feed *f = NULL, *g = NULL;
  mu_err err = {0};
  assert_int_equal(mu_feed_build(src, NULL, NULL, true, NULL, &f, &err), 0);
  assert_int_equal(mu_feed_save(f, dir, &err), 0);
  char v0[72];
  snprintf(v0, sizeof v0, "%s", f->version);
  /* hostile: a huge record, malformed JSON, a bad version, a wrong type, a line breaker */
  char *huge = malloc(3u << 20);
  memset(huge, ' ', 3u << 20);
  memcpy(huge, "{\"id\":\"HUGE-1\"}", 15);
  huge[(3u << 20) - 1] = '\0';
  put_file(src2, "huge.json", huge);
  free(huge);
  put_file(src2, "broken.json", "{\"id\": \"X-1\", \"affected\": [");
  put_file(
      src2, "badver.json",
      "{\"id\":\"X-2\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"bash\"},\"ranges\":[{\"type\":"
      "\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"5.2 beta\"}]}]}]}");
  put_file(src2, "badpy.json",
           "{\"id\":\"X-3\",\"affected\":[{\"package\":{\"ecosystem\":\"PyPI\",\"name\":\"p\"},\"versions\":[\"1.0\"],"
           "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"wat\"}]}]}]}");
  /* a listed version that is not valid is left out, the record kept */
  put_file(src2, "legacy.json",
           "{\"id\":\"X-6\",\"affected\":[{\"package\":{\"ecosystem\":\"PyPI\",\"name\":\"q\"},"
           "\"versions\":[\"2004d\",\"1.0\"]}]}");
  put_file(src2, "type.json", "{\"id\":\"X-4\",\"affected\":{\"package\":1}}");
  put_file(src2, "inject.json",
           "{\"id\":\"X-5\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"a\\tb\\nDebian\"}}]}");
  put_file(src2, "ok.json", REC_ZLIB_FIXED);
  /* strict: nothing changes */
  mu_feed_report rep = {.on_refused = collect_msg, .arg = msgs};
  assert_int_equal(mu_feed_load(dir, NULL, &g, &err), 0);
  mu_feed *h = NULL;
  assert_int_equal(mu_feed_build(src2, g, NULL, true, &rep, &h, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "nothing imported (--strict)"));
  assert_int_equal(rep.refused, 6);
  assert_non_null(strstr(msgs, "huge.json: over the 1048576-byte record bound (--max-record-bytes); refused"));
  assert_non_null(strstr(msgs, "broken.json: not JSON"));
  assert_non_null(strstr(msgs,
                         "badver.json: record X-2: affected[0].ranges[0]: fixed \"5.2 beta\" is not a valid "
                         "Debian version"));
  assert_non_null(
      strstr(msgs, "badpy.json: record X-3: affected[0].ranges[0]: introduced \"wat\" is not a valid PyPI version"));
  assert_non_null(strstr(msgs, "type.json: record X-4: \"affected\" is not a list"));
  assert_non_null(strstr(msgs, "inject.json: record X-5"));
  char v[72];
  assert_int_equal(mu_feed_current_version(dir, v, &err), 0);
  assert_string_equal(v, v0);
  /* not strict: the good one joins what was there, the bad ones are named */
  msgs[0] = '\0';
  rep = (mu_feed_report){.on_refused = collect_msg, .arg = msgs};
  assert_int_equal(mu_feed_build(src2, g, NULL, false, &rep, &h, &err), 0);
  assert_int_equal(rep.refused, 6);
  assert_int_equal(rep.versions_dropped, 1);
  assert_int_equal(h->records, 3);
  size_t first;
  assert_int_equal(mu_feed_lookup(h, "Debian:12", "openssl", &first), 1); /* nothing imported before is lost */
  assert_int_equal(mu_feed_lookup(h, "Debian", "zlib", &first), 1);
  assert_int_equal(mu_feed_lookup(h, "Debian", "bash", &first), 0);
  assert_int_equal(mu_feed_lookup(h, "PyPI", "q", &first), 1);
  assert_non_null(strstr(h->lines[first], "\t1.0"));
  assert_null(strstr(h->lines[first], "2004d"));
  mu_feed_free(h);
  /* the record bound: counted over old and new */
  mu_feed_limits lim = {.max_records = 1};
  assert_int_equal(mu_feed_build(src2, g, &lim, false, NULL, &h, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "would make more than 1 records"));
  /* a withdrawn record removes its lines */
  char src3[300];
  snprintf(src3, sizeof src3, "%s/withdrawn", tmpdir);
  mkdir(src3, 0755);
  put_file(src3, "w.json", "{\"id\":\"DSA-1\",\"withdrawn\":\"2024-05-01T00:00:00Z\"}");
  assert_int_equal(mu_feed_build(src3, g, NULL, true, NULL, &h, &err), 0);
  assert_int_equal(h->n_lines, 0);
  mu_feed_free(h);
  /* a damaged index is refused on load */
  char p[400];
  snprintf(p, sizeof p, "%s/current/index.tsv", dir);
  FILE *fp = fopen(p, "a");
  fputs("Debian\tx\tY\tLOW\t\t\t\t\n", fp);
  fclose(fp);
  assert_int_equal(mu_feed_load(dir, NULL, &h, &err), MU_EIO);
  assert_non_null(strstr(err.msg, "damaged"));
  mu_feed_free(f);
  mu_feed_free(g);
}

static void test_match_rules(void **state) {
  (void)state;
  char fixed[MU_VER_MAX + 1];
  mu_feed_entry e = {.ranges = "i:1.0;l:1.4|i:2.0;f:2.1;i:2.5;f:3.0", .versions = ""};
  assert_true(mu_match_entry(MU_VER_DEB, "1.4", &e, fixed));
  assert_string_equal(fixed, "");
  assert_false(mu_match_entry(MU_VER_DEB, "1.4.1", &e, fixed));
  assert_false(mu_match_entry(MU_VER_DEB, "0.9", &e, fixed));
  assert_true(mu_match_entry(MU_VER_DEB, "2.0~rc1+really", &e, fixed) == false);
  assert_true(mu_match_entry(MU_VER_DEB, "2.0", &e, fixed));
  assert_string_equal(fixed, "2.1");
  assert_false(mu_match_entry(MU_VER_DEB, "2.1", &e, fixed));
  assert_true(mu_match_entry(MU_VER_DEB, "2.7", &e, fixed));
  assert_string_equal(fixed, "3.0");
  /* events out of order in the record are sorted first */
  mu_feed_entry u = {.ranges = "f:1:2.0;i:0", .versions = ""};
  assert_true(mu_match_entry(MU_VER_DEB, "5.0", &u, fixed));
  assert_string_equal(fixed, "1:2.0");
  assert_false(mu_match_entry(MU_VER_DEB, "1:2.0", &u, fixed));
  mu_feed_entry a = {.ranges = "i:0;f:1.2-r1", .versions = ""};
  assert_true(mu_match_entry(MU_VER_APK, "1.2_rc1", &a, fixed));
  assert_true(mu_match_entry(MU_VER_APK, "1.2", &a, fixed));
  assert_false(mu_match_entry(MU_VER_APK, "1.2-r1", &a, fixed));
  mu_feed_entry py = {.ranges = "", .versions = "1.0|1.0.post1"};
  assert_true(mu_match_entry(MU_VER_PEP440, "1.0.0", &py, fixed));
  assert_false(mu_match_entry(MU_VER_PEP440, "1.0a1", &py, fixed));
  assert_true(mu_cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8);
  assert_true(mu_cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == 10.0);
  assert_true(mu_cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N") == 6.5);
  assert_true(mu_cvss3_base_score("CVSS:2.0/AV:N") < 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_inventory_whiteouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inventory_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_feed_import_and_match, setup, teardown),
      cmocka_unit_test_setup_teardown(test_feed_hostile, setup, teardown),
      cmocka_unit_test(test_match_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

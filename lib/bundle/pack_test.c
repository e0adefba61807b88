/* Packing: reproducible digests, the manifest it writes, and the files it refuses. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/bundle/pack.h"
#include "lib/bundle/test_util.h"
#include "lib/bundle/verify.h"

/* A small project: a script, a config, a nested dir and an inside symlink. */
static char *make_project(void) {
  char *dir = tu_mkdtemp();
  tu_write(dir, "run.sh", "#!/bin/sh\necho hello\n", 0755);
  tu_write(dir, "config.txt", "key=value\n", 0644);
  tu_mkdir(dir, "lib", 0755);
  tu_write(dir, "lib/util.sh", "util() { :; }\n", 0600);
  tu_mkdir(dir, "lib/empty", 0700);
  char *link = tu_path(dir, "lib/run-link");
  assert_int_equal(symlink("../run.sh", link), 0);
  free(link);
  return dir;
}

static void pack_ok(const char *dir, const char *out, int64_t created, mu_bundle_compress comp,
                    char digest[MU_BUNDLE_DIGEST_SIZE]) {
  mu_pack_opts o = {.name = "demo", .version = "1.2.0", .entry = "run.sh", .created_at = created, .compress = comp};
  mu_err err = {0};
  int rc = mu_bundle_pack(dir, &o, out, digest, &err);
  if (rc != 0) fail_msg("pack: %s", err.msg);
}

static void test_pack_reproducible(void **state) {
  (void)state;
  char *dir = make_project();
  char *outdir = tu_mkdtemp();
  char *a = tu_path(outdir, "a.bundle");
  char *b = tu_path(outdir, "b.bundle");
  char *c = tu_path(outdir, "c.bundle");
  char d1[MU_BUNDLE_DIGEST_SIZE], d2[MU_BUNDLE_DIGEST_SIZE], d3[MU_BUNDLE_DIGEST_SIZE];
  pack_ok(dir, a, 0, MU_BUNDLE_COMPRESS_AUTO, d1);
  pack_ok(dir, b, 0, MU_BUNDLE_COMPRESS_AUTO, d2);
  assert_string_equal(d1, d2);

  /* Touch every mtime (and atime): the digest must not move. */
  struct timespec ts[2] = {{.tv_sec = 1234567890}, {.tv_sec = 1234567890}};
  const char *names[] = {"run.sh", "config.txt", "lib", "lib/util.sh", "lib/empty", "."};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char *p = tu_path(dir, names[i]);
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    free(p);
  }
  pack_ok(dir, c, 0, MU_BUNDLE_COMPRESS_AUTO, d3);
  assert_string_equal(d1, d3);

  /* The digest is the sha256 of the file's bytes. */
  size_t len = 0;
  uint8_t *bytes = tu_read(a, &len);
  char want[MU_BUNDLE_DIGEST_SIZE];
  mu_bundle_digest(bytes, len, want);
  assert_string_equal(want, d1);
  assert_int_equal(mu_bundle_digest_check(d1, NULL), 0);
  /* zstd magic 28 b5 2f fd */
  assert_int_equal(bytes[0], 0x28);
  assert_int_equal(bytes[3], 0xfd);

  /* Another created-at changes the digest. */
  pack_ok(dir, c, 1700000000, MU_BUNDLE_COMPRESS_AUTO, d3);
  assert_string_not_equal(d1, d3);

  /* The manifest lists everything, sorted, with modes, sizes and the entry point. */
  mu_manifest *m = NULL;
  mu_err err = {0};
  assert_int_equal(mu_bundle_read_manifest(bytes, len, NULL, NULL, NULL, &m, &err), 0);
  assert_string_equal(m->name, "demo");
  assert_string_equal(m->version, "1.2.0");
  assert_string_equal(m->entry, "run.sh");
  assert_int_equal(m->n_files, 6);
  const char *order[] = {"config.txt", "lib", "lib/empty", "lib/run-link", "lib/util.sh", "run.sh"};
  for (size_t i = 0; i < 6; i++) assert_string_equal(m->files[i].path, order[i]);
  assert_int_equal(m->files[5].mode, 0755);
  assert_int_equal(m->files[4].mode, 0600);
  assert_int_equal(m->files[5].size, strlen("#!/bin/sh\necho hello\n"));
  assert_int_equal(m->files[3].type, MU_BUNDLE_SYMLINK);
  assert_string_equal(m->files[3].target, "../run.sh");
  mu_manifest_free(m);
  free(bytes);
  tu_rm_rf(dir);
  tu_rm_rf(outdir);
  free(dir);
  free(outdir);
  free(a);
  free(b);
  free(c);
}

static void test_pack_gzip_reproducible(void **state) {
  (void)state;
  char *dir = make_project();
  char *outdir = tu_mkdtemp();
  char *a = tu_path(outdir, "a.tgz");
  char *b = tu_path(outdir, "b.tgz");
  char d1[MU_BUNDLE_DIGEST_SIZE], d2[MU_BUNDLE_DIGEST_SIZE];
  pack_ok(dir, a, 5, MU_BUNDLE_COMPRESS_GZIP, d1);
  pack_ok(dir, b, 5, MU_BUNDLE_COMPRESS_GZIP, d2);
  assert_string_equal(d1, d2);
  size_t len = 0;
  uint8_t *bytes = tu_read(a, &len);
  assert_int_equal(bytes[0], 0x1f);
  assert_int_equal(bytes[1], 0x8b);
  /* No timestamp in the gzip header, so a pack a second later is identical too. */
  assert_int_equal(bytes[4] | bytes[5] | bytes[6] | bytes[7], 0);
  mu_err err = {0};
  mu_manifest *m = NULL;
  assert_int_equal(mu_bundle_read_manifest(bytes, len, NULL, NULL, NULL, &m, &err), 0);
  assert_int_equal(m->created_at, 5);
  mu_manifest_free(m);
  free(bytes);
  tu_rm_rf(dir);
  tu_rm_rf(outdir);
  free(dir);
  free(outdir);
  free(a);
  free(b);
}

/* Packs dir expecting failure with code and a message containing want; no output left. */
static void pack_refused(const char *dir, const mu_pack_opts *o, int code, const char *want) {
  char *outdir = tu_mkdtemp();
  char *out = tu_path(outdir, "x.bundle");
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_err err = {0};
  int rc = mu_bundle_pack(dir, o, out, digest, &err);
  if (rc != code || strstr(err.msg, want) == NULL) {
    fail_msg("pack: rc=%d msg='%s', want rc=%d with '%s'", rc, err.msg, code, want);
  }
  assert_int_equal(tu_count_entries(outdir), 0);
  tu_rm_rf(outdir);
  free(outdir);
  free(out);
}

static void test_pack_refuses(void **state) {
  (void)state;
  mu_pack_opts o = {.name = "demo", .version = "1.0"};

  char *dir = tu_mkdtemp();
  tu_write(dir, "ok.txt", "x", 0644);
  char *p = tu_path(dir, "pipe");
  assert_int_equal(mkfifo(p, 0644), 0);
  pack_refused(dir, &o, MU_EINVAL, "'pipe' is a FIFO");
  unlink(p);
  free(p);

  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  p = tu_path(dir, "sock");
  if (strlen(p) < sizeof sa.sun_path) {
    strcpy(sa.sun_path, p);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    pack_refused(dir, &o, MU_EINVAL, "'sock' is a socket");
    unlink(p);
  }
  close(s);
  free(p);

  p = tu_path(dir, "out-link");
  assert_int_equal(symlink("/etc/passwd", p), 0);
  pack_refused(dir, &o, MU_EINVAL, "symlink to absolute '/etc/passwd' escapes the task dir");
  unlink(p);
  assert_int_equal(symlink("../../x", p), 0);
  pack_refused(dir, &o, MU_EINVAL, "escapes the task dir");
  unlink(p);
  free(p);

  tu_write(dir, "suid", "x", 0755);
  p = tu_path(dir, "suid");
  assert_int_equal(chmod(p, 04755), 0);
  pack_refused(dir, &o, MU_EINVAL, "'suid' has setuid/setgid/sticky bits");
  unlink(p);
  free(p);

  tu_write(dir, "MANIFEST.json", "{}", 0644);
  pack_refused(dir, &o, MU_EINVAL, "reserved for the manifest");
  p = tu_path(dir, "MANIFEST.json");
  unlink(p);
  free(p);

  mu_pack_opts bad = o;
  bad.entry = "missing.sh";
  pack_refused(dir, &bad, MU_EINVAL, "entry point 'missing.sh'");
  bad = o;
  bad.version = "v1";
  pack_refused(dir, &bad, MU_EINVAL, "version 'v1'");
  bad = o;
  bad.name = "../x";
  pack_refused(dir, &bad, MU_EINVAL, "bundle name");

  mu_unpack_limits lim;
  mu_unpack_limits_default(&lim);
  lim.max_entries = 3;
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof name, "f%d", i);
    tu_write(dir, name, "x", 0644);
  }
  bad = o;
  bad.limits = &lim;
  pack_refused(dir, &bad, MU_ENOSPC, "entry-count cap");
  lim.max_entries = 100;
  lim.max_total_bytes = 3;
  pack_refused(dir, &bad, MU_ENOSPC, "cap of 3 bytes");
  tu_rm_rf(dir);
  free(dir);
}

int mu_test_pack(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pack_reproducible),
      cmocka_unit_test(test_pack_gzip_reproducible),
      cmocka_unit_test(test_pack_refuses),
  };
  return cmocka_run_group_tests_name("pack", tests, NULL, NULL);
}

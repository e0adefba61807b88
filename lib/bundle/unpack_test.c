/* Safe unpack: the happy path (content, modes, symlinks, both extraction modes) and every
 * hostile bundle we can craft. Each refusal must name the rule and leave nothing behind:
 * the scratch root that holds dest must be empty afterwards. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "lib/bundle/pack.h"
#include "lib/bundle/test_util.h"
#include "lib/bundle/unpack.h"

static const mu_bundle_check unsigned_ok = {.allow_unsigned = true};

/* Unpacks into a fresh root/dest expecting refusal: code (0 = any), message containing want,
 * and an empty root afterwards. */
static void refused_ex(const uint8_t *data, size_t len, const mu_bundle_check *chk, const mu_unpack_limits *lim,
                       unsigned flags, int code, const char *want) {
  char *root = tu_mkdtemp();
  char *dest = tu_path(root, "dest");
  mu_err err = {0};
  mu_bundle_info *info = NULL;
  int rc = mu_bundle_unpack_ex(data, len, chk, lim, dest, flags, &info, &err);
  if (rc == 0 || (code != 0 && rc != code) || strstr(err.msg, want) == NULL) {
    fail_msg("unpack: rc=%d msg='%s', want rc=%d with '%s'", rc, err.msg, code, want);
  }
  assert_null(info);
  int left = tu_count_entries(root);
  if (left != 0) fail_msg("%d entries left in the scratch root after '%s'", left, err.msg);
  tu_rm_rf(root);
  free(root);
  free(dest);
}

static void refused(const uint8_t *data, size_t len, const mu_bundle_check *chk, const mu_unpack_limits *lim, int code,
                    const char *want) {
  refused_ex(data, len, chk, lim, 0, code, want);
  refused_ex(data, len, chk, lim, MU_UNPACK_NO_UNSHARE, code, want);
}

/* Builds a crafted bundle and expects it refused (unsigned allowed, default limits). */
static void craft_refused(tu_craft *c, int code, const char *want) {
  uint8_t *data = NULL;
  size_t len = 0;
  tu_craft_build(c, &data, &len);
  refused(data, len, &unsigned_ok, NULL, code, want);
  free(data);
}

static char *make_src(void) {
  char *src = tu_mkdtemp();
  tu_write(src, "run.sh", "#!/bin/sh\necho hi\n", 0755);
  tu_mkdir(src, "lib", 0750);
  tu_write(src, "lib/util.sh", "util() { :; }\n", 0600);
  tu_mkdir(src, "lib/empty", 0700);
  tu_mkdir(src, "ro", 0755);
  tu_write(src, "ro/f", "read only\n", 0444);
  char *p = tu_path(src, "ro");
  assert_int_equal(chmod(p, 0555), 0);
  free(p);
  p = tu_path(src, "lib/run-link");
  assert_int_equal(symlink("../run.sh", p), 0);
  free(p);
  return src;
}

static uint8_t *pack_src(const char *src, size_t *ret_len, char digest[MU_BUNDLE_DIGEST_SIZE]) {
  char *outdir = tu_mkdtemp();
  char *out = tu_path(outdir, "b.bundle");
  mu_pack_opts o = {.name = "demo", .version = "2.0.0", .entry = "run.sh"};
  mu_err err = {0};
  int rc = mu_bundle_pack(src, &o, out, digest, &err);
  if (rc != 0) fail_msg("pack: %s", err.msg);
  uint8_t *data = tu_read(out, ret_len);
  tu_rm_rf(outdir);
  free(outdir);
  free(out);
  return data;
}

static void assert_file(const char *dest, const char *rel, const char *content, mode_t mode) {
  char *p = tu_path(dest, rel);
  struct stat st;
  assert_int_equal(lstat(p, &st), 0);
  if (content != NULL) {
    assert_true(S_ISREG(st.st_mode));
    size_t len = 0;
    char *got = (char *)tu_read(p, &len);
    assert_string_equal(got, content);
    free(got);
  } else {
    assert_true(S_ISDIR(st.st_mode));
  }
  if ((st.st_mode & 07777) != mode) {
    fail_msg("'%s': mode %04o, want %04o", rel, (unsigned)(st.st_mode & 07777), (unsigned)mode);
  }
  free(p);
}

static void test_unpack_happy(void **state) {
  (void)state;
  char *src = make_src();
  size_t len = 0;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint8_t *data = pack_src(src, &len, digest);
  mu_err err = {0};
  mu_seckey sk;
  mu_pubkey pk;
  assert_int_equal(mu_key_generate(&sk, &pk, &err), 0);
  char *sig = NULL;
  assert_int_equal(mu_bundle_sign(data, len, &sk, NULL, &sig, &err), 0);
  mu_trust_set *trust = tu_trust(&pk);
  mu_bundle_check chk = {.expected_digest = digest, .trust = trust, .sig = (uint8_t *)sig, .sig_len = strlen(sig)};
  char cwd_before[4096], cwd_after[4096];
  assert_non_null(getcwd(cwd_before, sizeof cwd_before));
  for (unsigned flags = 0; flags <= MU_UNPACK_NO_UNSHARE; flags++) {
    char *root = tu_mkdtemp();
    char *dest = tu_path(root, "dest");
    mu_bundle_info *info = NULL;
    int rc = mu_bundle_unpack_ex(data, len, &chk, NULL, dest, flags, &info, &err);
    if (rc != 0) fail_msg("unpack (flags %u): %s", flags, err.msg);
    assert_string_equal(info->key_id, pk.key_id);
    assert_string_equal(info->digest, digest);
    assert_string_equal(info->manifest->entry, "run.sh");
    assert_file(dest, "run.sh", "#!/bin/sh\necho hi\n", 0755);
    assert_file(dest, "lib", NULL, 0750);
    assert_file(dest, "lib/util.sh", "util() { :; }\n", 0600);
    assert_file(dest, "lib/empty", NULL, 0700);
    assert_file(dest, "ro", NULL, 0555);
    assert_file(dest, "ro/f", "read only\n", 0444);
    char target[64] = {0};
    char *link = tu_path(dest, "lib/run-link");
    assert_int_equal(readlink(link, target, sizeof target - 1), strlen("../run.sh"));
    assert_string_equal(target, "../run.sh");
    assert_int_equal(tu_count_entries(dest), 3);
    /* Unpacking again into the same place is refused, and the first copy stays. */
    mu_bundle_info_free(info);
    info = NULL;
    assert_int_equal(mu_bundle_unpack_ex(data, len, &chk, NULL, dest, flags, &info, &err), MU_EEXIST);
    assert_null(info);
    assert_file(dest, "run.sh", "#!/bin/sh\necho hi\n", 0755);
    char *ro = tu_path(dest, "ro");
    chmod(ro, 0755);
    free(ro);
    free(link);
    tu_rm_rf(root);
    free(root);
    free(dest);
  }
  /* The caller's working directory is untouched by the extracting thread. */
  assert_non_null(getcwd(cwd_after, sizeof cwd_after));
  assert_string_equal(cwd_before, cwd_after);
  char *ro = tu_path(src, "ro");
  chmod(ro, 0755);
  free(ro);
  tu_rm_rf(src);
  free(src);
  free(sig);
  free(data);
  mu_seckey_wipe(&sk);
  mu_trust_set_free(trust);
}

static void test_unpack_trust_refusals(void **state) {
  (void)state;
  char *src = make_src();
  size_t len = 0;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint8_t *data = pack_src(src, &len, digest);
  mu_err err = {0};
  mu_seckey sk, other;
  mu_pubkey pk, other_pk;
  assert_int_equal(mu_key_generate(&sk, &pk, &err), 0);
  assert_int_equal(mu_key_generate(&other, &other_pk, &err), 0);
  char *sig = NULL;
  char *other_sig = NULL;
  assert_int_equal(mu_bundle_sign(data, len, &sk, NULL, &sig, &err), 0);
  assert_int_equal(mu_bundle_sign(data, len, &other, NULL, &other_sig, &err), 0);
  mu_trust_set *trust = tu_trust(&pk);

  mu_bundle_check chk = {.expected_digest =
                             "sha256:0000000000000000000000000000000000000000"
                             "000000000000000000000000",
                         .trust = trust,
                         .sig = (uint8_t *)sig,
                         .sig_len = strlen(sig)};
  refused(data, len, &chk, NULL, MU_EPERM, "digest mismatch");
  chk.expected_digest = digest;
  chk.sig = NULL;
  chk.sig_len = 0;
  refused(data, len, &chk, NULL, MU_EPERM, "unsigned");
  chk.sig = (uint8_t *)other_sig;
  chk.sig_len = strlen(other_sig);
  refused(data, len, &chk, NULL, MU_EPERM, "unknown key id");

  /* Truncated: early (the manifest is unreadable) and late (mid-file, after some entries
   * were written — they must be cleaned up). */
  refused(data, 40, &unsigned_ok, NULL, MU_EINVAL, "truncated or corrupt");
  char *big = malloc(400001);
  uint8_t rnd[200000];
  randombytes_buf(rnd, sizeof rnd);
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(big + 2 * i, 3, "%02x", rnd[i]);
  tu_write(src, "zz-big.txt", big, 0644);
  free(big);
  free(data);
  data = pack_src(src, &len, digest);
  refused(data, len - len / 4, &unsigned_ok, NULL, MU_EINVAL, "truncated or corrupt");
  /* ... and with its signature the truncated copy is a bad signature. */
  free(sig);
  assert_int_equal(mu_bundle_sign(data, len, &sk, NULL, &sig, &err), 0);
  chk.expected_digest = NULL;
  chk.sig = (uint8_t *)sig;
  chk.sig_len = strlen(sig);
  refused(data, len - 1000, &chk, NULL, 0, "bad signature");

  char *ro = tu_path(src, "ro");
  chmod(ro, 0755);
  free(ro);
  tu_rm_rf(src);
  free(src);
  free(data);
  free(sig);
  free(other_sig);
  mu_seckey_wipe(&sk);
  mu_seckey_wipe(&other);
  mu_trust_set_free(trust);
}

static void test_unpack_tampered_signed(void **state) {
  (void)state;
  /* The manifest promises one content, the archive carries another, and a trusted key
   * signed the lot: digest and signature pass, the per-file sha256 check does not. */
  tu_craft *c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_file(c, "run.sh", "#!/bin/sh\nrm -rf /\n", 0755, true, "#!/bin/sh\necho ok!\n");
  uint8_t *data = NULL;
  size_t len = 0;
  tu_craft_build(c, &data, &len);
  mu_err err = {0};
  mu_seckey sk;
  mu_pubkey pk;
  assert_int_equal(mu_key_generate(&sk, &pk, &err), 0);
  char *sig = NULL;
  assert_int_equal(mu_bundle_sign(data, len, &sk, NULL, &sig, &err), 0);
  mu_trust_set *trust = tu_trust(&pk);
  mu_bundle_check chk = {.trust = trust, .sig = (uint8_t *)sig, .sig_len = strlen(sig)};
  assert_int_equal(mu_bundle_verify(data, len, &chk, NULL, NULL, &err), 0);
  refused(data, len, &chk, NULL, MU_EINVAL, "entry 'run.sh': sha256 does not match");
  free(sig);
  free(data);
  mu_seckey_wipe(&sk);
  mu_trust_set_free(trust);
}

static void test_unpack_paths(void **state) {
  (void)state;
  tu_craft *c = tu_craft_new();
  tu_craft_file(c, "ok.txt", "ok\n", 0644, true, NULL);
  tu_craft_file(c, "../evil", "pwned\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "entry '../evil': '..' component: path escapes the task dir");

  c = tu_craft_new();
  tu_craft_dir(c, "a", 0755, true);
  tu_craft_file(c, "a/../../evil", "pwned\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "path escapes the task dir");

  /* An absolute path that points into the scratch root (which must stay empty). */
  char *root = tu_mkdtemp();
  char *abs = tu_path(root, "abs-evil");
  c = tu_craft_new();
  tu_craft_file(c, abs, "pwned\n", 0644, false, NULL);
  tu_craft_file(c, "/etc/cron.d/evil", "pwned\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "absolute path escapes the task dir");
  assert_false(tu_exists(abs));
  tu_rm_rf(root);
  free(root);
  free(abs);
}

static void test_unpack_symlinks(void **state) {
  (void)state;
  char tmp_target[64];
  snprintf(tmp_target, sizeof tmp_target, "/tmp/mu-bundle-test-%d-x", (int)getpid());
  tu_craft *c = tu_craft_new();
  tu_craft_symlink(c, "x", tmp_target, false);
  craft_refused(c, MU_EINVAL, "symlink to absolute");
  assert_false(tu_exists(tmp_target));

  /* d -> /tmp, then d/<name> written through it. */
  char through[80];
  snprintf(through, sizeof through, "d/mu-bundle-test-%d-file", (int)getpid());
  char tmp_file[80];
  snprintf(tmp_file, sizeof tmp_file, "/tmp/%s", through + 2);
  c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_symlink(c, "d", "/tmp", false);
  tu_craft_file(c, through, "pwned\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "entry 'd': symlink to absolute '/tmp' escapes the task dir");
  assert_false(tu_exists(tmp_file));

  /* A symlink the manifest vouches for (d -> sub), then an unlisted d/file through it. */
  c = tu_craft_new();
  tu_craft_symlink(c, "d", "sub", true);
  tu_craft_dir(c, "sub", 0755, true);
  tu_craft_file(c, "d/file", "pwned\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "entry 'd/file': path goes through symlink 'd'");

  /* Relative escapes: one '..' too many, and '..' after a name (chains could climb out). */
  c = tu_craft_new();
  tu_craft_symlink(c, "up", "..", false);
  craft_refused(c, MU_EINVAL, "entry 'up': symlink to '..' escapes the task dir");
  c = tu_craft_new();
  tu_craft_dir(c, "sub", 0755, true);
  tu_craft_symlink(c, "sub/x", "../../etc/passwd", false);
  craft_refused(c, MU_EINVAL, "escapes the task dir");
  c = tu_craft_new();
  tu_craft_dir(c, "sub", 0755, true);
  tu_craft_symlink(c, "y", "sub/x/../..", false);
  craft_refused(c, MU_EINVAL, "only leading '..' allowed");

  /* The manifest itself may not vouch for an escaping symlink or a path under a symlink. */
  c = tu_craft_new();
  tu_craft_symlink(c, "up", "../..", true);
  craft_refused(c, MU_EINVAL, "manifest: entry 'up'");
  c = tu_craft_new();
  tu_craft_symlink(c, "d", "sub", true);
  tu_craft_dir(c, "sub", 0755, true);
  tu_craft_file(c, "d/file", "x", 0644, true, NULL);
  craft_refused(c, MU_EINVAL, "path goes through a symlink");
}

static void test_unpack_hardlinks(void **state) {
  (void)state;
  tu_craft *c = tu_craft_new();
  tu_craft_hardlink(c, "h", "/etc/passwd");
  craft_refused(c, MU_EINVAL, "entry 'h': hardlink to '/etc/passwd' escapes the task dir");
  c = tu_craft_new();
  tu_craft_hardlink(c, "h", "../outside");
  craft_refused(c, MU_EINVAL, "hardlink to '../outside' escapes the task dir");
  c = tu_craft_new();
  tu_craft_file(c, "a", "x", 0644, true, NULL);
  tu_craft_hardlink(c, "h", "a");
  craft_refused(c, MU_EINVAL, "entry 'h': hardlinks are not allowed");
}

static void test_unpack_bomb(void **state) {
  (void)state;
  mu_unpack_limits lim;
  mu_unpack_limits_default(&lim);
  lim.max_total_bytes = 64ull << 20;
  lim.max_file_bytes = 4ull << 30;
  /* 1 GiB of zeros compresses to a few KiB. */
  tu_craft *c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_zeros(c, "zeros", 1ull << 30, false);
  uint8_t *data = NULL;
  size_t len = 0;
  tu_craft_build(c, &data, &len);
  assert_true(len < (1u << 20));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  refused(data, len, &unsigned_ok, &lim, MU_ENOSPC,
          "entry 'zeros': total unpacked size exceeds the cap of 67108864 bytes");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* Refused from the header, long before 1 GiB is inflated. */
  assert_true(t1.tv_sec - t0.tv_sec < 5);
  lim.max_file_bytes = 16ull << 20;
  refused(data, len, &unsigned_ok, &lim, MU_ENOSPC, "over the single-file cap of 16777216");
  free(data);

  /* Honestly listed, the manifest alone gives it away. */
  c = tu_craft_new();
  tu_craft_zeros(c, "zeros", 128ull << 20, true);
  tu_craft_build(c, &data, &len);
  lim.max_file_bytes = 4ull << 30;
  refused(data, len, &unsigned_ok, &lim, MU_ENOSPC, "manifest: total unpacked size exceeds the cap of 67108864 bytes");
  free(data);
}

static void test_unpack_entry_count(void **state) {
  (void)state;
  mu_unpack_limits lim;
  mu_unpack_limits_default(&lim);
  lim.max_entries = 100;
  tu_craft *c = tu_craft_new();
  for (int i = 0; i < 200; i++) {
    char name[16];
    snprintf(name, sizeof name, "f%03d", i);
    tu_craft_file(c, name, "", 0644, true, NULL);
  }
  uint8_t *data = NULL;
  size_t len = 0;
  tu_craft_build(c, &data, &len);
  refused(data, len, &unsigned_ok, &lim, MU_ENOSPC, "200 entries, over the cap of 100 entries");
  free(data);

  /* The manifest is within the cap but the archive repeats entries past it. */
  c = tu_craft_new();
  for (int i = 0; i < 100; i++) {
    char name[16];
    snprintf(name, sizeof name, "f%03d", i);
    tu_craft_file(c, name, "", 0644, true, NULL);
  }
  tu_craft_file(c, "f000", "", 0644, false, NULL);
  tu_craft_build(c, &data, &len);
  refused(data, len, &unsigned_ok, &lim, MU_ENOSPC, "more than 100 entries");
  free(data);
}

static void test_unpack_special_entries(void **state) {
  (void)state;
  tu_craft *c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_node(c, "null", TU_CHR, 0666);
  craft_refused(c, MU_EINVAL, "entry 'null': device nodes are not allowed");
  c = tu_craft_new();
  tu_craft_node(c, "pipe", TU_FIFO, 0644);
  craft_refused(c, MU_EINVAL, "entry 'pipe': FIFOs are not allowed");
  c = tu_craft_new();
  tu_craft_file(c, "suid", "#!/bin/sh\n", 04755, true, NULL);
  craft_refused(c, MU_EINVAL, "entry 'suid': setuid/setgid/sticky bits are not allowed");
  c = tu_craft_new();
  tu_craft_dir(c, "tmp", 01777, true);
  craft_refused(c, MU_EINVAL, "entry 'tmp': setuid/setgid/sticky");
}

static void test_unpack_manifest_mismatch(void **state) {
  (void)state;
  tu_craft *c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_file(c, "extra.txt", "smuggled\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "entry 'extra.txt': not listed in the manifest");
  c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_list_only(c, "b.txt", "promised\n");
  craft_refused(c, MU_EINVAL, "entry 'b.txt': listed in the manifest but missing");
  c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_file(c, "a.txt", "again\n", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "entry 'a.txt': appears twice");
  c = tu_craft_new();
  tu_craft_file(c, "a.txt", "fine\n", 0644, true, NULL);
  tu_craft_no_manifest(c);
  craft_refused(c, MU_EINVAL, "first entry must be MANIFEST.json");
  c = tu_craft_new();
  tu_craft_file(c, "MANIFEST.json", "{}", 0644, false, NULL);
  craft_refused(c, MU_EINVAL, "reserved for the manifest");
  refused((const uint8_t *)"definitely not a bundle", 23, &unsigned_ok, NULL, MU_EINVAL, "truncated or corrupt");
}

/* The agent verifies first (digest, signature, rollback floor needs the manifest), then
 * extracts what it verified without hashing the archive a second time (mu_bundle_unpack is
 * verify + this, so every refusal test above runs the same extraction), and bytes of another
 * length than the verified ones are refused before anything is written. */
static void test_unpack_verified(void **state) {
  (void)state;
  char *src = make_src();
  size_t len = 0;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint8_t *data = pack_src(src, &len, digest);
  mu_err err = {0};
  mu_bundle_check chk = {.expected_digest = digest, .allow_unsigned = true};
  mu_bundle_info *info = NULL;
  assert_int_equal(mu_bundle_verify(data, len, &chk, NULL, &info, &err), 0);
  for (unsigned flags = 0; flags <= MU_UNPACK_NO_UNSHARE; flags++) {
    char *root = tu_mkdtemp();
    char *dest = tu_path(root, "dest");
    int rc = mu_bundle_unpack_verified(data, len, info, NULL, dest, flags, &err);
    if (rc != 0) fail_msg("unpack verified (flags %u): %s", flags, err.msg);
    assert_file(dest, "run.sh", "#!/bin/sh\necho hi\n", 0755);
    assert_file(dest, "lib/util.sh", "util() { :; }\n", 0600);
    char *ro = tu_path(dest, "ro");
    chmod(ro, 0755);
    free(ro);
    tu_rm_rf(root);
    /* not the bytes verified: refused before anything is written */
    rc = mu_bundle_unpack_verified(data, len - 1, info, NULL, dest, flags, &err);
    assert_int_equal(rc, MU_EINVAL);
    assert_non_null(strstr(err.msg, "not the ones verified"));
    assert_int_equal(access(dest, F_OK), -1);
    free(root);
    free(dest);
  }
  mu_bundle_info_free(info);
  char *ro = tu_path(src, "ro");
  chmod(ro, 0755);
  free(ro);
  tu_rm_rf(src);
  free(src);
  free(data);
}

int mu_test_unpack(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unpack_happy),
      cmocka_unit_test(test_unpack_trust_refusals),
      cmocka_unit_test(test_unpack_tampered_signed),
      cmocka_unit_test(test_unpack_paths),
      cmocka_unit_test(test_unpack_symlinks),
      cmocka_unit_test(test_unpack_hardlinks),
      cmocka_unit_test(test_unpack_bomb),
      cmocka_unit_test(test_unpack_entry_count),
      cmocka_unit_test(test_unpack_special_entries),
      cmocka_unit_test(test_unpack_manifest_mismatch),
      cmocka_unit_test(test_unpack_verified),
  };
  return cmocka_run_group_tests_name("unpack", tests, NULL, NULL);
}

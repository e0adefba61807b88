/* Keys, signatures and verification: keygen files, sign/verify, and each trust refusal
 * ("unsigned", "unknown key id", "bad signature", "digest mismatch"). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/bundle/pack.h"
#include "lib/bundle/test_util.h"
#include "lib/bundle/verify.h"

typedef struct fixture {
  char *dir;     /* scratch */
  uint8_t *data; /* a packed bundle */
  size_t len;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_seckey sk;
  mu_pubkey pk;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  char *src = tu_path(f->dir, "src");
  assert_int_equal(mkdir(src, 0755), 0);
  tu_write(src, "run.sh", "#!/bin/sh\necho hi\n", 0755);
  char *out = tu_path(f->dir, "b.bundle");
  mu_pack_opts o = {.name = "demo", .version = "1.0.0", .entry = "run.sh"};
  mu_err err = {0};
  assert_int_equal(mu_bundle_pack(src, &o, out, f->digest, &err), 0);
  f->data = tu_read(out, &f->len);
  assert_int_equal(mu_key_generate(&f->sk, &f->pk, &err), 0);
  free(src);
  free(out);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f->data);
  mu_seckey_wipe(&f->sk);
  free(f);
  return 0;
}

static void test_keygen_files(void **state) {
  fixture *f = *state;
  char *prefix = tu_path(f->dir, "team");
  char *key = tu_path(f->dir, "team.key");
  char *pub = tu_path(f->dir, "team.pub");
  mu_err err = {0};
  assert_int_equal(mu_key_write_files(prefix, &f->sk, &f->pk, &err), 0);
  struct stat st;
  assert_int_equal(stat(key, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  size_t len = 0;
  char *text = (char *)tu_read(pub, &len);
  char want[64];
  snprintf(want, sizeof want, "muster-ed25519-pub v1 %s ", f->pk.key_id);
  assert_memory_equal(text, want, strlen(want));
  free(text);
  text = (char *)tu_read(key, &len);
  assert_non_null(strstr(text, "muster-ed25519-key v1 "));
  free(text);

  mu_seckey sk2;
  mu_pubkey pk2;
  assert_int_equal(mu_seckey_load_file(key, &sk2, &err), 0);
  assert_int_equal(mu_pubkey_load_file(pub, &pk2, &err), 0);
  assert_memory_equal(sk2.sk, f->sk.sk, 64);
  assert_memory_equal(pk2.pk, f->pk.pk, 32);
  assert_string_equal(pk2.key_id, f->pk.key_id);
  assert_int_equal(strlen(pk2.key_id), 16);

  /* Refuses to overwrite either file, and leaves them intact. */
  assert_int_equal(mu_key_write_files(prefix, &f->sk, &f->pk, &err), MU_EEXIST);
  assert_non_null(strstr(err.msg, "refusing to overwrite"));
  assert_int_equal(mu_seckey_load_file(key, &sk2, &err), 0);

  /* A key file others can read is refused. */
  assert_int_equal(chmod(key, 0644), 0);
  assert_int_equal(mu_seckey_load_file(key, &sk2, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "chmod 600"));

  /* A corrupted public key is caught by its key id. */
  const char *zero_pub = "muster-ed25519-pub v1 0000000000000000 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  assert_int_equal(mu_pubkey_parse(zero_pub, strlen(zero_pub), &pk2, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "does not match"));
  mu_seckey_wipe(&sk2);
  free(prefix);
  free(key);
  free(pub);
}

static int verify(fixture *f, const uint8_t *data, size_t len, const char *sig, const mu_trust_set *trust,
                  const char *expect, bool allow_unsigned, mu_bundle_info **info, mu_err *err) {
  mu_bundle_check chk = {.expected_digest = expect,
                         .trust = trust,
                         .sig = (const uint8_t *)sig,
                         .sig_len = sig ? strlen(sig) : 0,
                         .allow_unsigned = allow_unsigned};
  (void)f;
  return mu_bundle_verify(data, len, &chk, NULL, info, err);
}

static void test_sign_verify(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  char *sig = NULL;
  assert_int_equal(mu_bundle_sign(f->data, f->len, &f->sk, NULL, &sig, &err), 0);
  mu_trust_set *trust = tu_trust(&f->pk);
  mu_bundle_info *info = NULL;
  int rc = verify(f, f->data, f->len, sig, trust, f->digest, false, &info, &err);
  if (rc != 0) fail_msg("verify: %s", err.msg);
  assert_string_equal(info->key_id, f->pk.key_id);
  assert_string_equal(info->digest, f->digest);
  assert_string_equal(info->manifest->name, "demo");
  mu_bundle_info_free(info);

  /* sign_file writes FILE.sig with the same content. */
  char *path = tu_path(f->dir, "b.bundle");
  char *sig_path = NULL;
  assert_int_equal(mu_bundle_sign_file(path, &f->sk, NULL, &sig_path, &err), 0);
  size_t slen = 0;
  char *text = (char *)tu_read(sig_path, &slen);
  assert_string_equal(text, sig);
  free(text);
  free(sig_path);
  free(path);
  free(sig);
  mu_trust_set_free(trust);
}

static void test_verify_refusals(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  char *sig = NULL;
  assert_int_equal(mu_bundle_sign(f->data, f->len, &f->sk, NULL, &sig, &err), 0);
  mu_trust_set *trust = tu_trust(&f->pk);

  /* Unsigned: refused unless allowed. */
  assert_int_equal(verify(f, f->data, f->len, NULL, trust, NULL, false, NULL, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "unsigned"));
  assert_int_equal(verify(f, f->data, f->len, NULL, trust, NULL, true, NULL, &err), 0);

  /* Signed by a key nobody trusts: named by its id, even with allow_unsigned. */
  mu_seckey other_sk;
  mu_pubkey other_pk;
  assert_int_equal(mu_key_generate(&other_sk, &other_pk, &err), 0);
  char *other_sig = NULL;
  assert_int_equal(mu_bundle_sign(f->data, f->len, &other_sk, NULL, &other_sig, &err), 0);
  assert_int_equal(verify(f, f->data, f->len, other_sig, trust, NULL, true, NULL, &err), MU_EPERM);
  char want[64];
  snprintf(want, sizeof want, "unknown key id %s", other_pk.key_id);
  assert_non_null(strstr(err.msg, want));

  /* A signature claiming a trusted key id but made by another key: bad signature. */
  mu_sig s;
  assert_int_equal(mu_sig_parse(other_sig, strlen(other_sig), &s, &err), 0);
  memcpy(s.key_id, f->pk.key_id, MU_KEY_ID_SIZE);
  char *forged = NULL;
  assert_int_equal(mu_sig_format(&s, &forged, &err), 0);
  assert_int_equal(verify(f, f->data, f->len, forged, trust, NULL, false, NULL, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "bad signature"));

  /* Wrong expected digest: refused before anything else. */
  char wrong[MU_BUNDLE_DIGEST_SIZE];
  memcpy(wrong, f->digest, sizeof wrong);
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  assert_int_equal(verify(f, f->data, f->len, sig, trust, wrong, false, NULL, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "digest mismatch"));

  /* One flipped byte in the archive (near its end) with the old signature. */
  uint8_t *copy = malloc(f->len);
  memcpy(copy, f->data, f->len);
  copy[f->len - 5] ^= 0x01;
  int rc = verify(f, copy, f->len, sig, trust, NULL, false, NULL, &err);
  assert_true(rc == MU_EPERM || rc == MU_EINVAL);
  assert_true(strstr(err.msg, "bad signature") != NULL || strstr(err.msg, "corrupt") != NULL);
  /* And with the digest pinned it is a digest mismatch. */
  assert_int_equal(verify(f, copy, f->len, sig, trust, f->digest, false, NULL, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "digest mismatch"));
  free(copy);

  /* A garbled .sig file. */
  assert_int_equal(verify(f, f->data, f->len, "hello", trust, NULL, false, NULL, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "sig"));

  /* Signing refuses bytes that are not a bundle. */
  char *junk = NULL;
  assert_int_equal(mu_bundle_sign((const uint8_t *)"junk", 4, &f->sk, NULL, &junk, &err), MU_EINVAL);
  assert_null(junk);
  mu_seckey_wipe(&other_sk);
  free(other_sig);
  free(forged);
  free(sig);
  mu_trust_set_free(trust);
}

static void test_trust_set(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  mu_trust_set *set = NULL;
  assert_int_equal(mu_trust_set_new(1, &set, &err), 0);
  assert_int_equal(mu_trust_set_add(set, &f->pk, &err), 0);
  assert_int_equal(mu_trust_set_add(set, &f->pk, &err), 0); /* same key again: no-op */
  assert_int_equal(mu_trust_set_count(set), 1);
  mu_pubkey clash = f->pk;
  clash.pk[0] ^= 1;
  assert_int_equal(mu_trust_set_add(set, &clash, &err), MU_EEXIST);
  mu_seckey sk2;
  mu_pubkey pk2;
  assert_int_equal(mu_key_generate(&sk2, &pk2, &err), 0);
  assert_int_equal(mu_trust_set_add(set, &pk2, &err), MU_ENOSPC);
  assert_non_null(mu_trust_set_find(set, f->pk.key_id));
  assert_null(mu_trust_set_find(set, pk2.key_id));
  assert_int_equal(mu_trust_set_add_file(set, "/nonexistent.pub", &err), MU_ENOENT);
  mu_trust_set_free(set);
}

int mu_test_sign(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_keygen_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sign_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trust_set, setup, teardown),
  };
  return cmocka_run_group_tests_name("sign", tests, NULL, NULL);
}

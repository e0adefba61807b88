/* The secret record codec and key files: a value seals and opens under its key, and only
 * there — a wrong key names both key ids, a flipped ciphertext bit, a record moved to another
 * name or version and a truncated ciphertext are refused; the stored JSON never holds the
 * value; key files in every format load, and wrong sizes and open modes are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "lib/secrets/secret_box.h"

static const char value[] = "hunter2-correct-horse";

static mu_secret_record *sealed(const mu_secret_key *key, const char *name, uint64_t version) {
  mu_secret_record *r = mu_secret_record_new(name, version, "env=prod", "admin cert alice", 1000);
  mu_err err = {0};
  assert_non_null(r);
  assert_int_equal(mu_secret_record_seal(r, key, value, strlen(value), &err), 0);
  return r;
}

static void assert_opens(const mu_secret_record *r, const mu_secret_key *key) {
  char *out = NULL;
  size_t len = 0;
  mu_err err = {0};
  assert_int_equal(mu_secret_record_open(r, key, &out, &len, &err), 0);
  assert_int_equal(len, strlen(value));
  assert_string_equal(out, value);
  mu_secret_value_free(out, len);
}

static void assert_refused(const mu_secret_record *r, const mu_secret_key *key, const char *why) {
  char *out = NULL;
  size_t len = 0;
  mu_err err = {0};
  assert_int_equal(mu_secret_record_open(r, key, &out, &len, &err), MU_EPERM);
  assert_null(out);
  assert_non_null(strstr(err.msg, why));
  assert_null(strstr(err.msg, value));
}

static void test_round_trip_through_json(void **state) {
  (void)state;
  mu_secret_key key;
  mu_secret_key_generate(&key);
  mu_secret_record *r = sealed(&key, "db-password", 3);
  assert_string_equal(r->key_id, key.id);
  char *json = mu_secret_record_encode(r);
  assert_non_null(json);
  assert_null(strstr(json, value)); /* only nonce and ciphertext */
  assert_non_null(strstr(json, "\"version\":3"));
  mu_secret_record *back = NULL;
  mu_err err = {0};
  assert_int_equal(mu_secret_record_decode("db-password", json, strlen(json), &back, &err), 0);
  assert_string_equal(back->scope, "env=prod");
  assert_string_equal(back->created_by, "admin cert alice");
  assert_int_equal(back->version, 3);
  assert_opens(back, &key);
  mu_secret_record *copy = mu_secret_record_dup(back);
  assert_opens(copy, &key);
  /* the same value sealed twice differs: a fresh nonce each time */
  mu_secret_record *again = sealed(&key, "db-password", 3);
  assert_memory_not_equal(again->nonce, r->nonce, MU_SECRET_NONCE_BYTES);
  mu_secret_record_free(again);
  mu_secret_record_free(copy);
  mu_secret_record_free(back);
  mu_secret_record_free(r);
  free(json);
}

static void test_wrong_key_names_both_ids(void **state) {
  (void)state;
  mu_secret_key a, b;
  mu_secret_key_generate(&a);
  mu_secret_key_generate(&b);
  assert_string_not_equal(a.id, b.id);
  mu_secret_record *r = sealed(&a, "api-token", 1);
  char want[80];
  snprintf(want, sizeof want, "encrypted with key id %s; this key is key id %s", a.id, b.id);
  assert_refused(r, &b, want);
  /* a key that claims the right id but is another key: the tag does not verify */
  mu_secret_key forged = b;
  memcpy(forged.id, a.id, sizeof forged.id);
  assert_refused(r, &forged, "altered or moved");
  mu_secret_record_free(r);
}

static void test_tampered_ciphertext_refused(void **state) {
  (void)state;
  mu_secret_key key;
  mu_secret_key_generate(&key);
  mu_secret_record *r = sealed(&key, "api-token", 1);
  for (size_t i = 0; i < r->ct_len; i++) { /* every byte, the tag included */
    r->ct[i] ^= 0x01;
    assert_refused(r, &key, "altered or moved");
    r->ct[i] ^= 0x01;
  }
  r->nonce[0] ^= 0x80;
  assert_refused(r, &key, "altered or moved");
  r->nonce[0] ^= 0x80;
  r->ct_len = 10;
  assert_refused(r, &key, "truncated");
  mu_secret_record_free(r);
}

static void test_moved_record_refused(void **state) {
  (void)state;
  mu_secret_key key;
  mu_secret_key_generate(&key);
  mu_secret_record *r = sealed(&key, "prod-db", 2);
  char *json = mu_secret_record_encode(r);
  mu_err err = {0};
  mu_secret_record *moved = NULL;
  /* stored under another key: decode refuses (the record names itself) */
  assert_int_equal(mu_secret_record_decode("dev-db", json, strlen(json), &moved, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "holds the record of 'prod-db'"));
  /* renamed inside the JSON too: the associated data no longer matches */
  free(r->name);
  r->name = strdup("dev-db");
  assert_refused(r, &key, "altered or moved");
  free(r->name);
  r->name = strdup("prod-db");
  /* replayed as another version */
  r->version = 3;
  assert_refused(r, &key, "version 3 does not decrypt");
  r->version = 2;
  assert_opens(r, &key);
  mu_secret_record_free(r);
  free(json);
}

static void test_bad_records_refused(void **state) {
  (void)state;
  static const char *const bad[] = {
      "not json",
      "[]",
      "{\"name\":\"x\",\"version\":0,\"key_id\":\"0123456789abcdef\"}",
      "{\"name\":\"x\",\"version\":1,\"key_id\":\"short\"}",
      "{\"name\":\"x\",\"version\":1,\"key_id\":\"0123456789abcdef\",\"nonce\":\"AAAA\","
      "\"ciphertext\":\"AAAA\"}",
      "{\"name\":\"x\",\"version\":1,\"key_id\":\"0123456789abcdef\",\"nonce\":"
      "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"ciphertext\":\"%%%\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mu_secret_record *r = NULL;
    mu_err err = {0};
    assert_int_equal(mu_secret_record_decode("x", bad[i], strlen(bad[i]), &r, &err), MU_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err.msg, "secrets/x"));
  }
}

static char dir[64];

static void write_file(const char *name, const void *data, size_t len, mode_t mode, char *path) {
  snprintf(path, 128, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static void test_key_files(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/secret_box_test.XXXXXX");
  assert_non_null(mkdtemp(dir));
  unsigned char raw[32];
  for (int i = 0; i < 32; i++) raw[i] = (unsigned char)(i * 7 + 1);
  char hex[65], b64[64], path[128], text[100];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
  mu_secret_key k_raw, k_hex, k_b64, k;
  mu_err err = {0};
  write_file("raw", raw, sizeof raw, 0600, path);
  assert_int_equal(mu_secret_key_load(path, &k_raw, &err), 0);
  snprintf(text, sizeof text, "%s\n", hex);
  write_file("hex", text, strlen(text), 0400, path);
  assert_int_equal(mu_secret_key_load(path, &k_hex, &err), 0);
  write_file("b64", b64, strlen(b64), 0600, path);
  assert_int_equal(mu_secret_key_load(path, &k_b64, &err), 0);
  assert_memory_equal(k_raw.bytes, raw, 32);
  assert_memory_equal(k_hex.bytes, raw, 32);
  assert_memory_equal(k_b64.bytes, raw, 32);
  assert_string_equal(k_raw.id, k_hex.id);
  assert_int_equal(strlen(k_raw.id), 16);
  assert_null(strstr(hex, k_raw.id)); /* the id is a hash, not a piece of the key */

  /* wrong sizes, in every form */
  write_file("short", raw, 31, 0600, path);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "a secret key is 32 bytes"));
  assert_non_null(strstr(err.msg, path));
  write_file("hex-short", hex, 62, 0600, path);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_EINVAL);
  hex[5] = 'z';
  write_file("not-hex", hex, 64, 0600, path);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_EINVAL);
  write_file("big", text, 40, 0600, path);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_EINVAL);

  /* too open */
  write_file("open", raw, sizeof raw, 0640, path);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "mode 0640 is wider than 0600"));
  assert_non_null(strstr(err.msg, "chmod 600"));
  write_file("exec", raw, sizeof raw, 0700, path);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_EPERM);
  snprintf(path, sizeof path, "%s/missing", dir);
  assert_int_equal(mu_secret_key_load(path, &k, &err), MU_ENOENT);

  /* keygen: 0600, never over an existing file, loads back */
  mu_secret_key gen;
  mu_secret_key_generate(&gen);
  snprintf(path, sizeof path, "%s/gen.key", dir);
  assert_int_equal(mu_secret_key_write(&gen, path, &err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(mu_secret_key_write(&gen, path, &err), MU_EEXIST);
  assert_int_equal(mu_secret_key_load(path, &k, &err), 0);
  assert_string_equal(k.id, gen.id);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_names_and_values(void **state) {
  (void)state;
  mu_err err = {0};
  assert_int_equal(mu_secret_check_name("db-password.v2_x", &err), 0);
  assert_int_equal(mu_secret_check_name("", &err), MU_EINVAL);
  assert_int_equal(mu_secret_check_name(".hidden", &err), MU_EINVAL);
  assert_int_equal(mu_secret_check_name("a/b", &err), MU_EINVAL);
  assert_int_equal(mu_secret_check_value("abcd", 4, &err), 0);
  assert_int_equal(mu_secret_check_value("p\xc3\xa4ss", 5, &err), 0);
  assert_int_equal(mu_secret_check_value("abc", 3, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "at least 4"));
  assert_int_equal(mu_secret_check_value("ab\0cd", 5, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "byte 2"));
  assert_int_equal(mu_secret_check_value("ab\xff\xfe", 4, &err), MU_EINVAL);
  assert_int_equal(mu_secret_check_value("abc\xc3", 4, &err), MU_EINVAL);       /* cut sequence */
  assert_int_equal(mu_secret_check_value("\xed\xa0\x80x", 4, &err), MU_EINVAL); /* surrogate */
  char *big = calloc(1, MU_SECRET_VALUE_MAX + 2);
  memset(big, 'a', MU_SECRET_VALUE_MAX + 1);
  assert_int_equal(mu_secret_check_value(big, MU_SECRET_VALUE_MAX, &err), 0);
  assert_int_equal(mu_secret_check_value(big, MU_SECRET_VALUE_MAX + 1, &err), MU_EINVAL);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_through_json),
      cmocka_unit_test(test_wrong_key_names_both_ids),
      cmocka_unit_test(test_tampered_ciphertext_refused),
      cmocka_unit_test(test_moved_record_refused),
      cmocka_unit_test(test_bad_records_refused),
      cmocka_unit_test(test_key_files),
      cmocka_unit_test(test_names_and_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Bearer tokens without a daemon (token_codec.h): the mst_<id>_<secret> format, the hash that
 * is all that is stored, refusals of wrong, revoked and expired tokens (naming the token, never
 * the secret), the field checks, TTLs and the etcd record's JSON round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/tokens/token_codec.h"

#define NOW 1717171717000LL

static void assert_has(const char *text, const char *part) {
  if (strstr(text, part) == NULL) fail_msg("'%s' does not contain '%s'", text, part);
}

/* A fresh token named name: its record and its bearer text. */
static void make(mu_token_record *rec, char token[MU_TOKEN_LEN + 1], const char *name) {
  mu_err err = {0};
  memset(rec, 0, sizeof *rec);
  assert_int_equal(mu_token_generate(rec, token, MU_TOKEN_LEN + 1, &err), 0);
  snprintf(rec->name, sizeof rec->name, "%s", name);
  snprintf(rec->role, sizeof rec->role, "operator");
  rec->created_at_ms = NOW;
}

static void test_format(void **state) {
  (void)state;
  mu_token_record a, b;
  char ta[MU_TOKEN_LEN + 1], tb[MU_TOKEN_LEN + 1];
  make(&a, ta, "a");
  make(&b, tb, "b");
  assert_int_equal(strlen(ta), MU_TOKEN_LEN);
  assert_memory_equal(ta, "mst_", 4);
  assert_memory_equal(ta + 4, a.id, MU_TOKEN_ID_LEN);
  assert_int_equal(ta[4 + MU_TOKEN_ID_LEN], '_');
  for (size_t i = 0; i < MU_TOKEN_ID_LEN; i++) assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789", a.id[i]));
  /* random: two tokens share neither id nor secret nor hash */
  assert_string_not_equal(a.id, b.id);
  assert_string_not_equal(ta + 17, tb + 17);
  assert_memory_not_equal(a.hash, b.hash, MU_TOKEN_HASH_BYTES);

  char id[MU_TOKEN_ID_LEN + 1];
  const char *secret = NULL;
  mu_err err = {0};
  assert_int_equal(mu_token_parse(ta, id, &secret, &err), 0);
  assert_string_equal(id, a.id);
  assert_ptr_equal(secret, ta + 17);
  assert_int_equal(strlen(secret), MU_TOKEN_SECRET_LEN);
  /* the hash of the secret is stored, never the secret itself */
  char *json = mu_token_to_json(&a);
  assert_non_null(json);
  assert_null(strstr(json, secret));
  free(json);
}

static void test_parse_refuses_garbage(void **state) {
  (void)state;
  mu_token_record a;
  char ta[MU_TOKEN_LEN + 1];
  make(&a, ta, "a");
  char id[MU_TOKEN_ID_LEN + 1];
  const char *secret = NULL;
  const char *bad[] = {"", "garbage", "mst_", "mst_abc_def", "xst_" /* prefix */};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mu_err err = {0};
    assert_int_equal(mu_token_parse(bad[i], id, &secret, &err), MU_EPERM);
    assert_has(err.msg, "malformed token");
  }
  char t[MU_TOKEN_LEN + 2];
  mu_err err = {0};
  snprintf(t, sizeof t, "%s", ta);
  t[5] = 'A'; /* ids are lower case */
  assert_int_equal(mu_token_parse(t, id, &secret, &err), MU_EPERM);
  snprintf(t, sizeof t, "%s", ta);
  t[20] = '+'; /* not base64url */
  assert_int_equal(mu_token_parse(t, id, &secret, &err), MU_EPERM);
  assert_null(strstr(err.msg, t + 17)); /* the secret is not echoed */
  snprintf(t, sizeof t, "%sx", ta);     /* one char too many */
  assert_int_equal(mu_token_parse(t, id, &secret, &err), MU_EPERM);
}

static void test_verify(void **state) {
  (void)state;
  mu_token_record a, b;
  char ta[MU_TOKEN_LEN + 1], tb[MU_TOKEN_LEN + 1];
  make(&a, ta, "ci-bot");
  make(&b, tb, "other");
  mu_err err = {0};
  assert_int_equal(mu_token_verify(&a, ta + 17, NOW, &err), 0);
  /* another token's secret under a's id: refused without naming a */
  assert_int_equal(mu_token_verify(&a, tb + 17, NOW, &err), MU_EPERM);
  assert_string_equal(err.msg, "unknown token");
  /* a secret off by one character */
  char t[MU_TOKEN_LEN + 1];
  snprintf(t, sizeof t, "%s", ta);
  t[MU_TOKEN_LEN - 1] = t[MU_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
  assert_int_equal(mu_token_verify(&a, t + 17, NOW, &err), MU_EPERM);
  assert_string_equal(err.msg, "unknown token");

  /* expiry: valid until expires_at_ms, refused from then on, naming the token */
  a.expires_at_ms = NOW + 1000;
  assert_int_equal(mu_token_verify(&a, ta + 17, NOW + 999, &err), 0);
  assert_int_equal(mu_token_live(&a, NOW + 999), 1);
  assert_string_equal(mu_token_state(&a, NOW + 999), "active");
  assert_int_equal(mu_token_verify(&a, ta + 17, NOW + 1000, &err), MU_EPERM);
  assert_string_equal(err.msg, "token ci-bot expired 0s ago");
  assert_int_equal(mu_token_verify(&a, ta + 17, NOW + 1000 + 180000, &err), MU_EPERM);
  assert_string_equal(err.msg, "token ci-bot expired 3m ago");
  assert_int_equal(mu_token_live(&a, NOW + 1000), 0);
  assert_string_equal(mu_token_state(&a, NOW + 1000), "expired");

  /* revocation wins over everything, and is said as such */
  a.expires_at_ms = 0;
  a.revoked_at_ms = NOW;
  assert_int_equal(mu_token_verify(&a, ta + 17, NOW + 2 * 3600 * 1000, &err), MU_EPERM);
  assert_string_equal(err.msg, "token ci-bot was revoked 2h ago");
  assert_null(strstr(err.msg, ta + 17));
  assert_string_equal(mu_token_state(&a, NOW), "revoked");
  assert_int_equal(mu_token_live(&a, NOW), 0);
}

static void test_fields(void **state) {
  (void)state;
  mu_err err = {0};
  assert_int_equal(mu_token_check_name("ci-bot.v2_x", &err), 0);
  assert_int_equal(mu_token_check_name("", &err), MU_EINVAL);
  assert_has(err.msg, "name: required");
  assert_int_equal(mu_token_check_name("a b", &err), MU_EINVAL);
  assert_has(err.msg, "name 'a b'");
  char long_name[80];
  memset(long_name, 'x', 65);
  long_name[65] = '\0';
  assert_int_equal(mu_token_check_name(long_name, &err), MU_EINVAL);
  long_name[64] = '\0';
  assert_int_equal(mu_token_check_name(long_name, &err), 0);

  assert_int_equal(mu_token_check_types("", &err), 0);
  assert_int_equal(mu_token_check_types("shell", &err), 0);
  assert_int_equal(mu_token_check_types("shell,http,python", &err), 0);
  const char *bad[] = {",", "shell,", ",shell", "shell,,http", "she ll", "shell;http"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mu_err e = {0};
    assert_int_equal(mu_token_check_types(bad[i], &e), MU_EINVAL);
    assert_has(e.msg, "types");
  }

  int64_t at = -1;
  assert_int_equal(mu_token_expiry("", NOW, &at, &err), 0);
  assert_int_equal(at, 0);
  assert_int_equal(mu_token_expiry("30m", NOW, &at, &err), 0);
  assert_int_equal(at, NOW + 30 * 60 * 1000);
  assert_int_equal(mu_token_expiry("90d", NOW, &at, &err), 0);
  assert_int_equal(at, NOW + 90LL * 86400 * 1000);
  assert_int_equal(mu_token_expiry("0s", NOW, &at, &err), MU_EINVAL);
  assert_has(err.msg, "ttl '0s': must be positive");
  assert_int_equal(mu_token_expiry("-5m", NOW, &at, &err), MU_EINVAL);
  assert_has(err.msg, "ttl: bad duration");
  assert_int_equal(mu_token_expiry("soon", NOW, &at, &err), MU_EINVAL);
}

static void test_record_json(void **state) {
  (void)state;
  mu_token_record a, back;
  char ta[MU_TOKEN_LEN + 1];
  make(&a, ta, "deploy");
  snprintf(a.scope, sizeof a.scope, "role=web,dc=eu*");
  snprintf(a.types, sizeof a.types, "shell,http");
  snprintf(a.created_by, sizeof a.created_by, "admin cert alice (admin)");
  a.expires_at_ms = NOW + 5000;
  a.revoked_at_ms = NOW + 10;
  snprintf(a.revoked_by, sizeof a.revoked_by, "token root (admin)");
  char *json = mu_token_to_json(&a);
  assert_non_null(json);
  mu_err err = {0};
  assert_int_equal(mu_token_from_json(json, strlen(json), &back, &err), 0);
  assert_memory_equal(&a, &back, sizeof a);
  /* the stored record still verifies the secret */
  back.revoked_at_ms = 0;
  assert_int_equal(mu_token_verify(&back, ta + 17, NOW, &err), 0);
  free(json);

#define REC(rest) "{\"id\":\"abcdefghijkl\",\"name\":\"n\",\"role\":\"admin\"" rest "}"
  static const struct {
    const char *json;
    const char *want;
  } bad[] = {
      {"[1]", "not a JSON object"},
      {"{", "not a JSON object"},
      {REC(""), "hash"},
      {REC(",\"hash\":\"00\""), "hash: expected 64 hex digits"},
      {REC(",\"hash\":\"00\",\"expires_at_ms\":-1"), "expires_at_ms"},
      {REC(",\"hash\":\"00\",\"name\":\"a b\""), "name 'a b'"},
      {REC(",\"role\":7"), "role: expected a string"},
      {"{\"id\":\"ABC\",\"name\":\"n\",\"role\":\"admin\",\"hash\":\"00\"}", "id 'ABC'"},
  };
#undef REC
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mu_err e = {0};
    assert_int_equal(mu_token_from_json(bad[i].json, strlen(bad[i].json), &back, &e), MU_EINVAL);
    assert_has(e.msg, bad[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format), cmocka_unit_test(test_parse_refuses_garbage), cmocka_unit_test(test_verify),
      cmocka_unit_test(test_fields), cmocka_unit_test(test_record_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of image signatures as bytes (imagesig.h): the canonical payload, envelopes made
 * with a real Ed25519 key and checked against a trust set (valid, untrusted key, tampered,
 * over another digest or repository, expired, malformed), artifact manifests and referrers
 * indexes. The registry side is in imagesig_test.py against a real docker-registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plugins/container/imagesig.h"

#define DA "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DB "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define REPO "127.0.0.1:5000/t/run"
#define NOW 1800000000

typedef struct fix {
  mu_seckey sk, other_sk;
  mu_pubkey pk, other_pk;
  mu_trust_set *trust; /* pk only */
} fix;

static int setup(void **state) {
  fix *f = calloc(1, sizeof *f);
  mu_err err = {0};
  assert_int_equal(mu_key_generate(&f->sk, &f->pk, &err), 0);
  assert_int_equal(mu_key_generate(&f->other_sk, &f->other_pk, &err), 0);
  assert_int_equal(mu_trust_set_new(4, &f->trust, &err), 0);
  assert_int_equal(mu_trust_set_add(f->trust, &f->pk, &err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fix *f = *state;
  mu_trust_set_free(f->trust);
  free(f);
  return 0;
}

static char *envelope(const mu_seckey *sk, const char *repo, const char *digest, int64_t expires, size_t *len) {
  mu_imagesig_payload p = {.expires = expires};
  snprintf(p.repository, sizeof p.repository, "%s", repo);
  snprintf(p.digest, sizeof p.digest, "%s", digest);
  char *env = NULL;
  mu_err err = {0};
  if (mu_imagesig_envelope_make(sk, &p, &env, len, &err) != 0) fail_msg("%s", err.msg);
  return env;
}

static void verify_is(fix *f, const char *env, size_t len, mu_imagesig_status want, const char *needle) {
  mu_imagesig_info info;
  mu_imagesig_status st = mu_imagesig_envelope_verify(env, len, f->trust, REPO, DA, NOW, &info);
  if (st != want || strstr(info.msg, needle) == NULL)
    fail_msg("got %s (%s), want %s with \"%s\"", mu_imagesig_status_name(st), info.msg, mu_imagesig_status_name(want),
             needle);
}

static void test_payload_canonical(void **state) {
  (void)state;
  mu_imagesig_payload p = {.expires = 1900000000, .repository = REPO, .digest = DA};
  char buf[512];
  mu_err err = {0};
  int n = mu_imagesig_payload_format(&p, buf, sizeof buf, &err);
  assert_string_equal(buf, "{\"expires\":1900000000,\"manifest\":\"" DA "\",\"repository\":\"" REPO
                           "\",\"type\":\"muster.image.signature.v1\"}");
  mu_imagesig_payload back;
  assert_int_equal(mu_imagesig_payload_parse(buf, (size_t)n, &back, &err), 0);
  assert_string_equal(back.digest, DA);
  assert_int_equal(back.expires, 1900000000);
  /* the same fields, not the canonical bytes: refused */
  const char *spaced = "{\"expires\": 1900000000,\"manifest\":\"" DA "\",\"repository\":\"" REPO
                       "\",\"type\":\"muster.image.signature.v1\"}";
  assert_int_equal(mu_imagesig_payload_parse(spaced, strlen(spaced), &back, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "canonical"));
  const char *extra = "{\"expires\":1,\"manifest\":\"" DA "\",\"repository\":\"r/x\",\"type\":\"t\",\"x\":1}";
  assert_int_equal(mu_imagesig_payload_parse(extra, strlen(extra), &back, &err), MU_EINVAL);
  mu_imagesig_payload bad = {.expires = 1, .repository = "a\"b", .digest = DA};
  assert_true(mu_imagesig_payload_format(&bad, buf, sizeof buf, &err) < 0);
}

static void test_envelope_verdicts(void **state) {
  fix *f = *state;
  size_t len;
  char *env = envelope(&f->sk, REPO, DA, NOW + 60, &len);
  mu_imagesig_info info;
  assert_int_equal(mu_imagesig_envelope_verify(env, len, f->trust, REPO, DA, NOW, &info), MU_IMAGESIG_OK);
  assert_string_equal(info.key_id, f->pk.key_id);
  assert_non_null(strstr(info.msg, "until 2027-01-15T08:01:00Z"));
  verify_is(f, env, len, MU_IMAGESIG_OK, f->pk.key_id);
  /* no trust set at all: untrusted, named */
  assert_int_equal(mu_imagesig_envelope_verify(env, len, NULL, REPO, DA, NOW, &info), MU_IMAGESIG_UNTRUSTED);
  /* over another digest, for another repository */
  assert_int_equal(mu_imagesig_envelope_verify(env, len, f->trust, REPO, DB, NOW, &info), MU_IMAGESIG_WRONG_DIGEST);
  assert_non_null(strstr(info.msg, "is over " DA ", not " DB));
  assert_int_equal(mu_imagesig_envelope_verify(env, len, f->trust, "127.0.0.1:5000/t/other", DA, NOW, &info),
                   MU_IMAGESIG_WRONG_REPOSITORY);
  /* expired: at the second it ends, and after */
  assert_int_equal(mu_imagesig_envelope_verify(env, len, f->trust, REPO, DA, NOW + 60, &info), MU_IMAGESIG_EXPIRED);
  assert_non_null(strstr(info.msg, "expired at"));
  /* one signature byte changed: tampered */
  char *sig = strstr(env, "\"signature\":\"") + 13;
  sig[5] = sig[5] == 'A' ? 'B' : 'A';
  verify_is(f, env, len, MU_IMAGESIG_BAD_SIGNATURE, "does not verify");
  free(env);
  /* another key */
  env = envelope(&f->other_sk, REPO, DA, NOW + 60, &len);
  verify_is(f, env, len, MU_IMAGESIG_UNTRUSTED, f->other_pk.key_id);
  free(env);
  /* malformed */
  verify_is(f, "{}", 2, MU_IMAGESIG_MALFORMED, "not {key_id");
  verify_is(f, "nope", 4, MU_IMAGESIG_MALFORMED, "not {key_id");
  const char *b64bad = "{\"key_id\":\"00112233445566ff\",\"payload\":\"!!\",\"signature\":\"AA==\"}";
  verify_is(f, b64bad, strlen(b64bad), MU_IMAGESIG_MALFORMED, "base64");
}

static void test_status_order(void **state) {
  (void)state;
  assert_true(mu_imagesig_status_better(MU_IMAGESIG_OK, MU_IMAGESIG_EXPIRED));
  assert_true(mu_imagesig_status_better(MU_IMAGESIG_EXPIRED, MU_IMAGESIG_UNTRUSTED));
  assert_true(mu_imagesig_status_better(MU_IMAGESIG_UNTRUSTED, MU_IMAGESIG_UNSIGNED));
  assert_false(mu_imagesig_status_better(MU_IMAGESIG_EXPIRED, MU_IMAGESIG_OK));
  assert_string_equal(mu_imagesig_status_name(MU_IMAGESIG_WRONG_DIGEST), "wrong-digest");
}

static void test_artifact_round_trip(void **state) {
  (void)state;
  mu_imagesig_artifact a = {.subject = {.media_type = MU_MT_OCI_INDEX, .digest = DA, .size = 321}, .n_layers = 2};
  a.layers[0] = (mu_imagesig_layer){.desc = {.media_type = MU_IMAGESIG_MEDIA_TYPE, .digest = DB, .size = 300},
                                    .key_id = "00112233445566ff"};
  a.layers[1] = (mu_imagesig_layer){.desc = {.media_type = MU_IMAGESIG_MEDIA_TYPE, .digest = DA, .size = 301}};
  char *body = NULL;
  size_t len = 0;
  mu_err err = {0};
  assert_int_equal(mu_imagesig_artifact_format(&a, 1800000000, &body, &len, &err), 0);
  assert_non_null(strstr(body, "\"artifactType\":\"" MU_IMAGESIG_ARTIFACT_TYPE "\""));
  assert_non_null(strstr(body, "\"config\":{\"digest\":\"" MU_IMAGESIG_EMPTY_DIGEST "\""));
  assert_non_null(strstr(body, "2027-01-15T08:00:00Z"));
  static mu_imagesig_artifact back;
  assert_int_equal(mu_imagesig_artifact_parse(body, len, &back, &err), 0);
  assert_string_equal(back.subject.digest, DA);
  assert_string_equal(back.subject.media_type, MU_MT_OCI_INDEX);
  assert_int_equal(back.n_layers, 2);
  assert_string_equal(back.layers[0].key_id, "00112233445566ff");
  assert_string_equal(back.layers[1].key_id, "");
  free(body);
  const char *cosign = "{\"schemaVersion\":2,\"mediaType\":\"" MU_MT_OCI_MANIFEST "\",\"layers\":[]}";
  assert_int_equal(mu_imagesig_artifact_parse(cosign, strlen(cosign), &back, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "not a muster signature artifact"));
  const char *nosubject = "{\"artifactType\":\"" MU_IMAGESIG_ARTIFACT_TYPE "\",\"layers\":[]}";
  assert_int_equal(mu_imagesig_artifact_parse(nosubject, strlen(nosubject), &back, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "subject"));
  char tag[80];
  mu_imagesig_fallback_tag(DA, tag);
  assert_string_equal(tag, "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig");
}

static void test_referrers(void **state) {
  (void)state;
  const char *idx =
      "{\"schemaVersion\":2,\"mediaType\":\"" MU_MT_OCI_INDEX
      "\",\"manifests\":["
      "{\"artifactType\":\"" MU_IMAGESIG_ARTIFACT_TYPE "\",\"mediaType\":\"" MU_MT_OCI_MANIFEST "\",\"digest\":\"" DA
      "\",\"size\":10},"
      "{\"artifactType\":\"application/vnd.dev.cosign\",\"mediaType\":\"x\",\"digest\":\"" DB
      "\",\"size\":10},"
      "{\"artifactType\":\"" MU_IMAGESIG_ARTIFACT_TYPE "\",\"mediaType\":\"" MU_MT_OCI_MANIFEST "\",\"digest\":\"" DB
      "\",\"size\":11}]}";
  mu_descriptor d[1];
  size_t n = 0, skipped = 0;
  mu_err err = {0};
  assert_int_equal(mu_imagesig_referrers_parse(idx, strlen(idx), d, 1, &n, &skipped, &err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(skipped, 1);
  assert_string_equal(d[0].digest, DA);
  assert_int_equal(mu_imagesig_referrers_parse("{}", 2, d, 1, &n, &skipped, &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_payload_canonical),
      cmocka_unit_test_setup_teardown(test_envelope_verdicts, setup, teardown),
      cmocka_unit_test(test_status_order),
      cmocka_unit_test(test_artifact_round_trip),
      cmocka_unit_test(test_referrers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

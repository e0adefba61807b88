/* Revocation: the database and the signed CRL (read back by libcrypto, `openssl crl` and
 * `openssl verify -crl_check`), idempotent revocation, CRL numbers, refusals (a foreign
 * certificate, the CA itself, a corrupt database) and the CRL set's signature check. */
#define _GNU_SOURCE
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/pki/peer.h"
#include "lib/pki/pki.h"
#include "lib/pki/test_util.h"

typedef struct fixture {
  char *dir;
  char *ca_dir;
  char *ca_crt;         /* ca_dir/ca.crt */
  char *crl;            /* ca_dir/ca.crl */
  char *a1, *a2;        /* dir/a1.crt, dir/a2.crt: agents of the CA */
  char *foreign;        /* dir/x.crt: an agent of another CA */
  char *foreign_ca_crt; /* that CA */
} fixture;

static char *issue(const char *ca_dir, const char *dir, const char *name) {
  mu_err err = {0};
  char *out = pt_path(dir, name);
  mu_pki_issue_opts o = {.ca_dir = ca_dir, .kind = "agent", .name = name, .out = out};
  assert_int_equal(mu_pki_issue(&o, &err), 0);
  char *crt = NULL;
  assert_true(asprintf(&crt, "%s.crt", out) > 0);
  free(out);
  return crt;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  mu_err err = {0};
  f->dir = pt_mkdtemp();
  f->ca_dir = pt_path(f->dir, "ca");
  f->ca_crt = pt_path(f->ca_dir, "ca.crt");
  f->crl = pt_path(f->ca_dir, "ca.crl");
  assert_int_equal(mu_pki_init(f->ca_dir, 0, &err), 0);
  f->a1 = issue(f->ca_dir, f->dir, "a1");
  f->a2 = issue(f->ca_dir, f->dir, "a2");
  char *other = pt_path(f->dir, "other-ca");
  assert_int_equal(mu_pki_init(other, 0, &err), 0);
  f->foreign = issue(other, f->dir, "x");
  f->foreign_ca_crt = pt_path(other, "ca.crt");
  free(other);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  pt_rm_rf(f->dir);
  char **strs[] = {&f->dir, &f->ca_dir, &f->ca_crt, &f->crl, &f->a1, &f->a2, &f->foreign, &f->foreign_ca_crt};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) free(*strs[i]);
  free(f);
  return 0;
}

static mu_pki_serial serial_of(const char *crt_path) {
  char *pem = pt_read(crt_path);
  mu_pki_serial s;
  size_t len = 0;
  mu_err err = {0};
  assert_int_equal(mu_pki_cert_serial_from_pem(pem, s.bytes, sizeof s.bytes, &len, &err), 0);
  s.len = (uint8_t)len;
  free(pem);
  return s;
}

static mu_pki_crl_set *load_set(fixture *f) {
  mu_pki_crl_set *set = NULL;
  mu_err err = {0};
  int rc = mu_pki_crl_set_load(f->crl, f->ca_crt, &set, &err);
  if (rc != 0) fprintf(stderr, "crl_set_load: %s\n", err.msg);
  assert_int_equal(rc, 0);
  return set;
}

static int openssl_verify_crl(fixture *f, const char *crt) {
  char *argv[] = {"openssl", "verify", "-crl_check", "-CRLfile", f->crl, "-CAfile", f->ca_crt, (char *)crt, NULL};
  return pt_run(argv, NULL);
}

static void test_crl_revokes(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  int64_t before = (int64_t)time(NULL);
  assert_int_equal(mu_pki_crl(f->ca_dir, f->a1, NULL, 0, &err), 0);
  mu_pki_serial s1 = serial_of(f->a1), s2 = serial_of(f->a2);
  char hex[MU_PKI_SERIAL_HEX_SIZE];
  mu_pki_cert_info info;
  char *pem = pt_read(f->a1);
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  snprintf(hex, sizeof hex, "%s", info.serial_hex);
  free(pem);
  /* The database line. */
  char *db_path = pt_path(f->ca_dir, "revoked.txt");
  char *db = pt_read(db_path);
  char *want = NULL;
  assert_true(asprintf(&want, "%s ", hex) > 0);
  assert_ptr_equal(strstr(db, want), db);
  assert_non_null(strstr(db, " a1\n"));
  assert_int_equal(strchr(db, '\n')[1], '\0');
  /* libcrypto, through the CRL set. */
  mu_pki_crl_set *set = load_set(f);
  assert_int_equal(set->n, 1);
  assert_true(mu_pki_crl_set_is_revoked(set, s1.bytes, s1.len));
  assert_false(mu_pki_crl_set_is_revoked(set, s2.bytes, s2.len));
  assert_int_equal(set->number, 1);
  assert_true(set->last_update >= before && set->last_update <= before + 5);
  assert_true(set->next_update == set->last_update + 30L * 86400);
  mu_pki_crl_set_free(set);
  /* The openssl CLI: the serial is listed, a1 fails a CRL check and a2 passes it. */
  char *text = NULL;
  char *argv[] = {"openssl", "crl", "-in", f->crl, "-noout", "-text", NULL};
  assert_int_equal(pt_run(argv, &text), 0);
  free(want);
  assert_true(asprintf(&want, "Serial Number: %s", hex) > 0);
  assert_non_null(strstr(text, want));
  assert_non_null(strstr(text, "X509v3 CRL Number"));
  assert_non_null(strstr(text, "Version 2"));
  assert_int_not_equal(openssl_verify_crl(f, f->a1), 0);
  assert_int_equal(openssl_verify_crl(f, f->a2), 0);
  free(text);
  free(want);
  free(db);
  free(db_path);
}

static void test_crl_idempotent_and_numbered(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  assert_int_equal(mu_pki_crl(f->ca_dir, f->a1, NULL, 0, &err), 0);
  assert_int_equal(mu_pki_crl(f->ca_dir, f->a1, NULL, 0, &err), 0);
  char *db_path = pt_path(f->ca_dir, "revoked.txt");
  char *db = pt_read(db_path);
  assert_int_equal(strchr(db, '\n')[1], '\0'); /* one line */
  free(db);
  assert_int_equal(mu_pki_crl(f->ca_dir, f->a2, NULL, 0, &err), 0);
  mu_pki_crl_set *set = load_set(f);
  assert_int_equal(set->n, 2);
  assert_int_equal(set->number, 3);
  mu_pki_serial s2 = serial_of(f->a2);
  assert_true(mu_pki_crl_set_is_revoked(set, s2.bytes, s2.len));
  /* Leading zero bytes do not change a serial. */
  uint8_t padded[MU_PKI_SERIAL_MAX + 2] = {0};
  memcpy(padded + 2, s2.bytes, s2.len);
  assert_true(mu_pki_crl_set_is_revoked(set, padded, s2.len + 2));
  mu_pki_crl_set_free(set);
  /* A CRL elsewhere, without revoking anything, valid for 2 days, numbered on. */
  char *out = pt_path(f->dir, "pub.crl");
  assert_int_equal(mu_pki_crl(f->ca_dir, NULL, out, 2, &err), 0);
  assert_int_equal(mu_pki_crl_set_load(out, f->ca_crt, &set, &err), 0);
  assert_int_equal(set->n, 2);
  assert_int_equal(set->number, 4);
  assert_true(set->next_update == set->last_update + 2L * 86400);
  mu_pki_crl_set_free(set);
  free(out);
  free(db_path);
}

static void test_crl_refuses(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  assert_int_equal(mu_pki_crl(f->ca_dir, f->foreign, NULL, 0, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "was not issued by this CA"));
  assert_non_null(strstr(err.msg, "x.crt"));
  assert_int_equal(mu_pki_crl(f->ca_dir, f->ca_crt, NULL, 0, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "the CA certificate itself"));
  char *missing = pt_path(f->dir, "nope.crt");
  assert_int_equal(mu_pki_crl(f->ca_dir, missing, NULL, 0, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "nope.crt"));
  assert_int_equal(mu_pki_crl(f->ca_dir, NULL, NULL, -1, &err), MU_EINVAL);
  /* Nothing was written by the refusals. */
  char *db_path = pt_path(f->ca_dir, "revoked.txt");
  assert_int_equal(pt_mode(db_path), -1);
  assert_int_equal(pt_mode(f->crl), -1);
  /* A corrupt database is named, line and all. */
  pt_write(db_path, "# revoked\nABCD 1700000000 ok\nnot-a-line\n");
  assert_int_equal(mu_pki_crl(f->ca_dir, NULL, NULL, 0, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "revoked.txt:3"));
  assert_non_null(strstr(err.msg, "not-a-line"));
  free(missing);
  free(db_path);
}

static void test_crl_set_checks_signer(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  mu_pki_crl_set *set = NULL;
  assert_int_equal(mu_pki_crl(f->ca_dir, f->a1, NULL, 0, &err), 0);
  assert_int_equal(mu_pki_crl_set_load(f->crl, f->foreign_ca_crt, &set, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "is not signed by the CA"));
  assert_null(set);
  /* A tampered CRL: a flipped byte inside the base64 body. */
  char *pem = pt_read(f->crl);
  char *body = strchr(pem, '\n') + 40;
  *body = *body == 'A' ? 'B' : 'A';
  char *bad = pt_path(f->dir, "bad.crl");
  pt_write(bad, pem);
  assert_int_not_equal(mu_pki_crl_set_load(bad, f->ca_crt, &set, &err), 0);
  pt_write(bad, "garbage");
  assert_int_equal(mu_pki_crl_set_load(bad, f->ca_crt, &set, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "not a PEM CRL"));
  char *missing = pt_path(f->dir, "none.crl");
  assert_int_equal(mu_pki_crl_set_load(missing, f->ca_crt, &set, &err), MU_ENOENT);
  assert_false(mu_pki_crl_set_is_revoked(NULL, (const uint8_t *)"\1", 1));
  free(missing);
  free(bad);
  free(pem);
}

/* A hand-edited database (every line an entry, no final newline) takes a new revocation. */
static void test_crl_hand_edited_db(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  char *db_path = pt_path(f->ca_dir, "revoked.txt");
  pt_write(db_path, "00ABCD 1700000000 old laptop\nABCE 1700000001 lost phone");
  int rc = mu_pki_crl(f->ca_dir, f->a1, NULL, 0, &err);
  if (rc != 0) fprintf(stderr, "crl: %s\n", err.msg);
  assert_int_equal(rc, 0);
  char *db = pt_read(db_path);
  assert_non_null(strstr(db, "lost phone\n"));
  assert_non_null(strstr(db, " a1\n"));
  mu_pki_crl_set *set = load_set(f);
  assert_int_equal(set->n, 3);
  const uint8_t old[] = {0xAB, 0xCD};
  assert_true(mu_pki_crl_set_is_revoked(set, old, sizeof old));
  mu_pki_serial s1 = serial_of(f->a1);
  assert_true(mu_pki_crl_set_is_revoked(set, s1.bytes, s1.len));
  mu_pki_crl_set_free(set);
  free(db);
  free(db_path);
}

/* libcrypto's own CRL check agrees with the set. */
static void test_crl_libcrypto_verify(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  assert_int_equal(mu_pki_crl(f->ca_dir, f->a2, NULL, 0, &err), 0);
  char *ca = pt_read(f->ca_crt), *crl = pt_read(f->crl);
  char *a1 = pt_read(f->a1), *a2 = pt_read(f->a2);
  assert_int_equal(pt_verify(ca, a1, X509_PURPOSE_SSL_CLIENT, crl), X509_V_OK);
  assert_int_equal(pt_verify(ca, a2, X509_PURPOSE_SSL_CLIENT, crl), X509_V_ERR_CERT_REVOKED);
  free(ca);
  free(crl);
  free(a1);
  free(a2);
}

int mu_test_crl(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_crl_revokes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crl_idempotent_and_numbered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crl_refuses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crl_set_checks_signer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crl_hand_edited_db, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crl_libcrypto_verify, setup, teardown),
  };
  return cmocka_run_group_tests_name("crl", tests, NULL, NULL);
}

/* //lib/pki:pki_test — the CA and leaf issuance against real files: modes, refusals, what each
 * kind of certificate carries, and verification by libcrypto and by the `openssl` CLI. Also the
 * binary's main, which runs the CRL and peer groups (crl_test.c, peer_test.c) too. */
#define _GNU_SOURCE
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/pki/peer.h"
#include "lib/pki/pki.h"
#include "lib/pki/test_util.h"

int mu_test_crl(void);
int mu_test_peer(void);

typedef struct fixture {
  char *dir;    /* scratch */
  char *ca_dir; /* dir/ca, holding an initialized CA */
  char *ca_cert, *ca_key;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = pt_mkdtemp();
  f->ca_dir = pt_path(f->dir, "ca");
  mu_err err = {0};
  assert_int_equal(mu_pki_init(f->ca_dir, 0, &err), 0);
  assert_int_equal(mu_pki_ca_load(f->ca_dir, &f->ca_cert, &f->ca_key, &err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  pt_rm_rf(f->dir);
  free(f->dir);
  free(f->ca_dir);
  free(f->ca_cert);
  free(f->ca_key);
  free(f);
  return 0;
}

/* The subject as one line ("O=muster, OU=agent, CN=web-1"), malloc'd. */
static char *subject_of(const char *pem) {
  X509 *x = pt_parse_cert(pem);
  BIO *bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  char *data = NULL;
  long len = BIO_get_mem_data(bio, &data);
  char *s = strndup(data, (size_t)len);
  BIO_free(bio);
  X509_free(x);
  return s;
}

static size_t count(const char *haystack, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_init_writes_ca(void **state) {
  fixture *f = *state;
  char *crt = pt_path(f->ca_dir, "ca.crt"), *key = pt_path(f->ca_dir, "ca.key");
  assert_int_equal(pt_mode(f->ca_dir), 0700);
  assert_int_equal(pt_mode(key), 0600);
  assert_int_equal(pt_mode(crt) & 0600, 0600);
  X509 *x = pt_parse_cert(f->ca_cert);
  uint32_t flags = X509_get_extension_flags(x);
  assert_true(flags & EXFLAG_CA);
  assert_true(flags & EXFLAG_SS);
  assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
  assert_int_equal(pt_ext_critical(f->ca_cert, NID_basic_constraints), 1);
  assert_int_equal(pt_ext_critical(f->ca_cert, NID_key_usage), 1);
  char name[64];
  EVP_PKEY *pub = X509_get0_pubkey(x);
  assert_int_equal(EVP_PKEY_get_group_name(pub, name, sizeof name, NULL), 1);
  assert_string_equal(name, "prime256v1");
  time_t now = time(NULL);
  assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now + 3649L * 86400), 1);
  assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now + 3651L * 86400), -1);
  X509_free(x);
  char *subject = subject_of(f->ca_cert);
  assert_non_null(strstr(subject, "O = muster"));
  const char *cn = strstr(subject, "CN = muster CA ");
  assert_non_null(cn);
  assert_int_equal(strspn(cn + strlen("CN = muster CA "), "0123456789abcdef"), 6);
  free(subject);
  /* The key file is the CA's key, unencrypted PKCS#8. */
  assert_non_null(strstr(f->ca_key, "-----BEGIN PRIVATE KEY-----"));
  char *out = NULL;
  char *argv[] = {"openssl", "verify", "-CAfile", crt, crt, NULL};
  assert_int_equal(pt_run(argv, &out), 0);
  free(out);
  free(crt);
  free(key);
}

static void test_init_refuses_existing(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  char *crl = pt_path(f->ca_dir, "revoked.txt");
  pt_write(crl, "");
  assert_int_equal(mu_pki_init(f->ca_dir, 0, &err), MU_EEXIST);
  assert_non_null(strstr(err.msg, "already exists"));
  char *again = NULL, *key = NULL;
  assert_int_equal(mu_pki_ca_load(f->ca_dir, &again, &key, &err), 0);
  assert_string_equal(again, f->ca_cert);
  assert_string_equal(key, f->ca_key);
  free(again);
  free(key);
  /* Forced: a new CA, and the old one's revocation state is gone with it. */
  assert_int_equal(mu_pki_init_force(f->ca_dir, 10, &err), 0);
  assert_int_equal(mu_pki_ca_load(f->ca_dir, &again, &key, &err), 0);
  assert_string_not_equal(again, f->ca_cert);
  assert_int_equal(pt_mode(crl), -1);
  free(again);
  free(key);
  /* No leftovers from the temporary files. */
  char *out = NULL;
  char *argv[] = {"ls", "-A", f->ca_dir, NULL};
  assert_int_equal(pt_run(argv, &out), 0);
  assert_string_equal(out, "ca.crt\nca.key\n");
  free(out);
  free(crl);
}

static void test_init_bad_input(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  char *d = pt_path(f->dir, "other");
  assert_int_equal(mu_pki_init(d, -1, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "got -1"));
  assert_int_equal(mu_pki_init(d, MU_PKI_MAX_DAYS + 1, &err), MU_EINVAL);
  assert_int_equal(pt_mode(d), -1); /* nothing made for bad input */
  char *file = pt_path(f->dir, "file");
  pt_write(file, "x");
  assert_int_not_equal(mu_pki_init(file, 0, &err), 0);
  assert_non_null(strstr(err.msg, "file"));
  /* Missing parents are made. */
  char *deep = pt_path(f->dir, "a/b/c");
  assert_int_equal(mu_pki_init(deep, 1, &err), 0);
  assert_int_equal(pt_mode(deep), 0700);
  free(d);
  free(file);
  free(deep);
}

/* Issues kind/name to dir/<name>.{crt,key} and checks what every leaf has in common. */
static char *issue_checked(fixture *f, const char *kind, const char *name, const char *role, const char *sans) {
  mu_err err = {0};
  char *out = pt_path(f->dir, name);
  mu_pki_issue_opts o = {.ca_dir = f->ca_dir, .kind = kind, .name = name, .role = role, .sans = sans, .out = out};
  int rc = mu_pki_issue(&o, &err);
  if (rc != 0) fprintf(stderr, "issue: %s\n", err.msg);
  assert_int_equal(rc, 0);
  char *crt = NULL, *key = NULL;
  assert_true(asprintf(&crt, "%s.crt", out) > 0);
  assert_true(asprintf(&key, "%s.key", out) > 0);
  assert_int_equal(pt_mode(key), 0600);
  char *pem = pt_read(crt);
  assert_int_equal(count(pem, "BEGIN CERTIFICATE"), 1); /* the leaf and nothing else */
  char *subject = subject_of(pem);
  char want[300];
  snprintf(want, sizeof want, "O = muster, OU = %s, CN = %s", kind, name);
  assert_string_equal(subject, want);
  assert_int_equal(pt_ext_critical(pem, NID_key_usage), 1);
  assert_int_equal(pt_ext_critical(pem, NID_basic_constraints), 1);
  assert_int_equal(pt_ext_critical(pem, NID_subject_key_identifier), 0);
  assert_int_equal(pt_ext_critical(pem, NID_authority_key_identifier), 0);
  X509 *x = pt_parse_cert(pem);
  assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
  assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
  int64_t skew = (int64_t)time(NULL) - 300;
  assert_true(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), (time_t)skew + 5) <= 0);
  assert_true(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), (time_t)skew - 5) >= 0);
  X509_free(x);
  /* The real openssl CLI agrees. */
  char *ca_crt = pt_path(f->ca_dir, "ca.crt");
  char *text = NULL;
  char *argv[] = {"openssl", "verify", "-CAfile", ca_crt, crt, NULL};
  int status = pt_run(argv, &text);
  if (status != 0) fprintf(stderr, "openssl verify: %s\n", text);
  assert_int_equal(status, 0);
  free(text);
  char *sub = NULL;
  char *key_argv[] = {"openssl", "pkey", "-in", key, "-noout", NULL};
  assert_int_equal(pt_run(key_argv, &sub), 0);
  free(sub);
  /* The URIs and key usages as openssl prints them from the raw extensions. */
  char *ext_argv[] = {"openssl", "x509", "-in", crt, "-noout", "-ext", "subjectAltName,extendedKeyUsage", NULL};
  assert_int_equal(pt_run(ext_argv, &text), 0);
  snprintf(want, sizeof want, "URI:muster://%s/%s", kind, name);
  assert_non_null(strstr(text, want));
  bool admin = strcmp(kind, "admin") == 0;
  snprintf(want, sizeof want, "URI:muster://role/%s", role != NULL ? role : "viewer");
  assert_true((strstr(text, want) != NULL) == admin);
  assert_true((strstr(text, "muster://role/") != NULL) == admin);
  assert_non_null(strstr(text, "TLS Web Client Authentication"));
  bool server = strcmp(kind, "server") == 0;
  assert_true((strstr(text, "TLS Web Server Authentication") != NULL) == server);
  free(text);
  free(ca_crt);
  free(subject);
  free(crt);
  free(key);
  free(out);
  return pem;
}

static void test_issue_server(void **state) {
  fixture *f = *state;
  char *pem = issue_checked(f, "server", "musterd-1", NULL, NULL);
  assert_int_equal(pt_verify(f->ca_cert, pem, X509_PURPOSE_SSL_SERVER, NULL), X509_V_OK);
  assert_int_equal(pt_verify(f->ca_cert, pem, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
  mu_pki_cert_info info;
  mu_err err = {0};
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  assert_string_equal(info.kind, "server");
  assert_string_equal(info.name, "musterd-1");
  assert_string_equal(info.role, "");
  assert_string_equal(info.sans, "localhost,127.0.0.1");
  assert_true(info.server_auth && info.client_auth);
  assert_int_equal(strlen(info.serial_hex), 32);
  assert_true(info.not_after - info.not_before == 365L * 86400 + 300);
  free(pem);
  pem = issue_checked(f, "server", "musterd-2", NULL, "musterd.example.com, 10.0.0.5,::1,*.svc.local");
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  assert_string_equal(info.sans, "musterd.example.com,10.0.0.5,::1,*.svc.local");
  free(pem);
}

static void test_issue_agent_and_admin(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  mu_pki_cert_info info;
  char *agent = issue_checked(f, "agent", "web-1.prod", NULL, NULL);
  assert_int_equal(pt_verify(f->ca_cert, agent, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
  assert_int_equal(pt_verify(f->ca_cert, agent, X509_PURPOSE_SSL_SERVER, NULL), X509_V_ERR_INVALID_PURPOSE);
  assert_int_equal(mu_pki_cert_info_from_pem(agent, &info, &err), 0);
  assert_string_equal(info.kind, "agent");
  assert_string_equal(info.name, "web-1.prod");
  assert_string_equal(info.role, "");
  assert_string_equal(info.sans, "");
  assert_true(info.client_auth && !info.server_auth);
  char *admin = issue_checked(f, "admin", "alice", NULL, NULL);
  assert_int_equal(pt_verify(f->ca_cert, admin, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
  assert_int_equal(mu_pki_cert_info_from_pem(admin, &info, &err), 0);
  assert_string_equal(info.kind, "admin");
  assert_string_equal(info.role, "viewer"); /* the default */
  char *op = issue_checked(f, "admin", "bob", "operator", "bob.example.com");
  assert_int_equal(mu_pki_cert_info_from_pem(op, &info, &err), 0);
  assert_string_equal(info.role, "operator");
  assert_string_equal(info.sans, "bob.example.com");
  /* The longest name fits (CN beyond X.520's 64 characters; openssl verify accepted it). */
  char long_name[MU_PKI_NAME_MAX + 1];
  memset(long_name, 'n', MU_PKI_NAME_MAX);
  long_name[MU_PKI_NAME_MAX] = '\0';
  char *longest = issue_checked(f, "agent", long_name, NULL, NULL);
  assert_int_equal(mu_pki_cert_info_from_pem(longest, &info, &err), 0);
  assert_string_equal(info.name, long_name);
  assert_string_equal(info.cn, long_name);
  free(agent);
  free(admin);
  free(op);
  free(longest);
}

static void expect_refused(fixture *f, mu_pki_issue_opts o, const char *needle) {
  mu_err err = {0};
  char *cert = NULL, *key = NULL;
  int rc = mu_pki_issue_mem(f->ca_cert, f->ca_key, &o, &cert, &key, &err);
  if (rc != MU_EINVAL || strstr(err.msg, needle) == NULL) {
    fprintf(stderr, "want EINVAL naming '%s', got %d: %s\n", needle, rc, err.msg);
  }
  assert_int_equal(rc, MU_EINVAL);
  assert_non_null(strstr(err.msg, needle));
  assert_null(cert);
  assert_null(key);
}

static void test_issue_refuses(void **state) {
  fixture *f = *state;
  mu_pki_issue_opts ok = {.kind = "agent", .name = "a1"};
  mu_pki_issue_opts o = ok;
  o.kind = "robot";
  expect_refused(f, o, "kind 'robot'");
  o.kind = NULL;
  expect_refused(f, o, "kind ''");
  o = ok;
  o.name = "a/b";
  expect_refused(f, o, "name 'a/b': character '/'");
  o.name = "a b";
  expect_refused(f, o, "character ' '");
  o.name = "";
  expect_refused(f, o, "name is required");
  char long_name[MU_PKI_NAME_MAX + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  o.name = long_name;
  expect_refused(f, o, "129 characters");
  o = ok;
  o.role = "admin";
  expect_refused(f, o, "only admin certificates carry a role");
  o.kind = "admin";
  o.role = "root";
  expect_refused(f, o, "role 'root'");
  o = ok;
  o.sans = "good.example,bad_name!";
  expect_refused(f, o, "SAN 'bad_name!'");
  o.sans = "-lead.example";
  expect_refused(f, o, "SAN '-lead.example'");
  o = ok;
  o.days = -5;
  expect_refused(f, o, "got -5");
  o = ok;
  o.not_before = 2000000000;
  o.not_after = 1000000000;
  expect_refused(f, o, "must be later");
  /* A CA key that is not this CA's. */
  char *other_dir = pt_path(f->dir, "other-ca");
  char *other_cert = NULL, *other_key = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pki_init(other_dir, 0, &err), 0);
  assert_int_equal(mu_pki_ca_load(other_dir, &other_cert, &other_key, &err), 0);
  char *cert = NULL, *key = NULL;
  assert_int_equal(mu_pki_issue_mem(f->ca_cert, other_key, &ok, &cert, &key, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "does not belong"));
  /* A leaf is no CA. */
  assert_int_equal(mu_pki_issue_mem(f->ca_cert, f->ca_key, &ok, &cert, &key, &err), 0);
  char *c2 = NULL, *k2 = NULL;
  assert_int_equal(mu_pki_issue_mem(cert, key, &ok, &c2, &k2, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "is not a CA"));
  free(cert);
  free(key);
  free(other_cert);
  free(other_key);
  free(other_dir);
}

static void test_issue_files_not_overwritten(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  char *out = pt_path(f->dir, "node");
  mu_pki_issue_opts o = {.ca_dir = f->ca_dir, .kind = "agent", .name = "node", .out = out};
  assert_int_equal(mu_pki_issue(&o, &err), 0);
  char *crt = pt_path(f->dir, "node.crt");
  char *first = pt_read(crt);
  assert_int_equal(mu_pki_issue(&o, &err), MU_EEXIST);
  assert_non_null(strstr(err.msg, "node.key already exists"));
  char *same = pt_read(crt);
  assert_string_equal(first, same);
  o.force = 1;
  assert_int_equal(mu_pki_issue(&o, &err), 0);
  char *renewed = pt_read(crt);
  assert_string_not_equal(first, renewed);
  /* No CA there. */
  o.ca_dir = f->dir;
  assert_int_equal(mu_pki_issue(&o, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "ca.crt"));
  free(out);
  free(crt);
  free(first);
  free(same);
  free(renewed);
}

/* Many agents in memory, half from a parsed CA: distinct serials, each verifies, and the
 * cheap serial reader agrees with the full parse. */
static void test_issue_mem_many(void **state) {
  fixture *f = *state;
  enum { N = 64 };
  char *serials[N];
  mu_err err = {0};
  mu_pki_ca *ca = NULL;
  assert_int_equal(mu_pki_ca_parse(f->ca_cert, f->ca_key, &ca, &err), 0);
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "sim-%05d", i);
    mu_pki_issue_opts o = {.kind = "agent", .name = name};
    char *cert = NULL, *key = NULL;
    int rc = i % 2 == 0 ? mu_pki_issue_mem(f->ca_cert, f->ca_key, &o, &cert, &key, &err)
                        : mu_pki_issue_ca(ca, &o, &cert, &key, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(pt_verify(f->ca_cert, cert, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
    mu_pki_cert_info info;
    assert_int_equal(mu_pki_cert_info_from_pem(cert, &info, &err), 0);
    assert_string_equal(info.name, name);
    uint8_t bytes[MU_PKI_SERIAL_MAX];
    size_t len = 0;
    assert_int_equal(mu_pki_cert_serial_from_pem(cert, bytes, sizeof bytes, &len, &err), 0);
    assert_int_equal(len, 16);
    char hex[2 * MU_PKI_SERIAL_MAX + 1];
    for (size_t k = 0; k < len; k++) snprintf(hex + 2 * k, 3, "%02X", bytes[k]);
    assert_string_equal(hex, info.serial_hex);
    serials[i] = strdup(info.serial_hex);
    for (int j = 0; j < i; j++) assert_string_not_equal(serials[i], serials[j]);
    free(cert);
    free(key);
  }
  for (int i = 0; i < N; i++) free(serials[i]);
  mu_pki_ca_free(ca);
}

static void test_issue_validity_override(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  int64_t now = (int64_t)time(NULL);
  struct {
    int64_t nb, na;
    int want;
  } cases[] = {
      {now - 2 * 86400, now - 86400, X509_V_ERR_CERT_HAS_EXPIRED},
      {now + 3600, 0, X509_V_ERR_CERT_NOT_YET_VALID},
      {now - 60, now + 60, X509_V_OK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mu_pki_issue_opts o = {.kind = "agent", .name = "t", .not_before = cases[i].nb, .not_after = cases[i].na};
    char *cert = NULL, *key = NULL;
    assert_int_equal(mu_pki_issue_mem(f->ca_cert, f->ca_key, &o, &cert, &key, &err), 0);
    assert_int_equal(pt_verify(f->ca_cert, cert, X509_PURPOSE_SSL_CLIENT, NULL), cases[i].want);
    mu_pki_cert_info info;
    assert_int_equal(mu_pki_cert_info_from_pem(cert, &info, &err), 0);
    assert_true(info.not_before == cases[i].nb);
    assert_true(info.not_after == (cases[i].na != 0 ? cases[i].na : cases[i].nb + 365L * 86400));
    free(cert);
    free(key);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_init_writes_ca, setup, teardown),
      cmocka_unit_test_setup_teardown(test_init_refuses_existing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_init_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issue_server, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issue_agent_and_admin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issue_refuses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issue_files_not_overwritten, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issue_mem_many, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issue_validity_override, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("ca_issue", tests, NULL, NULL);
  failed += mu_test_crl();
  failed += mu_test_peer();
  if (failed != 0) fprintf(stderr, "%d pki test(s) failed\n", failed);
  return failed != 0 ? 1 : 0;
}

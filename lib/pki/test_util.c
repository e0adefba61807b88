/* Helpers for the pki tests (see test_util.h): files, the openssl CLI, verification with
 * libcrypto, and crafted certificates that mu_pki_issue would never make. */
#define _GNU_SOURCE
#include "lib/pki/test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

char *pt_mkdtemp(void) {
  const char *base = getenv("TEST_TMPDIR");
  char *tmpl = NULL;
  assert_true(asprintf(&tmpl, "%s/pki-XXXXXX", base != NULL ? base : "/tmp") > 0);
  assert_non_null(mkdtemp(tmpl));
  return tmpl;
}

char *pt_path(const char *dir, const char *rel) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
  return p;
}

char *pt_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fprintf(stderr, "pt_read: %s: cannot open\n", path);
  assert_non_null(f);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

void pt_write(const char *path, const char *content) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
  assert_int_equal(fclose(f), 0);
}

int pt_mode(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (int)(st.st_mode & 07777);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void pt_rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_PHYS | FTW_DEPTH); }

int pt_run(char *const argv[], char **ret_output) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  assert_int_equal(rc, 0);
  size_t cap = 4096, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  ssize_t n;
  while ((n = read(fds[0], out + len, cap - len - 1)) > 0) {
    len += (size_t)n;
    if (cap - len < 2) {
      cap *= 2;
      out = realloc(out, cap);
      assert_non_null(out);
    }
  }
  out[len] = '\0';
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (ret_output != NULL) {
    *ret_output = out;
  } else {
    free(out);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

X509 *pt_parse_cert(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  assert_non_null(x);
  return x;
}

int pt_verify(const char *ca_pem, const char *leaf_pem, int purpose, const char *crl_pem) {
  X509 *ca = pt_parse_cert(ca_pem);
  X509 *leaf = pt_parse_cert(leaf_pem);
  X509_STORE *store = X509_STORE_new();
  assert_int_equal(X509_STORE_add_cert(store, ca), 1);
  if (crl_pem != NULL) {
    BIO *bio = BIO_new_mem_buf(crl_pem, -1);
    X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(crl);
    assert_int_equal(X509_STORE_add_crl(store, crl), 1);
    X509_CRL_free(crl);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
  if (purpose != 0) assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
  int ok = X509_verify_cert(ctx);
  int result = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  X509_free(ca);
  return result;
}

char *pt_cert_with_sans(const char *san_conf) { return pt_cert_with_serial(san_conf, 4242); }

char *pt_cert_with_serial(const char *san_conf, long serial) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  assert_non_null(key);
  assert_non_null(x);
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"crafted", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  if (san_conf != NULL) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san_conf);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
  }
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_X509(bio, x), 1);
  char *data = NULL;
  long len = BIO_get_mem_data(bio, &data);
  char *pem = strndup(data, (size_t)len);
  BIO_free(bio);
  X509_free(x);
  EVP_PKEY_free(key);
  return pem;
}

int pt_ext_critical(const char *cert_pem, int nid) {
  X509 *x = pt_parse_cert(cert_pem);
  int i = X509_get_ext_by_NID(x, nid, -1);
  int crit = i < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, i));
  X509_free(x);
  return crit;
}

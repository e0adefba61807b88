/* The CA: `muster pki init` (a self-signed ECDSA P-256 CA in a 0700 directory), loading it
 * back, and the checks every signer (issue.c, crl.c) runs on the pair before using it. */
#include <errno.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/pki/internal.h"
#include "lib/pki/pki.h"

/* Files that describe the revocations of the CA in a directory; they go when the CA does. */
static const char *const revocation_files[] = {"revoked.txt", "crlnumber", "ca.crl"};

/* mkdir -p: missing parents 0755, dir itself 0700. An existing dir is used as it is. */
static int make_dir(const char *dir, mu_err *err) {
  char path[PATH_MAX];
  int rc = mu__pki_path(path, sizeof path, err, "%s", dir);
  if (rc != 0) return rc;
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') path[--len] = '\0';
  for (char *p = path + 1; *p != '\0'; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
      return mu_err_set(err, MU_EIO, "%s: mkdir: %s", path, strerror(errno));
    }
    *p = '/';
  }
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    return mu_err_set(err, MU_EIO, "%s: mkdir: %s", path, strerror(errno));
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return mu_err_set(err, MU_EINVAL, "%s: not a directory", path);
  }
  return 0;
}

/* A new self-signed CA certificate and key, as PEM. */
static int make_ca(int days, char **ret_cert, char **ret_key, mu_err *err) {
  uint8_t rnd[3];
  char cn[32];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return mu__pki_ossl_err(err, MU_EIO, "random bytes");
  snprintf(cn, sizeof cn, "muster CA %02x%02x%02x", rnd[0], rnd[1], rnd[2]);
  EVP_PKEY *key = NULL;
  X509 *x = NULL;
  int64_t now = (int64_t)time(NULL);
  int rc = mu__pki_key_new(&key, err);
  if (rc == 0) rc = mu__pki_cert_new(key, NULL, cn, NULL, now - 300, now + 86400LL * days, &x, err);
  if (rc == 0) rc = mu__pki_cert_ext(x, x, NID_basic_constraints, "critical,CA:TRUE", err);
  if (rc == 0) rc = mu__pki_cert_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err);
  if (rc == 0) rc = mu__pki_cert_finish(x, x, key, key, ret_cert, ret_key, err);
  X509_free(x);
  EVP_PKEY_free(key);
  return rc;
}

static int ca_init(const char *dir, int days, bool force, mu_err *err) {
  char crt_path[PATH_MAX], key_path[PATH_MAX];
  char *cert_pem = NULL, *key_pem = NULL;
  int rc = mu__pki_check_days(days, MU_PKI_CA_DAYS, &days, err);
  if (rc == 0) rc = mu__pki_path(crt_path, sizeof crt_path, err, "%s/ca.crt", dir);
  if (rc == 0) rc = mu__pki_path(key_path, sizeof key_path, err, "%s/ca.key", dir);
  if (rc == 0) rc = make_dir(dir, err);
  if (rc == 0) rc = make_ca(days, &cert_pem, &key_pem, err);
  if (rc == 0) rc = mu__pki_write_pair(crt_path, cert_pem, key_path, key_pem, force, err);
  for (size_t i = 0; rc == 0 && force && i < sizeof revocation_files / sizeof *revocation_files; i++) {
    char path[PATH_MAX];
    rc = mu__pki_path(path, sizeof path, err, "%s/%s", dir, revocation_files[i]);
    if (rc == 0 && unlink(path) != 0 && errno != ENOENT) {
      rc = mu_err_set(err, MU_EIO, "%s: %s", path, strerror(errno));
    }
  }
  free(cert_pem);
  mu__pki_free_secret(key_pem);
  return rc;
}

int mu_pki_init(const char *dir, int days, mu_err *err) { return ca_init(dir, days, false, err); }

int mu_pki_init_force(const char *dir, int days, mu_err *err) { return ca_init(dir, days, true, err); }

int mu_pki_ca_load(const char *dir, char **ret_cert_pem, char **ret_key_pem, mu_err *err) {
  char crt_path[PATH_MAX], key_path[PATH_MAX];
  char *cert = NULL;
  int rc = mu__pki_path(crt_path, sizeof crt_path, err, "%s/ca.crt", dir);
  if (rc == 0) rc = mu__pki_path(key_path, sizeof key_path, err, "%s/ca.key", dir);
  if (rc == 0) rc = mu__pki_read_file(crt_path, &cert, err);
  if (rc == 0) rc = mu__pki_read_file(key_path, ret_key_pem, err);
  if (rc != 0) {
    free(cert);
    return rc;
  }
  *ret_cert_pem = cert;
  return 0;
}

int mu_pki_ca_parse(const char *cert_pem, const char *key_pem, mu_pki_ca **ret, mu_err *err) {
  mu_pki_ca *ca = calloc(1, sizeof *ca);
  if (ca == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc = mu__pki_cert_parse(cert_pem, "CA certificate", &ca->cert, err);
  if (rc == 0) rc = mu__pki_key_parse(key_pem, "CA key", &ca->key, err);
  if (rc == 0 && (X509_get_extension_flags(ca->cert) & EXFLAG_CA) == 0) {
    char cn[256];
    mu__pki_name_cn(X509_get_subject_name(ca->cert), cn, sizeof cn);
    rc = mu_err_set(err, MU_EINVAL, "CA certificate '%s' is not a CA (no basicConstraints CA:TRUE)", cn);
  }
  if (rc == 0 && X509_check_private_key(ca->cert, ca->key) != 1) {
    rc = mu__pki_ossl_err(err, MU_EINVAL, "the CA key does not belong to the CA certificate");
  }
  if (rc != 0) {
    mu_pki_ca_free(ca);
    return rc;
  }
  *ret = ca;
  return 0;
}

void mu_pki_ca_free(mu_pki_ca *ca) {
  if (ca == NULL) return;
  X509_free(ca->cert);
  EVP_PKEY_free(ca->key);
  free(ca);
}

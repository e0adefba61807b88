/* The libcrypto plumbing lib/pki's parts share: PEM in and out, new keys and certificates,
 * extensions in OpenSSL's config syntax, serials, times, names, and libcrypto's error queue
 * turned into a mu_err. */
#define _GNU_SOURCE /* timegm */
#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/pki/internal.h"
#include "lib/pki/pki.h"

int mu__pki_ossl_err(mu_err *err, int code, const char *fmt, ...) {
  char what[MU_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  unsigned long e = ERR_peek_last_error();
  const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return mu_err_set(err, code, "%s: %s", what, reason != NULL ? reason : "libcrypto error");
}

int mu__pki_cert_parse(const char *pem, const char *what, X509 **ret, mu_err *err) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if (bio == NULL) return mu__pki_ossl_err(err, MU_ENOMEM, "%s", what);
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (x == NULL) return mu__pki_ossl_err(err, MU_EINVAL, "%s: not a PEM certificate", what);
  *ret = x;
  return 0;
}

/* Encrypted keys are refused, not prompted for on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

int mu__pki_key_parse(const char *pem, const char *what, EVP_PKEY **ret, mu_err *err) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if (bio == NULL) return mu__pki_ossl_err(err, MU_ENOMEM, "%s", what);
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
  BIO_free(bio);
  if (key == NULL) {
    return mu__pki_ossl_err(err, MU_EINVAL, "%s: not an unencrypted PEM private key", what);
  }
  *ret = key;
  return 0;
}

/* Copies a memory BIO's contents into a malloc'd string and frees the BIO. */
static int bio_take(BIO *bio, int written, char **ret, mu_err *err) {
  char *data = NULL;
  long len = written == 1 ? BIO_get_mem_data(bio, &data) : 0;
  char *out = len > 0 ? malloc((size_t)len + 1) : NULL;
  if (out != NULL) {
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
  }
  BIO_free(bio); /* a secure-memory BIO clears what it held */
  if (out == NULL) return mu__pki_ossl_err(err, MU_EIO, "writing PEM");
  *ret = out;
  return 0;
}

int mu__pki_cert_pem(X509 *x, char **ret, mu_err *err) {
  BIO *bio = BIO_new(BIO_s_mem());
  if (bio == NULL) return mu__pki_ossl_err(err, MU_ENOMEM, "writing PEM");
  return bio_take(bio, PEM_write_bio_X509(bio, x), ret, err);
}

int mu__pki_key_pem(EVP_PKEY *key, char **ret, mu_err *err) {
  BIO *bio = BIO_new(BIO_s_secmem());
  if (bio == NULL) return mu__pki_ossl_err(err, MU_ENOMEM, "writing PEM");
  return bio_take(bio, PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), ret, err);
}

int mu__pki_crl_pem(X509_CRL *crl, char **ret, mu_err *err) {
  BIO *bio = BIO_new(BIO_s_mem());
  if (bio == NULL) return mu__pki_ossl_err(err, MU_ENOMEM, "writing PEM");
  return bio_take(bio, PEM_write_bio_X509_CRL(bio, crl), ret, err);
}

/* Through a context rather than EVP_EC_gen("P-256"), which costs ten times as much in
 * OpenSSL 3.0 (200 us against 20 us a key here). */
int mu__pki_key_new(EVP_PKEY **ret, mu_err *err) {
  EVP_PKEY *key = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  int ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1 &&
           EVP_PKEY_keygen(ctx, &key) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(key);
    return mu__pki_ossl_err(err, MU_EIO, "generating a P-256 key");
  }
  *ret = key;
  return 0;
}

/* Adds field=value as a UTF8String: OpenSSL's string table would cap CN at 64 characters,
 * and names may have 128. */
static int name_add(X509_NAME *name, int nid, const char *value) {
  return X509_NAME_add_entry_by_NID(name, nid, V_ASN1_UTF8STRING, (const unsigned char *)value, (int)strlen(value), -1,
                                    0);
}

int mu__pki_cert_new(EVP_PKEY *key, const char *ou, const char *cn, X509 *issuer, int64_t not_before, int64_t not_after,
                     X509 **ret, mu_err *err) {
  X509 *x = X509_new();
  BIGNUM *serial = BN_new();
  int ok = x != NULL && serial != NULL && X509_set_version(x, X509_VERSION_3) &&
           BN_rand(serial, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
           BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != NULL &&
           ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) != NULL &&
           ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL && X509_set_pubkey(x, key);
  X509_NAME *subject = ok ? X509_get_subject_name(x) : NULL;
  ok = ok && name_add(subject, NID_organizationName, "muster") &&
       (ou == NULL || name_add(subject, NID_organizationalUnitName, ou)) && name_add(subject, NID_commonName, cn) &&
       X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : subject);
  BN_free(serial);
  if (!ok) {
    X509_free(x);
    return mu__pki_ossl_err(err, MU_EIO, "making the certificate for '%s'", cn);
  }
  *ret = x;
  return 0;
}

int mu__pki_cert_ext(X509 *x, X509 *issuer, int nid, const char *value, mu_err *err) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  int ok = ext != NULL && X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return mu__pki_ossl_err(err, MU_EIO, "extension %s=%s", OBJ_nid2sn(nid), value);
  return 0;
}

int mu__pki_cert_finish(X509 *x, X509 *issuer, EVP_PKEY *signer, EVP_PKEY *key, char **ret_cert_pem, char **ret_key_pem,
                        mu_err *err) {
  char *cert_pem = NULL;
  int rc = mu__pki_cert_ext(x, x, NID_subject_key_identifier, "hash", err);
  if (rc == 0) rc = mu__pki_cert_ext(x, issuer, NID_authority_key_identifier, "keyid:always", err);
  if (rc == 0 && X509_sign(x, signer, EVP_sha256()) <= 0) rc = mu__pki_ossl_err(err, MU_EIO, "signing");
  if (rc == 0) rc = mu__pki_cert_pem(x, &cert_pem, err);
  if (rc == 0) rc = mu__pki_key_pem(key, ret_key_pem, err);
  if (rc != 0) {
    free(cert_pem);
    return rc;
  }
  *ret_cert_pem = cert_pem;
  return 0;
}

void mu__pki_free_secret(char *s) {
  if (s == NULL) return;
  OPENSSL_cleanse(s, strlen(s));
  free(s);
}

void mu__pki_hex(const uint8_t *bytes, size_t n, char *out) {
  static const char digits[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}

int mu__pki_serial_of(const ASN1_INTEGER *ai, mu_pki_serial *ret, mu_err *err) {
  if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER) {
    return mu_err_set(err, MU_EINVAL, "negative serial number (RFC 5280 wants a positive one)");
  }
  const uint8_t *p = ASN1_STRING_get0_data(ai);
  size_t n = (size_t)ASN1_STRING_length(ai);
  while (n > 0 && p[0] == 0) {
    p++;
    n--;
  }
  if (n > MU_PKI_SERIAL_MAX) {
    return mu_err_set(err, MU_EINVAL, "serial number of %zu bytes, at most %d allowed", n, MU_PKI_SERIAL_MAX);
  }
  ret->len = (uint8_t)n;
  if (n > 0) memcpy(ret->bytes, p, n);
  return 0;
}

int64_t mu__pki_time(const ASN1_TIME *t) {
  struct tm tm;
  if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return (int64_t)timegm(&tm);
}

void mu__pki_name_cn(const X509_NAME *name, char *buf, size_t size) {
  buf[0] = '\0';
  int i = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
  if (i < 0) return;
  unsigned char *utf8 = NULL;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  if (len < 0) return;
  size_t n = (size_t)len < size - 1 ? (size_t)len : size - 1;
  for (size_t k = 0; k < n; k++) buf[k] = iscntrl(utf8[k]) ? '?' : (char)utf8[k];
  buf[n] = '\0';
  OPENSSL_free(utf8);
}

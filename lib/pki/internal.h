/* Private to lib/pki: file writing (files.c), the libcrypto helpers every part shares
 * (x509util.c), and the CA pair as issue.c and crl.c use it (ca.c). */
#ifndef MU_PKI_INTERNAL_H
#define MU_PKI_INTERNAL_H

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/base/err.h"
#include "lib/pki/peer.h"
#include "lib/pki/pki.h"

#define PKI_FILE_MAX (1 << 20) /* the largest PEM file read */

/* --- files.c --- */

/* printf into buf; MU_EINVAL "path too long" when it does not fit. */
int mu__pki_path(char *buf, size_t size, mu_err *err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Reads a regular file of at most PKI_FILE_MAX bytes into a malloc'd NUL-terminated string
 * (caller frees). MU_ENOENT when missing. */
int mu__pki_read_file(const char *path, char **ret, mu_err *err);

/* A file written under a temporary name beside its path, not yet in place. */
typedef struct pki_staged {
  char tmp[PATH_MAX];
  char path[PATH_MAX];
} pki_staged;

/* Creates s->tmp with O_EXCL and mode (so a key is 0600 from the start), writes data and
 * fsyncs it. On error nothing is left behind. */
int mu__pki_stage(pki_staged *s, const char *path, const char *data, size_t len, mode_t mode, mu_err *err);
/* Moves the staged file into place: rename when replace, else link (MU_EEXIST, tmp removed,
 * when path exists). */
int mu__pki_commit(pki_staged *s, bool replace, mu_err *err);
void mu__pki_discard(pki_staged *s);
/* mu__pki_stage + mu__pki_commit. */
int mu__pki_write_file(const char *path, const char *data, size_t len, mode_t mode, bool replace, mu_err *err);
/* Writes a certificate (0644) and its key (0600) as a pair: both or (when !replace and
 * either exists, MU_EEXIST) neither. */
int mu__pki_write_pair(const char *crt_path, const char *crt_pem, const char *key_path, const char *key_pem,
                       bool replace, mu_err *err);

/* --- names.c --- */

/* NULL-terminated: "server", "agent", "admin" / "viewer", "operator", "admin". */
extern const char *const mu__pki_kinds[];
extern const char *const mu__pki_roles[];
bool mu__pki_one_of(const char *s, const char *const *list);
/* Checks a name (1..MU_PKI_NAME_MAX of [A-Za-z0-9._-]); what names it in the message. */
int mu__pki_check_name(const char *what, const char *name, mu_err *err);
/* days 0 -> def; else 1..MU_PKI_MAX_DAYS. */
int mu__pki_check_days(int days, int def, int *ret, mu_err *err);

/* --- x509util.c --- */

/* mu_err_set with ": <libcrypto's reason>" appended; clears libcrypto's error queue. */
int mu__pki_ossl_err(mu_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The first certificate / private key in pem; what names the input in messages. */
int mu__pki_cert_parse(const char *pem, const char *what, X509 **ret, mu_err *err);
int mu__pki_key_parse(const char *pem, const char *what, EVP_PKEY **ret, mu_err *err);
/* PEM text (malloc'd, NUL-terminated; caller frees). Keys are unencrypted PKCS#8. */
int mu__pki_cert_pem(X509 *x, char **ret, mu_err *err);
int mu__pki_key_pem(EVP_PKEY *key, char **ret, mu_err *err);
int mu__pki_crl_pem(X509_CRL *crl, char **ret, mu_err *err);

/* A new ECDSA P-256 key. */
int mu__pki_key_new(EVP_PKEY **ret, mu_err *err);
/* A v3 certificate for key with a random positive 128-bit serial, the given validity and the
 * subject O=muster[, OU=ou], CN=cn; issuer is the subject when NULL (self-signed). */
int mu__pki_cert_new(EVP_PKEY *key, const char *ou, const char *cn, X509 *issuer, int64_t not_before, int64_t not_after,
                     X509 **ret, mu_err *err);
/* Adds an extension in OpenSSL's config syntax ("critical,CA:TRUE"); issuer may be x. */
int mu__pki_cert_ext(X509 *x, X509 *issuer, int nid, const char *value, mu_err *err);
/* Completes x: subject and authority key identifiers (issuer may be x), the signature by
 * signer (SHA-256), then x and key as PEM (both set only on success; caller frees). */
int mu__pki_cert_finish(X509 *x, X509 *issuer, EVP_PKEY *signer, EVP_PKEY *key, char **ret_cert_pem, char **ret_key_pem,
                        mu_err *err);
/* Clears and frees a string that held a private key; NULL is ok. */
void mu__pki_free_secret(char *s);

/* Uppercase hex of n bytes into out (2n + 1 bytes). */
void mu__pki_hex(const uint8_t *bytes, size_t n, char *out);
/* An ASN1 INTEGER's magnitude (leading zeros dropped). MU_EINVAL when negative or over 20
 * bytes. */
int mu__pki_serial_of(const ASN1_INTEGER *ai, mu_pki_serial *ret, mu_err *err);
/* Unix seconds of an ASN1 time; 0 for NULL or unparsable. */
int64_t mu__pki_time(const ASN1_TIME *t);
/* The first CN of name into buf ("" when none). */
void mu__pki_name_cn(const X509_NAME *name, char *buf, size_t size);

/* --- ca.c --- */

/* A parsed CA (mu_pki_ca_parse checked that cert is a CA and key is its key). */
struct mu_pki_ca {
  X509 *cert;
  EVP_PKEY *key;
};

#endif

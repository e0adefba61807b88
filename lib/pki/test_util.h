/* Test helpers for //lib/pki:pki_test: scratch directories, files, the real `openssl` CLI
 * (run with posix_spawn, output captured), chain verification with libcrypto, and
 * certificates crafted with whatever SANs a test wants. Every helper asserts on failure. */
#ifndef MU_PKI_TEST_UTIL_H
#define MU_PKI_TEST_UTIL_H

#include <openssl/x509.h>
#include <stdint.h>
#include <sys/types.h>

/* A fresh empty directory under $TEST_TMPDIR (or /tmp); caller frees. */
char *pt_mkdtemp(void);
/* dir + "/" + rel, malloc'd. */
char *pt_path(const char *dir, const char *rel);
/* A whole file, NUL-terminated, malloc'd. */
char *pt_read(const char *path);
void pt_write(const char *path, const char *content);
/* The file's permission bits; -1 when it does not exist. */
int pt_mode(const char *path);
void pt_rm_rf(const char *path);

/* Runs argv (argv[0] looked up in PATH) and returns its exit status (-1 when it did not
 * exit); stdout and stderr together go to *ret_output when non-NULL (caller frees). */
int pt_run(char *const argv[], char **ret_output);

/* The first certificate in pem (caller frees with X509_free). */
X509 *pt_parse_cert(const char *pem);

/* X509_verify_cert of leaf_pem against the CA, for purpose (X509_PURPOSE_SSL_CLIENT, ...; 0:
 * any); crl_pem (may be NULL) turns on CRL checking. Returns X509_V_OK or the error. */
int pt_verify(const char *ca_pem, const char *leaf_pem, int purpose, const char *crl_pem);

/* A self-signed certificate with subjectAltName san_conf in OpenSSL's syntax
 * ("URI:muster://agent/a,DNS:x"; NULL: none), malloc'd PEM. Its serial is 4242. */
char *pt_cert_with_sans(const char *san_conf);
/* The same with another serial (negative ones too). */
char *pt_cert_with_serial(const char *san_conf, long serial);

/* Extension nid of cert_pem: -1 when absent, else 1 when critical and 0 when not. */
int pt_ext_critical(const char *cert_pem, int nid);

#endif

/* `muster pki crl`: the revocation database (DIR/revoked.txt, one line per revoked
 * certificate: "SERIALHEX UNIXTIME CN") and the signed X.509 v2 CRL made from it, numbered
 * from DIR/crlnumber. One writer at a time per CA directory (flock on the directory). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "lib/pki/internal.h"
#include "lib/pki/pki.h"

typedef struct revoked {
  mu_pki_serial serial;
  int64_t when;
} revoked;

/* revoked.txt as read: its text (kept to append to) and its entries. */
typedef struct revoked_db {
  char *text;
  revoked *v;
  size_t n;
} revoked_db;

static int hexval(char c) { return isdigit((unsigned char)c) ? c - '0' : toupper((unsigned char)c) - 'A' + 10; }

/* "SERIALHEX UNIXTIME[ CN]" */
static int parse_line(const char *line, size_t len, revoked *ret) {
  size_t h = 0;
  while (h < len && isxdigit((unsigned char)line[h])) h++;
  if (h == 0 || h > 2 * MU_PKI_SERIAL_MAX + 2 || h >= len || line[h] != ' ') return -1;
  uint8_t bytes[MU_PKI_SERIAL_MAX + 1] = {0};
  size_t nbytes = (h + 1) / 2;
  for (size_t i = 0; i < h; i++) {
    size_t pos = i + (h % 2); /* an odd count has an implied leading 0 */
    bytes[pos / 2] |= (uint8_t)(hexval(line[i]) << (pos % 2 ? 0 : 4));
  }
  size_t skip = 0;
  while (skip < nbytes && bytes[skip] == 0) skip++;
  if (nbytes - skip > MU_PKI_SERIAL_MAX) return -1;
  ret->serial.len = (uint8_t)(nbytes - skip);
  memcpy(ret->serial.bytes, bytes + skip, ret->serial.len);
  size_t t = h + 1, d = t;
  while (d < len && isdigit((unsigned char)line[d])) d++;
  if (d == t || d - t > 18 || (d < len && line[d] != ' ')) return -1;
  ret->when = strtoll(line + t, NULL, 10);
  return 0;
}

static int db_load(const char *path, revoked_db *db, mu_err *err) {
  int rc = mu__pki_read_file(path, &db->text, err);
  if (rc == MU_ENOENT) {
    db->text = strdup("");
    rc = db->text != NULL ? 0 : mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (rc != 0) return rc;
  size_t lines = 1;
  for (const char *p = db->text; *p != '\0'; p++) lines += *p == '\n';
  db->v = calloc(lines + 1, sizeof *db->v); /* + the one db_revoke may add */
  if (db->v == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int lineno = 0;
  for (const char *p = db->text; *p != '\0';) {
    size_t len = strcspn(p, "\n");
    lineno++;
    if (len > 0 && p[0] != '#') {
      if (parse_line(p, len, &db->v[db->n]) != 0) {
        return mu_err_set(err, MU_EINVAL, "%s:%d: want 'SERIALHEX UNIXTIME CN', got '%.*s'", path, lineno,
                          (int)(len < 80 ? len : 80), p);
      }
      db->n++;
    }
    p += len + (p[len] == '\n');
  }
  return 0;
}

static bool db_has(const revoked_db *db, const mu_pki_serial *s) {
  for (size_t i = 0; i < db->n; i++) {
    if (db->v[i].serial.len == s->len && memcmp(db->v[i].serial.bytes, s->bytes, s->len) == 0) {
      return true;
    }
  }
  return false;
}

/* Adds cert_path's certificate to the database file unless it is there; refuses one the CA
 * did not issue. */
static int db_revoke(const char *db_path, revoked_db *db, const mu_pki_ca *ca, const char *cert_path, mu_err *err) {
  char *pem = NULL;
  X509 *x = NULL;
  char cn[256], issuer_cn[256], ca_cn[256];
  int rc = mu__pki_read_file(cert_path, &pem, err);
  if (rc == 0) rc = mu__pki_cert_parse(pem, cert_path, &x, err);
  free(pem);
  if (rc != 0) return rc;
  revoked r = {.when = (int64_t)time(NULL)};
  mu__pki_name_cn(X509_get_subject_name(x), cn, sizeof cn);
  mu__pki_name_cn(X509_get_issuer_name(x), issuer_cn, sizeof issuer_cn);
  mu__pki_name_cn(X509_get_subject_name(ca->cert), ca_cn, sizeof ca_cn);
  if (X509_cmp(x, ca->cert) == 0) {
    rc = mu_err_set(err, MU_EINVAL,
                    "%s is the CA certificate itself; to retire a CA, make a new "
                    "one (pki init --force)",
                    cert_path);
  } else if (X509_check_issued(ca->cert, x) != X509_V_OK || X509_verify(x, X509_get0_pubkey(ca->cert)) != 1) {
    ERR_clear_error();
    rc = mu_err_set(err, MU_EINVAL, "%s (CN '%s', issuer '%s') was not issued by this CA ('%s')", cert_path, cn,
                    issuer_cn, ca_cn);
  }
  if (rc == 0) rc = mu__pki_serial_of(X509_get0_serialNumber(x), &r.serial, err);
  X509_free(x);
  if (rc != 0 || db_has(db, &r.serial)) return rc;
  char hex[MU_PKI_SERIAL_HEX_SIZE];
  mu__pki_hex(r.serial.bytes, r.serial.len, hex);
  for (char *c = cn; *c != '\0'; c++)
    if (*c == '\n' || *c == '\r') *c = '?';
  size_t old = strlen(db->text);
  size_t need = old + strlen(hex) + strlen(cn) + 48;
  char *text = realloc(db->text, need);
  if (text == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  db->text = text;
  snprintf(text + old, need - old, "%s%s %lld %s\n", old > 0 && text[old - 1] != '\n' ? "\n" : "",
           hex[0] != '\0' ? hex : "00", (long long)r.when, cn);
  db->v[db->n++] = r; /* db_load left room for one more */
  return mu__pki_write_file(db_path, db->text, strlen(db->text), 0644, true, err);
}

/* Reads DIR/crlnumber (absent: 0), writes back one more and returns it in *ret. The number is
 * claimed before the CRL is written, so two CRLs never share one. */
static int next_number(const char *path, int64_t *ret, mu_err *err) {
  char *text = NULL;
  int64_t n = 0;
  int rc = mu__pki_read_file(path, &text, err);
  if (rc == 0) {
    char *end = NULL;
    n = strtoll(text, &end, 10);
    if (end == text || (*end != '\0' && *end != '\n') || n < 0 || n >= INT64_MAX / 2) {
      rc = mu_err_set(err, MU_EINVAL, "%s: want a CRL number, got '%.20s'", path, text);
    }
  } else if (rc == MU_ENOENT) {
    rc = 0;
  }
  free(text);
  if (rc != 0) return rc;
  char buf[32];
  snprintf(buf, sizeof buf, "%lld\n", (long long)(n + 1));
  *ret = n + 1;
  return mu__pki_write_file(path, buf, strlen(buf), 0644, true, err);
}

static int add_entry(X509_CRL *crl, const revoked *r) {
  X509_REVOKED *rev = X509_REVOKED_new();
  ASN1_INTEGER *serial = ASN1_INTEGER_new();
  ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)r->when);
  int ok = rev != NULL && serial != NULL && when != NULL && ASN1_STRING_set(serial, r->serial.bytes, r->serial.len) &&
           X509_REVOKED_set_serialNumber(rev, serial) && X509_REVOKED_set_revocationDate(rev, when) &&
           X509_CRL_add0_revoked(crl, rev);
  if (!ok) X509_REVOKED_free(rev);
  ASN1_INTEGER_free(serial);
  ASN1_TIME_free(when);
  return ok;
}

/* The signed CRL of every entry in db, as PEM. */
static int make_crl(const mu_pki_ca *ca, const revoked_db *db, int64_t number, int days, char **ret_pem, mu_err *err) {
  int64_t now = (int64_t)time(NULL);
  X509_CRL *crl = X509_CRL_new();
  ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
  ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now + 86400LL * days));
  ASN1_INTEGER *num = ASN1_INTEGER_new();
  AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
  const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);
  int ok = crl != NULL && last != NULL && next != NULL && num != NULL && akid != NULL &&
           X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
           X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) && X509_CRL_set1_lastUpdate(crl, last) &&
           X509_CRL_set1_nextUpdate(crl, next) && ASN1_INTEGER_set_int64(num, number) &&
           X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
  for (size_t i = 0; ok && i < db->n; i++) ok = add_entry(crl, &db->v[i]);
  if (ok && ski != NULL) {
    akid->keyid = ASN1_OCTET_STRING_dup(ski);
    ok = akid->keyid != NULL && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0);
  }
  ok = ok && X509_CRL_sort(crl) && X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0;
  int rc = ok ? mu__pki_crl_pem(crl, ret_pem, err) : mu__pki_ossl_err(err, MU_EIO, "making the CRL");
  AUTHORITY_KEYID_free(akid);
  ASN1_INTEGER_free(num);
  ASN1_TIME_free(last);
  ASN1_TIME_free(next);
  X509_CRL_free(crl);
  return rc;
}

int mu_pki_crl(const char *ca_dir, const char *revoke_cert_path, const char *out, int days, mu_err *err) {
  char db_path[PATH_MAX], num_path[PATH_MAX], crl_path[PATH_MAX];
  char *ca_cert = NULL, *ca_key = NULL, *pem = NULL;
  mu_pki_ca *ca = NULL;
  revoked_db db = {0};
  int64_t number = 0;
  int rc = mu__pki_check_days(days, MU_PKI_CRL_DAYS, &days, err);
  if (rc == 0) rc = mu__pki_path(db_path, sizeof db_path, err, "%s/revoked.txt", ca_dir);
  if (rc == 0) rc = mu__pki_path(num_path, sizeof num_path, err, "%s/crlnumber", ca_dir);
  if (rc == 0) {
    rc = out != NULL ? mu__pki_path(crl_path, sizeof crl_path, err, "%s", out)
                     : mu__pki_path(crl_path, sizeof crl_path, err, "%s/ca.crl", ca_dir);
  }
  if (rc != 0) return rc;
  int lock = open(ca_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0) return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "%s: %s", ca_dir, strerror(errno));
  if (flock(lock, LOCK_EX) != 0) rc = mu_err_set(err, MU_EIO, "%s: lock: %s", ca_dir, strerror(errno));
  if (rc == 0) rc = mu_pki_ca_load(ca_dir, &ca_cert, &ca_key, err);
  if (rc == 0) rc = mu_pki_ca_parse(ca_cert, ca_key, &ca, err);
  if (rc == 0) rc = db_load(db_path, &db, err);
  if (rc == 0 && revoke_cert_path != NULL) rc = db_revoke(db_path, &db, ca, revoke_cert_path, err);
  if (rc == 0) rc = next_number(num_path, &number, err);
  if (rc == 0) rc = make_crl(ca, &db, number, days, &pem, err);
  if (rc == 0) rc = mu__pki_write_file(crl_path, pem, strlen(pem), 0644, true, err);
  close(lock);
  free(pem);
  free(db.text);
  free(db.v);
  mu_pki_ca_free(ca);
  free(ca_cert);
  mu__pki_free_secret(ca_key);
  return rc;
}

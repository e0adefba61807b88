/* Reading peers for authorization: a peer certificate's muster identity (the muster:// URI
 * SANs), its serial, and a verified CRL as a sorted array to look serials up in. Each call
 * parses its PEM once; only the CRL set allocates. */
#include "lib/pki/peer.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pki/internal.h"

static int cmp_serial(const void *a, const void *b) {
  const mu_pki_serial *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return memcmp(x->bytes, y->bytes, x->len);
}

/* The CRL at crl_path after checking it against the CA at ca_path. */
static int load_verified_crl(const char *crl_path, const char *ca_path, X509_CRL **ret, mu_err *err) {
  char *crl_pem = NULL, *ca_pem = NULL;
  X509 *ca = NULL;
  X509_CRL *crl = NULL;
  int rc = mu__pki_read_file(crl_path, &crl_pem, err);
  if (rc == 0) rc = mu__pki_read_file(ca_path, &ca_pem, err);
  if (rc == 0) rc = mu__pki_cert_parse(ca_pem, ca_path, &ca, err);
  if (rc == 0) {
    BIO *bio = BIO_new_mem_buf(crl_pem, -1);
    crl = bio != NULL ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (crl == NULL) rc = mu__pki_ossl_err(err, MU_EINVAL, "%s: not a PEM CRL", crl_path);
  }
  if (rc == 0 && (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0 ||
                  X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)) {
    char issuer[256], ca_cn[256];
    mu__pki_name_cn(X509_CRL_get_issuer(crl), issuer, sizeof issuer);
    mu__pki_name_cn(X509_get_subject_name(ca), ca_cn, sizeof ca_cn);
    ERR_clear_error();
    rc = mu_err_set(err, MU_EPERM, "%s: CRL of '%s' is not signed by the CA '%s' in %s", crl_path, issuer, ca_cn,
                    ca_path);
  }
  free(crl_pem);
  free(ca_pem);
  X509_free(ca);
  if (rc != 0) {
    X509_CRL_free(crl);
    return rc;
  }
  *ret = crl;
  return 0;
}

int mu_pki_crl_set_load(const char *crl_path, const char *ca_path, mu_pki_crl_set **ret, mu_err *err) {
  X509_CRL *crl = NULL;
  int rc = load_verified_crl(crl_path, ca_path, &crl, err);
  if (rc != 0) return rc;
  STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
  size_t n = revoked != NULL ? (size_t)sk_X509_REVOKED_num(revoked) : 0;
  mu_pki_crl_set *set = calloc(1, sizeof *set);
  if (set != NULL) set->serials = calloc(n > 0 ? n : 1, sizeof *set->serials);
  if (set == NULL || set->serials == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const X509_REVOKED *r = sk_X509_REVOKED_value(revoked, (int)i);
    rc = mu__pki_serial_of(X509_REVOKED_get0_serialNumber(r), &set->serials[i], err);
    if (rc != 0) mu_err_prefix(err, "%s: entry %zu", crl_path, i + 1);
  }
  if (rc == 0) {
    set->n = n;
    qsort(set->serials, n, sizeof *set->serials, cmp_serial);
    set->last_update = mu__pki_time(X509_CRL_get0_lastUpdate(crl));
    set->next_update = mu__pki_time(X509_CRL_get0_nextUpdate(crl));
    set->number = -1;
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    if (num != NULL && ASN1_INTEGER_get_int64(&set->number, num) != 1) set->number = -1;
    ASN1_INTEGER_free(num);
  }
  X509_CRL_free(crl);
  if (rc != 0) {
    mu_pki_crl_set_free(set);
    return rc;
  }
  *ret = set;
  return 0;
}

bool mu_pki_crl_set_is_revoked(const mu_pki_crl_set *set, const uint8_t *serial, size_t len) {
  while (len > 0 && serial[0] == 0) {
    serial++;
    len--;
  }
  if (set == NULL || len > MU_PKI_SERIAL_MAX) return false;
  mu_pki_serial key = {.len = (uint8_t)len};
  if (len > 0) memcpy(key.bytes, serial, len);
  return bsearch(&key, set->serials, set->n, sizeof key, cmp_serial) != NULL;
}

void mu_pki_crl_set_free(mu_pki_crl_set *set) {
  if (set == NULL) return;
  free(set->serials);
  free(set);
}

/* One DER header at *p: the tag in *tag and the content length in *len, with *p moved to the
 * content. -1 when it does not fit before end. */
static int der_header(const uint8_t **p, const uint8_t *end, uint8_t *tag, size_t *len) {
  if (end - *p < 2) return -1;
  *tag = *(*p)++;
  size_t n = *(*p)++;
  if (n & 0x80) {
    size_t k = n & 0x7f;
    if (k == 0 || k > 4 || (size_t)(end - *p) < k) return -1;
    n = 0;
    for (size_t i = 0; i < k; i++) n = (n << 8) | *(*p)++;
  }
  if (n > (size_t)(end - *p)) return -1;
  *len = n;
  return 0;
}

/* The serial's whole TLV inside a DER certificate: Certificate ::= SEQUENCE { tbsCertificate
 * SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, ... } ... }. Walked by hand because
 * decoding the whole certificate costs ~100 us in OpenSSL 3.0 (the public key import). */
static const uint8_t *find_serial(const uint8_t *der, size_t len, size_t *ret_len) {
  const uint8_t *p = der, *end = der + len, *start;
  uint8_t tag;
  size_t n;
  if (der_header(&p, end, &tag, &n) != 0 || tag != 0x30) return NULL;
  end = p + n;
  if (der_header(&p, end, &tag, &n) != 0 || tag != 0x30) return NULL;
  end = p + n;
  start = p;
  if (der_header(&p, end, &tag, &n) != 0) return NULL;
  if (tag == 0xa0) {
    p += n;
    start = p;
    if (der_header(&p, end, &tag, &n) != 0) return NULL;
  }
  if (tag != 0x02) return NULL;
  *ret_len = (size_t)(p - start) + n;
  return start;
}

int mu_pki_cert_serial_from_pem(const char *pem, uint8_t *buf, size_t size, size_t *ret_len, mu_err *err) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  unsigned char *der = NULL;
  long der_len = 0;
  int ok = bio != NULL && PEM_bytes_read_bio(&der, &der_len, NULL, PEM_STRING_X509, bio, NULL, NULL) == 1;
  BIO_free(bio);
  if (!ok) return mu__pki_ossl_err(err, MU_EINVAL, "peer certificate: not a PEM certificate");
  size_t tlv_len = 0;
  const uint8_t *tlv = find_serial(der, (size_t)der_len, &tlv_len);
  ASN1_INTEGER *ai = tlv != NULL ? d2i_ASN1_INTEGER(NULL, &tlv, (long)tlv_len) : NULL;
  mu_pki_serial s;
  int rc = ai != NULL ? mu__pki_serial_of(ai, &s, err)
                      : mu__pki_ossl_err(err, MU_EINVAL, "peer certificate: no serial number in it");
  ASN1_INTEGER_free(ai);
  OPENSSL_free(der);
  if (rc != 0) return rc;
  if (s.len > size) {
    return mu_err_set(err, MU_ENOSPC, "serial of %u bytes does not fit in %zu", s.len, size);
  }
  if (s.len > 0) memcpy(buf, s.bytes, s.len);
  *ret_len = s.len;
  return 0;
}

/* Reads one muster:// URI ("muster://KIND/NAME" or "muster://role/ROLE") into ret. */
static int read_uri(const char *uri, mu_pki_cert_info *ret, mu_err *err) {
  const char *rest = uri + strlen("muster://");
  const char *slash = strchr(rest, '/');
  size_t head = slash != NULL ? (size_t)(slash - rest) : 0;
  if (slash == NULL || head == 0 || head >= sizeof ret->kind) {
    return mu_err_set(err, MU_EINVAL, "URI '%s': want muster://KIND/NAME or muster://role/ROLE", uri);
  }
  char kind[sizeof ret->kind];
  memcpy(kind, rest, head);
  kind[head] = '\0';
  if (strcmp(kind, "role") == 0) {
    if (ret->role[0] != '\0') return mu_err_set(err, MU_EINVAL, "URI '%s': a second role", uri);
    if (!mu__pki_one_of(slash + 1, mu__pki_roles)) {
      return mu_err_set(err, MU_EINVAL, "URI '%s': unknown role (want viewer, operator or admin)", uri);
    }
    snprintf(ret->role, sizeof ret->role, "%s", slash + 1);
    return 0;
  }
  if (!mu__pki_one_of(kind, mu__pki_kinds)) {
    return mu_err_set(err, MU_EINVAL, "URI '%s': unknown kind '%s' (want server, agent or admin)", uri, kind);
  }
  if (ret->kind[0] != '\0') {
    return mu_err_set(err, MU_EINVAL, "URI '%s': a second identity besides muster://%s/%s", uri, ret->kind, ret->name);
  }
  int rc = mu__pki_check_name("URI name", slash + 1, err);
  if (rc != 0) return mu_err_prefix(err, "URI '%s'", uri);
  snprintf(ret->kind, sizeof ret->kind, "%s", kind);
  snprintf(ret->name, sizeof ret->name, "%s", slash + 1);
  return 0;
}

static void append_san(mu_pki_cert_info *ret, const char *text) {
  size_t used = strlen(ret->sans);
  size_t need = strlen(text) + (used > 0 ? 1 : 0);
  if (ret->sans_truncated || used + need >= sizeof ret->sans) {
    ret->sans_truncated = true;
    return;
  }
  snprintf(ret->sans + used, sizeof ret->sans - used, "%s%s", used > 0 ? "," : "", text);
}

/* One SAN: DNS and IP entries are listed, muster:// URIs read, anything else ignored. */
static int read_san(const GENERAL_NAME *gen, mu_pki_cert_info *ret, mu_err *err) {
  int type = 0;
  const ASN1_STRING *value = GENERAL_NAME_get0_value(gen, &type);
  if (type != GEN_DNS && type != GEN_URI && type != GEN_IPADD) return 0;
  const unsigned char *data = ASN1_STRING_get0_data(value);
  int len = ASN1_STRING_length(value);
  char text[512];
  if (type == GEN_IPADD) {
    if ((len == 4 && inet_ntop(AF_INET, data, text, sizeof text) != NULL) ||
        (len == 16 && inet_ntop(AF_INET6, data, text, sizeof text) != NULL)) {
      append_san(ret, text);
    }
    return 0;
  }
  bool clean = len >= 0 && (size_t)len < sizeof text && memchr(data, '\0', (size_t)len) == NULL;
  if (clean) {
    memcpy(text, data, (size_t)len);
    text[len] = '\0';
  }
  if (type == GEN_DNS) {
    if (clean) append_san(ret, text);
    return 0;
  }
  if (len >= 9 && memcmp(data, "muster://", 9) == 0) {
    if (!clean) return mu_err_set(err, MU_EINVAL, "a muster:// URI that is too long or holds NUL");
    return read_uri(text, ret, err);
  }
  return 0;
}

static int read_sans(X509 *x, mu_pki_cert_info *ret, mu_err *err) {
  int crit = 0;
  GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
  if (gens == NULL) {
    return crit == -1 ? 0 : mu_err_set(err, MU_EINVAL, "unreadable or repeated subjectAltName");
  }
  int rc = 0;
  for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
    rc = read_san(sk_GENERAL_NAME_value(gens, i), ret, err);
  }
  GENERAL_NAMES_free(gens);
  if (rc == 0 && ret->role[0] != '\0' && strcmp(ret->kind, "admin") != 0) {
    rc = ret->kind[0] != '\0'
             ? mu_err_set(err, MU_EINVAL, "a role URI (muster://role/%s) on a certificate of kind %s", ret->role,
                          ret->kind)
             : mu_err_set(err, MU_EINVAL, "a role URI (muster://role/%s) without a muster identity", ret->role);
  }
  /* An admin without a role URI gets the least role, as mu_pki_issue would have given it. */
  if (rc == 0 && strcmp(ret->kind, "admin") == 0 && ret->role[0] == '\0') {
    snprintf(ret->role, sizeof ret->role, "viewer");
  }
  return rc;
}

int mu_pki_cert_info_from_pem(const char *pem, mu_pki_cert_info *ret, mu_err *err) {
  X509 *x = NULL;
  mu_pki_cert_info info;
  mu_pki_serial serial;
  memset(&info, 0, sizeof info);
  int rc = mu__pki_cert_parse(pem, "certificate", &x, err);
  if (rc == 0) rc = mu__pki_serial_of(X509_get0_serialNumber(x), &serial, err);
  if (rc == 0) rc = read_sans(x, &info, err);
  if (rc == 0) {
    mu__pki_name_cn(X509_get_subject_name(x), info.cn, sizeof info.cn);
    mu__pki_name_cn(X509_get_issuer_name(x), info.issuer_cn, sizeof info.issuer_cn);
    mu__pki_hex(serial.bytes, serial.len, info.serial_hex);
    info.not_before = mu__pki_time(X509_get0_notBefore(x));
    info.not_after = mu__pki_time(X509_get0_notAfter(x));
    uint32_t flags = X509_get_extension_flags(x);
    info.is_ca = (flags & EXFLAG_CA) != 0;
    if (flags & EXFLAG_XKUSAGE) {
      uint32_t xku = X509_get_extended_key_usage(x);
      info.server_auth = (xku & XKU_SSL_SERVER) != 0;
      info.client_auth = (xku & XKU_SSL_CLIENT) != 0;
    }
  }
  X509_free(x);
  if (rc == 0) *ret = info;
  return rc;
}

int mu_pki_cert_info_from_file(const char *path, mu_pki_cert_info *ret, mu_err *err) {
  char *pem = NULL;
  int rc = mu__pki_read_file(path, &pem, err);
  if (rc != 0) return rc;
  mu_err perr = {0};
  rc = mu_pki_cert_info_from_pem(pem, ret, &perr);
  free(pem);
  if (rc != 0) return mu_err_set(err, rc, "%s: %s", path, perr.msg);
  return 0;
}

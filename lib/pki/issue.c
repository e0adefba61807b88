/* `muster pki issue`: leaf certificates for servers, agents and admins, signed by the CA.
 * What a leaf carries (subject, URI SANs, key usages) is the contract the control plane's
 * authorization reads back with mu_pki_cert_info_from_pem (peer.c). */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/pki/internal.h"
#include "lib/pki/pki.h"

#define MAX_SANS 100
#define SANS_TEXT_MAX 8192

/* A DNS name: dot-separated labels of 1..63 letters, digits and inner hyphens, 253 at most;
 * the first label may be "*". */
static bool valid_dns(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 253) return false;
  if (strncmp(s, "*.", 2) == 0 && n > 2) s += 2;
  for (;;) {
    size_t label = strcspn(s, ".");
    if (label == 0 || label > 63 || s[0] == '-' || s[label - 1] == '-') return false;
    for (size_t i = 0; i < label; i++)
      if (!isalnum((unsigned char)s[i]) && s[i] != '-') return false;
    if (s[label] == '\0') return true;
    s += label + 1;
  }
}

/* Appends one general name of type (GEN_DNS, GEN_URI: text; GEN_IPADD: raw bytes). */
static int push_name(GENERAL_NAMES *gens, int type, const void *data, size_t len) {
  ASN1_STRING *value = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
  GENERAL_NAME *gen = GENERAL_NAME_new();
  if (value == NULL || gen == NULL || !ASN1_STRING_set(value, data, (int)len)) {
    ASN1_STRING_free(value);
    GENERAL_NAME_free(gen);
    return 0;
  }
  GENERAL_NAME_set0_value(gen, type, value);
  if (!sk_GENERAL_NAME_push(gens, gen)) {
    GENERAL_NAME_free(gen);
    return 0;
  }
  return 1;
}

/* Parses "a,b,..." into DNS and IP entries of gens. */
static int add_listed_sans(GENERAL_NAMES *gens, const char *sans, mu_err *err) {
  if (strlen(sans) > SANS_TEXT_MAX) {
    return mu_err_set(err, MU_EINVAL, "SANs: %zu characters, at most %d", strlen(sans), SANS_TEXT_MAX);
  }
  char *copy = strdup(sans);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc = 0, count = 0;
  char *save = NULL;
  for (char *e = strtok_r(copy, ",", &save); e != NULL && rc == 0; e = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*e)) e++;
    for (size_t n = strlen(e); n > 0 && isspace((unsigned char)e[n - 1]); n--) e[n - 1] = '\0';
    if (*e == '\0') continue;
    uint8_t ip[16];
    int ok = 1;
    if (++count > MAX_SANS) {
      rc = mu_err_set(err, MU_EINVAL, "SANs: more than %d entries", MAX_SANS);
    } else if (inet_pton(AF_INET, e, ip) == 1) {
      ok = push_name(gens, GEN_IPADD, ip, 4);
    } else if (inet_pton(AF_INET6, e, ip) == 1) {
      ok = push_name(gens, GEN_IPADD, ip, 16);
    } else if (valid_dns(e)) {
      ok = push_name(gens, GEN_DNS, e, strlen(e));
    } else {
      rc = mu_err_set(err, MU_EINVAL, "SAN '%s' is neither a DNS name nor an IP address", e);
    }
    if (rc == 0 && !ok) rc = mu__pki_ossl_err(err, MU_ENOMEM, "SAN '%s'", e);
  }
  free(copy);
  return rc;
}

static int add_sans(X509 *x, const mu_pki_issue_opts *o, const char *role, mu_err *err) {
  const char *listed = o->sans;
  if (listed == NULL) listed = strcmp(o->kind, "server") == 0 ? "localhost,127.0.0.1" : "";
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  if (gens == NULL) return mu__pki_ossl_err(err, MU_ENOMEM, "SANs");
  char uri[64 + MU_PKI_NAME_MAX];
  int rc = add_listed_sans(gens, listed, err);
  if (rc == 0) {
    snprintf(uri, sizeof uri, "muster://%s/%s", o->kind, o->name);
    if (!push_name(gens, GEN_URI, uri, strlen(uri))) rc = mu__pki_ossl_err(err, MU_ENOMEM, "SANs");
  }
  if (rc == 0 && role != NULL) {
    snprintf(uri, sizeof uri, "muster://role/%s", role);
    if (!push_name(gens, GEN_URI, uri, strlen(uri))) rc = mu__pki_ossl_err(err, MU_ENOMEM, "SANs");
  }
  if (rc == 0 && !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT)) {
    rc = mu__pki_ossl_err(err, MU_EIO, "subjectAltName");
  }
  GENERAL_NAMES_free(gens);
  return rc;
}

/* Checks o; sets the role to write (NULL for non-admin kinds) and the validity. */
static int check_opts(const mu_pki_issue_opts *o, const char **ret_role, int64_t *ret_nb, int64_t *ret_na,
                      mu_err *err) {
  if (o->kind == NULL || !mu__pki_one_of(o->kind, mu__pki_kinds)) {
    return mu_err_set(err, MU_EINVAL, "kind '%s': want server, agent or admin", o->kind != NULL ? o->kind : "");
  }
  int rc = mu__pki_check_name("name", o->name, err);
  if (rc != 0) return rc;
  bool admin = strcmp(o->kind, "admin") == 0;
  if (!admin && o->role != NULL) {
    return mu_err_set(err, MU_EINVAL, "role '%s': only admin certificates carry a role, not %s", o->role, o->kind);
  }
  if (admin && o->role != NULL && !mu__pki_one_of(o->role, mu__pki_roles)) {
    return mu_err_set(err, MU_EINVAL, "role '%s': want viewer, operator or admin", o->role);
  }
  *ret_role = admin ? (o->role != NULL ? o->role : "viewer") : NULL;
  int days;
  rc = mu__pki_check_days(o->days, MU_PKI_LEAF_DAYS, &days, err);
  if (rc != 0) return rc;
  int64_t now = (int64_t)time(NULL);
  *ret_nb = o->not_before != 0 ? o->not_before : now - 300;
  *ret_na = o->not_after != 0 ? o->not_after : (o->not_before != 0 ? o->not_before : now) + 86400LL * days;
  if (*ret_na <= *ret_nb) {
    return mu_err_set(err, MU_EINVAL, "not_after (%lld) must be later than not_before (%lld)", (long long)*ret_na,
                      (long long)*ret_nb);
  }
  return 0;
}

int mu_pki_issue_ca(mu_pki_ca *ca, const mu_pki_issue_opts *o, char **ret_cert_pem, char **ret_key_pem, mu_err *err) {
  const char *role = NULL;
  int64_t nb = 0, na = 0;
  int rc = check_opts(o, &role, &nb, &na, err);
  if (rc != 0) return rc;
  EVP_PKEY *key = NULL;
  X509 *x = NULL;
  bool server = strcmp(o->kind, "server") == 0;
  rc = mu__pki_key_new(&key, err);
  if (rc == 0) rc = mu__pki_cert_new(key, o->kind, o->name, ca->cert, nb, na, &x, err);
  if (rc == 0) rc = mu__pki_cert_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE", err);
  if (rc == 0) rc = mu__pki_cert_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature", err);
  if (rc == 0) {
    rc = mu__pki_cert_ext(x, ca->cert, NID_ext_key_usage, server ? "serverAuth,clientAuth" : "clientAuth", err);
  }
  if (rc == 0) rc = add_sans(x, o, role, err);
  if (rc == 0) rc = mu__pki_cert_finish(x, ca->cert, ca->key, key, ret_cert_pem, ret_key_pem, err);
  X509_free(x);
  EVP_PKEY_free(key);
  return rc;
}

int mu_pki_issue_mem(const char *ca_cert_pem, const char *ca_key_pem, const mu_pki_issue_opts *o, char **ret_cert_pem,
                     char **ret_key_pem, mu_err *err) {
  mu_pki_ca *ca = NULL;
  int rc = mu_pki_ca_parse(ca_cert_pem, ca_key_pem, &ca, err);
  if (rc == 0) rc = mu_pki_issue_ca(ca, o, ret_cert_pem, ret_key_pem, err);
  mu_pki_ca_free(ca);
  return rc;
}

int mu_pki_issue(const mu_pki_issue_opts *o, mu_err *err) {
  if (o->ca_dir == NULL || o->ca_dir[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "the CA directory is required");
  }
  if (o->out == NULL || o->out[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "the output prefix is required");
  }
  char crt_path[PATH_MAX], key_path[PATH_MAX];
  char *ca_cert = NULL, *ca_key = NULL, *cert = NULL, *key = NULL;
  int rc = mu__pki_path(crt_path, sizeof crt_path, err, "%s.crt", o->out);
  if (rc == 0) rc = mu__pki_path(key_path, sizeof key_path, err, "%s.key", o->out);
  if (rc == 0) rc = mu_pki_ca_load(o->ca_dir, &ca_cert, &ca_key, err);
  if (rc == 0) rc = mu_pki_issue_mem(ca_cert, ca_key, o, &cert, &key, err);
  if (rc == 0) rc = mu__pki_write_pair(crt_path, cert, key_path, key, o->force != 0, err);
  free(ca_cert);
  mu__pki_free_secret(ca_key);
  free(cert);
  mu__pki_free_secret(key);
  return rc;
}

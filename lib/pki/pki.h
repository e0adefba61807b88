/* Muster's own small PKI, on OpenSSL 3 libcrypto: a CA in a directory, leaf certificates for
 * the three kinds of peer (server, agent, admin) and a CRL kept from a revocation database.
 * The conventions (subject, URI SANs, key usages) are in docs/security.md#pki; the parsers the
 * control plane authorizes with are in lib/pki/peer.h.
 *
 * CA directory layout: ca.crt (0644), ca.key (0600), revoked.txt, crlnumber, ca.crl. Every
 * file is written to a temporary name and renamed into place; key files are created 0600
 * with O_EXCL and never widened. Functions return 0 or a negative MU_E* code and fill err. */
#ifndef MU_PKI_H
#define MU_PKI_H

#include <stdint.h>

#include "lib/base/err.h"

#define MU_PKI_CA_DAYS 3650   /* default CA validity */
#define MU_PKI_LEAF_DAYS 365  /* default leaf validity */
#define MU_PKI_CRL_DAYS 30    /* default CRL nextUpdate */
#define MU_PKI_MAX_DAYS 36500 /* the most any --days may ask for */
#define MU_PKI_NAME_MAX 128   /* names: 1..128 of [A-Za-z0-9._-], like agent ids */

/* Makes dir (mode 0700, parents 0755 as needed) and writes dir/ca.crt and dir/ca.key: an
 * ECDSA P-256 self-signed CA, subject "CN=muster CA <6 random hex>, O=muster", valid for days
 * (0: MU_PKI_CA_DAYS). MU_EEXIST when dir already holds ca.crt or ca.key (nothing is
 * written); MU_EINVAL for bad days; MU_EIO for file or libcrypto failures. */
int mu_pki_init(const char *dir, int days, mu_err *err);

/* As mu_pki_init, but an existing CA is replaced (the --force of `muster pki init`). The old
 * CA's revocation state (revoked.txt, crlnumber, ca.crl) is removed with it: certificates of
 * the old CA no longer verify at all. */
int mu_pki_init_force(const char *dir, int days, mu_err *err);

/* Reads dir/ca.crt and dir/ca.key into malloc'd NUL-terminated PEM strings; caller frees
 * both. MU_ENOENT when either file is missing. On error neither is set. */
int mu_pki_ca_load(const char *dir, char **ret_cert_pem, char **ret_key_pem, mu_err *err);

/* What to issue. Strings are borrowed for the call. */
typedef struct mu_pki_issue_opts {
  const char *ca_dir; /* mu_pki_issue: the CA directory (mu_pki_issue_mem ignores it) */
  const char *kind;   /* "server", "agent" or "admin" (OU and the muster://KIND/NAME URI) */
  const char *name;   /* CN and the URI's NAME: 1..128 of [A-Za-z0-9._-] */
  const char *role;   /* admin kind only: "viewer" (NULL: the default), "operator", "admin";
                         refused for other kinds */
  const char *sans;   /* comma-separated DNS names and IP addresses; NULL: "localhost,
                         127.0.0.1" for a server and none for the others; "": none */
  int days;           /* validity from now; 0: MU_PKI_LEAF_DAYS */
  const char *out;    /* mu_pki_issue: writes OUT.crt and OUT.key (0600) */
  int force;          /* mu_pki_issue: replace existing OUT.crt/OUT.key (else MU_EEXIST) */
  /* Test only: explicit validity in unix seconds (0: the default, now - 5 min and
   * notBefore-or-now + days), so tests can make expired or not-yet-valid certificates. */
  int64_t not_before;
  int64_t not_after;
} mu_pki_issue_opts;

/* Issues a leaf signed by the CA given as PEM: a new ECDSA P-256 key, a random 128-bit
 * serial, notBefore now - 5 min, subject "CN=NAME, OU=KIND, O=muster", SANs (the DNS/IP
 * entries, URI muster://KIND/NAME, and for admin URI muster://role/ROLE), extendedKeyUsage
 * serverAuth+clientAuth (server) or clientAuth (agent, admin), keyUsage digitalSignature
 * (critical), CA:FALSE, subject and authority key ids. *ret_cert_pem is the leaf alone,
 * *ret_key_pem its PKCS#8 key; caller frees both. MU_EINVAL names a bad kind, name, role, SAN
 * or day count, or a CA that is not one (or whose key does not match); MU_EIO for libcrypto
 * failures. For tests and benchmarks that need many certificates without files. */
int mu_pki_issue_mem(const char *ca_cert_pem, const char *ca_key_pem, const mu_pki_issue_opts *o, char **ret_cert_pem,
                     char **ret_key_pem, mu_err *err);

/* A CA parsed once for many mu_pki_issue_ca calls: parsing the PEM is about half the cost
 * of mu_pki_issue_mem (OpenSSL 3.0's key decoding), which matters when a benchmark makes
 * thousands of agents. Use from one thread at a time. */
typedef struct mu_pki_ca mu_pki_ca;

/* Parses and checks a CA pair (the certificate is a CA, the key is its key): MU_EINVAL with
 * the reason otherwise. *ret: caller frees with mu_pki_ca_free. */
int mu_pki_ca_parse(const char *cert_pem, const char *key_pem, mu_pki_ca **ret, mu_err *err);
void mu_pki_ca_free(mu_pki_ca *ca);

/* mu_pki_issue_mem with a parsed CA. */
int mu_pki_issue_ca(mu_pki_ca *ca, const mu_pki_issue_opts *o, char **ret_cert_pem, char **ret_key_pem, mu_err *err);

/* mu_pki_ca_load(o->ca_dir) + mu_pki_issue_mem + writes o->out.crt and o->out.key (0600).
 * MU_EEXIST when either exists and !o->force (nothing is written). */
int mu_pki_issue(const mu_pki_issue_opts *o, mu_err *err);

/* Revocation: with revoke_cert_path, adds that certificate (PEM) to ca_dir/revoked.txt (one
 * line each: serial in hex, revocation unix time, subject CN; revoking again changes
 * nothing); a certificate this CA did not issue, or the CA itself, is refused (MU_EINVAL).
 * Then writes a signed X.509 v2 CRL (PEM) of every revoked serial to out (NULL: ca_dir/ca.crl)
 * with lastUpdate now, nextUpdate now + days (0: MU_PKI_CRL_DAYS) and the next CRL number
 * (kept in ca_dir/crlnumber). Serialized against other mu_pki_crl calls on the same ca_dir by
 * an flock on the directory. */
int mu_pki_crl(const char *ca_dir, const char *revoke_cert_path, const char *out, int days, mu_err *err);

#endif

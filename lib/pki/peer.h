/* What the control plane needs to authorize a peer whose TLS chain already verified: its
 * identity (kind, name, role from the muster:// URI SANs), its serial, and whether a CRL
 * revokes it. All parse PEM with libcrypto and allocate nothing but the CRL set.
 * Serials travel as big-endian magnitude bytes without leading zeros (how X.509 stores them;
 * at most 20 by RFC 5280) or as the uppercase hex of those bytes. */
#ifndef MU_PKI_PEER_H
#define MU_PKI_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_PKI_SERIAL_MAX 20
#define MU_PKI_SERIAL_HEX_SIZE (2 * MU_PKI_SERIAL_MAX + 1)

typedef struct mu_pki_serial {
  uint8_t len;
  uint8_t bytes[MU_PKI_SERIAL_MAX];
} mu_pki_serial;

/* A verified CRL: its revoked serials, sorted, and its times. Read the fields; do not change. */
typedef struct mu_pki_crl_set {
  mu_pki_serial *serials; /* n entries, sorted by (len, bytes) */
  size_t n;
  int64_t last_update; /* unix seconds */
  int64_t next_update; /* unix seconds; 0 when the CRL has none */
  int64_t number;      /* the CRL number extension; -1 when absent */
} mu_pki_crl_set;

/* Loads the PEM CRL at crl_path and verifies its signature and issuer against the first
 * certificate in the PEM file ca_path. A CRL past its nextUpdate still loads (the caller
 * decides with next_update). *ret: caller frees with mu_pki_crl_set_free. MU_ENOENT for a
 * missing file, MU_EINVAL for an unparsable one, MU_EPERM when the CA did not sign it. */
int mu_pki_crl_set_load(const char *crl_path, const char *ca_path, mu_pki_crl_set **ret, mu_err *err);

/* Whether serial (len bytes as above; leading zero bytes are ignored) is in the set. */
bool mu_pki_crl_set_is_revoked(const mu_pki_crl_set *set, const uint8_t *serial, size_t len);

void mu_pki_crl_set_free(mu_pki_crl_set *set);

/* Parses the first certificate in pem and copies its serial into buf (size bytes) with the
 * length in *ret_len. MU_EINVAL for bad PEM, MU_ENOSPC when size is too small. */
int mu_pki_cert_serial_from_pem(const char *pem, uint8_t *buf, size_t size, size_t *ret_len, mu_err *err);

#define MU_PKI_SANS_SIZE 1024

/* A certificate as Muster reads it. Strings are NUL-terminated, "" when absent. */
typedef struct mu_pki_cert_info {
  char cn[256];                  /* subject CN */
  char issuer_cn[256];           /* issuer CN */
  char kind[16];                 /* from muster://KIND/NAME: "server", "agent", "admin" */
  char name[129];                /* NAME of that URI */
  char role[16];                 /* from muster://role/ROLE (admin kind only) */
  char sans[MU_PKI_SANS_SIZE];   /* DNS and IP SANs, comma-separated ("localhost,127.0.0.1") */
  bool sans_truncated;           /* more than fitted in sans */
  bool server_auth, client_auth; /* extendedKeyUsage (false when there is no such extension) */
  bool is_ca;                    /* basicConstraints CA:TRUE */
  char serial_hex[MU_PKI_SERIAL_HEX_SIZE];
  int64_t not_before, not_after; /* unix seconds */
} mu_pki_cert_info;

/* Parses the first certificate in pem into *ret. A certificate without muster:// URIs parses
 * with kind "" (not a muster identity; callers deny it). MU_EINVAL for bad PEM and for
 * muster:// URIs that cannot be trusted: an unknown kind or role, a bad name, two identities,
 * or a role on a kind other than admin. */
int mu_pki_cert_info_from_pem(const char *pem, mu_pki_cert_info *ret, mu_err *err);
/* The same for the certificate file at path (at most 1 MiB). MU_ENOENT when it is missing;
 * the error names the file. */
int mu_pki_cert_info_from_file(const char *path, mu_pki_cert_info *ret, mu_err *err);

#endif

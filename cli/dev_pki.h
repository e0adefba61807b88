/* The throwaway PKI of `muster dev`: a CA in STATE/pki and the certificates the local cluster
 * needs (musterd's server certificate, an admin certificate for the CLI, one per agent), made
 * once and reused by later starts. */
#ifndef MU_CLI_DEV_PKI_H
#define MU_CLI_DEV_PKI_H

#include <limits.h>

#include "lib/base/err.h"

typedef struct mu_dev_pki {
  char dir[PATH_MAX];         /* STATE/pki */
  char ca[PATH_MAX + 16];     /* STATE/pki/ca.crt */
  char server[PATH_MAX + 16]; /* STATE/pki/musterd (+ .crt/.key) */
  char admin[PATH_MAX + 16];  /* STATE/pki/admin (+ .crt/.key) */
} mu_dev_pki;

/* Makes (or reuses) the CA and the server and admin certificates under state_dir/pki; the
 * server certificate also names addr's host. Writes state_dir/env with the MUSTER_ADDR,
 * MUSTER_CA, MUSTER_CERT and MUSTER_KEY a user exports to talk to this cluster. */
int mu_dev_pki_prepare(const char *state_dir, const char *addr, mu_dev_pki *ret, mu_err *err);
/* PREFIX of agent id's certificate (made when missing) into out. */
int mu_dev_pki_agent(const mu_dev_pki *p, const char *id, char *out, size_t size, mu_err *err);

#endif

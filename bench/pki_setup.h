/* The benchmarks' throwaway PKI, so one run can compare mTLS with plaintext: a CA made with
 * lib/pki in a work dir, musterd's server certificate and an admin certificate as files
 * (musterd, muster-agent and the CLI read files), and the CA parsed once so that thousands of
 * simulated agents get theirs in memory (mu_fleet_use_tls). Also the --tls both|on|off flag
 * the bench programs share. */
#ifndef MU_BENCH_PKI_SETUP_H
#define MU_BENCH_PKI_SETUP_H

#include <limits.h>
#include <stddef.h>

#include "lib/base/err.h"
#include "lib/pki/pki.h"
#include "lib/rpc/rpc.h"

/* Which runs --tls asks for: a bit each, plaintext first. */
enum { MU_BENCH_PLAIN = 1, MU_BENCH_MTLS = 2 };

/* "off" → MU_BENCH_PLAIN, "on" → MU_BENCH_MTLS, "both" → both bits. MU_EINVAL otherwise. */
int mu_bench_tls_parse(const char *text, int *ret_modes, mu_err *err);

typedef struct mu_bench_pki {
  char dir[PATH_MAX];
  char ca_file[PATH_MAX + 16];                                /* DIR/ca.crt */
  char server_cert[PATH_MAX + 16], server_key[PATH_MAX + 16]; /* localhost, 127.0.0.1 */
  char admin_cert[PATH_MAX + 16], admin_key[PATH_MAX + 16];   /* role admin */
  char *ca_cert_pem;                                          /* ca.crt's text */
  mu_pki_ca *ca;                                              /* for mu_fleet_use_tls */
  double setup_ms;                                            /* the time mu_bench_pki_make took */
} mu_bench_pki;

/* Makes a CA in dir (created 0700; must not hold one yet) with a server certificate
 * "musterd" and an admin certificate "bench" (role admin) beside it, and parses the CA.
 * Caller frees with mu_bench_pki_free (also after a failure); dir stays for the caller to
 * remove. lib/pki's errors. */
int mu_bench_pki_make(mu_bench_pki *p, const char *dir, mu_err *err);
void mu_bench_pki_free(mu_bench_pki *p);

/* Issues a certificate of kind ("agent", ...) for name into DIR/NAME.crt and DIR/NAME.key
 * (replacing them), for a real muster-agent process. ret_cert and ret_key hold PATH_MAX + 16
 * bytes. */
int mu_bench_pki_issue_files(const mu_bench_pki *p, const char *kind, const char *name, char *ret_cert, char *ret_key,
                             mu_err *err);

/* The bench's own admin channel: mTLS with the admin certificate. Borrows p's strings. */
mu_rpc_creds mu_bench_pki_admin_creds(const mu_bench_pki *p);

/* musterd's or muster-agent's TLS flags into argv (6 entries borrowed from p, cert and key):
 * "--tls-ca CA --tls-cert CERT --tls-key KEY"; with p NULL, "--insecure" (1 entry). Returns
 * how many were written; argv needs room for 6. */
size_t mu_bench_pki_daemon_args(const mu_bench_pki *p, const char *cert, const char *key, char **argv);

#endif

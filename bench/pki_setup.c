/* The benchmarks' throwaway PKI (pki_setup.h): a CA, musterd's and an admin's certificates as
 * files, the CA parsed for in-memory agent certificates, and the flags that hand them on. */
#include "bench/pki_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

int mu_bench_tls_parse(const char *text, int *ret_modes, mu_err *err) {
  if (strcmp(text, "off") == 0) *ret_modes = MU_BENCH_PLAIN;
  else if (strcmp(text, "on") == 0) *ret_modes = MU_BENCH_MTLS;
  else if (strcmp(text, "both") == 0) *ret_modes = MU_BENCH_PLAIN | MU_BENCH_MTLS;
  else return mu_err_set(err, MU_EINVAL, "--tls: expected both, on or off, got '%s'", text);
  return 0;
}

static int issue(const mu_bench_pki *p, const char *kind, const char *name, const char *role, char *ret_cert,
                 char *ret_key, mu_err *err) {
  char prefix[PATH_MAX + 8];
  snprintf(prefix, sizeof prefix, "%s/%s", p->dir, name);
  mu_pki_issue_opts o = {.ca_dir = p->dir, .kind = kind, .name = name, .role = role, .out = prefix, .force = 1};
  int rc = mu_pki_issue(&o, err);
  if (rc != 0) return rc;
  snprintf(ret_cert, PATH_MAX + 16, "%s.crt", prefix);
  snprintf(ret_key, PATH_MAX + 16, "%s.key", prefix);
  return 0;
}

int mu_bench_pki_make(mu_bench_pki *p, const char *dir, mu_err *err) {
  memset(p, 0, sizeof *p);
  uint64_t t0 = uv_hrtime();
  snprintf(p->dir, sizeof p->dir, "%s", dir);
  snprintf(p->ca_file, sizeof p->ca_file, "%s/ca.crt", dir);
  char *ca_key = NULL;
  int rc = mu_pki_init(dir, 0, err);
  if (rc == 0) rc = issue(p, "server", "musterd", NULL, p->server_cert, p->server_key, err);
  if (rc == 0) rc = issue(p, "admin", "bench", "admin", p->admin_cert, p->admin_key, err);
  if (rc == 0) rc = mu_pki_ca_load(dir, &p->ca_cert_pem, &ca_key, err);
  if (rc == 0) rc = mu_pki_ca_parse(p->ca_cert_pem, ca_key, &p->ca, err);
  if (ca_key != NULL) memset(ca_key, 0, strlen(ca_key));
  free(ca_key);
  if (rc != 0) return mu_err_prefix(err, "bench PKI in %s", dir);
  p->setup_ms = (double)(uv_hrtime() - t0) / 1e6;
  return 0;
}

void mu_bench_pki_free(mu_bench_pki *p) {
  mu_pki_ca_free(p->ca);
  free(p->ca_cert_pem);
  p->ca = NULL;
  p->ca_cert_pem = NULL;
}

int mu_bench_pki_issue_files(const mu_bench_pki *p, const char *kind, const char *name, char *ret_cert, char *ret_key,
                             mu_err *err) {
  return issue(p, kind, name, NULL, ret_cert, ret_key, err);
}

mu_rpc_creds mu_bench_pki_admin_creds(const mu_bench_pki *p) {
  return (mu_rpc_creds){.tls = 1, .ca_file = p->ca_file, .cert_file = p->admin_cert, .key_file = p->admin_key};
}

size_t mu_bench_pki_daemon_args(const mu_bench_pki *p, const char *cert, const char *key, char **argv) {
  if (p == NULL) {
    argv[0] = "--insecure";
    return 1;
  }
  argv[0] = "--tls-ca";
  argv[1] = (char *)p->ca_file;
  argv[2] = "--tls-cert";
  argv[3] = (char *)cert;
  argv[4] = "--tls-key";
  argv[5] = (char *)key;
  return 6;
}

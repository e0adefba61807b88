/* `muster dev`'s throwaway PKI (dev_pki.h), on lib/pki. */
#include "cli/dev_pki.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/pki/pki.h"

/* Issues PREFIX.crt/.key unless both exist. */
static int issue_once(const mu_dev_pki *p, const char *kind, const char *name, const char *role, const char *sans,
                      const char *prefix, mu_err *err) {
  char crt[PATH_MAX + 32], key[PATH_MAX + 32];
  snprintf(crt, sizeof crt, "%s.crt", prefix);
  snprintf(key, sizeof key, "%s.key", prefix);
  if (access(crt, R_OK) == 0 && access(key, R_OK) == 0) return 0;
  mu_pki_issue_opts o = {
      .ca_dir = p->dir, .kind = kind, .name = name, .role = role, .sans = sans, .out = prefix, .force = 1};
  return mu_pki_issue(&o, err);
}

int mu_dev_pki_prepare(const char *state_dir, const char *addr, mu_dev_pki *ret, mu_err *err) {
  mu_dev_pki p;
  memset(&p, 0, sizeof p);
  snprintf(p.dir, sizeof p.dir, "%s/pki", state_dir);
  snprintf(p.ca, sizeof p.ca, "%s/ca.crt", p.dir);
  snprintf(p.server, sizeof p.server, "%s/musterd", p.dir);
  snprintf(p.admin, sizeof p.admin, "%s/admin", p.dir);
  int rc = 0;
  if (access(p.ca, R_OK) != 0) {
    rc = mu_pki_init(p.dir, 0, err);
    if (rc != 0) return rc;
  }
  char host[256] = "localhost";
  const char *colon = strrchr(addr, ':');
  if (colon != NULL && (size_t)(colon - addr) < sizeof host && colon > addr)
    snprintf(host, (size_t)(colon - addr) + 1, "%s", addr);
  char sans[400];
  snprintf(sans, sizeof sans, "localhost,127.0.0.1%s%s",
           strcmp(host, "localhost") && strcmp(host, "127.0.0.1") ? "," : "",
           strcmp(host, "localhost") && strcmp(host, "127.0.0.1") ? host : "");
  rc = issue_once(&p, "server", "musterd", NULL, sans, p.server, err);
  if (rc == 0) rc = issue_once(&p, "admin", "dev-admin", "admin", NULL, p.admin, err);
  if (rc != 0) return rc;
  char env[PATH_MAX + 16];
  snprintf(env, sizeof env, "%s/env", state_dir);
  FILE *f = fopen(env, "w");
  if (f == NULL) return mu_err_set(err, MU_EIO, "cannot write %s", env);
  fprintf(f, "export MUSTER_ADDR=%s MUSTER_CA=%s MUSTER_CERT=%s.crt MUSTER_KEY=%s.key\n", addr, p.ca, p.admin, p.admin);
  fclose(f);
  *ret = p;
  return 0;
}

int mu_dev_pki_agent(const mu_dev_pki *p, const char *id, char *out, size_t size, mu_err *err) {
  snprintf(out, size, "%s/agent-%s", p->dir, id);
  return issue_once(p, "agent", id, NULL, "", out, err);
}

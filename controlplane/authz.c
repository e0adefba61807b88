/* The gate in front of every musterd method (authz.h): identifies the caller from its client
 * certificate or bearer token, attaches it to the call, and lets the call through only when
 * the permission table grants its method to that caller. */
#include "controlplane/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "controlplane/audit.h"
#include "controlplane/daemon.h"

const mu_caller *mu_authz_caller(const mu_rpc_call *call) { return mu_rpc_call_auth(call); }
#include "controlplane/tokens.h"
#include "lib/base/log.h"
#include "lib/selector/selector.h"

static int gate(mu_rpc_call *call, const char *method, const mu_rpc_metadata *md, const mu_rpc_peer *peer, char *msg,
                size_t size, void *ud) {
  mu_daemon *d = ud;
  mu_perm perm = mu_authz_method_perm(method);
  mu_caller *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(msg, size, "out of memory");
    return MU_RPC_RESOURCE_EXHAUSTED;
  }
  snprintf(c->address, sizeof c->address, "%s", peer->address);
  snprintf(c->name, sizeof c->name, "anonymous");
  c->role = d->cfg.insecure ? MU_ACCESS_ADMIN : MU_ACCESS_NONE;
  int code = MU_RPC_OK;
  if (peer->verified && peer->pem != NULL) {
    code = mu_authz_check_revoked(d, peer, msg, size);
    if (code != MU_RPC_OK) goto out;
    code = mu_authz_caller_from_cert(peer, c, msg, size);
    if (code != MU_RPC_OK) goto out;
  }
  const char *token = perm == MU_PERM_OPEN ? NULL : mu_authz_bearer_token(md);
  if (token != NULL) {
    mu_caller_kind cert_kind = c->kind;
    if (cert_kind == MU_CALLER_AGENT || cert_kind == MU_CALLER_SERVER) {
      char who[200];
      snprintf(msg, size, "%s cannot call the admin API, with or without a token",
               mu_caller_describe(c, who, sizeof who));
      code = MU_RPC_PERMISSION_DENIED;
      goto out;
    }
    mu_err err = {0};
    mu_caller t = {0};
    if (mu_tokens_authenticate(d, token, &t, &err) != 0) {
      snprintf(msg, size, "bearer token refused: %s", err.msg);
      code = MU_RPC_UNAUTHENTICATED;
      goto out;
    }
    snprintf(t.address, sizeof t.address, "%s", peer->address);
    *c = t;
  }
  if (perm == 0) { /* identified first, so the refusal says who tried */
    snprintf(msg, size, "%s is not in the permission table: denied", method);
    code = MU_RPC_PERMISSION_DENIED;
    goto out;
  }
  code = mu_authz_judge(c, perm, method, d->cfg.insecure, msg, size);
out:
  if (code != MU_RPC_OK) {
    char who[200];
    mu_warn("authz", "denied %s from %s (%s): %s", method, peer->address, mu_caller_describe(c, who, sizeof who), msg);
    mu_audit_denial(d, c, peer->address, method, msg);
    free(c);
    return code;
  }
  mu_rpc_call_set_auth(call, c, free);
  return MU_RPC_OK;
}

void mu_authz_install(mu_daemon *d) { mu_rpc_server_set_gate(d->server, gate, d); }

int mu_authz_check_targets(mu_daemon *d, const mu_caller *caller, char *const *ids, size_t n_ids, mu_err *err) {
  char who[200];
  if (caller == NULL || caller->role >= MU_ACCESS_ADMIN) return 0;
  if (caller->role < MU_ACCESS_OPERATOR)
    return mu_err_set(err, MU_EPERM, "%s may not run anything", mu_caller_describe(caller, who, sizeof who));
  if (caller->scope[0] == '\0') return 0;
  mu_selector *sel = NULL;
  int rc = mu_selector_parse(caller->scope, &sel, err);
  if (rc != 0) return rc;
  char outside[600] = "";
  size_t n_out = 0, used = 0;
  for (size_t i = 0; i < n_ids; i++) {
    if (ids[i] == NULL) continue;
    const mu_agent *a = mu_registry_find(&d->registry, ids[i]);
    if (a != NULL && mu_selector_matches(sel, mu_agent_label, a)) continue;
    if (n_out < 10 && used < sizeof outside - 140)
      used += (size_t)snprintf(outside + used, sizeof outside - used, "%s%s", n_out ? ", " : "", ids[i]);
    n_out++;
  }
  mu_selector_free(sel);
  if (n_out == 0) return 0;
  return mu_err_set(err, MU_EPERM, "%s is scoped to '%s'; %zu target host%s outside it: %s%s",
                    mu_caller_describe(caller, who, sizeof who), caller->scope, n_out, n_out == 1 ? " is" : "s are",
                    outside, n_out > 10 ? ", ..." : "");
}

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
#include "controlplane/tokens.h"
#include "lib/base/log.h"
#include "lib/selector/selector.h"

static const char *const access_names[] = {"none", "viewer", "operator", "admin"};

const char *mu_access_name(mu_access role) {
  return role >= MU_ACCESS_NONE && role <= MU_ACCESS_ADMIN ? access_names[role] : "none";
}

mu_access mu_access_parse(const char *name) {
  for (int i = MU_ACCESS_VIEWER; i <= MU_ACCESS_ADMIN; i++)
    if (strcmp(name, access_names[i]) == 0) return (mu_access)i;
  return MU_ACCESS_NONE;
}

const char *mu_caller_describe(const mu_caller *c, char *buf, size_t size) {
  switch (c->kind) {
    case MU_CALLER_ADMIN_CERT:
      snprintf(buf, size, "admin cert %s (%s)", c->name, mu_access_name(c->role));
      break;
    case MU_CALLER_TOKEN:
      snprintf(buf, size, "token %s (%s)", c->name, mu_access_name(c->role));
      break;
    case MU_CALLER_AGENT: snprintf(buf, size, "agent %s", c->name); break;
    case MU_CALLER_SERVER: snprintf(buf, size, "server %s", c->name); break;
    default:
      snprintf(buf, size, "%s", c->role == MU_ACCESS_ADMIN ? "anonymous (insecure)" : "anonymous");
  }
  return buf;
}

const mu_caller *mu_authz_caller(const mu_rpc_call *call) { return mu_rpc_call_auth(call); }

/* "muster://KIND/REST" -> REST when the URI has that kind, else NULL. */
static const char *uri_part(const char *uri, const char *kind) {
  static const char scheme[] = "muster://";
  size_t klen = strlen(kind);
  if (strncmp(uri, scheme, sizeof scheme - 1) != 0) return NULL;
  uri += sizeof scheme - 1;
  if (strncmp(uri, kind, klen) != 0 || uri[klen] != '/' || uri[klen + 1] == '\0') return NULL;
  return uri + klen + 1;
}

/* Fills c from a verified client certificate; a status code and msg when it names no
 * Muster identity. */
static int caller_from_cert(const mu_rpc_peer *peer, mu_caller *c, char *msg, size_t size) {
  const char *name = NULL, *role = NULL;
  for (size_t i = 0; i < peer->n_uris; i++) {
    const char *v;
    if ((v = uri_part(peer->uris[i], "agent")) != NULL) {
      c->kind = MU_CALLER_AGENT;
      name = v;
    } else if ((v = uri_part(peer->uris[i], "admin")) != NULL) {
      c->kind = MU_CALLER_ADMIN_CERT;
      name = v;
    } else if ((v = uri_part(peer->uris[i], "server")) != NULL) {
      c->kind = MU_CALLER_SERVER;
      name = v;
    } else if ((v = uri_part(peer->uris[i], "role")) != NULL) {
      role = v;
    }
  }
  if (name == NULL) {
    snprintf(msg, size,
             "certificate CN=%s carries no muster://agent|admin|server/NAME URI (issue it with "
             "`muster pki issue`)",
             peer->common_name[0] ? peer->common_name : "?");
    return MU_RPC_PERMISSION_DENIED;
  }
  snprintf(c->name, sizeof c->name, "%s", name);
  if (c->kind == MU_CALLER_ADMIN_CERT) {
    c->role = role != NULL ? mu_access_parse(role) : MU_ACCESS_VIEWER;
    if (c->role == MU_ACCESS_NONE) {
      snprintf(msg, size, "admin certificate %s names an unknown role '%.40s'", c->name, role);
      return MU_RPC_PERMISSION_DENIED;
    }
  }
  return MU_RPC_OK;
}

static const char *bearer_token(const mu_rpc_metadata *md) {
  const char *v = mu_rpc_metadata_get(md, "authorization");
  if (v == NULL) return NULL;
  if (strncasecmp(v, "Bearer ", 7) != 0) return "";
  v += 7;
  while (*v == ' ') v++;
  return v;
}

static mu_access perm_needs(mu_perm perm) {
  switch (perm) {
    case MU_PERM_VIEW: return MU_ACCESS_VIEWER;
    case MU_PERM_OPERATE: return MU_ACCESS_OPERATOR;
    case MU_PERM_ADMIN: return MU_ACCESS_ADMIN;
    default: return MU_ACCESS_NONE;
  }
}

/* The verdict for caller c on a method needing perm. */
static int judge(const mu_daemon *d, const mu_caller *c, mu_perm perm, const char *method,
                 char *msg, size_t size) {
  char who[200];
  mu_caller_describe(c, who, sizeof who);
  int anonymous = c->kind == MU_CALLER_ANONYMOUS;
  switch (perm) {
    case MU_PERM_OPEN: return MU_RPC_OK;
    case MU_PERM_AUTHENTICATED:
      if (anonymous && !d->cfg.insecure) {
        snprintf(msg, size, "%s needs a client certificate or a token", method);
        return MU_RPC_UNAUTHENTICATED;
      }
      return MU_RPC_OK;
    case MU_PERM_AGENT:
      if (c->kind == MU_CALLER_AGENT || (anonymous && d->cfg.insecure)) return MU_RPC_OK;
      snprintf(msg, size, "%s cannot open an agent stream: it needs an agent certificate", who);
      return anonymous ? MU_RPC_UNAUTHENTICATED : MU_RPC_PERMISSION_DENIED;
    default: break;
  }
  if (c->kind == MU_CALLER_AGENT || c->kind == MU_CALLER_SERVER) {
    snprintf(msg, size, "%s cannot call the admin API (%s)", who, method);
    return MU_RPC_PERMISSION_DENIED;
  }
  if (anonymous && c->role == MU_ACCESS_NONE) {
    snprintf(msg, size, "%s needs a client certificate or a token", method);
    return MU_RPC_UNAUTHENTICATED;
  }
  mu_access need = perm_needs(perm);
  if (c->role < need) {
    snprintf(msg, size, "%s may not call %s: it needs the %s role", who, method,
             mu_access_name(need));
    return MU_RPC_PERMISSION_DENIED;
  }
  return MU_RPC_OK;
}

static int gate(mu_rpc_call *call, const char *method, const mu_rpc_metadata *md,
                const mu_rpc_peer *peer, char *msg, size_t size, void *ud) {
  mu_daemon *d = ud;
  mu_perm perm = mu_authz_method_perm(method);
  if (perm == 0) {
    snprintf(msg, size, "%s is not in the permission table: denied", method);
    mu_warn("authz", "denied %s from %s: not in the permission table", method, peer->address);
    mu_audit_denial(d, NULL, peer->address, method, msg);
    return MU_RPC_PERMISSION_DENIED;
  }
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
    if ((code = mu_authz_check_revoked(d, peer, msg, size)) != MU_RPC_OK) goto out;
    if ((code = caller_from_cert(peer, c, msg, size)) != MU_RPC_OK) goto out;
  }
  const char *token = perm == MU_PERM_OPEN ? NULL : bearer_token(md);
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
  code = judge(d, c, perm, method, msg, size);
out:
  if (code != MU_RPC_OK) {
    char who[200];
    mu_warn("authz", "denied %s from %s (%s): %s", method, peer->address,
            mu_caller_describe(c, who, sizeof who), msg);
    mu_audit_denial(d, c, peer->address, method, msg);
    free(c);
    return code;
  }
  mu_rpc_call_set_auth(call, c, free);
  return MU_RPC_OK;
}

void mu_authz_install(mu_daemon *d) { mu_rpc_server_set_gate(d->server, gate, d); }

int mu_authz_check_type(const mu_caller *caller, const char *type, mu_err *err) {
  if (caller == NULL || caller->role >= MU_ACCESS_ADMIN || caller->types[0] == '\0') return 0;
  size_t n = strlen(type);
  for (const char *p = caller->types; *p != '\0';) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, type, n) == 0) return 0;
    p += len + (end != NULL);
  }
  char who[200];
  return mu_err_set(err, MU_EPERM, "%s may not run task type '%s' (allowed: %s)",
                    mu_caller_describe(caller, who, sizeof who), type, caller->types);
}

int mu_authz_check_targets(mu_daemon *d, const mu_caller *caller, char *const *ids, size_t n_ids,
                           mu_err *err) {
  char who[200];
  if (caller == NULL || caller->role >= MU_ACCESS_ADMIN) return 0;
  if (caller->role < MU_ACCESS_OPERATOR)
    return mu_err_set(err, MU_EPERM, "%s may not run anything",
                      mu_caller_describe(caller, who, sizeof who));
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
      used += (size_t)snprintf(outside + used, sizeof outside - used, "%s%s", n_out ? ", " : "",
                               ids[i]);
    n_out++;
  }
  mu_selector_free(sel);
  if (n_out == 0) return 0;
  return mu_err_set(err, MU_EPERM, "%s is scoped to '%s'; %zu target host%s outside it: %s%s",
                    mu_caller_describe(caller, who, sizeof who), caller->scope, n_out,
                    n_out == 1 ? " is" : "s are", outside, n_out > 10 ? ", ..." : "");
}

/* The pure part of authorization (authz.h): role names, callers from certificate URIs and
 * bearer metadata, and the verdict for a caller on a method's permission. No daemon state, so
 * it is unit-tested and benchmarked on its own. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "controlplane/authz.h"

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
    case MU_CALLER_ADMIN_CERT: snprintf(buf, size, "admin cert %s (%s)", c->name, mu_access_name(c->role)); break;
    case MU_CALLER_TOKEN: snprintf(buf, size, "token %s (%s)", c->name, mu_access_name(c->role)); break;
    case MU_CALLER_AGENT: snprintf(buf, size, "agent %s", c->name); break;
    case MU_CALLER_SERVER: snprintf(buf, size, "server %s", c->name); break;
    default: snprintf(buf, size, "%s", c->role == MU_ACCESS_ADMIN ? "anonymous (insecure)" : "anonymous");
  }
  return buf;
}

/* "muster://KIND/REST" -> REST when the URI has that kind, else NULL. */
static const char *uri_part(const char *uri, const char *kind) {
  static const char scheme[] = "muster://";
  size_t klen = strlen(kind);
  if (strncmp(uri, scheme, sizeof scheme - 1) != 0) return NULL;
  uri += sizeof scheme - 1;
  if (strncmp(uri, kind, klen) != 0 || uri[klen] != '/' || uri[klen + 1] == '\0') return NULL;
  return uri + klen + 1;
}

int mu_authz_caller_from_cert(const mu_rpc_peer *peer, mu_caller *c, char *msg, size_t size) {
  const char *name = NULL, *role = NULL;
  for (size_t i = 0; i < peer->n_uris; i++) {
    const char *v;
    v = uri_part(peer->uris[i], "agent");
    if (v != NULL) {
      c->kind = MU_CALLER_AGENT;
      name = v;
      continue;
    }
    v = uri_part(peer->uris[i], "admin");
    if (v != NULL) {
      c->kind = MU_CALLER_ADMIN_CERT;
      name = v;
      continue;
    }
    v = uri_part(peer->uris[i], "server");
    if (v != NULL) {
      c->kind = MU_CALLER_SERVER;
      name = v;
      continue;
    }
    v = uri_part(peer->uris[i], "role");
    if (v != NULL) role = v;
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

const char *mu_authz_bearer_token(const mu_rpc_metadata *md) {
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

int mu_authz_judge(const mu_caller *c, mu_perm perm, const char *method, int insecure, char *msg, size_t size) {
  char who[200];
  mu_caller_describe(c, who, sizeof who);
  int anonymous = c->kind == MU_CALLER_ANONYMOUS;
  switch (perm) {
    case MU_PERM_OPEN: return MU_RPC_OK;
    case MU_PERM_AUTHENTICATED:
      if (anonymous && !insecure) {
        snprintf(msg, size, "%s needs a client certificate or a token", method);
        return MU_RPC_UNAUTHENTICATED;
      }
      return MU_RPC_OK;
    case MU_PERM_AGENT:
      if (c->kind == MU_CALLER_AGENT || (anonymous && insecure)) return MU_RPC_OK;
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
    snprintf(msg, size, "%s may not call %s: it needs the %s role", who, method, mu_access_name(need));
    return MU_RPC_PERMISSION_DENIED;
  }
  return MU_RPC_OK;
}

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

/* Who is calling, and may they: the gate every call to musterd passes before its handler.
 *
 * The caller is proven by its TLS client certificate (agent, admin or server kind, read from
 * the certificate's `muster://KIND/NAME` URI and, for admins, `muster://role/ROLE`) or by a
 * bearer token (`authorization: Bearer mst_...`, see tokens.h). Every method maps to one
 * permission in one table (authz_table.c); a method missing from the table is denied, so an
 * RPC added later is closed until someone decides who may call it. Deny by default.
 *
 * Without TLS (`--insecure`) a caller with no token is an anonymous admin, as before; the
 * daemon logs that loudly and GetCluster reports it. */
#ifndef MU_CP_AUTHZ_H
#define MU_CP_AUTHZ_H

#include <stddef.h>

#include "lib/base/err.h"
#include "lib/rpc/rpc.h"

struct mu_daemon;

/* Admin roles, each including the one before. */
typedef enum {
  MU_ACCESS_NONE = 0,
  MU_ACCESS_VIEWER,   /* read calls and logs */
  MU_ACCESS_OPERATOR, /* + run/submit/cancel/drain, within its scope and task types */
  MU_ACCESS_ADMIN,    /* + bundles, tokens, trust keys, secrets, audit */
} mu_access;

typedef enum {
  MU_CALLER_ANONYMOUS = 0, /* --insecure, no token */
  MU_CALLER_ADMIN_CERT,    /* an admin certificate */
  MU_CALLER_TOKEN,         /* a bearer token */
  MU_CALLER_AGENT,         /* an agent certificate: AgentGateway/Connect only */
  MU_CALLER_SERVER,        /* a server certificate (another musterd member) */
} mu_caller_kind;

/* The proven caller of one call, attached to it by the gate (the call owns it). */
typedef struct mu_caller {
  mu_caller_kind kind;
  char name[129]; /* certificate name (CN), token name, agent id; "anonymous" */
  mu_access role;
  char scope[512];   /* operator: a selector bounding the agents it may target; "" = all */
  char types[256];   /* operator: comma list of task types it may run; "" = all */
  char token_id[40]; /* MU_CALLER_TOKEN: the token's public id */
  char address[80];  /* the peer address */
} mu_caller;

/* What a method needs (authz_table.c). */
typedef enum {
  MU_PERM_OPEN = 1,      /* anyone, even without a certificate (health) */
  MU_PERM_AUTHENTICATED, /* any proven identity: agent, admin, token (reflection) */
  MU_PERM_AGENT,         /* an agent certificate (AgentGateway) */
  MU_PERM_VIEW,          /* viewer or more */
  MU_PERM_OPERATE,       /* operator or more; scope and types are checked by the handler */
  MU_PERM_ADMIN,         /* admin */
} mu_perm;

/* The permission a method needs; 0 when the method is not in the table (denied). */
mu_perm mu_authz_method_perm(const char *method);
/* "viewer", "operator", "admin", "none". */
const char *mu_access_name(mu_access role);
/* Parses a role name; MU_ACCESS_NONE when unknown. */
mu_access mu_access_parse(const char *name);
/* "admin cert alice (operator)", "token ci-bot (viewer)", "agent web-1", "anonymous". */
const char *mu_caller_describe(const mu_caller *c, char *buf, size_t size);

/* authz_core.c: the decision, without daemon state. */
/* Fills c (kind, name, role) from a verified client certificate's muster:// URIs;
 * PERMISSION_DENIED with msg when it names no Muster identity or an unknown role. */
int mu_authz_caller_from_cert(const mu_rpc_peer *peer, mu_caller *c, char *msg, size_t size);
/* The token of an `authorization: Bearer T` entry; "" for another scheme, NULL when none. */
const char *mu_authz_bearer_token(const mu_rpc_metadata *md);
/* MU_RPC_OK when caller c may call method (needing perm); else the status code and msg.
 * insecure: the daemon runs --insecure (anonymous callers are admins there). */
int mu_authz_judge(const mu_caller *c, mu_perm perm, const char *method, int insecure, char *msg, size_t size);

/* Installs the gate on d->server (before it starts). */
void mu_authz_install(struct mu_daemon *d);
/* Re-reads the CRL file (--tls-crl) now; the gate also does it when the file changes. */
int mu_authz_reload_crl(struct mu_daemon *d, mu_err *err);
void mu_authz_close(struct mu_daemon *d);

/* authz_crl.c: UNAUTHENTICATED with msg when peer's certificate is on the CRL (--tls-crl),
 * MU_RPC_OK otherwise or without a CRL. */
int mu_authz_check_revoked(struct mu_daemon *d, const mu_rpc_peer *peer, char *msg, size_t size);

/* The caller the gate attached to call; NULL only for calls that bypassed the gate. */
const mu_caller *mu_authz_caller(const mu_rpc_call *call);

/* For operators: 0 when caller may run type on every agent in ids (each borrowed, NULL
 * entries = "any" targets, checked at placement); otherwise MU_EPERM with a message naming
 * the hosts outside its scope or the type it may not run. Viewers are refused; admins and
 * unscoped operators always pass. */
int mu_authz_check_targets(struct mu_daemon *d, const mu_caller *caller, char *const *ids, size_t n_ids, mu_err *err);
int mu_authz_check_type(const mu_caller *caller, const char *type, mu_err *err);

#endif

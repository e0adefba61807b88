/* Bearer tokens for admin callers (`muster token create|ls|revoke`): `mst_<id>_<secret>`,
 * only a hash of the secret is stored (etcd `tokens/<id>`), each with a name, a role, an
 * optional scope selector and task types, a TTL, and a revoked flag. The gate (authz.c)
 * authenticates with what this member holds in memory: no etcd round trip per call. */
#ifndef MU_CP_TOKENS_H
#define MU_CP_TOKENS_H

#include "controlplane/authz.h"

struct mu_daemon;

/* Checks bearer (the text after "Bearer "); 0 and *ret filled (kind MU_CALLER_TOKEN, name,
 * role, scope, types, token_id) when it is valid now; otherwise MU_EPERM with a message that
 * says why ("token ci-bot was revoked", "token ci-bot expired 3m ago", "unknown token") and
 * never echoes the secret. */
int mu_tokens_authenticate(struct mu_daemon *d, const char *bearer, mu_caller *ret, mu_err *err);

#endif

/* Bearer tokens for admin callers (`muster token create|ls|revoke`): `mst_<id>_<secret>`,
 * only a hash of the secret is stored (etcd `tokens/<id>`), each with a name, a role, an
 * optional scope selector and task types, a TTL, and a revoked flag. The gate (authz.c)
 * authenticates with what this member holds in memory: no etcd round trip per call. The
 * leader writes records through its fenced store; followers apply them from their watch.
 * The format, hashing and record codec are lib/tokens/token_codec.h's. */
#ifndef MU_CP_TOKENS_H
#define MU_CP_TOKENS_H

#include <stddef.h>

#include "controlplane/authz.h"

struct mu_daemon;

/* Checks bearer (the text after "Bearer "); 0 and *ret filled (kind MU_CALLER_TOKEN, name,
 * role, scope, types, token_id) when it is valid now; otherwise MU_EPERM with a message that
 * says why ("token ci-bot was revoked", "token ci-bot expired 3m ago", "unknown token") and
 * never echoes the secret. */
int mu_tokens_authenticate(struct mu_daemon *d, const char *bearer, mu_caller *ret, mu_err *err);

/* Creates the (empty) token table in d->tokens and registers muster.v1.Tokens on d->server.
 * The table is freed by mu_tokens_free. */
int mu_tokens_register(struct mu_daemon *d, mu_err *err);
void mu_tokens_free(struct mu_daemon *d);

/* A record read from etcd: tokens/<id> put (value) or deleted (value NULL). Bad records are
 * logged with their key and skipped; so is a new one past max_tokens. */
void mu_tokens_apply(struct mu_daemon *d, const char *id, const char *value, size_t len);
/* A snapshot load starts / has ended: tokens not in the snapshot are dropped at its end
 * (until then every token held still authenticates). */
void mu_tokens_load_begin(struct mu_daemon *d);
void mu_tokens_load_end(struct mu_daemon *d);

#endif

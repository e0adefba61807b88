/* Admin bearer tokens on their own, without the daemon: the `mst_<id>_<secret>` format, the
 * stored record (etcd `tokens/<id>`, JSON) and the checks a presented token passes. The id is
 * public (12 of [a-z0-9]); the secret is 32 random bytes in unpadded base64url and only its
 * BLAKE2b-256 hash is stored: tokens carry 256 bits of entropy, so a fast hash is as safe as
 * a slow one and keeps authenticating every call cheap. tokens.c holds the records in memory
 * and serves the RPCs. */
#ifndef MU_TOKENS_TOKEN_CODEC_H
#define MU_TOKENS_TOKEN_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_TOKEN_PREFIX "mst_"
#define MU_TOKEN_ID_LEN 12
#define MU_TOKEN_SECRET_BYTES 32
#define MU_TOKEN_SECRET_LEN 43 /* base64url of 32 bytes, no padding */
#define MU_TOKEN_LEN (4 + MU_TOKEN_ID_LEN + 1 + MU_TOKEN_SECRET_LEN)
#define MU_TOKEN_HASH_BYTES 32
#define MU_TOKEN_NAME_MAX 64
#define MU_TOKEN_SCOPE_MAX 511 /* as mu_caller.scope holds */
#define MU_TOKEN_TYPES_MAX 255 /* as mu_caller.types holds */

/* One stored token. Strings are NUL-terminated; role is a name ("viewer", "operator",
 * "admin") that tokens.c turns into a mu_access. */
typedef struct mu_token_record {
  char id[MU_TOKEN_ID_LEN + 1];
  char name[MU_TOKEN_NAME_MAX + 1];
  char role[16];
  char scope[MU_TOKEN_SCOPE_MAX + 1];
  char types[MU_TOKEN_TYPES_MAX + 1];
  int64_t created_at_ms;
  char created_by[200];
  int64_t expires_at_ms; /* 0 = never */
  int64_t revoked_at_ms; /* 0 = live */
  char revoked_by[200];
  uint8_t hash[MU_TOKEN_HASH_BYTES]; /* BLAKE2b-256 of the secret's text */
} mu_token_record;

/* Makes a new token: a random id into rec->id, the secret's hash into rec->hash, and the
 * whole bearer token ("mst_<id>_<secret>", MU_TOKEN_LEN chars) into ret_token (size >
 * MU_TOKEN_LEN). The caller shows ret_token once and wipes it (sodium_memzero). MU_EIO when
 * libsodium cannot start. */
int mu_token_generate(mu_token_record *rec, char *ret_token, size_t size, mu_err *err);

/* Splits a presented token: its id into ret_id and a pointer into token at the secret.
 * MU_EPERM "malformed token ..." (the text is never echoed: it may be a mistyped secret). */
int mu_token_parse(const char *token, char ret_id[MU_TOKEN_ID_LEN + 1], const char **ret_secret, mu_err *err);

/* Whether secret is rec's and rec is usable at now_ms: 0, or MU_EPERM with "unknown token"
 * (the hash differs: the name is not given away), "token NAME was revoked 3m ago" or "token
 * NAME expired 2h ago". The hash compare is constant-time (sodium_memcmp). */
int mu_token_verify(const mu_token_record *rec, const char *secret, int64_t now_ms, mu_err *err);

/* 1 when rec is neither revoked nor expired at now_ms. */
int mu_token_live(const mu_token_record *rec, int64_t now_ms);
/* "active", "expired" or "revoked" at now_ms. */
const char *mu_token_state(const mu_token_record *rec, int64_t now_ms);

/* Field checks, each naming the field and the bad value: name is 1-64 of [A-Za-z0-9._-];
 * types is a comma list of task type names ([a-z0-9_-]{1,64} each, no empty entries). */
int mu_token_check_name(const char *name, mu_err *err);
int mu_token_check_types(const char *types, mu_err *err);
/* expires_at_ms for a token created at now_ms living ttl ("30m", "90d"; "" = never, 0).
 * MU_EINVAL for a bad or non-positive ttl. */
int mu_token_expiry(const char *ttl, int64_t now_ms, int64_t *ret_expires_at_ms, mu_err *err);

/* The record as stored in etcd (JSON, the hash in hex). Caller frees; NULL when out of
 * memory. */
char *mu_token_to_json(const mu_token_record *rec);
/* Parses a stored record; MU_EINVAL naming the field when it is not one (a wrong shape, a
 * missing hash, a bad name or id). */
int mu_token_from_json(const char *text, size_t len, mu_token_record *ret, mu_err *err);

/* "12s", "5m", "3h", "4d": how long ms is, roughly (for "expired 3m ago"). */
const char *mu_token_span(int64_t ms, char *buf, size_t size);

#endif

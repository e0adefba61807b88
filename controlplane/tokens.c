/* Bearer tokens in musterd (tokens.h): the table every member holds in memory (sorted by id,
 * so the gate finds a token with a binary search), the records it applies from etcd, and the
 * muster.v1.Tokens calls. The leader writes tokens/<id> through its fenced store and changes
 * its table once etcd has the record; a create holds a pending entry meanwhile, so its name
 * and its slot under max_tokens are taken but it does not authenticate yet. --no-etcd keeps
 * the table in memory only. */
#include "controlplane/tokens.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "controlplane/audit.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "lib/tokens/token_codec.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "lib/selector/selector.h"
#include "muster/v1/token.pb-c.h"

typedef struct token_entry {
  mu_token_record rec;
  mu_access role;
  int pending; /* CreateToken's write is in flight */
  int pruning; /* a CreateToken's write deletes it to stay under max_tokens */
  int seen;    /* in the snapshot being loaded */
} token_entry;

struct mu_tokens {
  token_entry **items; /* sorted by id */
  size_t n, cap;
  int loading;   /* a snapshot load is in progress */
  size_t n_seen; /* entries the load has delivered so far */
};

/* --- the table --- */

static size_t lower_bound(const struct mu_tokens *t, const char *id) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(t->items[mid]->rec.id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static token_entry *find(const struct mu_tokens *t, const char *id) {
  size_t i = lower_bound(t, id);
  return i < t->n && strcmp(t->items[i]->rec.id, id) == 0 ? t->items[i] : NULL;
}

/* Inserts e (its id not yet held); MU_ENOMEM leaves the table as it was. */
static int insert(struct mu_tokens *t, token_entry *e) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    token_entry **grown = realloc(t->items, cap * sizeof *grown);
    if (grown == NULL) return MU_ENOMEM;
    t->items = grown;
    t->cap = cap;
  }
  size_t i = lower_bound(t, e->rec.id);
  memmove(&t->items[i + 1], &t->items[i], (t->n - i) * sizeof *t->items);
  t->items[i] = e;
  t->n++;
  return 0;
}

static void entry_free(token_entry *e) {
  sodium_memzero(e, sizeof *e);
  free(e);
}

static void remove_id(struct mu_tokens *t, const char *id) {
  size_t i = lower_bound(t, id);
  if (i >= t->n || strcmp(t->items[i]->rec.id, id) != 0) return;
  if (t->loading && t->items[i]->seen) t->n_seen--;
  entry_free(t->items[i]);
  memmove(&t->items[i], &t->items[i + 1], (t->n - i - 1) * sizeof *t->items);
  t->n--;
}

/* The token a name stands for in RevokeToken: the live one, else the newest expired one,
 * else the newest revoked one (so "already revoked" can be said). */
static token_entry *find_by_name(const struct mu_tokens *t, const char *name, int64_t now) {
  token_entry *best = NULL;
  int best_rank = -1;
  for (size_t i = 0; i < t->n; i++) {
    token_entry *e = t->items[i];
    if (e->pending || strcmp(e->rec.name, name) != 0) continue;
    int rank = e->rec.revoked_at_ms != 0 ? 0 : mu_token_live(&e->rec, now) ? 2 : 1;
    if (rank > best_rank || (rank == best_rank && e->rec.created_at_ms > best->rec.created_at_ms)) {
      best = e;
      best_rank = rank;
    }
  }
  return best;
}

/* The revoked or expired token dead the longest: the one a full table gives up. */
static token_entry *oldest_dead(const struct mu_tokens *t, int64_t now) {
  token_entry *oldest = NULL;
  int64_t oldest_at = 0;
  for (size_t i = 0; i < t->n; i++) {
    token_entry *e = t->items[i];
    if (e->pending || e->pruning || mu_token_live(&e->rec, now)) continue;
    int64_t at = e->rec.revoked_at_ms != 0 ? e->rec.revoked_at_ms : e->rec.expires_at_ms;
    if (oldest == NULL || at < oldest_at) {
      oldest = e;
      oldest_at = at;
    }
  }
  return oldest;
}

/* What a token may do, checked the same way on CreateToken and on every record read from
 * etcd: a known role, and a scope (a valid selector) and task types only on an operator. */
static int check_grant(const char *role_name, const char *scope, const char *types, mu_access *ret_role, mu_err *err) {
  mu_access role = mu_access_parse(role_name);
  if (role == MU_ACCESS_NONE)
    return mu_err_set(err, MU_EINVAL, "role '%.40s': expected viewer, operator or admin", role_name);
  if (role != MU_ACCESS_OPERATOR && (scope[0] != '\0' || types[0] != '\0'))
    return mu_err_set(err, MU_EINVAL, "%s: only operator tokens take a scope or task types (a %s token %s)",
                      scope[0] != '\0' ? "scope" : "types", role_name,
                      role == MU_ACCESS_VIEWER ? "runs nothing" : "may run anything anywhere");
  if (strlen(scope) > MU_TOKEN_SCOPE_MAX)
    return mu_err_set(err, MU_EINVAL, "scope: longer than %d characters", MU_TOKEN_SCOPE_MAX);
  mu_selector *sel = NULL;
  if (mu_selector_parse(scope, &sel, err) != 0) return mu_err_prefix(err, "scope");
  mu_selector_free(sel);
  int rc = mu_token_check_types(types, err);
  if (rc != 0) return rc;
  *ret_role = role;
  return 0;
}

/* --- authentication (the gate, every call) --- */

int mu_tokens_authenticate(mu_daemon *d, const char *bearer, mu_caller *ret, mu_err *err) {
  char id[MU_TOKEN_ID_LEN + 1];
  const char *secret = NULL;
  int rc = mu_token_parse(bearer, id, &secret, err);
  if (rc != 0) return rc;
  const token_entry *e = d->tokens != NULL ? find(d->tokens, id) : NULL;
  if (e == NULL || e->pending) return mu_err_set(err, MU_EPERM, "unknown token");
  rc = mu_token_verify(&e->rec, secret, mu_now_ms(), err);
  if (rc != 0) return rc;
  memset(ret, 0, sizeof *ret);
  ret->kind = MU_CALLER_TOKEN;
  ret->role = e->role;
  snprintf(ret->name, sizeof ret->name, "%s", e->rec.name);
  snprintf(ret->scope, sizeof ret->scope, "%s", e->rec.scope);
  snprintf(ret->types, sizeof ret->types, "%s", e->rec.types);
  snprintf(ret->token_id, sizeof ret->token_id, "%s", e->rec.id);
  return 0;
}

/* --- records from etcd --- */

void mu_tokens_apply(mu_daemon *d, const char *id, const char *value, size_t len) {
  struct mu_tokens *t = d->tokens;
  if (t == NULL) return;
  if (value == NULL) {
    remove_id(t, id);
    return;
  }
  mu_token_record rec;
  mu_access role = MU_ACCESS_NONE;
  mu_err err = {0};
  if (mu_token_from_json(value, len, &rec, &err) == 0 && strcmp(rec.id, id) != 0)
    mu_err_set(&err, MU_EINVAL, "id '%s' does not match the key", rec.id);
  if (err.code == 0) check_grant(rec.role, rec.scope, rec.types, &role, &err);
  if (err.code != 0) {
    mu_warn("tokens", "%stokens/%s: %s; skipped", d->cfg.etcd_prefix, id, err.msg);
    sodium_memzero(&rec, sizeof rec);
    return;
  }
  token_entry *e = find(t, id);
  if (e == NULL) {
    size_t held = t->loading ? t->n_seen : t->n;
    if (held < d->cfg.max_tokens) e = calloc(1, sizeof *e);
    if (e == NULL) {
      mu_warn("tokens", "%stokens/%s: %s; skipped", d->cfg.etcd_prefix, id,
              held >= d->cfg.max_tokens ? "max_tokens tokens are held already" : "out of memory");
      sodium_memzero(&rec, sizeof rec);
      return;
    }
    e->rec = rec;
    if (insert(t, e) != 0) {
      mu_warn("tokens", "%stokens/%s: out of memory; skipped", d->cfg.etcd_prefix, id);
      entry_free(e);
      sodium_memzero(&rec, sizeof rec);
      return;
    }
  }
  e->rec = rec;
  e->role = role;
  e->pending = 0;
  if (t->loading && !e->seen) {
    e->seen = 1;
    t->n_seen++;
  }
  sodium_memzero(&rec, sizeof rec);
}

void mu_tokens_load_begin(mu_daemon *d) {
  struct mu_tokens *t = d->tokens;
  if (t == NULL) return;
  t->loading = 1;
  t->n_seen = 0;
  for (size_t i = 0; i < t->n; i++) t->items[i]->seen = 0;
}

void mu_tokens_load_end(mu_daemon *d) {
  struct mu_tokens *t = d->tokens;
  if (t == NULL || !t->loading) return;
  size_t kept = 0, dropped = 0;
  for (size_t i = 0; i < t->n; i++) {
    token_entry *e = t->items[i];
    if (e->seen || e->pending) {
      t->items[kept++] = e;
    } else {
      entry_free(e);
      dropped++;
    }
  }
  t->n = kept;
  t->loading = 0;
  if (dropped > 0) mu_info("tokens", "%zu tokens no longer in etcd dropped", dropped);
  mu_debug("tokens", "%zu tokens loaded", t->n);
}

/* --- the calls --- */

static const char *caller_of(mu_rpc_call *call, char *buf, size_t size) {
  const mu_caller *c = mu_authz_caller(call);
  if (c == NULL) {
    snprintf(buf, size, "unknown");
    return buf;
  }
  return mu_caller_describe(c, buf, size);
}

/* TokenInfo pointing into rec (borrowed until the reply is sent). */
static void fill_info(Muster__V1__TokenInfo *ti, const mu_token_record *rec, int64_t now) {
  ti->id = (char *)rec->id;
  ti->name = (char *)rec->name;
  ti->role = (char *)rec->role;
  ti->scope = (char *)rec->scope;
  ti->types = (char *)rec->types;
  ti->created_at_ms = rec->created_at_ms;
  ti->created_by = (char *)rec->created_by;
  ti->expires_at_ms = rec->expires_at_ms;
  ti->revoked_at_ms = rec->revoked_at_ms;
  ti->revoked_by = (char *)rec->revoked_by;
  ti->state = (char *)mu_token_state(rec, now);
}

static void refuse(mu_rpc_call *call, const char *action, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(mu_rpc_call *call, const char *action, int code, const char *fmt, ...) {
  char msg[MU_ERR_MSG_MAX + 200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mu_audit(call, action, "refused: %s", msg);
  mu_rpc_call_finish(call, code, msg, NULL);
}

/* One CreateToken or RevokeToken write: rec goes to tokens/<id> (with pruned's key deleted
 * in the same transaction), then the table follows and the call is answered. */
typedef struct token_write {
  mu_daemon *d;
  mu_rpc_call *call;
  int revoke;
  mu_token_record rec;              /* as written */
  char pruned[MU_TOKEN_ID_LEN + 1]; /* a dead token deleted to make room, or "" */
  char token[MU_TOKEN_LEN + 1];     /* CreateToken: the bearer token, handed out once */
} token_write;

static void write_free(token_write *w) {
  sodium_memzero(w, sizeof *w);
  free(w);
}

static void reply_created(token_write *w, int64_t now) {
  char span[32];
  const mu_token_record *r = &w->rec;
  char pruned[80] = "";
  if (w->pruned[0] != '\0') snprintf(pruned, sizeof pruned, " (dead token %s deleted: max_tokens)", w->pruned);
  mu_audit(w->call, "token.create", "name=%s id=%s role=%s scope=%s types=%s expires=%s%s%s", r->name, r->id, r->role,
           r->scope[0] ? r->scope : "-", r->types[0] ? r->types : "-", r->expires_at_ms ? "in " : "never",
           r->expires_at_ms ? mu_token_span(r->expires_at_ms - now, span, sizeof span) : "", pruned);
  Muster__V1__TokenInfo info = MUSTER__V1__TOKEN_INFO__INIT;
  Muster__V1__CreateTokenResponse resp = MUSTER__V1__CREATE_TOKEN_RESPONSE__INIT;
  fill_info(&info, r, now);
  resp.id = (char *)r->id;
  resp.token = w->token;
  resp.expires_at_ms = r->expires_at_ms;
  resp.info = &info;
  mu_pb_reply(w->call, &resp.base);
}

static void reply_revoked(token_write *w, int already, int64_t now) {
  Muster__V1__TokenInfo info = MUSTER__V1__TOKEN_INFO__INIT;
  Muster__V1__RevokeTokenResponse resp = MUSTER__V1__REVOKE_TOKEN_RESPONSE__INIT;
  if (!already) mu_audit(w->call, "token.revoke", "name=%s id=%s role=%s", w->rec.name, w->rec.id, w->rec.role);
  fill_info(&info, &w->rec, now);
  resp.info = &info;
  resp.already_revoked = already;
  mu_pb_reply(w->call, &resp.base);
}

/* The write is over (err NULL: stored): the table follows and the call is answered. */
static void write_done(token_write *w, const mu_err *err) {
  mu_daemon *d = w->d;
  struct mu_tokens *t = d->tokens;
  token_entry *e = find(t, w->rec.id);
  int64_t now = mu_now_ms();
  const char *action = w->revoke ? "token.revoke" : "token.create";
  if (err == NULL) {
    if (w->pruned[0] != '\0') remove_id(t, w->pruned);
    if (e != NULL) {
      e->rec = w->rec;
      e->pending = 0;
    }
    if (w->revoke) reply_revoked(w, 0, now);
    else reply_created(w, now);
  } else {
    if (!w->revoke && e != NULL && e->pending) remove_id(t, w->rec.id);
    token_entry *dead = w->pruned[0] != '\0' ? find(t, w->pruned) : NULL;
    if (dead != NULL) dead->pruning = 0;
    mu_warn("tokens", "%s of token %s not stored: %s", w->revoke ? "revocation" : "creation", w->rec.name, err->msg);
    /* fenced out: the caller is sent to the new leader when one is known */
    if (err->code != MU_EPERM || mu_cluster_check_write(d, w->call) == 0)
      refuse(w->call, action, MU_RPC_UNAVAILABLE, "etcd unavailable: %s (token %s not %s)", err->msg, w->rec.name,
             w->revoke ? "revoked" : "created");
  }
  write_free(w);
}

static void on_written(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  (void)res;
  write_done(ud, err);
}

static void key_of(const mu_daemon *d, const char *id, char *buf, size_t size) {
  snprintf(buf, size, "%stokens/%s", d->cfg.etcd_prefix, id);
}

/* Stores w->rec: at once without etcd, else through the leader's fenced store. Takes w. */
static void write_record(token_write *w) {
  mu_daemon *d = w->d;
  if (d->cluster->role == MU_ROLE_SINGLE) {
    write_done(w, NULL);
    return;
  }
  mu_err err = {0};
  char key[sizeof d->cfg.etcd_prefix + 32];
  char *value = mu_token_to_json(&w->rec);
  mu_store_batch *b = mu_store_batch_new(d->cluster->store);
  int rc = value != NULL && b != NULL ? 0 : mu_err_set(&err, MU_ENOMEM, "out of memory");
  /* the delete first: followers see the events in this order and are bounded too */
  if (rc == 0 && w->pruned[0] != '\0') {
    key_of(d, w->pruned, key, sizeof key);
    rc = mu_store_batch_delete(b, key, false, &err);
  }
  if (rc == 0) {
    key_of(d, w->rec.id, key, sizeof key);
    rc = mu_store_batch_put(b, key, value, 0, &err);
  }
  if (value != NULL) sodium_memzero(value, strlen(value));
  free(value);
  if (rc == 0) {
    rc = mu_store_batch_commit(b, on_written, w, &err);
    b = NULL;
  }
  mu_store_batch_free(b);
  if (rc != 0) write_done(w, &err);
}

static void create_token(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  struct mu_tokens *t = d->tokens;
  const Muster__V1__CreateTokenRequest *req = (const Muster__V1__CreateTokenRequest *)req_msg;
  const char *action = "token.create";
  int64_t now = mu_now_ms();
  mu_err err = {0};
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  token_write *w = calloc(1, sizeof *w);
  token_entry *e = calloc(1, sizeof *e);
  if (w == NULL || e == NULL) {
    free(w);
    free(e);
    refuse(call, action, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  w->d = d;
  w->call = call;
  mu_token_record *r = &w->rec;
  if (mu_token_check_name(req->name, &err) != 0 ||
      check_grant(req->role, req->scope, req->types, &e->role, &err) != 0 ||
      mu_token_expiry(req->ttl, now, &r->expires_at_ms, &err) != 0) {
    refuse(call, action, MU_RPC_INVALID_ARGUMENT, "%s", err.msg);
    goto fail;
  }
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->items[i]->rec.name, req->name) == 0 && mu_token_live(&t->items[i]->rec, now)) {
      refuse(call, action, MU_RPC_ALREADY_EXISTS,
             "a live token named '%s' exists (id %s); revoke it first or pick another name", req->name,
             t->items[i]->rec.id);
      goto fail;
    }
  token_entry *dead = NULL;
  if (t->n >= d->cfg.max_tokens) {
    dead = oldest_dead(t, now);
    if (dead == NULL) {
      refuse(call, action, MU_RPC_RESOURCE_EXHAUSTED,
             "max_tokens (%u) tokens are held and none is revoked or expired; revoke one or "
             "raise max_tokens",
             (unsigned)d->cfg.max_tokens);
      goto fail;
    }
    snprintf(w->pruned, sizeof w->pruned, "%s", dead->rec.id);
  }
  int tries = 0;
  do {
    if (mu_token_generate(r, w->token, sizeof w->token, &err) != 0) {
      refuse(call, action, MU_RPC_INTERNAL, "%s", err.msg);
      goto fail;
    }
  } while (find(t, r->id) != NULL && ++tries < 8);
  if (find(t, r->id) != NULL) {
    refuse(call, action, MU_RPC_INTERNAL, "no free token id found");
    goto fail;
  }
  snprintf(r->name, sizeof r->name, "%s", req->name);
  snprintf(r->role, sizeof r->role, "%s", mu_access_name(e->role));
  snprintf(r->scope, sizeof r->scope, "%s", req->scope);
  snprintf(r->types, sizeof r->types, "%s", req->types);
  r->created_at_ms = now;
  caller_of(call, r->created_by, sizeof r->created_by);
  e->rec = *r;
  e->pending = 1;
  if (insert(t, e) != 0) {
    refuse(call, action, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    goto fail;
  }
  if (dead != NULL) dead->pruning = 1;
  write_record(w);
  return;
fail:
  write_free(w);
  entry_free(e);
}

static void revoke_token(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Muster__V1__RevokeTokenRequest *req = (const Muster__V1__RevokeTokenRequest *)req_msg;
  const char *action = "token.revoke";
  int64_t now = mu_now_ms();
  (void)md;
  if (mu_cluster_check_write(d, call) != 0) return;
  if (req->token[0] == '\0') {
    refuse(call, action, MU_RPC_INVALID_ARGUMENT, "token: required (a token's name or id)");
    return;
  }
  token_entry *e = find(d->tokens, req->token);
  if (e == NULL) e = find_by_name(d->tokens, req->token, now);
  if (e == NULL) {
    refuse(call, action, MU_RPC_NOT_FOUND, "no token has the name or id '%.80s'", req->token);
    return;
  }
  if (e->pending) {
    refuse(call, action, MU_RPC_FAILED_PRECONDITION, "token %s is still being created; retry", e->rec.name);
    return;
  }
  token_write *w = calloc(1, sizeof *w);
  if (w == NULL) {
    refuse(call, action, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  w->d = d;
  w->call = call;
  w->revoke = 1;
  w->rec = e->rec;
  if (e->rec.revoked_at_ms != 0) {
    reply_revoked(w, 1, now);
    write_free(w);
    return;
  }
  w->rec.revoked_at_ms = now;
  caller_of(call, w->rec.revoked_by, sizeof w->rec.revoked_by);
  write_record(w);
}

static int newest_first(const void *a, const void *b) {
  const token_entry *x = *(token_entry *const *)a, *y = *(token_entry *const *)b;
  if (x->rec.created_at_ms != y->rec.created_at_ms) return x->rec.created_at_ms > y->rec.created_at_ms ? -1 : 1;
  return strcmp(x->rec.id, y->rec.id);
}

static void list_tokens(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  struct mu_tokens *t = d->tokens;
  int64_t now = mu_now_ms();
  (void)req_msg;
  (void)md;
  token_entry **sorted = calloc(t->n + 1, sizeof *sorted);
  Muster__V1__TokenInfo *infos = calloc(t->n + 1, sizeof *infos);
  Muster__V1__TokenInfo **ptrs = calloc(t->n + 1, sizeof *ptrs);
  if (sorted == NULL || infos == NULL || ptrs == NULL) {
    mu_pb_fail(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing %zu tokens", t->n);
    goto out;
  }
  size_t n = 0;
  for (size_t i = 0; i < t->n; i++)
    if (!t->items[i]->pending) sorted[n++] = t->items[i];
  qsort(sorted, n, sizeof *sorted, newest_first);
  Muster__V1__ListTokensResponse resp = MUSTER__V1__LIST_TOKENS_RESPONSE__INIT;
  for (size_t i = 0; i < n; i++) {
    muster__v1__token_info__init(&infos[i]);
    fill_info(&infos[i], &sorted[i]->rec, now);
    ptrs[i] = &infos[i];
  }
  resp.tokens = ptrs;
  resp.n_tokens = n;
  mu_pb_reply(call, &resp.base);
out:
  free(sorted);
  free(infos);
  free(ptrs);
}

int mu_tokens_register(mu_daemon *d, mu_err *err) {
  if (sodium_init() < 0) return mu_err_set(err, MU_EIO, "libsodium failed to initialise");
  if (d->tokens == NULL) {
    d->tokens = calloc(1, sizeof *d->tokens);
    if (d->tokens == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  int rc = mu_pb_add_unary(d->server, "/muster.v1.Tokens/CreateToken", &muster__v1__create_token_request__descriptor,
                           create_token, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Tokens/ListTokens", &muster__v1__list_tokens_request__descriptor,
                         list_tokens, d, err);
  if (rc == 0)
    rc = mu_pb_add_unary(d->server, "/muster.v1.Tokens/RevokeToken", &muster__v1__revoke_token_request__descriptor,
                         revoke_token, d, err);
  return rc;
}

void mu_tokens_free(mu_daemon *d) {
  struct mu_tokens *t = d->tokens;
  if (t == NULL) return;
  for (size_t i = 0; i < t->n; i++) entry_free(t->items[i]);
  free(t->items);
  free(t);
  d->tokens = NULL;
}

/* One audit record, and what is done to records without a daemon: building one (every field
 * bounded, control characters and bad UTF-8 replaced, secret-looking parameters redacted), its
 * JSON value and key in etcd, matching a query, and the bounded in-memory ring of --no-etcd
 * mode. The daemon side (who, when, where it is stored) is audit.h's. */
#ifndef MU_CP_AUDIT_RECORD_H
#define MU_CP_AUDIT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

/* Records live under <etcd prefix>audit/<id>. */
#define MU_AUDIT_REL "audit/"

/* Bytes kept of each field (longer text is cut, with "..." at the end). */
#define MU_AUDIT_SHORT_MAX 64 /* member, kind, role, token id, action */
#define MU_AUDIT_NAME_MAX 128 /* caller name, address */
#define MU_AUDIT_TARGET_MAX 256
#define MU_AUDIT_TEXT_MAX 512 /* params, outcome */
#define MU_AUDIT_ID_MAX (13 + 1 + 10 + 1 + MU_AUDIT_SHORT_MAX + 1)

/* A record. Every string is non-NULL; a packed record (mu_audit_rec_pack) holds them in its
 * own allocation, freed with free(). */
typedef struct mu_audit_rec {
  const char *id; /* "<13-digit ms>-<10-digit seq>-<member>": sorts by time */
  int64_t time_ms;
  uint64_t seq; /* per member process */
  const char *member;
  const char *caller_kind; /* anonymous | admin_cert | token | agent | server | musterd */
  const char *caller_name;
  const char *caller_role; /* viewer | operator | admin | "" */
  const char *token_id;
  const char *address;
  const char *action;
  const char *target;
  const char *params;
  const char *outcome; /* "ok", "denied: WHY", "refused: WHY" */
} mu_audit_rec;

/* Fills in's caller fields from c (borrowed, as the gate proved it; its strings must outlive
 * in): kind "anonymous", "admin_cert", "token", "agent" or "server"; the role for admin kinds
 * only; token id and address. c NULL: musterd itself, named member. */
struct mu_caller;
void mu_audit_rec_set_caller(mu_audit_rec *in, const struct mu_caller *c, const char *member);

/* A packed copy of in (fields borrowed; NULL strings read as ""): each field cut to its bound,
 * control characters and invalid UTF-8 replaced by '?', params redacted (mu_audit_redact), and
 * the id made from time_ms, seq and member when in->id is NULL or empty. Caller frees with
 * free(). NULL when out of memory. */
mu_audit_rec *mu_audit_rec_pack(const mu_audit_rec *in);

/* Copies params to out (size bytes, always terminated) with the value of every `key=value`
 * whose key looks secret (password, passwd, secret, token, value, credential, apikey,
 * api_key, private) replaced by "[redacted]", and every word that starts like a bearer token
 * ("mst_") likewise. Values may be quoted ('...' or "..."). A defence: callers must not pass
 * secret values at all. Returns out. */
char *mu_audit_redact(const char *params, char *out, size_t size);

/* The id for a record: "%013lld-%010llu-%s". */
void mu_audit_id(int64_t time_ms, uint64_t seq, const char *member, char *out, size_t size);
/* The time an id (or a key's part after audit/) starts with; -1 when it does not parse. */
int64_t mu_audit_id_time(const char *id);

/* The record's etcd value (compact JSON, "v":1). Caller frees with free(); NULL when out of
 * memory. */
char *mu_audit_rec_to_json(const mu_audit_rec *r);
/* Decodes a value written by mu_audit_rec_to_json into a packed record (bounded, cleaned
 * again: etcd is input like any other). MU_EINVAL names what is wrong. */
int mu_audit_rec_from_json(const char *text, size_t len, mu_audit_rec **ret, mu_err *err);

/* A query (ListAudit). */
typedef struct mu_audit_filter {
  int64_t since_ms;   /* records at or after; 0 = any time */
  const char *who;    /* substring of caller_name, token_id or address; NULL/"" = any */
  const char *action; /* exact, or a prefix when it ends with '.' or '*'; NULL/"" = any */
} mu_audit_filter;

int mu_audit_rec_matches(const mu_audit_rec *r, const mu_audit_filter *f);

/* At most per_sec records a second (fixed one-second windows): the rest are only counted, and
 * the count is reported once, as one summary record, when the window has ended. */
typedef struct mu_audit_limiter {
  uint32_t per_sec;
  int64_t window_start; /* monotonic ms; 0 = no window yet */
  uint32_t in_window;   /* admitted in the current window */
  uint64_t suppressed;  /* counted and not summarized yet */
} mu_audit_limiter;

/* One event at now (monotonic ms): 1 when it may be recorded, 0 when it was counted instead.
 * *ret_summary is the count to summarize first (the previous window's), 0 when none. */
int mu_audit_limiter_admit(mu_audit_limiter *l, int64_t now, uint64_t *ret_summary);
/* The count to summarize once the window is over at now (and forgets it); 0 while the window
 * is still open or nothing was suppressed. */
uint64_t mu_audit_limiter_flush(mu_audit_limiter *l, int64_t now);

/* The records of --no-etcd mode, oldest dropped first past max records or retention. */
typedef struct mu_audit_ring {
  mu_audit_rec **recs; /* circular, cap slots, grown up to max */
  size_t cap, n, head; /* head: slot of the oldest */
  size_t max;
  int64_t retention_ms;
} mu_audit_ring;

void mu_audit_ring_init(mu_audit_ring *r, size_t max, int64_t retention_ms);
/* Takes rec (freed at once when it cannot be kept: out of memory) and drops what is past the
 * bounds at now_ms. Returns the number of records dropped. */
size_t mu_audit_ring_push(mu_audit_ring *r, mu_audit_rec *rec, int64_t now_ms);
/* Drops records older than the retention at now_ms; returns how many. */
size_t mu_audit_ring_prune(mu_audit_ring *r, int64_t now_ms);
/* The i-th newest record (0 = newest), borrowed; NULL past the end. */
const mu_audit_rec *mu_audit_ring_get(const mu_audit_ring *r, size_t i);
void mu_audit_ring_free(mu_audit_ring *r);

#endif

/* Audit records without a daemon (audit_record.h): packing with bounds, cleaning and
 * redaction; the JSON value kept in etcd; query matching; the --no-etcd ring. Everything a
 * record holds passes through mu_audit_rec_pack, so a record read back from etcd is held to
 * the same bounds as one made here. */
#include "controlplane/audit_record.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "controlplane/authz.h"

/* --- cleaning --- */

/* Bytes of the valid UTF-8 sequence at s, 0 when it is not one. */
static size_t utf8_len(const unsigned char *s) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  return n;
}

/* Copies src into out (max bytes with the NUL, max >= 4): whole characters only, control
 * characters and bad bytes as '?' (a record is one log line), "..." when cut. Returns the
 * length. */
static size_t clean(char *out, size_t max, const char *src) {
  const unsigned char *p = (const unsigned char *)(src ? src : "");
  size_t o = 0;
  int cut = 0;
  while (*p != '\0') {
    size_t n = utf8_len(p);
    const unsigned char *put = p;
    size_t len = n;
    if (n == 0 || *p < 0x20 || *p == 0x7f) {
      put = (const unsigned char *)"?";
      len = 1;
      n = n ? n : 1;
    }
    if (o + len > max - 1) {
      cut = 1;
      break;
    }
    memcpy(out + o, put, len);
    o += len;
    p += n;
  }
  if (cut) {
    while (o + 3 > max - 1) {
      do o--;
      while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80);
    }
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
  return o;
}

/* --- redaction --- */

static int secret_key(const char *k, size_t len) {
  static const char *const words[] = {"password",   "passwd", "secret",  "token",  "value",
                                      "credential", "apikey", "api_key", "private"};
  char low[64];
  if (len >= sizeof low) len = sizeof low - 1;
  for (size_t i = 0; i < len; i++) low[i] = (char)tolower((unsigned char)k[i]);
  low[len] = '\0';
  /* names and ids of secrets and tokens are not secret */
  if (strcmp(low, "name") == 0 || (len > 3 && strcmp(low + len - 3, "_id") == 0) ||
      (len > 5 && strcmp(low + len - 5, "_name") == 0))
    return 0;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strstr(low, words[i]) != NULL) return 1;
  return 0;
}

static int is_key_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; }

/* The end of the value starting at v: after its closing quote, or at the next blank. */
static const char *value_end(const char *v) {
  if (*v == '\'' || *v == '"') {
    const char *close = strchr(v + 1, *v);
    return close ? close + 1 : v + strlen(v);
  }
  while (*v != '\0' && *v != ' ' && *v != '\t') v++;
  return v;
}

static size_t put(char *out, size_t size, size_t o, const char *s, size_t len) {
  if (o + len > size - 1) len = size - 1 - o;
  memcpy(out + o, s, len);
  return o + len;
}

char *mu_audit_redact(const char *params, char *out, size_t size) {
  static const char mark[] = "[redacted]";
  const char *p = params ? params : "";
  size_t o = 0;
  if (size == 0) return out;
  while (*p != '\0' && o + 1 < size) {
    int word_start = p == params || strchr(" \t,;('\"", p[-1]) != NULL;
    if (word_start && strncmp(p, "mst_", 4) == 0) {
      o = put(out, size, o, mark, sizeof mark - 1);
      p = value_end(p);
      continue;
    }
    if (word_start) {
      const char *k = p;
      while (is_key_char(*k)) k++;
      if (k > p && *k == '=' && secret_key(p, (size_t)(k - p))) {
        o = put(out, size, o, p, (size_t)(k - p) + 1);
        o = put(out, size, o, mark, sizeof mark - 1);
        p = value_end(k + 1);
        continue;
      }
    }
    out[o++] = *p++;
  }
  out[o] = '\0';
  return out;
}

/* --- the caller --- */

static const char *kind_name(mu_caller_kind k) {
  switch (k) {
    case MU_CALLER_ADMIN_CERT: return "admin_cert";
    case MU_CALLER_TOKEN: return "token";
    case MU_CALLER_AGENT: return "agent";
    case MU_CALLER_SERVER: return "server";
    default: return "anonymous";
  }
}

void mu_audit_rec_set_caller(mu_audit_rec *in, const mu_caller *c, const char *member) {
  if (c == NULL) {
    in->caller_kind = "musterd";
    in->caller_name = member;
    in->caller_role = in->token_id = in->address = "";
    return;
  }
  int admin = c->kind == MU_CALLER_ANONYMOUS || c->kind == MU_CALLER_ADMIN_CERT || c->kind == MU_CALLER_TOKEN;
  in->caller_kind = kind_name(c->kind);
  in->caller_name = c->name;
  in->caller_role = admin ? mu_access_name(c->role) : "";
  in->token_id = c->kind == MU_CALLER_TOKEN ? c->token_id : "";
  in->address = c->address;
}

/* --- packing --- */

void mu_audit_id(int64_t time_ms, uint64_t seq, const char *member, char *out, size_t size) {
  char m[MU_AUDIT_SHORT_MAX];
  clean(m, sizeof m, member);
  for (char *c = m; *c; c++)
    if (*c == '/' || *c == ' ') *c = '_'; /* one key segment */
  snprintf(out, size, "%013lld-%010llu-%s", (long long)(time_ms < 0 ? 0 : time_ms), (unsigned long long)seq, m);
}

int64_t mu_audit_id_time(const char *id) {
  int64_t t = 0;
  for (int i = 0; i < 13; i++) {
    if (!isdigit((unsigned char)id[i])) return -1;
    t = t * 10 + (id[i] - '0');
  }
  return id[13] == '-' ? t : -1;
}

enum { F_ID, F_MEMBER, F_KIND, F_NAME, F_ROLE, F_TOKEN, F_ADDR, F_ACTION, F_TARGET, F_PARAMS, F_OUTCOME, N_FIELDS };

static const size_t field_max[N_FIELDS] = {MU_AUDIT_ID_MAX,   MU_AUDIT_SHORT_MAX, MU_AUDIT_SHORT_MAX,
                                           MU_AUDIT_NAME_MAX, MU_AUDIT_SHORT_MAX, MU_AUDIT_SHORT_MAX,
                                           MU_AUDIT_NAME_MAX, MU_AUDIT_SHORT_MAX, MU_AUDIT_TARGET_MAX,
                                           MU_AUDIT_TEXT_MAX, MU_AUDIT_TEXT_MAX};

mu_audit_rec *mu_audit_rec_pack(const mu_audit_rec *in) {
  char id[MU_AUDIT_ID_MAX];
  char redacted[4 * MU_AUDIT_TEXT_MAX];
  if (in->id == NULL || in->id[0] == '\0') mu_audit_id(in->time_ms, in->seq, in->member, id, sizeof id);
  const char *src[N_FIELDS] = {in->id && in->id[0] ? in->id : id,
                               in->member,
                               in->caller_kind,
                               in->caller_name,
                               in->caller_role,
                               in->token_id,
                               in->address,
                               in->action,
                               in->target,
                               mu_audit_redact(in->params, redacted, sizeof redacted),
                               in->outcome};
  char buf[N_FIELDS][MU_AUDIT_TEXT_MAX];
  size_t len[N_FIELDS], total = 0;
  for (int i = 0; i < N_FIELDS; i++) {
    len[i] = clean(buf[i], field_max[i], src[i]);
    total += len[i] + 1;
  }
  mu_audit_rec *r = malloc(sizeof *r + total);
  if (r == NULL) return NULL;
  char *p = (char *)(r + 1);
  const char **dst[N_FIELDS] = {&r->id,          &r->member,   &r->caller_kind, &r->caller_name,
                                &r->caller_role, &r->token_id, &r->address,     &r->action,
                                &r->target,      &r->params,   &r->outcome};
  for (int i = 0; i < N_FIELDS; i++) {
    memcpy(p, buf[i], len[i] + 1);
    *dst[i] = p;
    p += len[i] + 1;
  }
  r->time_ms = in->time_ms;
  r->seq = in->seq;
  return r;
}

/* --- JSON --- */

char *mu_audit_rec_to_json(const mu_audit_rec *r) {
  json_t *o =
      json_pack("{s:i,s:s,s:I,s:I,s:s,s:{s:s,s:s,s:s,s:s,s:s},s:s,s:s,s:s,s:s}", "v", 1, "id", r->id, "time_ms",
                (json_int_t)r->time_ms, "seq", (json_int_t)r->seq, "member", r->member, "caller", "kind",
                r->caller_kind, "name", r->caller_name, "role", r->caller_role, "token_id", r->token_id, "address",
                r->address, "action", r->action, "target", r->target, "params", r->params, "outcome", r->outcome);
  if (o == NULL) return NULL;
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

int mu_audit_rec_from_json(const char *text, size_t len, mu_audit_rec **ret, mu_err *err) {
  json_error_t jerr;
  json_t *o = json_loadb(text, len, 0, &jerr);
  if (o == NULL || !json_is_object(o)) {
    json_decref(o);
    return mu_err_set(err, MU_EINVAL, "audit record: not a JSON object (%s)",
                      o == NULL ? jerr.text : "another JSON type");
  }
  const json_t *c = json_object_get(o, "caller");
  const json_t *t = json_object_get(o, "time_ms");
  int rc = 0;
  if (json_integer_value(json_object_get(o, "v")) != 1) {
    rc = mu_err_set(err, MU_EINVAL, "audit record: unknown version (want \"v\":1)");
  } else if (!json_is_integer(t) || json_integer_value(t) < 0) {
    rc = mu_err_set(err, MU_EINVAL, "audit record: time_ms must be a non-negative integer");
  } else if (jstr(o, "action")[0] == '\0') {
    rc = mu_err_set(err, MU_EINVAL, "audit record: action is missing");
  }
  if (rc != 0) {
    json_decref(o);
    return rc;
  }
  mu_audit_rec in = {
      .id = jstr(o, "id"),
      .time_ms = (int64_t)json_integer_value(t),
      .seq = (uint64_t)json_integer_value(json_object_get(o, "seq")),
      .member = jstr(o, "member"),
      .caller_kind = jstr(c, "kind"),
      .caller_name = jstr(c, "name"),
      .caller_role = jstr(c, "role"),
      .token_id = jstr(c, "token_id"),
      .address = jstr(c, "address"),
      .action = jstr(o, "action"),
      .target = jstr(o, "target"),
      .params = jstr(o, "params"),
      .outcome = jstr(o, "outcome"),
  };
  mu_audit_rec *r = mu_audit_rec_pack(&in);
  json_decref(o);
  if (r == NULL) return mu_err_set(err, MU_ENOMEM, "audit record: out of memory");
  *ret = r;
  return 0;
}

/* --- queries --- */

int mu_audit_rec_matches(const mu_audit_rec *r, const mu_audit_filter *f) {
  if (f->since_ms > 0 && r->time_ms < f->since_ms) return 0;
  if (f->who != NULL && f->who[0] != '\0' && strstr(r->caller_name, f->who) == NULL &&
      strstr(r->token_id, f->who) == NULL && strstr(r->address, f->who) == NULL)
    return 0;
  if (f->action != NULL && f->action[0] != '\0') {
    size_t n = strlen(f->action);
    char last = f->action[n - 1];
    if (last == '*') return strncmp(r->action, f->action, n - 1) == 0;
    if (last == '.') return strncmp(r->action, f->action, n) == 0;
    return strcmp(r->action, f->action) == 0;
  }
  return 1;
}

/* --- the denial limiter --- */

uint64_t mu_audit_limiter_flush(mu_audit_limiter *l, int64_t now) {
  if (l->suppressed == 0 || now - l->window_start < 1000) return 0;
  uint64_t n = l->suppressed;
  l->suppressed = 0;
  return n;
}

int mu_audit_limiter_admit(mu_audit_limiter *l, int64_t now, uint64_t *ret_summary) {
  *ret_summary = 0;
  if (l->window_start == 0 || now - l->window_start >= 1000) {
    *ret_summary = mu_audit_limiter_flush(l, now);
    l->window_start = now > 0 ? now : 1;
    l->in_window = 0;
  }
  if (l->in_window < l->per_sec) {
    l->in_window++;
    return 1;
  }
  l->suppressed++;
  return 0;
}

/* --- the ring --- */

void mu_audit_ring_init(mu_audit_ring *r, size_t max, int64_t retention_ms) {
  memset(r, 0, sizeof *r);
  r->max = max ? max : 1;
  r->retention_ms = retention_ms;
}

static void drop_oldest(mu_audit_ring *r) {
  free(r->recs[r->head]);
  r->recs[r->head] = NULL;
  r->head = (r->head + 1) % r->cap;
  r->n--;
}

size_t mu_audit_ring_prune(mu_audit_ring *r, int64_t now_ms) {
  size_t dropped = 0;
  while (r->n > 0 && r->retention_ms > 0 && r->recs[r->head]->time_ms < now_ms - r->retention_ms) {
    drop_oldest(r);
    dropped++;
  }
  return dropped;
}

size_t mu_audit_ring_push(mu_audit_ring *r, mu_audit_rec *rec, int64_t now_ms) {
  size_t dropped = mu_audit_ring_prune(r, now_ms);
  if (r->n == r->cap && r->cap < r->max) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    if (cap > r->max) cap = r->max;
    mu_audit_rec **grown = calloc(cap, sizeof *grown);
    if (grown != NULL) {
      for (size_t i = 0; i < r->n; i++) grown[i] = r->recs[(r->head + i) % r->cap];
      free(r->recs);
      r->recs = grown;
      r->cap = cap;
      r->head = 0;
    }
  }
  if (r->cap == 0) {
    free(rec);
    return dropped + 1;
  }
  if (r->n == r->cap) {
    drop_oldest(r);
    dropped++;
  }
  r->recs[(r->head + r->n) % r->cap] = rec;
  r->n++;
  return dropped;
}

const mu_audit_rec *mu_audit_ring_get(const mu_audit_ring *r, size_t i) {
  if (i >= r->n) return NULL;
  return r->recs[(r->head + r->n - 1 - i) % r->cap];
}

void mu_audit_ring_free(mu_audit_ring *r) {
  while (r->n > 0) drop_oldest(r);
  free(r->recs);
  memset(r, 0, sizeof *r);
}

/* Unary etcd operations — range, put, delete, compact, leases, raw calls — and the txn builder.
 * Each call encodes its request (checking etcd's size and op-count limits before anything is
 * sent) and hands it to the transport in client.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/etcd/internal.h"

/* Serializes obj (consumed) and submits it as a unary op after the size check. */
static int send_obj(mu_etcd_client *c, mu_etcd_kind kind, const char *path, json_t *obj, size_t payload,
                    const char *what, mu_etcd_cb cb, void *ud, mu_err *err) {
  if (payload > c->opts.max_request_bytes) {
    json_decref(obj);
    return mu_err_set(err, MU_ENOSPC, "etcd %s: request of %zu bytes is over the %zu-byte limit", what, payload,
                      c->opts.max_request_bytes);
  }
  char *body = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  if (body == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", what);
  return mu__etcd_client_unary(c, kind, path, body, what, cb, ud, err);
}

static void describe(char *buf, size_t cap, const char *op, const char *key, size_t key_len, bool prefix) {
  char shown[100];
  if (key == NULL) key = "";
  mu__etcd_codec_show_key(key, key_len != 0 ? key_len : strlen(key), shown, sizeof(shown));
  snprintf(buf, cap, "%s '%s'%s", op, shown, prefix ? " (prefix)" : "");
}

int mu_etcd_range(mu_etcd_client *c, const mu_etcd_range_req *req, mu_etcd_cb cb, void *ud, mu_err *err) {
  json_t *o = NULL;
  size_t payload = 0;
  char what[140];
  describe(what, sizeof(what), "range", req->key, req->key_len, req->prefix);
  int rc = mu__etcd_codec_range(req, &o, &payload, err);
  if (rc != 0) return mu_err_prefix(err, "%s", what);
  return send_obj(c, MU_ETCD_RANGE, "/v3/kv/range", o, payload, what, cb, ud, err);
}

int mu_etcd_put(mu_etcd_client *c, const mu_etcd_put_req *req, mu_etcd_cb cb, void *ud, mu_err *err) {
  json_t *o = NULL;
  size_t payload = 0;
  char what[140];
  describe(what, sizeof(what), "put", req->key, req->key_len, false);
  int rc = mu__etcd_codec_put(req, &o, &payload, err);
  if (rc != 0) return mu_err_prefix(err, "%s", what);
  return send_obj(c, MU_ETCD_PUT, "/v3/kv/put", o, payload, what, cb, ud, err);
}

int mu_etcd_delete(mu_etcd_client *c, const mu_etcd_delete_req *req, mu_etcd_cb cb, void *ud, mu_err *err) {
  json_t *o = NULL;
  size_t payload = 0;
  char what[140];
  describe(what, sizeof(what), "delete", req->key, req->key_len, req->prefix);
  int rc = mu__etcd_codec_delete(req, &o, &payload, err);
  if (rc != 0) return mu_err_prefix(err, "%s", what);
  return send_obj(c, MU_ETCD_DELETE, "/v3/kv/deleterange", o, payload, what, cb, ud, err);
}

int mu_etcd_compact(mu_etcd_client *c, int64_t revision, bool physical, mu_etcd_cb cb, void *ud, mu_err *err) {
  char what[64];
  snprintf(what, sizeof(what), "compact at %lld", (long long)revision);
  if (revision <= 0) return mu_err_set(err, MU_EINVAL, "etcd %s: revision must be > 0", what);
  json_t *o = json_pack("{s:I,s:b}", "revision", (json_int_t)revision, "physical", physical);
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", what);
  return send_obj(c, MU_ETCD_COMPACT, "/v3/kv/compaction", o, 0, what, cb, ud, err);
}

int mu_etcd_raw(mu_etcd_client *c, const char *path, const char *json_body, mu_etcd_cb cb, void *ud, mu_err *err) {
  if (path == NULL || path[0] != '/' || strlen(path) >= 128 || json_body == NULL) {
    return mu_err_set(err, MU_EINVAL,
                      "etcd raw call: path must start with '/' (under 128 "
                      "bytes) and a body is needed");
  }
  size_t len = strlen(json_body);
  if (len > c->opts.max_request_bytes) {
    return mu_err_set(err, MU_ENOSPC, "etcd %s: request of %zu bytes is over the %zu-byte limit", path, len,
                      c->opts.max_request_bytes);
  }
  char *body = strdup(json_body);
  if (body == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", path);
  return mu__etcd_client_unary(c, MU_ETCD_RAW, path, body, path, cb, ud, err);
}

static int lease_call(mu_etcd_client *c, mu_etcd_kind kind, const char *path, const char *op, const char *field,
                      int64_t v, mu_etcd_cb cb, void *ud, mu_err *err) {
  char what[80];
  snprintf(what, sizeof(what), "%s %lld", op, (long long)v);
  if (v <= 0) return mu_err_set(err, MU_EINVAL, "etcd %s: must be > 0", what);
  json_t *o = json_pack("{s:I}", field, (json_int_t)v);
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", what);
  return send_obj(c, kind, path, o, 0, what, cb, ud, err);
}

int mu_etcd_lease_grant(mu_etcd_client *c, int64_t ttl_s, mu_etcd_cb cb, void *ud, mu_err *err) {
  return lease_call(c, MU_ETCD_LEASE_GRANT, "/v3/lease/grant", "lease grant ttl", "TTL", ttl_s, cb, ud, err);
}

int mu_etcd_lease_keepalive(mu_etcd_client *c, int64_t lease_id, mu_etcd_cb cb, void *ud, mu_err *err) {
  /* The streaming keep-alive endpoint answers one refresh per request message; a body with a
   * single message is one refresh, as `etcdctl lease keep-alive --once` does. */
  return lease_call(c, MU_ETCD_LEASE_KEEPALIVE, "/v3/lease/keepalive", "lease keep-alive", "ID", lease_id, cb, ud, err);
}

int mu_etcd_lease_revoke(mu_etcd_client *c, int64_t lease_id, mu_etcd_cb cb, void *ud, mu_err *err) {
  return lease_call(c, MU_ETCD_LEASE_REVOKE, "/v3/lease/revoke", "lease revoke", "ID", lease_id, cb, ud, err);
}

/* ---- txn builder ---- */

struct mu_etcd_txn {
  json_t *compare, *success, *failure;
  size_t payload;
  mu_err err; /* first builder error */
};

mu_etcd_txn *mu_etcd_txn_new(void) {
  mu_etcd_txn *t = calloc(1, sizeof(*t));
  if (t == NULL) return NULL;
  t->compare = json_array();
  t->success = json_array();
  t->failure = json_array();
  if (t->compare == NULL || t->success == NULL || t->failure == NULL) {
    mu_etcd_txn_free(t);
    return NULL;
  }
  return t;
}

void mu_etcd_txn_free(mu_etcd_txn *t) {
  if (t == NULL) return;
  json_decref(t->compare);
  json_decref(t->success);
  json_decref(t->failure);
  free(t);
}

static const char *cmp_name(mu_etcd_cmp cmp) {
  switch (cmp) {
    case MU_ETCD_EQ: return "EQUAL";
    case MU_ETCD_NE: return "NOT_EQUAL";
    case MU_ETCD_LT: return "LESS";
    case MU_ETCD_GT: return "GREATER";
  }
  return NULL;
}

static json_t *compare_obj(mu_etcd_txn *t, const char *key, mu_etcd_cmp cmp, const char *target) {
  if (t->err.code != 0) return NULL;
  if (key == NULL || key[0] == '\0' || cmp_name(cmp) == NULL) {
    mu_err_set(&t->err, MU_EINVAL, "etcd txn: compare %zu needs a key and a valid operator",
               json_array_size(t->compare) + 1);
    return NULL;
  }
  json_t *o = json_pack("{s:s,s:s}", "target", target, "result", cmp_name(cmp));
  if (o == NULL || mu__etcd_codec_set_bytes(o, "key", key, strlen(key)) != 0) {
    json_decref(o);
    mu_err_set(&t->err, MU_ENOMEM, "etcd txn: out of memory");
    return NULL;
  }
  t->payload += strlen(key) + 16;
  return o;
}

static void add(mu_etcd_txn *t, json_t *list, json_t *o) {
  if (o == NULL) return;
  if (json_array_append_new(list, o) != 0) {
    mu_err_set(&t->err, MU_ENOMEM, "etcd txn: out of memory");
  }
}

void mu_etcd_txn_compare(mu_etcd_txn *t, const char *key, mu_etcd_target target, mu_etcd_cmp cmp, int64_t n) {
  static const char *const names[][2] = {
      {"VERSION", "version"}, {"CREATE", "create_revision"}, {"MOD", "mod_revision"}, {"LEASE", "lease"}};
  if (target < MU_ETCD_VERSION || target > MU_ETCD_LEASE) {
    if (t->err.code == 0) {
      mu_err_set(&t->err, MU_EINVAL, "etcd txn: unknown compare target %d", target);
    }
    return;
  }
  json_t *o = compare_obj(t, key, cmp, names[target - 1][0]);
  if (o != NULL && json_object_set_new(o, names[target - 1][1], json_integer((json_int_t)n)) != 0) {
    json_decref(o);
    o = NULL;
    mu_err_set(&t->err, MU_ENOMEM, "etcd txn: out of memory");
  }
  add(t, t->compare, o);
}

void mu_etcd_txn_compare_value(mu_etcd_txn *t, const char *key, mu_etcd_cmp cmp, const void *value, size_t value_len) {
  json_t *o = compare_obj(t, key, cmp, "VALUE");
  if (o != NULL && mu__etcd_codec_set_bytes(o, "value", value, value_len) != 0) {
    json_decref(o);
    o = NULL;
    mu_err_set(&t->err, MU_ENOMEM, "etcd txn: out of memory");
  }
  t->payload += value_len;
  add(t, t->compare, o);
}

void mu_etcd_txn_fence(mu_etcd_txn *t, const char *leader_key, int64_t term) {
  mu_etcd_txn_compare(t, leader_key, MU_ETCD_CREATE_REVISION, MU_ETCD_EQ, term);
}

static void add_op(mu_etcd_txn *t, mu_etcd_branch br, const char *kind, json_t *req, int rc, const mu_err *e) {
  if (t->err.code != 0) {
    json_decref(req);
    return;
  }
  if (rc != 0) {
    t->err = *e;
    mu_err_prefix(&t->err, "etcd txn %s", kind + strlen("request_"));
    return;
  }
  if (br != MU_ETCD_ON_SUCCESS && br != MU_ETCD_ON_FAILURE) {
    json_decref(req);
    mu_err_set(&t->err, MU_EINVAL, "etcd txn: bad branch %d", br);
    return;
  }
  json_t *o = json_object();
  if (o == NULL || json_object_set_new(o, kind, req) != 0) {
    json_decref(o);
    mu_err_set(&t->err, MU_ENOMEM, "etcd txn: out of memory");
    return;
  }
  add(t, br == MU_ETCD_ON_SUCCESS ? t->success : t->failure, o);
}

void mu_etcd_txn_put(mu_etcd_txn *t, mu_etcd_branch br, const mu_etcd_put_req *req) {
  json_t *o = NULL;
  mu_err e;
  int rc = t->err.code != 0 ? 0 : mu__etcd_codec_put(req, &o, &t->payload, &e);
  add_op(t, br, "request_put", o, rc, &e);
}

void mu_etcd_txn_delete(mu_etcd_txn *t, mu_etcd_branch br, const mu_etcd_delete_req *req) {
  json_t *o = NULL;
  mu_err e;
  int rc = t->err.code != 0 ? 0 : mu__etcd_codec_delete(req, &o, &t->payload, &e);
  add_op(t, br, "request_delete_range", o, rc, &e);
}

void mu_etcd_txn_range(mu_etcd_txn *t, mu_etcd_branch br, const mu_etcd_range_req *req) {
  json_t *o = NULL;
  mu_err e;
  int rc = t->err.code != 0 ? 0 : mu__etcd_codec_range(req, &o, &t->payload, &e);
  add_op(t, br, "request_range", o, rc, &e);
}

void mu_etcd_txn_then_put(mu_etcd_txn *t, const char *key, const char *value) {
  mu_etcd_txn_put(t, MU_ETCD_ON_SUCCESS, &(mu_etcd_put_req){.key = key, .value = value});
}

void mu_etcd_txn_then_delete(mu_etcd_txn *t, const char *key) {
  mu_etcd_txn_delete(t, MU_ETCD_ON_SUCCESS, &(mu_etcd_delete_req){.key = key});
}

size_t mu_etcd_txn_size(const mu_etcd_txn *t) {
  size_t n = json_array_size(t->compare);
  if (json_array_size(t->success) > n) n = json_array_size(t->success);
  if (json_array_size(t->failure) > n) n = json_array_size(t->failure);
  return n;
}

int mu_etcd_txn_commit(mu_etcd_client *c, const mu_etcd_txn *t, mu_etcd_cb cb, void *ud, mu_err *err) {
  char what[96];
  if (t == NULL) return mu_err_set(err, MU_EINVAL, "etcd txn: NULL transaction");
  if (t->err.code != 0) {
    if (err != NULL) *err = t->err;
    return t->err.code;
  }
  snprintf(what, sizeof(what), "txn (%zu compares, %zu+%zu ops)", json_array_size(t->compare),
           json_array_size(t->success), json_array_size(t->failure));
  if (mu_etcd_txn_size(t) > c->opts.max_txn_ops) {
    return mu_err_set(err, MU_ENOSPC, "etcd %s: more than %zu ops in one list; split it", what, c->opts.max_txn_ops);
  }
  json_t *o = json_pack("{s:O,s:O,s:O}", "compare", t->compare, "success", t->success, "failure", t->failure);
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "etcd %s: out of memory", what);
  return send_obj(c, MU_ETCD_TXN, "/v3/kv/txn", o, t->payload, what, cb, ud, err);
}

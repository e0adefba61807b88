/* JSON codec for etcd's gateway: base64 keys and values, int64 fields sent back as strings,
 * zero values omitted. Builds request objects for range/put/delete (shared by direct calls and
 * txn ops, counting the payload bytes etcd's request limit applies to) and turns replies into
 * mu_etcd_result trees (with deep copy and free), and error replies into a mu_err. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/etcd/internal.h"

/* etcd counts the protobuf size; a few bytes of framing per field on top of the data. */
#define FIELD_OVERHEAD 8

char *mu__etcd_codec_b64(const void *data, size_t len) {
  size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
  return out;
}

int mu__etcd_codec_unb64(const char *text, char **ret, size_t *ret_len) {
  size_t tlen = strlen(text);
  size_t cap = tlen / 4 * 3 + 3;
  char *out = malloc(cap + 1);
  size_t n = 0;
  if (out == NULL) return MU_ENOMEM;
  if (sodium_base642bin((unsigned char *)out, cap, text, tlen, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
    free(out);
    return MU_EINVAL;
  }
  out[n] = '\0';
  *ret = out;
  *ret_len = n;
  return 0;
}

int64_t mu__etcd_codec_int(json_t *obj, const char *field) {
  json_t *v = json_object_get(obj, field);
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
  return 0;
}

void mu__etcd_codec_show_key(const char *key, size_t len, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 5 < cap; i++) {
    unsigned char ch = (unsigned char)key[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      buf[o++] = (char)ch;
    } else {
      o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    if (i + 1 < len && o + 8 >= cap) {
      o += (size_t)snprintf(buf + o, cap - o, "...");
      break;
    }
  }
  buf[o < cap ? o : cap - 1] = '\0';
}

int mu__etcd_codec_set_bytes(json_t *obj, const char *field, const void *data, size_t len) {
  char *b = mu__etcd_codec_b64(data == NULL ? "" : data, len);
  if (b == NULL) return MU_ENOMEM;
  int rc = json_object_set_new(obj, field, json_string(b));
  free(b);
  return rc == 0 ? 0 : MU_ENOMEM;
}

static size_t len_or_strlen(const char *s, size_t len) {
  if (s == NULL) return 0;
  return len != 0 ? len : strlen(s);
}

int mu__etcd_codec_key_range(json_t *obj, const char *key, size_t key_len, const char *range_end, size_t range_end_len,
                             bool prefix, size_t *payload, mu_err *err) {
  if (key == NULL) return mu_err_set(err, MU_EINVAL, "etcd: key is NULL");
  key_len = len_or_strlen(key, key_len);
  if (prefix) {
    /* range_end = key with its last byte below 0xff incremented, rest dropped; a key of only
     * 0xff bytes (or "") has no end: "\0" means "to the end of the keyspace". */
    char *end = malloc(key_len + 1);
    size_t end_len = key_len;
    if (end == NULL) return mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
    memcpy(end, key, key_len);
    while (end_len > 0 && (unsigned char)end[end_len - 1] == 0xff) end_len--;
    if (end_len == 0) {
      end[0] = '\0';
      end_len = 1;
    } else {
      end[end_len - 1] = (char)((unsigned char)end[end_len - 1] + 1);
    }
    int rc = mu__etcd_codec_set_bytes(obj, "key", key_len == 0 ? "\0" : key, key_len == 0 ? 1 : key_len);
    if (rc == 0) rc = mu__etcd_codec_set_bytes(obj, "range_end", end, end_len);
    free(end);
    if (rc != 0) return mu_err_set(err, rc, "etcd: out of memory");
    *payload += key_len + end_len + 2 * FIELD_OVERHEAD;
    return 0;
  }
  if (key_len == 0) return mu_err_set(err, MU_EINVAL, "etcd: key is empty");
  if (mu__etcd_codec_set_bytes(obj, "key", key, key_len) != 0) {
    return mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
  }
  *payload += key_len + FIELD_OVERHEAD;
  if (range_end != NULL) {
    range_end_len = len_or_strlen(range_end, range_end_len);
    if (range_end_len == 0) {
      range_end = "\0"; /* "" means "to the end of the keyspace", spelled "\0" */
      range_end_len = 1;
    }
    if (mu__etcd_codec_set_bytes(obj, "range_end", range_end, range_end_len) != 0) {
      return mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
    }
    *payload += range_end_len + FIELD_OVERHEAD;
  }
  return 0;
}

static int set_int(json_t *o, const char *f, int64_t v) {
  if (v == 0) return 0;
  return json_object_set_new(o, f, json_integer((json_int_t)v)) == 0 ? 0 : MU_ENOMEM;
}

static int set_bool(json_t *o, const char *f, bool v) {
  if (!v) return 0;
  return json_object_set_new(o, f, json_true()) == 0 ? 0 : MU_ENOMEM;
}

int mu__etcd_codec_range(const mu_etcd_range_req *req, json_t **ret, size_t *payload, mu_err *err) {
  json_t *o = json_object();
  int rc;
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
  if (req->limit < 0 || req->revision < 0) {
    json_decref(o);
    return mu_err_set(err, MU_EINVAL, "etcd range: limit and revision must be >= 0");
  }
  rc = mu__etcd_codec_key_range(o, req->key, req->key_len, req->range_end, req->range_end_len, req->prefix, payload,
                                err);
  if (rc != 0) goto fail;
  if (set_int(o, "limit", req->limit) || set_int(o, "revision", req->revision) ||
      set_bool(o, "keys_only", req->keys_only) || set_bool(o, "count_only", req->count_only) ||
      (req->descend && (json_object_set_new(o, "sort_order", json_string("DESCEND")) != 0 ||
                        json_object_set_new(o, "sort_target", json_string("KEY")) != 0))) {
    rc = mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
    goto fail;
  }
  *ret = o;
  return 0;
fail:
  json_decref(o);
  return rc;
}

int mu__etcd_codec_put(const mu_etcd_put_req *req, json_t **ret, size_t *payload, mu_err *err) {
  json_t *o = json_object();
  size_t vlen = req->value == NULL ? 0 : len_or_strlen(req->value, req->value_len);
  int rc;
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
  rc = mu__etcd_codec_key_range(o, req->key, req->key_len, NULL, 0, false, payload, err);
  if (rc != 0) goto fail;
  if (mu__etcd_codec_set_bytes(o, "value", req->value, vlen) || set_int(o, "lease", req->lease) ||
      set_bool(o, "prev_kv", req->prev_kv)) {
    rc = mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
    goto fail;
  }
  *payload += vlen + 2 * FIELD_OVERHEAD;
  *ret = o;
  return 0;
fail:
  json_decref(o);
  return rc;
}

int mu__etcd_codec_delete(const mu_etcd_delete_req *req, json_t **ret, size_t *payload, mu_err *err) {
  json_t *o = json_object();
  int rc;
  if (o == NULL) return mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
  rc = mu__etcd_codec_key_range(o, req->key, req->key_len, req->range_end, req->range_end_len, req->prefix, payload,
                                err);
  if (rc != 0) goto fail;
  if (set_bool(o, "prev_kv", req->prev_kv)) {
    rc = mu_err_set(err, MU_ENOMEM, "etcd: out of memory");
    goto fail;
  }
  *ret = o;
  return 0;
fail:
  json_decref(o);
  return rc;
}

static int field_bytes(json_t *j, const char *field, char **ret, size_t *ret_len) {
  json_t *v = json_object_get(j, field);
  if (v == NULL) {
    *ret = calloc(1, 1);
    *ret_len = 0;
    return *ret == NULL ? MU_ENOMEM : 0;
  }
  if (!json_is_string(v)) return MU_EINVAL;
  return mu__etcd_codec_unb64(json_string_value(v), ret, ret_len);
}

int mu__etcd_codec_kv(json_t *j, mu_etcd_kv *kv) {
  int rc;
  memset(kv, 0, sizeof(*kv));
  if (!json_is_object(j)) return MU_EINVAL;
  rc = field_bytes(j, "key", &kv->key, &kv->key_len);
  if (rc == 0) rc = field_bytes(j, "value", &kv->value, &kv->value_len);
  if (rc != 0) {
    mu__etcd_codec_kv_clear(kv);
    return rc;
  }
  kv->create_revision = mu__etcd_codec_int(j, "create_revision");
  kv->mod_revision = mu__etcd_codec_int(j, "mod_revision");
  kv->version = mu__etcd_codec_int(j, "version");
  kv->lease = mu__etcd_codec_int(j, "lease");
  return 0;
}

void mu__etcd_codec_kv_clear(mu_etcd_kv *kv) {
  free(kv->key);
  free(kv->value);
  memset(kv, 0, sizeof(*kv));
}

static int kv_array(json_t *arr, mu_etcd_kv **ret, size_t *ret_n) {
  size_t n = json_array_size(arr);
  if (n == 0) return 0;
  mu_etcd_kv *kvs = calloc(n, sizeof(*kvs));
  if (kvs == NULL) return MU_ENOMEM;
  *ret = kvs; /* partially filled arrays are freed by mu__etcd_codec_result_clear */
  for (size_t i = 0; i < n; i++) {
    int rc = mu__etcd_codec_kv(json_array_get(arr, i), &kvs[i]);
    if (rc != 0) return rc;
    *ret_n = i + 1;
  }
  return 0;
}

/* Txn sub-responses, in mu_etcd_kind order from MU_ETCD_RANGE. */
static const char *const op_kinds[] = {"response_range", "response_put", "response_delete_range"};

int mu__etcd_codec_result(mu_etcd_kind kind, json_t *reply, mu_etcd_result *res, mu_err *err) {
  int rc = 0;
  memset(res, 0, sizeof(*res));
  res->kind = kind;
  res->revision = mu__etcd_codec_int(json_object_get(reply, "header"), "revision");
  switch (kind) {
    case MU_ETCD_RANGE:
      rc = kv_array(json_object_get(reply, "kvs"), &res->kvs, &res->n_kvs);
      res->count = mu__etcd_codec_int(reply, "count");
      res->more = json_is_true(json_object_get(reply, "more"));
      break;
    case MU_ETCD_PUT: {
      json_t *p = json_object_get(reply, "prev_kv");
      if (p != NULL) {
        res->prev_kvs = calloc(1, sizeof(*res->prev_kvs));
        if (res->prev_kvs == NULL) {
          rc = MU_ENOMEM;
          break;
        }
        rc = mu__etcd_codec_kv(p, &res->prev_kvs[0]);
        if (rc == 0) res->n_prev_kvs = 1;
      }
      break;
    }
    case MU_ETCD_DELETE:
      res->deleted = mu__etcd_codec_int(reply, "deleted");
      rc = kv_array(json_object_get(reply, "prev_kvs"), &res->prev_kvs, &res->n_prev_kvs);
      break;
    case MU_ETCD_TXN: {
      json_t *arr = json_object_get(reply, "responses");
      size_t n = json_array_size(arr);
      res->succeeded = json_is_true(json_object_get(reply, "succeeded"));
      if (n == 0) break;
      res->responses = calloc(n, sizeof(*res->responses));
      if (res->responses == NULL) {
        rc = MU_ENOMEM;
        break;
      }
      for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *one = json_array_get(arr, i);
        mu_etcd_kind k = 0;
        json_t *body = NULL;
        for (size_t m = 0; m < 3 && body == NULL; m++) {
          body = json_object_get(one, op_kinds[m]);
          k = (mu_etcd_kind)(MU_ETCD_RANGE + m);
        }
        if (body == NULL) {
          rc = MU_EINVAL;
          break;
        }
        rc = mu__etcd_codec_result(k, body, &res->responses[i], err);
        res->n_responses = i + 1;
        if (res->responses[i].revision == 0) res->responses[i].revision = res->revision;
      }
      break;
    }
    case MU_ETCD_LEASE_KEEPALIVE:
    case MU_ETCD_LEASE_GRANT:
      res->lease_id = mu__etcd_codec_int(reply, "ID");
      res->ttl = mu__etcd_codec_int(reply, "TTL");
      break;
    default: break;
  }
  if (rc != 0) {
    mu__etcd_codec_result_clear(res);
    if (rc == MU_ENOMEM) return mu_err_set(err, rc, "etcd: out of memory reading a reply");
    return mu_err_set(err, MU_EIO, "etcd: malformed reply (bad base64 or shape)");
  }
  return 0;
}

static void kvs_free(mu_etcd_kv *kvs, size_t n) {
  for (size_t i = 0; i < n; i++) mu__etcd_codec_kv_clear(&kvs[i]);
  free(kvs);
}

void mu__etcd_codec_result_clear(mu_etcd_result *res) {
  kvs_free(res->kvs, res->n_kvs);
  kvs_free(res->prev_kvs, res->n_prev_kvs);
  for (size_t i = 0; i < res->n_responses; i++) mu__etcd_codec_result_clear(&res->responses[i]);
  free(res->responses);
  free(res->raw);
  memset(res, 0, sizeof(*res));
}

void mu_etcd_result_free(mu_etcd_result *res) {
  if (res == NULL) return;
  mu__etcd_codec_result_clear(res);
  free(res);
}

static char *dup_bytes(const char *p, size_t n) {
  char *o = malloc(n + 1);
  if (o == NULL) return NULL;
  if (n > 0) memcpy(o, p, n);
  o[n] = '\0';
  return o;
}

static int kvs_dup(const mu_etcd_kv *src, size_t n, mu_etcd_kv **ret, size_t *ret_n) {
  if (n == 0) return 0;
  *ret = calloc(n, sizeof(**ret));
  if (*ret == NULL) return MU_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    mu_etcd_kv *d = &(*ret)[i];
    *d = src[i];
    d->key = dup_bytes(src[i].key, src[i].key_len);
    d->value = dup_bytes(src[i].value, src[i].value_len);
    *ret_n = i + 1;
    if (d->key == NULL || d->value == NULL) return MU_ENOMEM;
  }
  return 0;
}

static int result_copy(const mu_etcd_result *src, mu_etcd_result *dst) {
  *dst = *src;
  dst->kvs = dst->prev_kvs = NULL;
  dst->n_kvs = dst->n_prev_kvs = dst->n_responses = 0;
  dst->responses = NULL;
  dst->raw = NULL;
  if (kvs_dup(src->kvs, src->n_kvs, &dst->kvs, &dst->n_kvs) != 0) return MU_ENOMEM;
  if (kvs_dup(src->prev_kvs, src->n_prev_kvs, &dst->prev_kvs, &dst->n_prev_kvs) != 0) {
    return MU_ENOMEM;
  }
  if (src->raw != NULL) {
    dst->raw = strdup(src->raw);
    if (dst->raw == NULL) return MU_ENOMEM;
  }
  if (src->n_responses > 0) {
    dst->responses = calloc(src->n_responses, sizeof(*dst->responses));
    if (dst->responses == NULL) return MU_ENOMEM;
    for (size_t i = 0; i < src->n_responses; i++) {
      dst->n_responses = i + 1;
      if (result_copy(&src->responses[i], &dst->responses[i]) != 0) return MU_ENOMEM;
    }
  }
  return 0;
}

mu_etcd_result *mu_etcd_result_dup(const mu_etcd_result *res) {
  mu_etcd_result *d = calloc(1, sizeof(*d));
  if (d == NULL) return NULL;
  if (result_copy(res, d) != 0) {
    mu_etcd_result_free(d);
    return NULL;
  }
  return d;
}

int mu__etcd_client_etcd_error(const char *what, long http_status, json_t *reply, mu_err *err) {
  const char *msg = json_string_value(json_object_get(reply, "message"));
  if (msg == NULL) msg = json_string_value(json_object_get(reply, "error"));
  if (msg == NULL) {
    return mu_err_set(err, MU_EIO, "etcd %s: HTTP %ld with no etcd error in the reply", what, http_status);
  }
  int gcode = (int)mu__etcd_codec_int(reply, "code");
  int code;
  if (strstr(msg, "compacted") != NULL) code = MU_EAGAIN;
  else if (gcode == 3 || gcode == 11) code = MU_EINVAL;
  else if (gcode == 5) code = MU_ENOENT;
  else if (gcode == 7 || gcode == 16) code = MU_EPERM;
  else if (gcode == 8) code = MU_ENOSPC;
  else if (gcode == 4 || gcode == 14) code = MU_EAGAIN;
  else code = MU_EIO;
  return mu_err_set(err, code, "etcd %s: %s (gRPC code %d)", what, msg, gcode);
}

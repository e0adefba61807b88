/* The etcd-backed bundle store (musterd with etcd): a bundle's bytes as chunk keys
 * <prefix>bundles/<digest>/chunk/<n> well under etcd's request limit, then its JSON meta at
 * <prefix>bundles/<digest>/meta written LAST, all through the leader's fenced store, so a
 * half-written upload is never listed and a deposed leader writes nothing. Reads fetch the meta,
 * then the chunks a few at a time, and check size and sha256 (off the loop) before handing the
 * bytes over. list() reads keys only, then each meta. See bundle_store.h, docs/bundles.md. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "controlplane/bundles/bundle_store.h"
#include "lib/base/log.h"

#define LOG "bundles"
#define READ_WINDOW 4 /* chunk reads in flight per read() */
#define MAX_CHUNK ((size_t)1 << 20)
#define MIN_CHUNK ((size_t)4096)
#define LIST_PAGE 1000

typedef struct known {
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint64_t size;
} known;

typedef struct etcd_store etcd_store;

typedef enum { OP_PUT = 1, OP_READ, OP_REMOVE, OP_LIST } op_kind;

/* One operation in flight. Owned by the store's op list until it finishes. */
typedef struct op {
  struct op *next;
  etcd_store *s;
  op_kind kind;
  int answered; /* the caller's callback ran (maybe from close) */
  int pending;  /* etcd requests and thread-pool work outstanding */
  int failed;
  int cleared;   /* put: old keys deleted; remove: meta deleted */
  int meta_sent; /* put: the last step (the meta) is in flight */
  mu_bundle_store_done_cb done_cb;
  mu_bundle_store_read_cb read_cb;
  mu_bundle_store_list_cb list_cb;
  void *arg;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  /* put */
  mu_bundle_meta *meta;
  uint8_t *data;
  size_t chunks, next_chunk;
  uint64_t reserved;
  /* read */
  uint64_t size;
  size_t chunk_size, received;
  uv_work_t work;
  char got_digest[MU_BUNDLE_DIGEST_SIZE];
  /* list */
  int64_t revision;
  char *resume; /* next key of the keys-only listing */
  size_t resume_len;
  char **meta_keys;
  size_t n_meta_keys, cap_meta_keys, next_meta;
  known *chunk_sets; /* digest → chunk keys seen (size field counts them) */
  size_t n_sets, cap_sets;
  mu_bundle_meta **metas;
  size_t n_metas;
} op;

struct etcd_store {
  mu_bundle_store base;
  uv_loop_t *loop;
  mu_etcd_client *c;
  mu_store *st;
  char *root; /* "<prefix>bundles/" */
  size_t chunk_bytes, batch_bytes;
  uint64_t max_bytes, bytes, reserved;
  known *known;
  size_t n_known, cap_known;
  op *ops;
  int closed;
};

/* ---- bookkeeping ---- */

static known *known_find(etcd_store *s, const char *digest) {
  for (size_t i = 0; i < s->n_known; i++)
    if (strcmp(s->known[i].digest, digest) == 0) return &s->known[i];
  return NULL;
}

static void known_set(etcd_store *s, const char *digest, uint64_t size) {
  known *k = known_find(s, digest);
  if (k == NULL) {
    if (s->n_known == s->cap_known) {
      size_t cap = s->cap_known ? s->cap_known * 2 : 16;
      known *g = realloc(s->known, cap * sizeof *g);
      if (g == NULL) return; /* the cap is then checked a bit loosely; no harm */
      s->known = g;
      s->cap_known = cap;
    }
    k = &s->known[s->n_known++];
    snprintf(k->digest, sizeof k->digest, "%s", digest);
    k->size = 0;
  }
  s->bytes = s->bytes - k->size + size;
  k->size = size;
}

static void known_drop(etcd_store *s, const char *digest) {
  known *k = known_find(s, digest);
  if (k == NULL) return;
  s->bytes -= k->size;
  *k = s->known[--s->n_known];
}

static void key_of(const etcd_store *s, char *buf, size_t size, const char *digest, const char *what, long n) {
  if (n < 0) snprintf(buf, size, "%s%s/%s", s->root, digest, what);
  else snprintf(buf, size, "%s%s/chunk/%08ld", s->root, digest, n);
}

static op *op_new(etcd_store *s, op_kind kind, const char *digest, void *arg) {
  op *o = calloc(1, sizeof *o);
  if (o == NULL) return NULL;
  o->s = s;
  o->kind = kind;
  o->arg = arg;
  if (digest != NULL) snprintf(o->digest, sizeof o->digest, "%s", digest);
  o->next = s->ops;
  s->ops = o;
  return o;
}

static void store_free(etcd_store *s) {
  free(s->root);
  free(s->known);
  free(s);
}

static void op_free(op *o) {
  etcd_store *s = o->s;
  for (op **pp = &s->ops; *pp != NULL; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  s->reserved -= o->reserved;
  mu_bundle_meta_free(o->meta);
  free(o->data);
  free(o->resume);
  for (size_t i = 0; i < o->n_meta_keys; i++) free(o->meta_keys[i]);
  free(o->meta_keys);
  free(o->chunk_sets);
  for (size_t i = 0; i < o->n_metas; i++) mu_bundle_meta_free(o->metas[i]);
  free(o->metas);
  free(o);
  if (s->closed && s->ops == NULL) store_free(s);
}

/* Answers the caller once (rc != 0 → error; for reads data is taken), then frees o when
 * nothing of it is outstanding. */
static void op_answer(op *o, int rc, const char *msg, uint8_t *data, size_t len) {
  if (!o->answered) {
    o->answered = 1;
    if (o->kind == OP_READ) o->read_cb(o->arg, rc, msg, data, len);
    else if (o->kind == OP_LIST) o->list_cb(o->arg, rc, msg, NULL, 0);
    else o->done_cb(o->arg, rc, msg);
  } else {
    free(data);
  }
}

static void op_fail(op *o, int rc, const char *msg) {
  o->failed = 1;
  op_answer(o, rc, msg, NULL, 0);
  if (o->pending == 0) op_free(o);
}

/* ---- put ---- */

static void put_step(op *o);

static void on_put_batch(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  op *o = ud;
  etcd_store *s = o->s;
  (void)res;
  o->pending--;
  if (err != NULL) {
    char msg[MU_ERR_MSG_MAX + 64];
    snprintf(msg, sizeof msg, "writing %s to etcd: %s", o->digest, err->msg);
    op_fail(o, err->code ? err->code : MU_EIO, msg);
    return;
  }
  if (s->closed || o->answered) {
    op_fail(o, MU_ECANCELED, "store closed");
    return;
  }
  if (o->meta_sent) {
    known_set(s, o->digest, o->meta->size);
    op_answer(o, 0, "", NULL, 0);
    op_free(o);
    return;
  }
  put_step(o);
}

/* Adds the next step's ops to b: the digest's old keys first (left by an earlier attempt),
 * then chunks up to batch_bytes, then the meta alone — so the meta exists only once every
 * chunk does. */
static int put_fill(op *o, mu_store_batch *b, mu_err *err) {
  etcd_store *s = o->s;
  char key[512];
  if (!o->cleared) {
    o->cleared = 1;
    key_of(s, key, sizeof key, o->digest, "", -1);
    return mu_store_batch_delete(b, key, true, err);
  }
  if (o->next_chunk < o->chunks) {
    size_t bytes = 0;
    int rc = 0;
    while (rc == 0 && o->next_chunk < o->chunks && (bytes == 0 || bytes + s->chunk_bytes <= s->batch_bytes)) {
      uint64_t off = (uint64_t)o->next_chunk * s->chunk_bytes;
      size_t n = o->meta->size - off < s->chunk_bytes ? (size_t)(o->meta->size - off) : s->chunk_bytes;
      key_of(s, key, sizeof key, o->digest, NULL, (long)o->next_chunk);
      rc = mu_store_batch_put(b, key, o->data + off, n, err);
      bytes += n;
      o->next_chunk++;
    }
    return rc;
  }
  char *json = mu_bundle_meta_to_json(o->meta, o->chunks, s->chunk_bytes);
  if (json == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  key_of(s, key, sizeof key, o->digest, "meta", -1);
  int rc = mu_store_batch_put(b, key, json, strlen(json), err);
  free(json);
  o->meta_sent = 1;
  return rc;
}

static void put_step(op *o) {
  mu_err err = {0};
  mu_store_batch *b = mu_store_batch_new(o->s->st);
  int rc = b == NULL ? mu_err_set(&err, MU_ENOMEM, "out of memory") : put_fill(o, b, &err);
  if (rc != 0) {
    mu_store_batch_free(b);
  } else {
    o->pending++;
    rc = mu_store_batch_commit(b, on_put_batch, o, &err); /* consumes b */
    if (rc != 0) o->pending--;
  }
  if (rc != 0) {
    char msg[MU_ERR_MSG_MAX + 64];
    snprintf(msg, sizeof msg, "writing %s to etcd: %s", o->digest, err.msg);
    op_fail(o, rc, msg);
  }
}

static void etcd_put(mu_bundle_store *bs, const mu_bundle_meta *meta, const uint8_t *data, mu_bundle_store_done_cb cb,
                     void *arg) {
  etcd_store *s = (etcd_store *)bs;
  if (s->closed) {
    cb(arg, MU_ECANCELED, "bundle store closed");
    return;
  }
  const known *old = known_find(s, meta->digest);
  uint64_t after = s->bytes + s->reserved - (old ? old->size : 0) + meta->size;
  if (after > s->max_bytes) {
    char msg[200];
    snprintf(msg, sizeof msg, "bundle store is full (%llu of %llu bytes used; --bundle-store-size)",
             (unsigned long long)(s->bytes + s->reserved), (unsigned long long)s->max_bytes);
    cb(arg, MU_ENOSPC, msg);
    return;
  }
  /* a second put of the same digest would delete the first one's chunks under it */
  for (const op *p = s->ops; p != NULL; p = p->next)
    if (p->kind == OP_PUT && !p->answered && strcmp(p->digest, meta->digest) == 0) {
      cb(arg, MU_EAGAIN, "another upload of the same bundle is being stored; push again");
      return;
    }
  op *o = op_new(s, OP_PUT, meta->digest, arg);
  if (o == NULL) {
    cb(arg, MU_ENOMEM, "out of memory");
    return;
  }
  o->done_cb = cb;
  o->meta = mu_bundle_meta_dup(meta);
  o->data = malloc(meta->size ? meta->size : 1);
  if (o->meta == NULL || o->data == NULL) {
    op_fail(o, MU_ENOMEM, "out of memory");
    return;
  }
  memcpy(o->data, data, meta->size);
  o->chunks = (size_t)((meta->size + s->chunk_bytes - 1) / s->chunk_bytes);
  o->reserved = meta->size;
  s->reserved += meta->size;
  put_step(o);
}

/* ---- read ---- */

static void read_more(op *o);

static void hash_work(uv_work_t *w) {
  op *o = w->data;
  mu_bundle_digest(o->data, (size_t)o->size, o->got_digest);
}

static void hash_done(uv_work_t *w, int status) {
  op *o = w->data;
  etcd_store *s = o->s;
  o->pending--;
  if (status != 0 || s->closed) {
    op_fail(o, MU_ECANCELED, "store closed");
    return;
  }
  if (strcmp(o->got_digest, o->digest) != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "the chunks in etcd hash to %s, not %s (damaged)", o->got_digest, o->digest);
    mu_error(LOG, "reading %s%s/: %s", s->root, o->digest, msg);
    op_fail(o, MU_EIO, msg);
    return;
  }
  s->base.reads++;
  s->base.read_bytes += o->size;
  uint8_t *data = o->data;
  o->data = NULL;
  op_answer(o, 0, "", data, (size_t)o->size);
  op_free(o);
}

/* The common start of an etcd reply on a read or list path: counts the reply, then fails the
 * op (and returns 1) when it was stopped meanwhile or etcd answered an error. what names the
 * step for the message, with %s for the digest. */
static int op_reply_failed(op *o, int stopped, const mu_etcd_result *res, const mu_err *err, const char *what) {
  o->pending--;
  if (stopped) {
    op_fail(o, MU_ECANCELED, "store closed");
    return 1;
  }
  if (res == NULL) {
    char step[256], msg[MU_ERR_MSG_MAX + 300];
    snprintf(step, sizeof step, what, o->digest);
    snprintf(msg, sizeof msg, "%s: %s", step, err->msg);
    op_fail(o, err->code ? err->code : MU_EIO, msg);
    return 1;
  }
  return 0;
}

static void on_chunk(void *ud, const mu_etcd_result *res, const mu_err *err) {
  op *o = ud;
  etcd_store *s = o->s;
  if (op_reply_failed(o, o->failed || s->closed, res, err, "reading a chunk of %s from etcd")) return;
  char msg[MU_ERR_MSG_MAX + 200];
  long n = -1;
  const char *tail = res->n_kvs == 1 ? strrchr(res->kvs[0].key, '/') : NULL;
  if (tail != NULL) n = strtol(tail + 1, NULL, 10);
  uint64_t off = (uint64_t)(n < 0 ? 0 : n) * o->chunk_size;
  uint64_t want = off < o->size ? o->size - off : 0;
  if (want > o->chunk_size) want = o->chunk_size;
  if (n < 0 || (size_t)n >= o->chunks || res->kvs[0].value_len != want) {
    snprintf(msg, sizeof msg, "bundle %s: chunk %zu is %s in etcd (want %llu bytes)", o->digest, o->received,
             res->n_kvs == 0 ? "missing" : "the wrong size", (unsigned long long)want);
    mu_error(LOG, "%s", msg);
    op_fail(o, MU_EIO, msg);
    return;
  }
  memcpy(o->data + off, res->kvs[0].value, (size_t)want);
  o->received++;
  read_more(o);
}

/* Keeps up to READ_WINDOW chunk reads in flight; one response is one chunk. */
static void read_more(op *o) {
  etcd_store *s = o->s;
  char key[512];
  while (o->next_chunk < o->chunks && o->pending < READ_WINDOW) {
    mu_err err = {0};
    key_of(s, key, sizeof key, o->digest, NULL, (long)o->next_chunk);
    mu_etcd_range_req req = {.key = key, .revision = o->revision};
    if (mu_etcd_range(s->c, &req, on_chunk, o, &err) != 0) {
      char msg[MU_ERR_MSG_MAX + 64];
      snprintf(msg, sizeof msg, "reading %s from etcd: %s", o->digest, err.msg);
      op_fail(o, err.code, msg);
      return;
    }
    o->pending++;
    o->next_chunk++;
  }
  if (o->received == o->chunks && o->pending == 0) {
    o->work.data = o;
    if (uv_queue_work(s->loop, &o->work, hash_work, hash_done) != 0) {
      op_fail(o, MU_EIO, "cannot start the digest check");
      return;
    }
    o->pending++;
  }
}

static void on_read_meta(void *ud, const mu_etcd_result *res, const mu_err *err) {
  op *o = ud;
  etcd_store *s = o->s;
  char msg[MU_ERR_MSG_MAX + 200];
  mu_err e = {0};
  if (op_reply_failed(o, s->closed, res, err, "reading %s from etcd")) return;
  if (res->n_kvs == 0) {
    op_fail(o, MU_ENOENT, "bundle not stored");
    return;
  }
  mu_bundle_meta *m = NULL;
  if (mu_bundle_meta_from_json(res->kvs[0].value, res->kvs[0].value_len, o->digest, &m, &o->chunks, &o->chunk_size,
                               &e) != 0) {
    snprintf(msg, sizeof msg, "%s: %s", res->kvs[0].key, e.msg);
    mu_error(LOG, "%s", msg);
    op_fail(o, MU_EIO, msg);
    return;
  }
  o->size = m->size;
  mu_bundle_meta_free(m);
  if (o->size > s->max_bytes || o->chunk_size > MAX_CHUNK) {
    snprintf(msg, sizeof msg, "bundle %s: meta says %llu bytes in chunks of %zu, over the bounds", o->digest,
             (unsigned long long)o->size, o->chunk_size);
    op_fail(o, MU_EIO, msg);
    return;
  }
  o->revision = res->revision; /* every chunk from the same snapshot as the meta */
  o->data = malloc(o->size ? (size_t)o->size : 1);
  if (o->data == NULL) {
    op_fail(o, MU_ENOMEM, "out of memory");
    return;
  }
  o->next_chunk = 0;
  read_more(o);
}

static void etcd_read(mu_bundle_store *bs, const char *digest, mu_bundle_store_read_cb cb, void *arg) {
  etcd_store *s = (etcd_store *)bs;
  char key[512];
  mu_err err = {0};
  if (s->closed) {
    cb(arg, MU_ECANCELED, "bundle store closed", NULL, 0);
    return;
  }
  op *o = op_new(s, OP_READ, digest, arg);
  if (o == NULL) {
    cb(arg, MU_ENOMEM, "out of memory", NULL, 0);
    return;
  }
  o->read_cb = cb;
  key_of(s, key, sizeof key, digest, "meta", -1);
  if (mu_etcd_range(s->c, &(mu_etcd_range_req){.key = key}, on_read_meta, o, &err) != 0) {
    op_fail(o, err.code, err.msg);
    return;
  }
  o->pending++;
}

/* ---- remove ---- */

static void on_removed(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  op *o = ud;
  etcd_store *s = o->s;
  (void)res;
  o->pending--;
  if (err != NULL) {
    char msg[MU_ERR_MSG_MAX + 64];
    snprintf(msg, sizeof msg, "removing %s from etcd: %s", o->digest, err->msg);
    op_fail(o, err->code ? err->code : MU_EIO, msg);
    return;
  }
  if (!o->cleared) { /* the meta is gone: the bundle is unlisted; now its chunks */
    mu_err e = {0};
    char key[512];
    o->cleared = 1;
    known_drop(s, o->digest);
    key_of(s, key, sizeof key, o->digest, "", -1);
    mu_store_batch *b = mu_store_batch_new(s->st);
    int rc = b == NULL ? mu_err_set(&e, MU_ENOMEM, "out of memory") : mu_store_batch_delete(b, key, true, &e);
    if (rc == 0) {
      o->pending++;
      rc = mu_store_batch_commit(b, on_removed, o, &e);
      b = NULL;
      if (rc != 0) o->pending--;
    }
    mu_store_batch_free(b);
    if (rc != 0) {
      mu_warn(LOG, "%s%s/chunk/: left behind (%s)", s->root, o->digest, e.msg);
      op_answer(o, 0, "", NULL, 0); /* unlisted already: the remove itself worked */
      op_free(o);
    }
    return;
  }
  op_answer(o, 0, "", NULL, 0);
  op_free(o);
}

static void etcd_remove(mu_bundle_store *bs, const char *digest, mu_bundle_store_done_cb cb, void *arg) {
  etcd_store *s = (etcd_store *)bs;
  char key[512];
  mu_err err = {0};
  if (s->closed) {
    cb(arg, MU_ECANCELED, "bundle store closed");
    return;
  }
  op *o = op_new(s, OP_REMOVE, digest, arg);
  if (o == NULL) {
    cb(arg, MU_ENOMEM, "out of memory");
    return;
  }
  o->done_cb = cb;
  key_of(s, key, sizeof key, digest, "meta", -1);
  mu_store_batch *b = mu_store_batch_new(s->st);
  int rc = b == NULL ? mu_err_set(&err, MU_ENOMEM, "out of memory") : mu_store_batch_delete(b, key, false, &err);
  if (rc == 0) {
    o->pending++;
    rc = mu_store_batch_commit(b, on_removed, o, &err);
    b = NULL;
    if (rc != 0) o->pending--;
  }
  mu_store_batch_free(b);
  if (rc != 0) op_fail(o, rc, err.msg);
}

/* ---- list ---- */

static void list_next_page(op *o);

/* Finds or adds digest's entry in o->chunk_sets and counts one chunk key. */
static int list_count_chunk(op *o, const char *digest) {
  for (size_t i = 0; i < o->n_sets; i++)
    if (strcmp(o->chunk_sets[i].digest, digest) == 0) {
      o->chunk_sets[i].size++;
      return 0;
    }
  if (o->n_sets == o->cap_sets) {
    size_t cap = o->cap_sets ? o->cap_sets * 2 : 16;
    known *g = realloc(o->chunk_sets, cap * sizeof *g);
    if (g == NULL) return MU_ENOMEM;
    o->chunk_sets = g;
    o->cap_sets = cap;
  }
  snprintf(o->chunk_sets[o->n_sets].digest, MU_BUNDLE_DIGEST_SIZE, "%s", digest);
  o->chunk_sets[o->n_sets++].size = 1;
  return 0;
}

static uint64_t list_chunks_of(const op *o, const char *digest) {
  for (size_t i = 0; i < o->n_sets; i++)
    if (strcmp(o->chunk_sets[i].digest, digest) == 0) return o->chunk_sets[i].size;
  return 0;
}

/* Every meta has been read: report the good ones, log chunk sets nobody lists. */
static void list_finish(op *o) {
  etcd_store *s = o->s;
  for (size_t i = 0; i < o->n_sets; i++) {
    int listed = 0;
    for (size_t j = 0; j < o->n_metas; j++) listed |= strcmp(o->metas[j]->digest, o->chunk_sets[i].digest) == 0;
    if (!listed)
      mu_warn(LOG,
              "%s%s/chunk/: %llu chunk keys without a good meta (an interrupted upload?); "
              "ignored until the bundle is pushed again",
              s->root, o->chunk_sets[i].digest, (unsigned long long)o->chunk_sets[i].size);
  }
  s->n_known = 0;
  s->bytes = 0;
  for (size_t j = 0; j < o->n_metas; j++) known_set(s, o->metas[j]->digest, o->metas[j]->size);
  o->answered = 1;
  o->list_cb(o->arg, 0, "", o->metas, o->n_metas);
  op_free(o);
}

static void list_next_meta(op *o);

static void on_list_meta(void *ud, const mu_etcd_result *res, const mu_err *err) {
  op *o = ud;
  etcd_store *s = o->s;
  if (op_reply_failed(o, s->closed || o->answered, res, err, "listing bundles in etcd")) return;
  const char *key = o->meta_keys[o->next_meta - 1];
  mu_bundle_meta *m = NULL;
  size_t chunks = 0;
  mu_err e = {0};
  char digest[MU_BUNDLE_DIGEST_SIZE];
  size_t rl = strlen(s->root), kl = strlen(key);
  snprintf(digest, sizeof digest, "%.*s", (int)(kl - rl - strlen("/meta")), key + rl);
  if (res->n_kvs == 0) {
    /* removed since the listing: nothing to report */
  } else if (mu_bundle_meta_from_json(res->kvs[0].value, res->kvs[0].value_len, digest, &m, &chunks, NULL, &e) != 0) {
    mu_warn(LOG, "%s: %s; ignored", key, e.msg);
  } else if (list_chunks_of(o, digest) != chunks) {
    mu_warn(LOG, "%s: the meta names %zu chunks but etcd holds %llu; ignored", key, chunks,
            (unsigned long long)list_chunks_of(o, digest));
    mu_bundle_meta_free(m);
  } else {
    o->metas[o->n_metas++] = m;
  }
  list_next_meta(o);
}

/* Reads the metas one at a time (each is small), at the listing's revision. */
static void list_next_meta(op *o) {
  etcd_store *s = o->s;
  if (o->next_meta == o->n_meta_keys) {
    list_finish(o);
    return;
  }
  mu_err err = {0};
  const char *key = o->meta_keys[o->next_meta++];
  if (mu_etcd_range(s->c, &(mu_etcd_range_req){.key = key, .revision = o->revision}, on_list_meta, o, &err) != 0) {
    op_fail(o, err.code, err.msg);
    return;
  }
  o->pending++;
}

static int list_take_key(op *o, const mu_etcd_kv *kv) {
  etcd_store *s = o->s;
  size_t rl = strlen(s->root);
  const char *rel = kv->key + rl;
  const char *slash = strchr(rel, '/');
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_err e = {0};
  if (kv->key_len <= rl || slash == NULL || (size_t)(slash - rel) >= sizeof digest) {
    mu_warn(LOG, "%.*s: not a bundle key; ignored", (int)kv->key_len, kv->key);
    return 0;
  }
  snprintf(digest, sizeof digest, "%.*s", (int)(slash - rel), rel);
  if (mu_bundle_digest_check(digest, &e) != 0) {
    mu_warn(LOG, "%.*s: %s; ignored", (int)kv->key_len, kv->key, e.msg);
    return 0;
  }
  if (strncmp(slash, "/chunk/", 7) == 0) return list_count_chunk(o, digest);
  if (strcmp(slash, "/meta") != 0) {
    mu_warn(LOG, "%.*s: not a bundle key; ignored", (int)kv->key_len, kv->key);
    return 0;
  }
  if (o->n_meta_keys == o->cap_meta_keys) {
    size_t cap = o->cap_meta_keys ? o->cap_meta_keys * 2 : 16;
    char **g = realloc(o->meta_keys, cap * sizeof *g);
    if (g == NULL) return MU_ENOMEM;
    o->meta_keys = g;
    o->cap_meta_keys = cap;
  }
  o->meta_keys[o->n_meta_keys] = strdup(kv->key);
  if (o->meta_keys[o->n_meta_keys] == NULL) return MU_ENOMEM;
  o->n_meta_keys++;
  return 0;
}

static void on_list_page(void *ud, const mu_etcd_result *res, const mu_err *err) {
  op *o = ud;
  etcd_store *s = o->s;
  if (op_reply_failed(o, s->closed || o->answered, res, err, "listing bundles in etcd")) return;
  if (o->revision == 0) o->revision = res->revision;
  for (size_t i = 0; i < res->n_kvs; i++)
    if (list_take_key(o, &res->kvs[i]) != 0) {
      op_fail(o, MU_ENOMEM, "out of memory listing bundles");
      return;
    }
  if (!res->more || res->n_kvs == 0) {
    o->metas = calloc(o->n_meta_keys + 1, sizeof *o->metas);
    if (o->metas == NULL) {
      op_fail(o, MU_ENOMEM, "out of memory listing bundles");
      return;
    }
    list_next_meta(o);
    return;
  }
  const mu_etcd_kv *last = &res->kvs[res->n_kvs - 1];
  free(o->resume);
  o->resume = malloc(last->key_len + 1);
  if (o->resume == NULL) {
    op_fail(o, MU_ENOMEM, "out of memory listing bundles");
    return;
  }
  memcpy(o->resume, last->key, last->key_len);
  o->resume[last->key_len] = '\0'; /* key + NUL: the next key after it */
  o->resume_len = last->key_len + 1;
  list_next_page(o);
}

static void list_next_page(op *o) {
  etcd_store *s = o->s;
  mu_err err = {0};
  size_t rl = strlen(s->root);
  char end[512];
  snprintf(end, sizeof end, "%s", s->root);
  end[rl - 1]++; /* the root ends in '/': its range end is the same with '0' */
  mu_etcd_range_req req = {.key = o->resume ? o->resume : s->root,
                           .key_len = o->resume ? o->resume_len : rl,
                           .range_end = end,
                           .limit = LIST_PAGE,
                           .revision = o->revision,
                           .keys_only = true};
  if (mu_etcd_range(s->c, &req, on_list_page, o, &err) != 0) {
    op_fail(o, err.code, err.msg);
    return;
  }
  o->pending++;
}

static void etcd_list(mu_bundle_store *bs, mu_bundle_store_list_cb cb, void *arg) {
  etcd_store *s = (etcd_store *)bs;
  if (s->closed) {
    cb(arg, MU_ECANCELED, "bundle store closed", NULL, 0);
    return;
  }
  op *o = op_new(s, OP_LIST, NULL, arg);
  if (o == NULL) {
    cb(arg, MU_ENOMEM, "out of memory", NULL, 0);
    return;
  }
  o->list_cb = cb;
  list_next_page(o);
}

/* ---- life cycle ---- */

static void etcd_close(mu_bundle_store *bs) {
  etcd_store *s = (etcd_store *)bs;
  s->closed = 1;
  for (op *o = s->ops; o != NULL; o = o->next) op_answer(o, MU_ECANCELED, "bundle store closed", NULL, 0);
  if (s->ops == NULL) store_free(s);
  /* else freed by the last op's callback (the etcd client answers each one) */
}

static const mu_bundle_store_ops etcd_ops = {
    .kind = "etcd",
    .put = etcd_put,
    .read = etcd_read,
    .remove = etcd_remove,
    .list = etcd_list,
    .close = etcd_close,
};

int mu_bundle_store_etcd_new(uv_loop_t *loop, mu_etcd_client *etcd, mu_store *store,
                             const mu_bundle_store_etcd_config *cfg, mu_bundle_store **ret, mu_err *err) {
  size_t chunk = cfg->chunk_bytes ? cfg->chunk_bytes : MU_BUNDLE_STORE_ETCD_CHUNK;
  size_t plen = cfg->prefix ? strlen(cfg->prefix) : 0;
  if (plen == 0 || cfg->prefix[plen - 1] != '/' || plen > 200)
    return mu_err_set(err, MU_EINVAL, "bundle store: prefix '%s' must end with '/' (at most 200 bytes)",
                      cfg->prefix ? cfg->prefix : "");
  if (chunk < MIN_CHUNK || chunk > MAX_CHUNK)
    return mu_err_set(err, MU_EINVAL, "bundle store: chunk size %zu is not between 4K and 1M", chunk);
  if (sodium_init() < 0) return mu_err_set(err, MU_EIO, "bundle store: libsodium cannot start");
  etcd_store *s = calloc(1, sizeof *s);
  if (s != NULL) s->root = malloc(plen + sizeof "bundles/");
  if (s == NULL || s->root == NULL) {
    free(s);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  snprintf(s->root, plen + sizeof "bundles/", "%sbundles/", cfg->prefix);
  s->base.ops = &etcd_ops;
  s->loop = loop;
  s->c = etcd;
  s->st = store;
  s->chunk_bytes = chunk;
  s->batch_bytes = cfg->batch_bytes ? cfg->batch_bytes : (size_t)8 << 20;
  if (s->batch_bytes < chunk) s->batch_bytes = chunk;
  s->max_bytes = cfg->max_bytes;
  *ret = &s->base;
  return 0;
}

/* The control plane's bundle index: every stored bundle's meta in memory (loaded from the
 * store at start), lookups by digest or name@version for job submission, the "still used by
 * a job" check, the musterd flags and the life cycle of d->bundles. Upload, list and delete
 * are in bundle_admin.c; serving agents in bundle_serve.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/bundles/bundles_int.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/scheduler.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

void mu_bundles_config_init(mu_bundles_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->max_bundle_bytes = 256ull << 20;
  cfg->max_store_bytes = 4ull << 30;
  cfg->chunk_bytes = 1u << 20;
  cfg->store_chunk_bytes = MU_BUNDLE_STORE_ETCD_CHUNK;
  cfg->window_bytes = 4u << 20;
  cfg->serve_queue_bytes = 64ull << 20;
  cfg->max_uploads = 4;
  cfg->serve_cache_bytes = 1ull << 30;
  mu_strlist_init(&cfg->trust_keys);
}

void mu_bundles_config_free(mu_bundles_config *cfg) { mu_strlist_free(&cfg->trust_keys); }

bool mu_bundles_config_has(const char *name) {
  return strcmp(name, "trust-key") == 0 || strcmp(name, "max-bundle-size") == 0 ||
         strcmp(name, "bundle-store-size") == 0 || strcmp(name, "bundle-etcd-chunk") == 0 ||
         strcmp(name, "bundle-serve-queue") == 0;
}

int mu_bundles_config_set(mu_bundles_config *cfg, const char *name, const char *value, mu_err *err) {
  int rc = 0;
  if (strcmp(name, "trust-key") == 0) {
    rc = mu_strlist_append(&cfg->trust_keys, value, err);
  } else {
    uint64_t v = 0;
    rc = mu_size_parse(value, &v, err);
    if (rc == 0 && v < 1024) rc = mu_err_set(err, MU_EINVAL, "must be at least 1K, got \"%s\"", value);
    if (rc == 0 && strcmp(name, "max-bundle-size") == 0) cfg->max_bundle_bytes = v;
    if (rc == 0 && strcmp(name, "bundle-store-size") == 0) cfg->max_store_bytes = v;
    if (rc == 0 && strcmp(name, "bundle-serve-queue") == 0) {
      if (v < (1u << 20)) rc = mu_err_set(err, MU_EINVAL, "must be at least 1M (one chunk), got \"%s\"", value);
      else cfg->serve_queue_bytes = v;
    }
    if (rc == 0 && strcmp(name, "bundle-etcd-chunk") == 0) {
      if (v < 4096 || v > (1u << 20))
        rc = mu_err_set(err, MU_EINVAL, "must be between 4K and 1M (etcd's request limit), got \"%s\"", value);
      else cfg->store_chunk_bytes = (size_t)v;
    }
  }
  if (rc != 0) mu_err_prefix(err, "--%s", name);
  return rc;
}

mu_bundle_meta *mu_bundles_find(mu_bundles *b, const char *digest) {
  for (size_t i = 0; b != NULL && i < b->n; i++)
    if (strcmp(b->metas[i]->digest, digest) == 0) return b->metas[i];
  return NULL;
}

mu_bundle_meta *mu_bundles_lookup(mu_bundles *b, const char *ref, char *msg, size_t msg_size) {
  if (strncmp(ref, MU_BUNDLE_DIGEST_PREFIX, strlen(MU_BUNDLE_DIGEST_PREFIX)) == 0) {
    mu_err e = {0};
    if (mu_bundle_digest_check(ref, &e) != 0) {
      snprintf(msg, msg_size, "bundle '%.100s': %s", ref, e.msg);
      return NULL;
    }
    mu_bundle_meta *m = mu_bundles_find(b, ref);
    if (m == NULL) snprintf(msg, msg_size, "bundle '%s' not found", ref);
    return m;
  }
  const char *at = strchr(ref, '@');
  if (at == NULL || at == ref || at[1] == '\0') {
    snprintf(msg, msg_size, "bundle '%.200s': expected NAME@VERSION or sha256:<hex>", ref);
    return NULL;
  }
  size_t name_len = (size_t)(at - ref);
  for (size_t i = 0; b != NULL && i < b->n; i++) {
    const mu_bundle_meta *m = b->metas[i];
    if (strlen(m->name) == name_len && strncmp(m->name, ref, name_len) == 0 && strcmp(m->version, at + 1) == 0)
      return b->metas[i];
  }
  snprintf(msg, msg_size, "bundle '%.200s' not found", ref);
  return NULL;
}

int mu_bundles_index_add(mu_bundles *b, const mu_bundle_meta *meta) {
  if (mu_bundles_find(b, meta->digest) != NULL) return 0;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    mu_bundle_meta **g = realloc(b->metas, cap * sizeof *g);
    if (g == NULL) return MU_ENOMEM;
    b->metas = g;
    b->cap = cap;
  }
  mu_bundle_meta *copy = mu_bundle_meta_dup(meta);
  if (copy == NULL) return MU_ENOMEM;
  b->metas[b->n++] = copy;
  return 0;
}

void mu_bundles_index_remove(mu_bundles *b, const char *digest) {
  for (size_t i = 0; i < b->n; i++) {
    if (strcmp(b->metas[i]->digest, digest) != 0) continue;
    mu_bundle_meta_free(b->metas[i]);
    memmove(&b->metas[i], &b->metas[i + 1], (b->n - i - 1) * sizeof *b->metas);
    b->n--;
    return;
  }
}

const char *mu_bundles_used_by(mu_bundles *b, const char *digest) {
  for (mu_job *job = b->d->sched->jobs; job != NULL; job = job->next) {
    if (mu_job_finished(job)) continue;
    for (size_t i = 0; i < job->spec->n_tasks; i++) {
      const char *ref = job->spec->tasks[i]->bundle;
      char msg[300];
      if (ref[0] == '\0') continue;
      const mu_bundle_meta *m = mu_bundles_lookup(b, ref, msg, sizeof msg);
      if (m != NULL && strcmp(m->digest, digest) == 0) return job->id;
    }
  }
  return NULL;
}

int mu_bundles_resolve_cb(void *ud, const char *ref, char *msg, size_t msg_size) {
  mu_daemon *d = ud;
  return mu_bundles_lookup(d->bundles, ref, msg, msg_size) == NULL ? MU_ENOENT : 0;
}

void mu_bundles_digest_of(mu_daemon *d, const char *ref, char ret_digest[MU_BUNDLE_DIGEST_SIZE]) {
  char msg[300];
  const mu_bundle_meta *m = mu_bundles_lookup(d->bundles, ref, msg, sizeof msg);
  snprintf(ret_digest, MU_BUNDLE_DIGEST_SIZE, "%s", m ? m->digest : "");
}

typedef struct reload_ctx {
  mu_bundles *b;
  uint64_t gen;
  mu_bundles_reload_cb cb;
  void *ud;
} reload_ctx;

static void on_listed(void *arg, int rc, const char *msg, mu_bundle_meta *const *metas, size_t n) {
  reload_ctx *rc_ctx = arg;
  mu_bundles *b = rc_ctx->b;
  mu_bundles_reload_cb cb = rc_ctx->cb;
  void *ud = rc_ctx->ud;
  uint64_t gen = rc_ctx->gen;
  free(rc_ctx);
  if (rc != 0) {
    mu_error("bundles", "cannot list stored bundles: %s", msg);
    if (cb) cb(ud, rc, msg);
    return;
  }
  if (gen != b->reload_gen || b->closing) {
    if (cb) cb(ud, MU_ECANCELED, "superseded by a newer reload");
    return;
  }
  /* bundles gone from the store stop being served */
  for (size_t i = 0; i < b->n;) {
    int kept = 0;
    for (size_t j = 0; j < n && !kept; j++) kept = strcmp(metas[j]->digest, b->metas[i]->digest) == 0;
    if (kept) {
      i++;
      continue;
    }
    char digest[MU_BUNDLE_DIGEST_SIZE];
    snprintf(digest, sizeof digest, "%s", b->metas[i]->digest);
    mu_bundles_index_remove(b, digest);
    mu_bundles_serve_forget(b, digest, "the bundle is no longer stored on the control plane");
  }
  for (size_t i = 0; i < n; i++)
    if (mu_bundles_index_add(b, metas[i]) != 0) {
      mu_error("bundles", "out of memory loading the index");
      if (cb) cb(ud, MU_ENOMEM, "out of memory loading the bundle index");
      return;
    }
  mu_info("bundles", "index loaded from the %s store: %zu bundles", b->store->ops->kind, b->n);
  if (cb) cb(ud, 0, "");
}

void mu_bundles_reload(mu_daemon *d, mu_bundles_reload_cb cb, void *ud) {
  mu_bundles *b = d->bundles;
  if (b == NULL) {
    if (cb) cb(ud, MU_EAGAIN, "bundles are not started yet");
    return;
  }
  if (b->closing) {
    if (cb) cb(ud, MU_ECANCELED, "stopping");
    return;
  }
  reload_ctx *rc_ctx = calloc(1, sizeof *rc_ctx);
  if (rc_ctx == NULL) {
    if (cb) cb(ud, MU_ENOMEM, "out of memory");
    return;
  }
  *rc_ctx = (reload_ctx){.b = b, .gen = ++b->reload_gen, .cb = cb, .ud = ud};
  b->store->ops->list(b->store, on_listed, rc_ctx);
}

void mu_bundles_apply_event(mu_daemon *d, const char *rel, const char *value, size_t len, int is_put) {
  mu_bundles *b = d->bundles;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  int n = 0;
  if (b == NULL || sscanf(rel, "bundles/%71[^/]%n", digest, &n) != 1 || strcmp(rel + n, "/meta") != 0)
    return; /* chunks, or nothing of ours */
  if (!is_put) {
    mu_bundles_index_remove(b, digest);
    mu_bundles_serve_forget(b, digest, "the bundle was removed from the control plane");
    return;
  }
  mu_bundle_meta *m = NULL;
  mu_err err = {0};
  if (mu_bundle_meta_from_json(value, len, digest, &m, NULL, NULL, &err) != 0) {
    mu_warn("bundles", "%s%s: %s; ignored", d->cfg.etcd_prefix, rel, err.msg);
    return;
  }
  if (mu_bundles_index_add(b, m) != 0) mu_error("bundles", "out of memory indexing %s", digest);
  mu_bundle_meta_free(m);
}

void mu_bundles_stats_get(const mu_daemon *d, mu_bundles_stats *ret) {
  const mu_bundles *b = d->bundles;
  memset(ret, 0, sizeof *ret);
  if (b == NULL) return;
  ret->bundles = b->n;
  for (size_t i = 0; i < b->n; i++) ret->bytes += b->metas[i]->size;
  ret->store_reads = b->store->reads;
  ret->store_read_bytes = b->store->read_bytes;
  for (const mu_transfer *t = b->transfers; t != NULL; t = t->next) ret->transfers++;
  ret->serve_cache_bytes = b->entry_bytes;
  ret->served_bytes = b->served_bytes;
  ret->served_bundles = b->served_bundles;
}

int mu_bundles_start(mu_daemon *d, mu_bundle_store *store, mu_err *err) {
  mu_bundles *b = calloc(1, sizeof *b);
  if (b == NULL) {
    store->ops->close(store);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  b->d = d;
  b->cfg = d->bundle_cfg;
  b->store = store;
  d->bundles = b;
  if (b->cfg->trust_keys.n > 0) {
    int rc = mu_trust_set_new(b->cfg->trust_keys.n, &b->trust, err);
    for (size_t i = 0; rc == 0 && i < b->cfg->trust_keys.n; i++)
      rc = mu_trust_set_add_file(b->trust, b->cfg->trust_keys.items[i], err);
    if (rc != 0) {
      mu_err_prefix(err, "--trust-key");
      return rc;
    }
  }
  mu_bundles_serve_init(b);
  if (d->cluster->role == MU_ROLE_SINGLE) mu_bundles_reload(d, NULL, NULL);
  mu_info("bundles", "%s store, %zu bundles, size cap %llu bytes, %zu trusted keys", store->ops->kind, b->n,
          (unsigned long long)b->cfg->max_bundle_bytes, b->trust ? mu_trust_set_count(b->trust) : 0);
  return 0;
}

void mu_bundles_stop(mu_daemon *d) {
  if (d->bundles != NULL && !d->bundles->closing) mu_bundles_serve_close(d->bundles);
}

void mu_bundles_free(mu_daemon *d) {
  mu_bundles *b = d->bundles;
  if (b == NULL) return;
  d->bundles = NULL;
  for (size_t i = 0; i < b->n; i++) mu_bundle_meta_free(b->metas[i]);
  free(b->metas);
  mu_trust_set_free(b->trust);
  b->store->ops->close(b->store);
  free(b);
}

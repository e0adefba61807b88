/* The in-memory bundle store (musterd without etcd): every bundle's bytes and meta in one
 * malloc'd block each, bounded by a total byte cap. Callbacks run before the calls return.
 * See bundle_store.h for the interface the etcd-backed store shares. */
#include "controlplane/bundles/bundle_store.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem_entry {
  mu_bundle_meta *meta;
  uint8_t *data;
} mem_entry;

typedef struct mem_store {
  mu_bundle_store base;
  mem_entry *entries;
  size_t n, cap;
  uint64_t bytes, max_bytes;
} mem_store;

static mem_entry *mem_find(mem_store *m, const char *digest) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->entries[i].meta->digest, digest) == 0) return &m->entries[i];
  return NULL;
}

static void mem_drop(mem_store *m, mem_entry *e) {
  m->bytes -= e->meta->size;
  mu_bundle_meta_free(e->meta);
  free(e->data);
  *e = m->entries[--m->n];
}

static void mem_put(mu_bundle_store *s, const mu_bundle_meta *meta, const uint8_t *data, mu_bundle_store_done_cb cb,
                    void *arg) {
  mem_store *m = (mem_store *)s;
  mem_entry *old = mem_find(m, meta->digest);
  uint64_t after = m->bytes - (old ? old->meta->size : 0) + meta->size;
  if (after > m->max_bytes) {
    cb(arg, MU_ENOSPC, "bundle store is full (in-memory cap reached)");
    return;
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    mem_entry *g = realloc(m->entries, cap * sizeof *g);
    if (g == NULL) {
      cb(arg, MU_ENOMEM, "out of memory");
      return;
    }
    m->entries = g;
    m->cap = cap;
    old = mem_find(m, meta->digest);
  }
  mem_entry e = {mu_bundle_meta_dup(meta), malloc(meta->size ? meta->size : 1)};
  if (e.meta == NULL || e.data == NULL) {
    mu_bundle_meta_free(e.meta);
    free(e.data);
    cb(arg, MU_ENOMEM, "out of memory");
    return;
  }
  memcpy(e.data, data, meta->size);
  if (old != NULL) mem_drop(m, old);
  m->entries[m->n++] = e;
  m->bytes += meta->size;
  cb(arg, 0, "");
}

static void mem_read(mu_bundle_store *s, const char *digest, mu_bundle_store_read_cb cb, void *arg) {
  mem_store *m = (mem_store *)s;
  mem_entry *e = mem_find(m, digest);
  if (e == NULL) {
    cb(arg, MU_ENOENT, "bundle not stored", NULL, 0);
    return;
  }
  uint8_t *copy = malloc(e->meta->size ? e->meta->size : 1);
  if (copy == NULL) {
    cb(arg, MU_ENOMEM, "out of memory", NULL, 0);
    return;
  }
  memcpy(copy, e->data, e->meta->size);
  s->reads++;
  s->read_bytes += e->meta->size;
  cb(arg, 0, "", copy, e->meta->size);
}

static void mem_remove(mu_bundle_store *s, const char *digest, mu_bundle_store_done_cb cb, void *arg) {
  mem_store *m = (mem_store *)s;
  mem_entry *e = mem_find(m, digest);
  if (e != NULL) mem_drop(m, e);
  cb(arg, 0, "");
}

static void mem_list(mu_bundle_store *s, mu_bundle_store_list_cb cb, void *arg) {
  mem_store *m = (mem_store *)s;
  mu_bundle_meta **metas = calloc(m->n + 1, sizeof *metas);
  if (metas == NULL) {
    cb(arg, MU_ENOMEM, "out of memory", NULL, 0);
    return;
  }
  for (size_t i = 0; i < m->n; i++) metas[i] = m->entries[i].meta;
  cb(arg, 0, "", metas, m->n);
  free(metas);
}

static void mem_close(mu_bundle_store *s) {
  mem_store *m = (mem_store *)s;
  while (m->n > 0) mem_drop(m, &m->entries[0]);
  free(m->entries);
  free(m);
}

static const mu_bundle_store_ops mem_ops = {
    .kind = "memory",
    .put = mem_put,
    .read = mem_read,
    .remove = mem_remove,
    .list = mem_list,
    .close = mem_close,
};

int mu_bundle_store_mem_new(uint64_t max_bytes, mu_bundle_store **ret, mu_err *err) {
  mem_store *m = calloc(1, sizeof *m);
  if (m == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  m->base.ops = &mem_ops;
  m->max_bytes = max_bytes;
  *ret = &m->base;
  return 0;
}

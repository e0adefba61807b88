/* Where the control plane keeps uploaded bundles: a small asynchronous interface so the
 * in-memory store (--no-etcd mode, this file's mu_bundle_store_mem_new) and an etcd-backed
 * one (chunks under <prefix>bundles/<digest>/chunk/<n>, meta at bundles/<digest>/meta) are
 * interchangeable. The control plane keeps every bundle's meta in memory; the store holds the
 * bytes. Loop thread only. */
#ifndef MU_CP_BUNDLE_STORE_H
#define MU_CP_BUNDLE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "controlplane/ha/store.h"
#include "lib/base/err.h"
#include "lib/bundle/bundle.h"
#include "lib/etcd/etcd.h"
#include "lib/bundle/keys.h"

/* What the control plane knows about one stored bundle. All strings owned; free with
 * mu_bundle_meta_free. */
typedef struct mu_bundle_meta {
  char digest[MU_BUNDLE_DIGEST_SIZE];
  char *name;
  char *version;
  char key_id[MU_KEY_ID_SIZE]; /* "" when unsigned */
  uint64_t size;
  int64_t uploaded_at_ms;
  uint8_t *sig; /* the .sig file bytes; NULL when unsigned */
  size_t sig_len;
} mu_bundle_meta;

/* Deep copy (NULL when out of memory); caller frees with mu_bundle_meta_free. */
mu_bundle_meta *mu_bundle_meta_dup(const mu_bundle_meta *m);
/* Frees m and what it owns; NULL is fine. */
void mu_bundle_meta_free(mu_bundle_meta *m);

typedef struct mu_bundle_store mu_bundle_store;

/* Completion of put/remove: rc 0 or a MU_E* code with msg (borrowed, never NULL). */
typedef void (*mu_bundle_store_done_cb)(void *arg, int rc, const char *msg);
/* Completion of read: on success data (taken by the callback: free()) holds len bytes. */
typedef void (*mu_bundle_store_read_cb)(void *arg, int rc, const char *msg, uint8_t *data, size_t len);
/* One meta per stored bundle, at start-up: metas (each borrowed during the call). */
typedef void (*mu_bundle_store_list_cb)(void *arg, int rc, const char *msg, mu_bundle_meta *const *metas, size_t n);

/* Every operation's callback runs exactly once; it may run before the call returns. */
typedef struct mu_bundle_store_ops {
  const char *kind; /* "memory", "etcd" */
  /* Stores meta and data (both copied). Storing a digest that is present replaces it. */
  void (*put)(mu_bundle_store *s, const mu_bundle_meta *meta, const uint8_t *data, mu_bundle_store_done_cb cb,
              void *arg);
  /* Reads the bytes of digest; MU_ENOENT when absent. */
  void (*read)(mu_bundle_store *s, const char *digest, mu_bundle_store_read_cb cb, void *arg);
  /* Removes digest (meta and bytes); removing an absent digest is not an error. */
  void (*remove)(mu_bundle_store *s, const char *digest, mu_bundle_store_done_cb cb, void *arg);
  void (*list)(mu_bundle_store *s, mu_bundle_store_list_cb cb, void *arg);
  /* Frees the store (operations still pending complete with MU_ECANCELED first). */
  void (*close)(mu_bundle_store *s);
} mu_bundle_store_ops;

struct mu_bundle_store {
  const mu_bundle_store_ops *ops;
  uint64_t reads;      /* read() calls that returned bytes (/metrics, figures, tests) */
  uint64_t read_bytes; /* bytes those reads returned (for etcd: read from etcd) */
};

/* An in-memory store holding at most max_bytes of bundles in total (a put over it fails
 * with MU_ENOSPC). Caller frees with s->ops->close(s). */
int mu_bundle_store_mem_new(uint64_t max_bytes, mu_bundle_store **ret, mu_err *err);

/* ---- etcd (bundle_store_etcd.c) ----
 * Keys under "<prefix>bundles/<digest>/": chunk/<n> (n zero-padded to 8 digits, chunk_bytes
 * each, the last one shorter) and then meta, a JSON object {digest, name, version, key_id,
 * size, uploaded_at_ms, sig (base64 of the .sig bytes, "" when unsigned), chunks, chunk_size},
 * written last so an interrupted upload is never listed. Writes go through store (fenced on the
 * leader's term: MU_EPERM on a deposed leader); reads and list() work on any member. */

#define MU_BUNDLE_STORE_ETCD_CHUNK ((size_t)512 * 1024)

typedef struct mu_bundle_store_etcd_config {
  const char *prefix; /* musterd's etcd prefix, starts and ends with '/' (copied) */
  size_t chunk_bytes; /* bytes per chunk key, 4K..1M; 0 → MU_BUNDLE_STORE_ETCD_CHUNK */
  size_t batch_bytes; /* chunk bytes per fenced batch (its transactions go out together); 0 → 8 MiB */
  uint64_t max_bytes; /* total bytes of stored bundles (put over it: MU_ENOSPC) */
} mu_bundle_store_etcd_config;

/* loop, etcd and store are borrowed: they must outlive every operation started on the store
 * (closing the etcd client answers what is pending with MU_ECANCELED). The byte total behind
 * the cap comes from the last list() plus this store's puts and removes. Errors: MU_EINVAL
 * (prefix, chunk size), MU_ENOMEM. Caller frees with s->ops->close(s). */
int mu_bundle_store_etcd_new(uv_loop_t *loop, mu_etcd_client *etcd, mu_store *store,
                             const mu_bundle_store_etcd_config *cfg, mu_bundle_store **ret, mu_err *err);

/* The meta JSON above for m (malloc'd, caller frees; NULL when out of memory). */
char *mu_bundle_meta_to_json(const mu_bundle_meta *m, size_t chunks, size_t chunk_size);
/* Parses a meta; want_digest (may be NULL) must match its digest. On success *ret_meta (caller
 * frees with mu_bundle_meta_free) and, when not NULL, the chunk count and size. MU_EINVAL
 * names what is wrong; MU_ENOMEM. */
int mu_bundle_meta_from_json(const char *json, size_t len, const char *want_digest, mu_bundle_meta **ret_meta,
                             size_t *ret_chunks, size_t *ret_chunk_size, mu_err *err);

#endif

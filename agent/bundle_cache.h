/* The agent's content-addressed bundle cache: <dir>/<hex>.bundle (the archive), <hex>.sig
 * (its signature file, when signed) and <hex>.meta (name and version), bounded by max_bytes
 * with least-recently-used eviction of entries nobody holds. A miss asks the control plane
 * once per digest, however many tasks wait for it; chunks are collected in memory (bounded by
 * max_bundle_bytes), checked against the digest and written on the thread pool. The cache
 * never trusts what it holds: callers verify digest and signature before unpacking.
 * Loop thread only. */
#ifndef MU_AGENT_BUNDLE_CACHE_H
#define MU_AGENT_BUNDLE_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"
#include "lib/bundle/bundle.h"
#include "muster/v1/agent.pb-c.h"

typedef struct mu_bundle_cache mu_bundle_cache;

typedef struct mu_bundle_cache_config {
  const char *dir;           /* created if missing (its parent must exist); copied */
  uint64_t max_bytes;        /* archives kept; 0 = 1 GiB */
  uint64_t max_bundle_bytes; /* one archive; 0 = 256 MiB */
  /* Sends a BundleRequest{digest, offset}; 0 when sent, else the fetch waits for
   * mu_bundle_cache_resume (e.g. after a reconnect). */
  int (*request)(void *arg, const char *digest, uint64_t offset);
  void *arg;
} mu_bundle_cache_config;

/* A cached bundle handed to a waiter. Borrowed for the callback; the files stay until the
 * holder calls mu_bundle_cache_release(digest). */
typedef struct mu_cached_bundle {
  const char *digest;
  const char *path;           /* the archive */
  const char *sig_path;       /* NULL when unsigned */
  const char *name, *version; /* as the control plane announced them (not yet verified) */
  uint64_t size;
} mu_cached_bundle;

/* rc 0 with b, or a MU_E* code with msg (e.g. the control plane's error). On success the
 * waiter holds one reference. */
typedef void (*mu_bundle_cache_cb)(void *arg, int rc, const char *msg, const mu_cached_bundle *b);

typedef struct mu_bundle_cache_stats {
  uint64_t hits, misses, fetches, fetched_bytes, evictions;
  uint64_t bytes; /* archives held now */
  size_t entries;
} mu_bundle_cache_stats;

/* Opens the cache, indexing what dir holds (oldest mtime first in the LRU order) and removing
 * leftovers of interrupted writes. Caller frees with mu_bundle_cache_close. */
int mu_bundle_cache_open(uv_loop_t *loop, const mu_bundle_cache_config *cfg, mu_bundle_cache **ret, mu_err *err);
/* Finishes pending fetches with MU_ECANCELED, waits for no writer (a write in progress
 * completes first: call from the loop and keep running it until cb), frees the cache, then
 * cb(arg) (may be NULL). */
void mu_bundle_cache_close(mu_bundle_cache *c, void (*cb)(void *arg), void *arg);

/* Gets digest ("sha256:<hex>"): on a hit cb runs before this returns; on a miss once the
 * bundle has arrived and been written (or failed). */
void mu_bundle_cache_get(mu_bundle_cache *c, const char *digest, mu_bundle_cache_cb cb, void *arg);
/* Drops a reference taken by a successful get. */
void mu_bundle_cache_release(mu_bundle_cache *c, const char *digest);
/* One BundleChunk from the control plane. Chunks for digests not being fetched, or not at
 * the expected offset, are ignored. */
void mu_bundle_cache_on_chunk(mu_bundle_cache *c, const Muster__V1__BundleChunk *ch);
/* Asks again for every fetch in progress, from what has arrived (after a reconnect). */
void mu_bundle_cache_resume(mu_bundle_cache *c);
void mu_bundle_cache_stats_get(const mu_bundle_cache *c, mu_bundle_cache_stats *ret);
/* Digests held (for Hello.cached_bundles): fills up to max pointers borrowed from c. */
size_t mu_bundle_cache_list(const mu_bundle_cache *c, const char **ret, size_t max);

#endif

/* Bundles on the control plane: the index of stored bundles (metas in memory, bytes in a
 * mu_bundle_store), the admin calls UploadBundle / ListBundles / DeleteBundle, resolving a
 * task's `bundle` reference at submit, and serving BundleChunks to agents on their streams.
 * See docs/bundles.md. Loop thread only. */
#ifndef MU_CP_BUNDLES_H
#define MU_CP_BUNDLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controlplane/bundles/bundle_store.h"
#include "lib/base/err.h"
#include "lib/bundle/bundle.h"
#include "lib/config/strlist.h"
#include "muster/v1/agent.pb-c.h"

typedef struct mu_daemon mu_daemon;
typedef struct mu_agent mu_agent;
typedef struct mu_bundles mu_bundles;

/* Owns trust_keys: release with mu_bundles_config_free. */
typedef struct mu_bundles_config {
  uint64_t max_bundle_bytes;  /* --max-bundle-size; default 256 MiB */
  uint64_t max_store_bytes;   /* store cap, memory or etcd (--bundle-store-size); default 4 GiB */
  size_t chunk_bytes;         /* bytes per BundleChunk; default 1 MiB */
  size_t store_chunk_bytes;   /* bytes per etcd chunk key (--bundle-etcd-chunk); default 512 KiB */
  size_t window_bytes;        /* queued on one agent stream before more chunks; default 4 MiB */
  uint64_t serve_queue_bytes; /* bundle bytes queued on all agent streams together
                               * (--bundle-serve-queue); default 64 MiB */
  size_t max_uploads;         /* concurrent uploads; default 4 */
  uint64_t serve_cache_bytes; /* bundle bytes kept in memory for serving; default 1 GiB */
  mu_strlist trust_keys;      /* --trust-key FILE: when set, uploads must be signed by one */
} mu_bundles_config;

void mu_bundles_config_init(mu_bundles_config *cfg);
void mu_bundles_config_free(mu_bundles_config *cfg);
/* True when name ("trust-key", "max-bundle-size", "bundle-store-size", "bundle-etcd-chunk",
 * "bundle-serve-queue") is a bundle flag. */
bool mu_bundles_config_has(const char *name);
/* Applies one flag. Returns 0 or MU_EINVAL ("--max-bundle-size: ..."). */
int mu_bundles_config_set(mu_bundles_config *cfg, const char *name, const char *value, mu_err *err);

/* Creates d->bundles from d->bundle_cfg (borrowed) with store (taken, also on failure), loads
 * the trust keys and, without etcd, the store's index (with etcd the cluster calls
 * mu_bundles_reload once it has loaded its state). Errors name the bad key file. */
int mu_bundles_start(mu_daemon *d, mu_bundle_store *store, mu_err *err);

/* Completion of mu_bundles_reload: rc 0 or a MU_E* code with msg (borrowed). */
typedef void (*mu_bundles_reload_cb)(void *ud, int rc, const char *msg);
/* Replaces the index with what the store lists (a member that loaded etcd, before it leads or
 * watches; bundles uploaded by any earlier leader). cb runs exactly once, maybe inside the
 * call: MU_ECANCELED when stopping or when a newer reload superseded this one, MU_EAGAIN when
 * bundles are not started, else the store's error. */
void mu_bundles_reload(mu_daemon *d, mu_bundles_reload_cb cb, void *ud);
/* A follower's watch event for a key under "<prefix>bundles/" (rel_key: without the prefix):
 * a meta put adds the bundle to the index, a meta delete removes it, chunks are ignored. */
void mu_bundles_apply_event(mu_daemon *d, const char *rel_key, const char *value, size_t len, int is_put);

/* Figures for /metrics. */
typedef struct mu_bundles_stats {
  size_t bundles;       /* in the index */
  uint64_t bytes;       /* their total size */
  uint64_t store_reads; /* whole-bundle reads from the store (etcd or memory) */
  uint64_t store_read_bytes;
  size_t transfers; /* agents being sent a bundle now */
  uint64_t serve_cache_bytes;
  uint64_t served_bytes;   /* bundle bytes sent to agents (chunks queued on their streams) */
  uint64_t served_bundles; /* transfers that sent a bundle's last chunk */
} mu_bundles_stats;
void mu_bundles_stats_get(const mu_daemon *d, mu_bundles_stats *ret);
/* Registers the admin methods on d->server (before it starts). */
int mu_bundles_register(mu_daemon *d, mu_err *err);
/* Stops serving (ends transfers, closes the timer); calls still open may finish later. */
void mu_bundles_stop(mu_daemon *d);
/* Frees d->bundles and its store once the loop has stopped (NULL is fine). */
void mu_bundles_free(mu_daemon *d);

/* mu_jobspec_limits.bundle_resolve: ud is the daemon. Returns 0 when ref names a stored
 * bundle, else non-zero with msg ("bundle 'x@1' not found"). */
int mu_bundles_resolve_cb(void *ud, const char *ref, char *msg, size_t msg_size);
/* The digest ref resolves to, into ret_digest; "" when it names nothing stored. */
void mu_bundles_digest_of(mu_daemon *d, const char *ref, char ret_digest[MU_BUNDLE_DIGEST_SIZE]);

/* An agent's BundleRequest: streams the bundle from req->offset on the agent's stream. */
void mu_bundles_on_request(mu_daemon *d, mu_agent *agent, const Muster__V1__BundleRequest *req);
/* The agent is being forgotten (events.h): its transfers are dropped. */
void mu_bundles_on_agent_forgotten(mu_daemon *d, mu_agent *agent);

#endif

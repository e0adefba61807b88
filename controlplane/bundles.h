/* Bundles on the control plane: the index of stored bundles (metas in memory, bytes in a
 * mu_bundle_store), the admin calls UploadBundle / ListBundles / DeleteBundle, resolving a
 * task's `bundle` reference at submit, and serving BundleChunks to agents on their streams.
 * See docs/bundles.md. Loop thread only. */
#ifndef MU_CP_BUNDLES_H
#define MU_CP_BUNDLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controlplane/bundle_store.h"
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
  uint64_t max_store_bytes;   /* in-memory store cap (--bundle-store-size); default 4 GiB */
  size_t chunk_bytes;         /* bytes per BundleChunk; default 1 MiB */
  size_t window_bytes;        /* queued on one agent stream before more chunks; default 4 MiB */
  size_t max_uploads;         /* concurrent uploads; default 4 */
  uint64_t serve_cache_bytes; /* bundle bytes kept in memory for serving; default 1 GiB */
  mu_strlist trust_keys;      /* --trust-key FILE: when set, uploads must be signed by one */
} mu_bundles_config;

void mu_bundles_config_init(mu_bundles_config *cfg);
void mu_bundles_config_free(mu_bundles_config *cfg);
/* True when name ("trust-key", "max-bundle-size", "bundle-store-size") is a bundle flag. */
bool mu_bundles_config_has(const char *name);
/* Applies one flag. Returns 0 or MU_EINVAL ("--max-bundle-size: ..."). */
int mu_bundles_config_set(mu_bundles_config *cfg, const char *name, const char *value,
                          mu_err *err);

/* Creates d->bundles from d->bundle_cfg (borrowed) with store (taken, also on failure), loads
 * the trust keys and the store's index. Errors name the bad key file. */
int mu_bundles_start(mu_daemon *d, mu_bundle_store *store, mu_err *err);
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

#endif

/* Internals shared by bundles.c (index, resolve, life cycle), bundle_admin.c (upload, list,
 * delete) and bundle_serve.c (chunks to agents). Not for other files. */
#ifndef MU_CP_BUNDLES_INT_H
#define MU_CP_BUNDLES_INT_H

#include <uv.h>

#include "controlplane/bundles/bundles.h"
#include "lib/bundle/keys.h"

/* One bundle's bytes held for serving; shared by every transfer of that digest. */
typedef struct mu_serve_entry {
  struct mu_serve_entry *next;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint8_t *data; /* owned; NULL while loading */
  size_t len;
  int loading;
  int refs; /* transfers using it */
  int64_t last_used_mono;
} mu_serve_entry;

/* One agent receiving one bundle. */
typedef struct mu_transfer {
  struct mu_transfer *next;
  mu_agent *agent;      /* registry agents live as long as the daemon */
  int64_t stream_stamp; /* agent->connected_at_ms when asked: a new stream drops it */
  mu_serve_entry *entry;
  uint64_t offset;
  int sent_header;
} mu_transfer;

struct mu_bundles {
  mu_daemon *d;
  const mu_bundles_config *cfg;
  mu_bundle_store *store;
  mu_trust_set *trust; /* NULL when no trust keys are configured */
  mu_bundle_meta **metas;
  size_t n, cap;
  size_t uploads; /* in progress */
  mu_serve_entry *entries;
  uint64_t entry_bytes;
  uint64_t served_bytes, served_bundles; /* sent to agents (mu_bundles_stats) */
  mu_transfer *transfers;
  uv_timer_t pump;
  int closing;
  uint64_t reload_gen; /* the newest mu_bundles_reload; older lists are dropped */
};

/* bundles.c */
mu_bundle_meta *mu_bundles_find(mu_bundles *b, const char *digest);
/* The meta ref ("name@version" or "sha256:<hex>") names, or NULL with msg set. */
mu_bundle_meta *mu_bundles_lookup(mu_bundles *b, const char *ref, char *msg, size_t msg_size);
int mu_bundles_index_add(mu_bundles *b, const mu_bundle_meta *meta);
void mu_bundles_index_remove(mu_bundles *b, const char *digest);
/* The first unfinished job with a task referencing digest, or NULL. */
const char *mu_bundles_used_by(mu_bundles *b, const char *digest);

/* bundle_serve.c */
void mu_bundles_serve_init(mu_bundles *b);
void mu_bundles_serve_close(mu_bundles *b);
/* Drops a bundle's cached bytes and ends its transfers with the error why. */
void mu_bundles_serve_forget(mu_bundles *b, const char *digest, const char *why);

#endif
